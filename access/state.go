package access

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhooks/herald"
)

// A token's signature and expiry are checked without a lookup; whether its
// client still stands and whether it was revoked are checked against a
// snapshot of every client's state and every revoked token id, which each
// node re-reads from the database when it is older than Config.Refresh (2 s)
// and a token is to be checked. So a deletion, a disabling, a rotation or a
// revocation made on any node reaches every node within about that time,
// while checking a token stays a map lookup. A node whose snapshot is older
// than Config.MaxStale (5 s), because the database does not answer, refuses
// tokens (503) rather than accept ones that may have been revoked.

// clientState is what a token is checked against: a client as it stands.
type clientState struct {
	disabled   bool
	generation int
	// previousExpires is when the secret of generation-1 stops working;
	// zero when it already has.
	previousExpires time.Time
	// validFrom voids tokens issued before it; zero when there is no cut.
	validFrom time.Time
}

// snapshot is the state of every client and the revoked tokens, as read at
// a moment. It is never changed once made.
type snapshot struct {
	at      time.Time
	clients map[string]clientState // by client ID
	revoked map[string]bool        // token IDs
}

// knows reports whether the snapshot has a client.
func (s *snapshot) knows(clientID string) bool {
	_, ok := s.clients[clientID]
	return ok
}

// check returns nil when the client of the claims still stands, the token
// was not revoked, and its secret still counts, all at now; otherwise
// EUNAUTHORIZED saying which of those is not so.
func (s *snapshot) check(c *claims, now time.Time) error {
	if s.revoked[c.ID] {
		return herald.Errorf(herald.EUNAUTHORIZED, "The bearer token was revoked; get a new one from POST /v1/auth/token.")
	}
	st, ok := s.clients[c.ClientID]
	switch {
	case !ok:
		return herald.Errorf(herald.EUNAUTHORIZED, "API client %q%s was deleted, and its tokens with it.", c.Client, ofTenant(c.Tenant))
	case st.disabled:
		return herald.Errorf(herald.EUNAUTHORIZED, "API client %q%s is disabled; its tokens do not work until an admin enables it again.", c.Client, ofTenant(c.Tenant))
	case !st.validFrom.IsZero() && time.UnixMilli(c.Issued).Before(st.validFrom):
		return herald.Errorf(herald.EUNAUTHORIZED, "API client %q%s was disabled after this token was issued, which voided it; get a new token from POST /v1/auth/token.", c.Client, ofTenant(c.Tenant))
	case c.Gen == st.generation:
		return nil
	case c.Gen == st.generation-1 && now.Before(st.previousExpires):
		return nil // the secret it was issued for is in its grace period
	}
	return herald.Errorf(herald.EUNAUTHORIZED, "API client %q%s had its secret rotated, which ended the tokens issued for the earlier secret; get a new token with the new secret from POST /v1/auth/token.", c.Client, ofTenant(c.Tenant))
}

func ofTenant(tenant string) string {
	if tenant == "" {
		return ""
	}
	return " of tenant " + tenant
}

// clockSkew is how far apart the clocks of nodes may be for a token to be
// taken as issued before a snapshot that was read on another node.
const clockSkew = 5 * time.Second

// minRefresh is how long after a read a token of a client the snapshot
// does not know makes it read again: the client may be newer than the
// snapshot. A deleted client's tokens cannot make a node read more often.
const minRefresh = 100 * time.Millisecond

// retryFailedRefresh is how long after a failed refresh the next one is
// tried, so a database outage does not turn every request into a query.
const retryFailedRefresh = 500 * time.Millisecond

// state keeps the current snapshot and re-reads it when it is old.
type state struct {
	store    Store
	now      func() time.Time
	log      *slog.Logger
	refresh  time.Duration
	maxStale time.Duration
	purge    *purger

	snap  atomic.Pointer[snapshot]
	dirty atomic.Bool // set when this node changed something: re-read at next use

	// mu is held by the goroutine refreshing; the fields below are its.
	mu      sync.Mutex
	lastTry time.Time
	lastErr error
}

// invalidate makes the next check re-read the state: this node has just
// changed it, and should not wait for the refresh to see its own change.
func (s *state) invalidate() { s.dirty.Store(true) }

// current returns a snapshot no older than refresh, re-reading it when it
// is older; if the database does not answer, the last snapshot as long as
// it is no older than maxStale, and EUNAVAILABLE after that.
func (s *state) current(ctx context.Context) (*snapshot, error) {
	return s.get(ctx, time.Time{})
}

