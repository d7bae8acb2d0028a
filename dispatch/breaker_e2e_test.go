package dispatch_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestBreakerProbesADownReceiver: a receiver that answers 503 for 3s
// while 300 deliveries fall due every 100ms gets, once the breaker is
// open, one request at a time (measured at the receiver: no request starts
// while another is in flight), and every delivery once it is back.
func TestBreakerProbesADownReceiver(t *testing.T) {
	const (
		n         = 300
		down      = 3 * time.Second
		threshold = 5
		perHook   = 8
	)
	var (
		mu        sync.Mutex
		upAt      time.Time // zero until the first request
		cur       atomic.Int32
		started   int // requests started while down
		maxWhile  int // most in flight at once while down, breaker open
		whileDown int // requests answered 503
	)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) {
		now := cur.Add(1)
		defer cur.Add(-1)
		mu.Lock()
		if upAt.IsZero() {
			upAt = time.Now().Add(down)
		}
		isDown := time.Now().Before(upAt)
		if isDown {
			started++
			// The first threshold requests open the breaker; up to
			// perHook may be in flight when it opens.
			if started > threshold+perHook {
				maxWhile = max(maxWhile, int(now))
			}
			whileDown++
		}
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		if isDown {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	db, _ := mustStore(t, hook{name: "wh-down", url: rc.URL})
	cfg := testConfig(t, db)
	cfg.PerWebhookInFlight, cfg.FastWebhookInFlight = perHook, perHook
	cfg.BreakerThreshold = threshold
	cfg.Schedule = []time.Duration{0, 100 * time.Millisecond}
	cfg.Jitter = 0.01
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	e, _ := mustRun(t, cfg)
	probing := func() float64 { return metric(t, reg, "herald_webhooks_probing", nil).GetGauge().GetValue() }

	mustCreateEvents(t, e, n)
	health := func() herald.WebhookHealthRecord {
		w, err := db.GetWebhook(context.Background(), tenant, instance, "wh-down")
		if err != nil {
			t.Fatal(err)
		}
		return w.Health
	}
	waitFor(t, down, "herald_webhooks_probing to be 1", func() bool { return probing() == 1 })
	waitFor(t, down, "the webhook's health to be probing", func() bool { return health().State() == herald.HealthProbing })
	if h := health(); h.FailingSince == nil || h.ConsecutiveFailures < threshold {
		t.Errorf("health while down = %+v; want failing since the first attempt, %d or more failures", h, threshold)
	}
	waitStatus(t, db, "wh-down", n, 20*time.Second, herald.StatusDelivered)
	if got := probing(); got != 0 {
		t.Errorf("herald_webhooks_probing = %g after the receiver came back, want 0", got)
	}
	if h := health(); h.State() != herald.HealthHealthy || h.FailingSince != nil || h.ConsecutiveFailures != 0 {
		t.Errorf("health after the receiver came back = %+v, want healthy", h)
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("while down: %d requests, at most %d in flight once the breaker was open", whileDown, maxWhile)
	if whileDown <= threshold+perHook {
		t.Fatalf("only %d requests while down; the test did not reach the breaker", whileDown)
	}
	if maxWhile != 1 {
		t.Errorf("%d requests in flight at once while the receiver was down; want 1 (one probe at a time)", maxWhile)
	}
}
