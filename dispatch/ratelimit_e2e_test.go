package dispatch_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
)

// TestRateLimit: a webhook with rateLimitPerSecond 20 and a burst of 200
// events gets, as the receiver counts the requests it takes, no more than
// 20 in any second of the clock and none bunched up: at most 20 in any
// sliding second (the slots are spread over it), each with a margin of
// 10% for requests whose way to the receiver took longer than the others'
// (on a loaded machine, under -race); and it gets its 20, not fewer, once
// the engine is busy with it.
// On SQLite one node; on PostgreSQL two nodes sharing the database, their
// requests summed at the receiver, both taking part. The test watches 3
// seconds of the burst, not its 10.
func TestRateLimit(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testRateLimit(t, func(url string) []*sqlstore.DB {
			db, _ := mustStore(t, hook{name: "wh-limited", url: url})
			return []*sqlstore.DB{db}
		})
	})
	t.Run("postgres, two nodes", func(t *testing.T) {
		testRateLimit(t, func(url string) []*sqlstore.DB {
			dsn := storekit.PostgresDSN(t)
			db1, db2 := mustOpen(t, dsn), mustOpen(t, dsn)
			mustSetup(t, db1, hook{name: "wh-limited", url: url})
			return []*sqlstore.DB{db1, db2}
		})
	})
}

// testRateLimit runs the test on the stores (nodes) open returns, whose
// database has webhook wh-limited sending to url.
func testRateLimit(t *testing.T, open func(url string) []*sqlstore.DB) {
	const (
		limit = 20
		n     = 200
		watch = 3 * time.Second // of the 10 the burst takes
	)
	var (
		mu sync.Mutex
		at []time.Time // when each request came, in order
	)
	rc := newReceiver(t, func(http.ResponseWriter, *http.Request, *heraldtest.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
	})
	dbs := open(rc.URL)
	l := limit
	if _, err := dbs[0].UpdateWebhook(context.Background(), tenant, instance, "wh-limited", herald.WebhookUpdate{
		RateLimitPerSecond: herald.RateLimitUpdate{Set: true, Value: &l}}); err != nil {
		t.Fatal(err)
	}
	regs := make([]*prometheus.Registry, len(dbs))
	var first *dispatch.Engine
	for i, db := range dbs {
		cfg := testConfig(t, db)
		regs[i] = prometheus.NewRegistry()
		cfg.Registerer = regs[i]
		e, _ := mustRun(t, cfg)
		if i == 0 {
			first = e
		}
	}
	mustCreateEvents(t, first, n)
	waitFor(t, 3*watch, "the receiver to take requests for "+watch.String(), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(at) > 0 && at[len(at)-1].Sub(at[0]) >= watch
	})

	mu.Lock()
	times := slices.Clone(at)
	mu.Unlock()
	if len(times) < 2*limit {
		t.Fatalf("%d requests in %s; the webhook was to get about %d", len(times), watch, 3*limit)
	}
	perSecond := map[int64]int{}
	for _, ts := range times {
		perSecond[ts.Unix()]++
	}
	most, busy := 0, 0
	start, end := times[0].Unix(), times[len(times)-1].Unix()
	for s, c := range perSecond {
		most = max(most, c)
		if s > start && s < end { // whole seconds of the burst
			busy = max(busy, c)
		}
	}
	sliding := 0
	for i, ts := range times {
		j, _ := slices.BinarySearchFunc(times, ts.Add(time.Second), func(a, b time.Time) int { return a.Compare(b) })
		sliding = max(sliding, j-i)
	}
	t.Logf("%d requests in %s: at most %d in a second of the clock (%d in a whole one), %d in a sliding second", len(times), watch, most, busy, sliding)
	if most > limit+limit/10 {
		t.Errorf("%d requests in one second of the clock; the limit is %d", most, limit)
	}
	if sliding > limit+limit/10+1 {
		t.Errorf("%d requests in one sliding second; the limit is %d, spread over the second", sliding, limit)
	}
	if busy < limit-2 {
		t.Errorf("at most %d requests in a whole second of the burst; want about the limit, %d", busy, limit)
	}
	waits := 0.0
	for i, reg := range regs {
		waits += counter(t, reg, "herald_rate_limit_waits_total", nil)
		if sent := counter(t, reg, "herald_delivery_attempts_total", map[string]string{"outcome": "delivered"}); sent == 0 {
			t.Errorf("node %d sent nothing; the test is to show the nodes share the limit", i+1)
		}
	}
	if waits == 0 {
		t.Error("herald_rate_limit_waits_total stayed 0 through a burst of 10 times the limit")
	}
}
