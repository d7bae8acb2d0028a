package dispatch

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhooks/herald"
)

// The retry rule lives in the domain (herald.RetryPolicy, retry.go, with
// the rest of the delivery state machine in lifecycle.go); this file adapts
// it to the names the engine uses.

// DefaultSchedule is the wait before each attempt: the first at once, then
// 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h and 8h, the last repeating
// (herald.DefaultSchedule).
var DefaultSchedule = herald.DefaultSchedule

// retryPolicy is the engine's configured herald.RetryPolicy.
type retryPolicy struct {
	schedule []time.Duration // wait before attempt n+1 is schedule[n], the last repeating
	window   time.Duration   // retries stop this long after the first attempt
	jitter   float64         // each wait is scaled by 1±jitter
}

func (p retryPolicy) rule() herald.RetryPolicy {
	return herald.RetryPolicy{Schedule: p.schedule, Window: p.window, Jitter: p.jitter}
}

// decide is herald.RetryPolicy.Decide: the result to record for attempt a
// of delivery d, which ended at now.
func (p retryPolicy) decide(d *herald.Delivery, a herald.Attempt, retryAfter string, now time.Time, rnd float64) herald.AttemptResult {
	return p.rule().Decide(d, a, retryAfter, now, rnd)
}

// formatTime writes times in reasons as the domain does (herald.FormatTime).
func formatTime(t time.Time) string { return herald.FormatTime(t) }

// formatDuration writes durations in reasons as the domain does
// (herald.FormatDuration).
func formatDuration(d time.Duration) string { return herald.FormatDuration(d) }

// statusText writes a status code as people read it: "503 Service Unavailable".
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return strconv.Itoa(code)
}
