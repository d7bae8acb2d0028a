package access

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
)

// Token requests are counted in fixed windows (5 minutes by default) per
// client name and per source address, in the database, so every node sees
// the same counts. Past a key's limit in a window, its requests are refused
// with ERATELIMITED until the window ends, even with the right secret. Once
// a node has seen a key over its limit it remembers until when, and refuses
// that key's requests without writing to the database again.

// limiter counts token requests and refuses those over the limits.
type limiter struct {
	// onBlock, when set, is told of the first refusal of a key on this
	// node: a lockout, for the audit trail.
	onBlock    func(ctx context.Context, key, address string, until time.Time)
	store      Store
	now        func() time.Time
	log        *slog.Logger
	perClient  int
	perAddress int
	window     time.Duration
	purge      *purger

	mu      sync.Mutex
	blocked map[string]time.Time // key -> end of the window it is over its limit in
}

// windowStart returns the start of the fixed window now falls in: windows
// are aligned on the Unix epoch, so every node agrees on them.
func windowStart(now time.Time, window time.Duration) time.Time {
	w := window.Milliseconds()
	return time.UnixMilli(now.UnixMilli() / w * w).UTC()
}

// addressKey returns the rate-limit key of a request's source: the TCP
// peer's IP (r.RemoteAddr; X-Forwarded-For is never trusted, since any
// client can send it), and for IPv6 its /64, which one host usually holds
// whole.
func addressKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "address:" + host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() && !ip.IsLoopback() {
		p, _ := ip.Prefix(64)
		return "address:" + p.String()
	}
	return "address:" + ip.String()
}

// admit counts a token request for client ("" when the request names no
// valid client: only the address counts) from remoteAddr, and returns
// ERATELIMITED (with RetryAfter) when either is over its limit in the
// current window.
func (l *limiter) admit(ctx context.Context, client, remoteAddr string) error {
	now := l.now()
	type key struct {
		key, what string
		limit     int
	}
	addr := addressKey(remoteAddr)
	keys := []key{{addr, "from address " + addr[len("address:"):], l.perAddress}}
	if client != "" {
		keys = append(keys, key{"client:" + client, fmt.Sprintf("for API client %q", client), l.perClient})
	}
	l.mu.Lock()
	for _, k := range keys {
		if until, ok := l.blocked[k.key]; ok {
			if now.Before(until) {
				l.mu.Unlock()
				return l.refusal(k.what, k.limit, until, now)
			}
			delete(l.blocked, k.key)
		}
	}
	l.mu.Unlock()

	l.purge.maybe(ctx, now)
	start := windowStart(now, l.window)
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.key
	}
	counts, err := l.store.CountAuthRequests(ctx, start, names...)
	if err != nil {
		return err
	}
	end := start.Add(l.window)
	for i, k := range keys {
		if counts[i] > k.limit {
			l.mu.Lock()
			if len(l.blocked) > 10000 {
				l.sweep(now)
			}
			_, known := l.blocked[k.key]
			l.blocked[k.key] = end
			l.mu.Unlock()
			if !known {
				l.log.WarnContext(ctx, "token requests over the limit: refused until the window ends",
					"key", k.key, "limit", k.limit, "window", l.window.String(), "until", end)
				if l.onBlock != nil {
					l.onBlock(ctx, k.key, remoteAddr, end)
				}
			}
			return l.refusal(k.what, k.limit, end, now)
		}
	}
	return nil
}

// sweep forgets the blocks that have ended. l.mu must be held.
func (l *limiter) sweep(now time.Time) {
	for k, until := range l.blocked {
		if !now.Before(until) {
			delete(l.blocked, k)
		}
	}
}

func (l *limiter) refusal(what string, limit int, until, now time.Time) error {
	wait := until.Sub(now)
	secs := int((wait + time.Second - 1) / time.Second)
	e := herald.Errorf(herald.ERATELIMITED, "Too many token requests %s: more than %d in %s. Try again after %s (in %d seconds).",
		what, limit, windowText(l.window), until.UTC().Format(time.RFC3339), secs)
	e.RetryAfter = time.Duration(secs) * time.Second
	return e
}

// windowText says a window the way people do: "5 minutes".
func windowText(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d > time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d == time.Hour:
		return "an hour"
	case d%time.Minute == 0 && d > time.Minute:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	case d == time.Minute:
		return "a minute"
	}
	return d.String()
}