// newer is current for a token issued at issued whose client the snapshot
// does not know: it re-reads a snapshot that is not both later than issued
// and younger than minRefresh.
func (s *state) newer(ctx context.Context, issued time.Time) (*snapshot, error) {
	return s.get(ctx, issued)
}

func (s *state) get(ctx context.Context, after time.Time) (*snapshot, error) {
	now := s.now()
	fresh := func(snap *snapshot) bool {
		switch {
		case snap == nil || s.dirty.Load():
			return false
		case !after.IsZero():
			return snap.at.After(after) && now.Sub(snap.at) < minRefresh
		}
		return now.Sub(snap.at) < s.refresh
	}
	if snap := s.snap.Load(); fresh(snap) {
		return snap, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snap.Load()
	if fresh(snap) {
		return snap, nil // another request refreshed it meanwhile
	}
	// After a failed read, the next waits retryFailedRefresh, even when
	// this node changed something meanwhile: an outage must not make every
	// request a query.
	if s.lastErr == nil || now.Sub(s.lastTry) >= retryFailedRefresh {
		s.lastTry = now
		fresh, err := s.load(ctx)
		s.lastErr = err
		if err == nil {
			s.snap.Store(fresh)
			s.purge.maybe(ctx, fresh.at)
			return fresh, nil
		}
		s.log.WarnContext(ctx, "cannot read the state of API clients and revoked tokens", "err", err)
	}
	if snap != nil && now.Sub(snap.at) < s.maxStale {
		return snap, nil
	}
	return nil, herald.Errorf(herald.EUNAVAILABLE, "database unavailable: this node cannot check whether the token's client still stands or the token was revoked (%s); try again shortly.", herald.ErrorMessage(s.lastErr))
}

// load reads a snapshot. It does not give up with the request that asked
// for it: the snapshot serves the others too.
func (s *state) load(ctx context.Context) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s.dirty.Store(false) // a change after this point sets it again
	at := s.now()
	clients, err := s.store.APIClientStates(ctx)
	if err != nil {
		s.dirty.Store(true)
		return nil, err
	}
	revoked, err := s.store.RevokedTokens(ctx, at)
	if err != nil {
		s.dirty.Store(true)
		return nil, err
	}
	snap := &snapshot{at: at, clients: make(map[string]clientState, len(clients)), revoked: make(map[string]bool, len(revoked))}
	for _, c := range clients {
		st := clientState{disabled: c.Disabled, generation: c.Generation}
		if c.PreviousSecretExpiresAt != nil {
			st.previousExpires = *c.PreviousSecretExpiresAt
		}
		if c.TokensValidFrom != nil {
			st.validFrom = *c.TokensValidFrom
		}
		snap.clients[c.ID] = st
	}
	for _, id := range revoked {
		snap.revoked[id] = true
	}
	return snap, nil
}

// purgeEvery is how often a node deletes expired revocations and old
// request counts (each node does, lazily: the deletes are idempotent).
const purgeEvery = 5 * time.Minute

// purger deletes expired revocations and the request counts of past
// windows, at most every purgeEvery, from whichever of the token checks
// and the token requests comes first. It is safe for concurrent use.
type purger struct {
	store  Store
	log    *slog.Logger
	window time.Duration
	// idle and maxAge are the session limits: sessions past either go.
	idle, maxAge time.Duration
	last         atomic.Int64 // unix ms of the last purge
}

// maybe purges when the last purge is purgeEvery old; a failure is logged
// and tried again next time.
func (p *purger) maybe(ctx context.Context, now time.Time) {
	last := p.last.Load()
	if now.UnixMilli()-last < purgeEvery.Milliseconds() || !p.last.CompareAndSwap(last, now.UnixMilli()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n, err := p.store.PurgeAuthRecords(ctx, now, windowStart(now, p.window).Add(-p.window))
	if err != nil {
		p.log.WarnContext(ctx, "cannot purge expired token revocations and request counts", "err", err)
		return
	}
	if n > 0 {
		p.log.DebugContext(ctx, "purged expired token revocations and request counts", "rows", n)
	}
	if p.idle > 0 {
		if n, err := p.store.PurgeSessions(ctx, now.Add(-p.idle), now.Add(-p.maxAge)); err != nil {
			p.log.WarnContext(ctx, "cannot purge ended sessions and expired setup links", "err", err)
		} else if n > 0 {
			p.log.DebugContext(ctx, "purged ended sessions and expired setup links", "rows", n)
		}
	}
}
