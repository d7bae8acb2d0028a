package dispatch

import (
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// TestRetryPolicyAdapter checks that the engine's retryPolicy hands its
// configuration to the domain's rule, which root's tests cover
// (retry_test.go, lifecycle_test.go): a schedule, window and jitter of its
// own, not the defaults.
func TestRetryPolicyAdapter(t *testing.T) {
	p := retryPolicy{schedule: []time.Duration{0, 3 * time.Second, 7 * time.Second}, window: time.Minute, jitter: 0.5}
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	d := &herald.Delivery{ID: "dlv_1", FirstAttemptAt: &t0, WindowAttempts: 1}
	a := herald.Attempt{N: 2, StartedAt: t0.Add(10 * time.Second), Error: "connection refused"}
	now := a.StartedAt
	// The second failure waits schedule[2] = 7s, scaled by 1+0.5*(2*1-1) = 1.5.
	if r := p.decide(d, a, "", now, 1); r.Status != herald.StatusRetrying || !r.NextAttemptAt.Equal(now.Add(10500*time.Millisecond)) {
		t.Errorf("decide = %s at %s; want RETRYING 10.5s later (the configured schedule and jitter)", r.Status, r.NextAttemptAt)
	}
	// 55s after the first attempt, a wait of 7s falls beyond the 1m window.
	late := t0.Add(55 * time.Second)
	if r := p.decide(d, herald.Attempt{N: 2, StartedAt: late, Error: "x"}, "", late, 0.5); r.Status != herald.StatusFailed {
		t.Errorf("decide past the configured window = %s, want FAILED", r.Status)
	}
}
