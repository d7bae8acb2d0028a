package herald

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultSchedule is the wait before each attempt: the first at once, then
// 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h and 8h, the last repeating.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 30 * time.Second, 2 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}

// DefaultRetryWindow is how long after the first attempt of its window a
// delivery is retried; DefaultJitter how far each wait of the schedule is
// spread (±20 %).
const (
	DefaultRetryWindow = 24 * time.Hour
	DefaultJitter      = 0.2
)

// MinRetryAfter keeps a receiver answering "Retry-After: 0" from turning
// the retry window into a busy loop.
const MinRetryAfter = time.Second

// RetryPolicy is the retry rule: what follows an attempt that ended, as
// the sending node decides it. It is pure: the caller passes the clock
// reading and the random number, so tests need neither sleeps nor seeds.
type RetryPolicy struct {
	// Schedule is the wait before each attempt: the wait after the nth
	// failed attempt of a window is Schedule[n], the last repeating.
	// Schedule[0] stands for the first attempt, made at once.
	Schedule []time.Duration
	// Window is how long after the first attempt of the window retries go
	// on: a delivery whose next attempt would fall later is FAILED.
	Window time.Duration
	// Jitter scales each scheduled wait by 1±Jitter.
	Jitter float64
}

// DefaultRetryPolicy is the rule Herald runs with unless configured.
var DefaultRetryPolicy = RetryPolicy{Schedule: DefaultSchedule, Window: DefaultRetryWindow, Jitter: DefaultJitter}

// Decide returns the result to record for attempt a of delivery d (as it
// was claimed), which ended at now: DELIVERED on a 2xx that came whole
// (Attempt.Delivered); FAILED with the
// webhook's deactivation on 410 Gone; RETRYING, due after the schedule's
// next wait (or Retry-After's, capped at the schedule's longest), while
// that falls within the retry window; FAILED after it. retryAfter is the
// answer's Retry-After header ("" if none) and rnd a random number in
// [0, 1) that places the jitter.
//
// a.Error must already say, for a person, what went wrong when the answer
// was not a 2xx ("receiver answered 503 Service Unavailable", "connection
// refused"); the wait reason builds its sentence on it.
func (p RetryPolicy) Decide(d *Delivery, a Attempt, retryAfter string, now time.Time, rnd float64) AttemptResult {
	r := AttemptResult{DeliveryID: d.ID, Attempt: a}
	what := fmt.Sprintf("%s on attempt %d", a.Error, a.N)
	switch {
	case a.Delivered():
		r.Status = StatusDelivered
		return r
	case a.StatusCode == http.StatusGone:
		// The receiver says the endpoint is gone for good: retrying for a
		// day would only hammer it, and every later event would fail too.
		r.Status = StatusFailed
		r.WaitReason = what + "; the webhook was deactivated and no further attempt will be made"
		r.DeactivateReason = "receiver answered 410 Gone at " + FormatTime(a.StartedAt)
		return r
	}

	// The schedule restarts with the window: attempt a.N may be the first
	// of a window that a resend or recover began.
	first, n := a.StartedAt, 1
	if d.FirstAttemptAt != nil && !d.FirstAttemptAt.IsZero() {
		first, n = *d.FirstAttemptAt, d.WindowAttempts+1
	}
	wait, why := p.Wait(n, retryAfter, now, rnd)
	next := now.Add(wait)
	if end := first.Add(p.Window); next.After(end) {
		r.Status = StatusFailed
		r.WaitReason = fmt.Sprintf("%s; gave up: the next attempt would have been after %s, the end of the %s retry window that began at %s",
			what, FormatTime(end), FormatDuration(p.Window), FormatTime(first))
		return r
	}
	r.Status = StatusRetrying
	r.NextAttemptAt = next
	r.WaitReason = fmt.Sprintf("%s; next attempt at %s%s", what, FormatTime(next), why)
	return r
}

// Wait returns how long to wait after the nth failed attempt of the retry
// window (1 for the first) and, when the receiver chose it, the words that
// say so.
func (p RetryPolicy) Wait(n int, retryAfter string, now time.Time, rnd float64) (time.Duration, string) {
	longest := slices.Max(p.Schedule)
	if ra, ok := ParseRetryAfter(retryAfter, now); ok {
		// The receiver knows best when it will be back, but it must not be
		// able to park a delivery beyond what the schedule would do anyway.
		switch {
		case ra > longest:
			return longest, fmt.Sprintf(" (Retry-After asked for %s; capped at %s, the longest wait of the schedule)", FormatDuration(ra), FormatDuration(longest))
		case ra < MinRetryAfter:
			return MinRetryAfter, " (as Retry-After asked, but no sooner than 1s)"
		}
		return ra, " (as Retry-After asked)"
	}
	w := p.Schedule[min(n, len(p.Schedule)-1)]
	// Jitter spreads the retries of deliveries that failed together (a
	// receiver outage) so they do not come back as one burst.
	return time.Duration(float64(w) * (1 + p.Jitter*(2*rnd-1))), ""
}

// ParseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date (a date in the past is a wait of 0). It reports false when the
// header is absent or unreadable.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		const maxSecs = uint64(1<<63-1) / uint64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// FormatTime writes times in wait reasons and deactivation reasons: UTC to
// the second, as a receiver's developer would paste it into a log search.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// FormatDuration writes durations in reasons: 24h rather than 24h0m0s,
// keeping the milliseconds of short durations (250ms, 1.5s) that tests
// configure.
func FormatDuration(d time.Duration) string {
	if d < time.Minute {
		return d.String()
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
