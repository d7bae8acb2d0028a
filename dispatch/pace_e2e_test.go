package dispatch_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestPaceBacksOffAndRecovers: a receiver that answers 2xx, then 429 for a
// second, then 2xx again, under a backlog of deliveries, sees (counting
// its own requests in flight) the engine's full 8 at once, then at most 2
// once the 429s have halved the window, then 8 again. The breaker is set
// out of reach so that only the pace is at work; herald_webhooks_paced
// shows the webhook paced, then not.
func TestPaceBacksOffAndRecovers(t *testing.T) {
	const (
		n       = 500 // what the helper deliveries lists
		perHook = 8
	)
	type phase int
	const (
		before phase = iota
		throttling
		after
	)
	var (
		mu      sync.Mutex
		start   time.Time // of the first request
		cur     atomic.Int32
		most    [3]int // most in flight at once, per phase
		late429 int    // most in flight in the second half of the 429s
	)
	phaseAt := func(now time.Time) (phase, bool) {
		switch d := now.Sub(start); {
		case d < 500*time.Millisecond:
			return before, false
		case d < 1500*time.Millisecond:
			return throttling, d >= time.Second
		}
		return after, false
	}
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) {
		now := int(cur.Add(1))
		defer cur.Add(-1)
		mu.Lock()
		if start.IsZero() {
			start = time.Now()
		}
		p, late := phaseAt(time.Now())
		most[p] = max(most[p], now)
		if late {
			late429 = max(late429, now)
		}
		mu.Unlock()
		time.Sleep(40 * time.Millisecond)
		if p == throttling {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	db, _ := mustStore(t, hook{name: "wh-busy", url: rc.URL})
	cfg := testConfig(t, db)
	cfg.PerWebhookInFlight, cfg.FastWebhookInFlight = perHook, perHook
	cfg.BreakerThreshold = 1 << 20
	cfg.Schedule = []time.Duration{0, 50 * time.Millisecond}
	cfg.Jitter = 0.01
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	e, _ := mustRun(t, cfg)
	paced := func() float64 { return metric(t, reg, "herald_webhooks_paced", nil).GetGauge().GetValue() }

	mustCreateEvents(t, e, n)
	waitFor(t, 3*time.Second, "herald_webhooks_paced to be 1", func() bool { return paced() == 1 })
	waitStatus(t, db, "wh-busy", n, 20*time.Second, herald.StatusDelivered)
	waitFor(t, 3*time.Second, "herald_webhooks_paced to be 0", func() bool { return paced() == 0 })

	mu.Lock()
	defer mu.Unlock()
	t.Logf("most in flight at the receiver: %d before, %d during the 429s (%d in their second half), %d after", most[before], most[throttling], late429, most[after])
	if most[before] != perHook {
		t.Errorf("%d in flight before the 429s, want %d", most[before], perHook)
	}
	if late429 == 0 || late429 > 2 {
		t.Errorf("%d in flight in the second half of the 429s, want 1 or 2 (the window halved, round by round)", late429)
	}
	if most[after] != perHook {
		t.Errorf("%d in flight after the 429s, want %d again", most[after], perHook)
	}
}
