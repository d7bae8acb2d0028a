package dispatch_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

// mustOpen opens another store on an existing database: another node.
func mustOpen(t *testing.T, dsn string) *sqlstore.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqlstore.Open(ctx, dsn, sqlstore.Config{Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestTwoNodesShareTheWork runs two engines on one PostgreSQL database, as
// two `herald serve` nodes: deliveries left PENDING (stored by a node with
// no room for them) are sent by both, each exactly once, and the nodes
// learn of them by LISTEN/NOTIFY.
func TestTwoNodesShareTheWork(t *testing.T) {
	dsn := storekit.PostgresDSN(t)
	// Receivers this slow get queues of 10 jobs, so neither node can take
	// everything.
	slowish := func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) {
		time.Sleep(100 * time.Millisecond)
	}
	rcA, rcB := newReceiver(t, slowish), newReceiver(t, slowish)
	db1, db2 := mustOpen(t, dsn), mustOpen(t, dsn)
	mustSetup(t, db1, hook{name: "wh-a", url: rcA.URL}, hook{name: "wh-b", url: rcB.URL})

	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	for i, db := range []*sqlstore.DB{db1, db2} {
		cfg := testConfig(t, db)
		cfg.Registerer = regs[i]
		cfg.Concurrency, cfg.PerWebhookInFlight, cfg.FastWebhookInFlight = 2, 1, 1 // so one node cannot take everything
		cfg.PollInterval = time.Minute                                             // wake-ups, not polls, must bring the work
		mustRun(t, cfg)
	}

	const n = 60
	for range n / 10 {
		events := make([]*herald.Event, 10)
		for i := range events {
			events[i] = &herald.Event{TenantName: tenant, InstanceName: instance, Entity: "PATIENT", Subtype: "PATIENT_UPDATED"}
		}
		if _, err := db1.CreateEvents(context.Background(), events); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, db1, "wh-a", n, 20*time.Second, herald.StatusDelivered)
	waitStatus(t, db1, "wh-b", n, 20*time.Second, herald.StatusDelivered)
	for _, rc := range []*heraldtest.Receiver{rcA, rcB} {
		seen := map[string]int{}
		for _, r := range rc.Requests() {
			seen[r.Header.Get("webhook-id")]++
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("event %s sent %d times; two nodes must not claim the same delivery", id, c)
			}
		}
		if len(seen) != n {
			t.Errorf("receiver got %d distinct events, want %d", len(seen), n)
		}
	}
	for i, reg := range regs {
		if got := counter(t, reg, "herald_delivery_attempts_total", map[string]string{"outcome": "delivered"}); got == 0 {
			t.Errorf("node %d delivered nothing; both nodes should share the work", i+1)
		}
	}
}

// TestResultsSurviveADatabaseOutage: the database goes away while a
// request is in flight; the engine keeps the result and writes it once the
// database is back, within the lease, so nothing is sent twice.
func TestResultsSurviveADatabaseOutage(t *testing.T) {
	dsn := storekit.PostgresDSN(t)
	u, _ := url.Parse(dsn)
	p := storetest.NewProxy(t, u.Host)
	u.Host = p.Addr()
	db := mustOpen(t, u.String())
	rc := newReceiver(t, func(http.ResponseWriter, *http.Request, *heraldtest.Request) {
		p.Cut() // the database goes away while the receiver answers
	})
	mustSetup(t, db, hook{name: "wh-sync", url: rc.URL})
	cfg := testConfig(t, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	e, _ := mustRun(t, cfg)

	mustCreateEvents(t, e, 1)
	waitFor(t, 10*time.Second, "a failed write of the result", func() bool {
		return counter(t, reg, "herald_result_flush_errors_total", nil) >= 2
	})
	p.Restore()
	d := waitStatus(t, db, "wh-sync", 1, 20*time.Second, herald.StatusDelivered)[0]
	if len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 200 {
		t.Errorf("attempts = %+v, want the one 200 written after the outage", d.Attempts)
	}
	if rc.Count() != 1 {
		t.Errorf("receiver got %d requests, want 1", rc.Count())
	}
	if lost := counter(t, reg, "herald_results_lost_total", nil); lost != 0 {
		t.Errorf("%g results lost", lost)
	}
}

// TestConcurrentWritersOnPostgres: with several write loops (Config.Writers,
// as herald serve runs on PostgreSQL), concurrent producers' events are all
// stored, handed off and sent, each once.
func TestConcurrentWritersOnPostgres(t *testing.T) {
	rc := newReceiver(t, nil)
	db := mustOpen(t, storekit.PostgresDSN(t))
	mustSetup(t, db, hook{name: "wh-sync", url: rc.URL})
	cfg := testConfig(t, db)
	cfg.Writers = 4
	cfg.IngestMaxWait = time.Millisecond
	e, _ := mustRun(t, cfg)

	const producers, each = 40, 10
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() { mustCreateEvents(t, e, each) })
	}
	wg.Wait()
	waitStatus(t, db, "wh-sync", producers*each, 20*time.Second, herald.StatusDelivered)
	seen := map[string]int{}
	for _, r := range rc.Requests() {
		seen[r.Header.Get("webhook-id")]++
	}
	if len(seen) != producers*each || rc.Count() != producers*each {
		t.Errorf("receiver got %d requests for %d events, want each of the %d once", rc.Count(), len(seen), producers*each)
	}
	waitIdle(t, e)
}
