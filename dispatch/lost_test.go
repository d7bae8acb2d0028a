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
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

// outage is a PostgreSQL store behind a TCP proxy the test can cut, on a
// clock the test moves, with a receiver that cuts the database away while
// it answers the first request: that attempt's result cannot be written.
type outage struct {
	proxy *storetest.Proxy
	clock *heraldtest.Clock
	db    *sqlstore.DB
	rc    *heraldtest.Receiver
	cfg   dispatch.Config
	reg   *prometheus.Registry
}

func newOutage(t *testing.T) *outage {
	t.Helper()
	dsn := storekit.PostgresDSN(t)
	u, _ := url.Parse(dsn)
	o := &outage{proxy: storetest.NewProxy(t, u.Host), clock: heraldtest.NewClock(time.Now()), reg: prometheus.NewRegistry()}
	u.Host = o.proxy.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqlstore.Open(ctx, u.String(), sqlstore.Config{Keys: storekit.Keys, Now: o.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	o.db = db
	o.rc = newReceiver(t, func(_ http.ResponseWriter, _ *http.Request, req *heraldtest.Request) {
		if req.N == 1 {
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
	if n := o.rc.Count(); n != 2 {
		t.Errorf("receiver got %d requests, want 2: the delivery is sent again", n)
	}
	if len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 200 {
		t.Errorf("attempts = %+v, want only the second request's", d.Attempts)
	}
	got := o.rc.Requests()
	if len(got) == 2 && got[0].Header.Get("webhook-id") != got[1].Header.Get("webhook-id") {
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

// TestMaintainerErrors: when the database fails under maintenance, the run
// says which step failed (in MaintenanceRun.Err, the log and
// herald_maintenance_runs_total{role="error"}), keeps what the steps before
// it did, and the next run starts afresh. The stores fail for real: closed,
// or PostgreSQL behind a cut proxy.
func TestMaintainerErrors(t *testing.T) {
	ctx := context.Background()
	closed := func() *sqlstore.DB {
		db := storekit.NewSQLite(t)
		db.Close()
		return db
	}
	// failing returns a store whose webhook wh failed every attempt for six
	// days, on clock.
	failing := func(clock *heraldtest.Clock) *sqlstore.DB {
		db := storekit.OpenSQLite(t, sqlstore.Config{Now: clock.Now})
		mustSetup(t, db, hook{name: "wh", url: "https://receiver.example/wh"})
		if _, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: tenant, InstanceName: instance, Entity: "PATIENT", Subtype: "PATIENT_CREATED"}}); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if i > 0 {
				clock.Advance(6 * 24 * time.Hour)
			}
			now := clock.Now()
			jobs, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 1})
			if err != nil || len(jobs) != 1 {
				t.Fatalf("claim: %v %v", jobs, err)
			}
			if err := db.RecordAttempts(ctx, []herald.AttemptResult{{DeliveryID: jobs[0].Delivery.ID, Attempt: herald.Attempt{StartedAt: now, StatusCode: 500},
				Status: herald.StatusRetrying, NextAttemptAt: now.Add(6 * 24 * time.Hour)}}); err != nil {
				t.Fatal(err)
			}
		}
		return db
	}
	run := func(t *testing.T, cfg dispatch.MaintainerConfig) (dispatch.MaintenanceRun, *prometheus.Registry) {
		t.Helper()
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Logger = reg, testLogger(t)
		m, err := dispatch.NewMaintainer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return m.RunOnce(ctx), reg
	}
	wantErr := func(t *testing.T, r dispatch.MaintenanceRun, reg *prometheus.Registry, prefix string) {
		t.Helper()
		if r.Err == nil || !strings.HasPrefix(r.Err.Error(), prefix) {
			t.Fatalf("run error %v, want it to start %q", r.Err, prefix)
		}
		if n := counter(t, reg, "herald_maintenance_runs_total", map[string]string{"role": "error"}); n != 1 {
			t.Errorf("herald_maintenance_runs_total{role=error} = %g, want 1", n)
		}
	}

	t.Run("store closed", func(t *testing.T) {
		r, reg := run(t, dispatch.MaintainerConfig{Store: closed()})
		wantErr(t, r, reg, "purge finished deliveries: ")
		if !r.Leader || r.PurgedDeliveries != 0 {
			t.Errorf("run = %+v", r)
		}
	})

	t.Run("audit trail closed", func(t *testing.T) {
		clock := heraldtest.NewClock(storetest.Epoch)
		db := failing(clock)
		r, reg := run(t, dispatch.MaintainerConfig{Store: db, Audit: closed(), Now: clock.Now})
		wantErr(t, r, reg, "audit a deactivation: ")
		// The deactivation stands, and is reported, though its audit entry
		// could not be written; the audit purge is skipped.
		if len(r.Deactivated) != 1 || r.PurgedAudit != 0 {
			t.Errorf("run = %+v, want wh deactivated", r)
		}
		if w, err := db.GetWebhook(ctx, tenant, instance, "wh"); err != nil || w.Active {
			t.Errorf("webhook after the run: %+v, %v", w, err)
		}
		// With nothing left to deactivate, the audit purge is what fails.
		r, reg = run(t, dispatch.MaintainerConfig{Store: db, Audit: closed(), Now: clock.Now})
		wantErr(t, r, reg, "purge audit entries: ")
	})

	t.Run("PostgreSQL away while leading", func(t *testing.T) {
		dsn := storekit.PostgresDSN(t)
		u, _ := url.Parse(dsn)
		p := storetest.NewProxy(t, u.Host)
		u.Host = p.Addr()
		pg := mustOpen(t, u.String())
		reg := prometheus.NewRegistry()
		m, err := dispatch.NewMaintainer(dispatch.MaintainerConfig{Store: pg, Lead: pg.TryLead, Registerer: reg, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if r := m.RunOnce(ctx); r.Err != nil || !r.Leader {
			t.Fatalf("first run = %+v", r)
		}
		p.Cut()
		r := m.RunOnce(ctx)
		if r.Err == nil || !strings.HasPrefix(r.Err.Error(), "try to lead: ") || r.Leader || herald.ErrorCode(r.Err) != herald.EUNAVAILABLE {
			t.Fatalf("run during the outage = %+v, want a failed lead, EUNAVAILABLE", r)
		}
		p.Restore()
		waitFor(t, 20*time.Second, "a run leading again after the outage", func() bool {
			r := m.RunOnce(ctx)
			return r.Err == nil && r.Leader
		})
		if n := counter(t, reg, "herald_maintenance_runs_total", map[string]string{"role": "error"}); n < 1 {
			t.Errorf("herald_maintenance_runs_total{role=error} = %g, want the failed run counted", n)
		}
	})
}
