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

// TestPaceBacksOffAndRecovers: a receiver under a backlog of deliveries
// answers its first 80 requests 2xx, the next 40 429, and 2xx again.
// Counting its own requests in flight, it sees the engine's full 8 at
// once, then at most 2 once 20 of the 429s have gone out (the window
// halved round by round), then 8 again. The phases go by the receiver's
// count of requests, not by the clock, so a slow machine changes nothing.
// The breaker is set out of reach so that only the pace is at work;
// herald_webhooks_paced shows the webhook paced, then not.
func TestPaceBacksOffAndRecovers(t *testing.T) {
	const (
		n       = 400
		perHook = 8
		ok1     = 80 // requests answered 2xx first
		refuse  = 40 // then answered 429
		settle  = 20 // 429s after which the window must be down
	)
	type phase int
	const (
		before phase = iota
		throttling
		after
	)
	var (
		mu      sync.Mutex
		seen    int // requests so far
		cur     atomic.Int32
		most    [3]int // most in flight at once, per phase
		late429 int    // most in flight once settle 429s went out
	)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) {
		now := int(cur.Add(1))
		defer cur.Add(-1)
		mu.Lock()
		seen++
		p := after
		switch {
		case seen <= ok1:
			p = before
		case seen <= ok1+refuse:
			p = throttling
			if seen > ok1+settle {
				late429 = max(late429, now)
			}
		}
		most[p] = max(most[p], now)
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
	waitFor(t, 10*time.Second, "herald_webhooks_paced to be 1", func() bool { return paced() == 1 })
	waitStatus(t, db, "wh-busy", n, 30*time.Second, herald.StatusDelivered)
	waitFor(t, 3*time.Second, "herald_webhooks_paced to be 0", func() bool { return paced() == 0 })

	mu.Lock()
	defer mu.Unlock()
	t.Logf("most in flight at the receiver: %d before, %d during the 429s (%d after the first %d), %d after", most[before], most[throttling], late429, settle, most[after])
	if most[before] != perHook {
		t.Errorf("%d in flight before the 429s, want %d", most[before], perHook)
	}
	if late429 == 0 || late429 > 2 {
		t.Errorf("%d in flight after %d 429s, want 1 or 2 (the window halved, round by round)", late429, settle)
	}
	if most[after] != perHook {
		t.Errorf("%d in flight after the 429s, want %d again", most[after], perHook)
	}
}

// TestPaceBacksOffOnTimeouts: eight requests in flight that all run into
// the webhook's 1s timeout halve the window once (the eight were one
// round), so the receiver, answering again, sees 4 at once while the
// next 6 requests come (not 8, and not 1; the window grows past 4.5 only
// after 5 answers; 2 or 3 on a busy machine), then all are delivered.
func TestPaceBacksOffOnTimeouts(t *testing.T) {
	const (
		n       = 40
		perHook = 8
	)
	var (
		mu    sync.Mutex
		seen  int
		cur   atomic.Int32
		after int // most in flight while the 6 requests after the timeouts came
	)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ *heraldtest.Request) {
		mu.Lock()
		seen++
		i := seen
		mu.Unlock()
		if i <= perHook {
			// Until Herald gives up; not counted in flight, since the
			// server may notice that a little after Herald's next requests.
			<-r.Context().Done()
			return
		}
		now := int(cur.Add(1))
		defer cur.Add(-1)
		if i <= perHook+6 {
			mu.Lock()
			after = max(after, now)
			mu.Unlock()
		}
		// Long enough that the requests of one window overlap at the
		// receiver even when the machine is busy.
		time.Sleep(150 * time.Millisecond)
	})
	db, _ := mustStore(t, hook{name: "wh-stuck", url: rc.URL, timeout: 1})
	cfg := testConfig(t, db)
	cfg.PerWebhookInFlight, cfg.FastWebhookInFlight = perHook, perHook
	cfg.BreakerThreshold = 1 << 20
	cfg.Schedule = []time.Duration{0, 50 * time.Millisecond}
	cfg.Jitter = 0.01
	e, _ := mustRun(t, cfg)
	mustCreateEvents(t, e, n)
	waitStatus(t, db, "wh-stuck", n, 15*time.Second, herald.StatusDelivered)

	mu.Lock()
	defer mu.Unlock()
	t.Logf("most in flight after the %d timeouts: %d", perHook, after)
	// The window is 4; on a busy machine the receiver may see one or two
	// fewer at once. Without the round guard it would see 1, with the
	// timeouts not counted 6 or more.
	if after < perHook/2-2 || after > perHook/2 {
		t.Errorf("%d in flight after %d requests timed out together; want %d (halved once for the round), or a little less on a busy machine", after, perHook, perHook/2)
	}
}
