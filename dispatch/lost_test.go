package dispatch_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

// outage is a PostgreSQL store behind a TCP proxy the test can cut, on a
// clock the test moves, with a receiver that cuts the database away while
// it answers the first request: that attempt's result cannot be written.
type outage struct {
	proxy *storetest.Proxy
	clock *storetest.Clock
	db    *sqlstore.DB
	rc    *receiver
	cfg   dispatch.Config
	reg   *prometheus.Registry
}

func newOutage(t *testing.T) *outage {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	u, _ := url.Parse(dsn)
	o := &outage{proxy: storetest.NewProxy(t, u.Host), clock: storetest.NewClock(time.Now()), reg: prometheus.NewRegistry()}
	u.Host = o.proxy.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqlstore.Open(ctx, u.String(), sqlstore.Config{Keys: storetest.Keys, Now: o.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	o.db = db
	o.rc = newReceiver(t, func(_ http.ResponseWriter, _ *http.Request, n int) {
		if n == 1 {
			o.proxy.Cut()
		}
	})
	mustSetup(t, db, hook{name: "wh-sync", url: o.rc.URL})
	o.cfg = testConfig(t, db)
	o.cfg.Now, o.cfg.Registerer, o.cfg.Lease = o.clock.Now, o.reg, time.Minute
	return o
}

// leaseRunsOut moves the clock past the lease of a delivery claimed now:
// the engine's lease, and the webhook's timeout the store adds to it.
func (o *outage) leaseRunsOut() {
	o.clock.Advance(o.cfg.Lease + herald.DefaultTimeoutSeconds*time.Second + time.Second)
}

// sentAgain waits until the delivery is DELIVERED by a second request, with
// only that request's attempt on record: the first one's was lost.
func (o *outage) sentAgain(t *testing.T) {
	t.Helper()
	d := waitStatus(t, o.db, "wh-sync", 1, 20*time.Second, herald.StatusDelivered)[0]
	if n := o.rc.count(); n != 2 {
		t.Errorf("receiver got %d requests, want 2: the delivery is sent again", n)
	}
	if len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 200 {
		t.Errorf("attempts = %+v, want only the second request's", d.Attempts)
	}
	got := o.rc.got()
	if len(got) == 2 && got[0].header.Get("webhook-id") != got[1].header.Get("webhook-id") {
		t.Errorf("sent again under another webhook-id: receivers could not dedupe")
	}
}

// TestResultsThatOutliveTheirLeaseAreLost: a result that cannot be written
// before its lease runs out is dropped and counted in
// herald_results_lost_total (another node may be sending the delivery
// again by then); once the database is back, the delivery is sent again
// under the same webhook-id.
func TestResultsThatOutliveTheirLeaseAreLost(t *testing.T) {
	o := newOutage(t)
	e, _ := mustRun(t, o.cfg)
	mustCreateEvents(t, e, 1)
	waitFor(t, 10*time.Second, "a failed write of the result", func() bool {
		return counter(t, o.reg, "herald_result_flush_errors_total", nil) >= 1
	})
	if lost := counter(t, o.reg, "herald_results_lost_total", nil); lost != 0 {
		t.Fatalf("%g results lost while their lease holds", lost)
	}
	o.leaseRunsOut()
	waitFor(t, 10*time.Second, "the result to be dropped as lost", func() bool {
		return counter(t, o.reg, "herald_results_lost_total", nil) == 1
	})
	o.proxy.Restore()
	o.sentAgain(t)
	if lost := counter(t, o.reg, "herald_results_lost_total", nil); lost != 1 {
		t.Errorf("herald_results_lost_total = %g, want 1", lost)
	}
	waitIdle(t, e)
}

// TestResultsLostAtDrain: an engine stopping while the database is away
// writes what it can until its drain timeout, then counts the rest in
// herald_results_lost_total, and Run says it could not release its
// claims; after the lease another node sends the delivery again.
func TestResultsLostAtDrain(t *testing.T) {
	o := newOutage(t)
	e, err := dispatch.New(o.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	mustCreateEvents(t, e, 1)
	waitFor(t, 10*time.Second, "a failed write of the result", func() bool {
		return counter(t, o.reg, "herald_result_flush_errors_total", nil) >= 1
	})

	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "release deliveries") {
			t.Errorf("Run = %v, want the failed release named", err)
		}
	case <-time.After(o.cfg.DrainTimeout + 30*time.Second):
		t.Fatal("Run did not return after its drain timeout")
	}
	if lost := counter(t, o.reg, "herald_results_lost_total", nil); lost != 1 {
		t.Fatalf("herald_results_lost_total = %g, want 1", lost)
	}

	o.proxy.Restore()
	o.leaseRunsOut()
	next := testConfig(t, o.db)
	next.Now = o.clock.Now
	mustRun(t, next)
	o.sentAgain(t)
}
