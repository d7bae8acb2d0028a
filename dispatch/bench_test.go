package dispatch_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkDeliver measures the whole path on a real store, SQLite and
// PostgreSQL: b.N events come in through CreateEvents as single-event API
// calls from 64 concurrent producers (group commit), and are delivered to
// loopback receivers that answer 204 at once, with the engine's default
// concurrency limits. It reports events/s from the first call to the last
// delivery, deliveries/s (each event goes to every webhook), and the batch
// sizes that decide the number of transactions.
//
// The PostgreSQL runs need the server storekit.PostgresDSN names; they
// skip when HERALD_TEST_POSTGRES=off.
func BenchmarkDeliver(b *testing.B) {
	stores := []struct {
		name string
		open func(testing.TB) *sqlstore.DB
	}{{"sqlite", storekit.NewSQLite}, {"postgres", storekit.NewPostgres}}
	for _, st := range stores {
		for _, webhooks := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/webhooks=%d", st.name, webhooks), func(b *testing.B) { benchmarkDeliver(b, st.open(b), webhooks) })
		}
	}
}

func benchmarkDeliver(b *testing.B, db *sqlstore.DB, webhooks int) {
	var received atomic.Int64
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if received.Add(1) == int64(b.N*webhooks) {
			close(all)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	hooks := make([]hook, webhooks)
	for i := range hooks {
		hooks[i] = hook{name: fmt.Sprintf("wh-%d", i), url: srv.URL}
	}
	mustSetup(b, db, hooks...)
	cfg := testConfig(b, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	e, _ := mustRun(b, cfg)

	const producers = 64
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for range next {
				ev := &herald.Event{TenantName: tenant, InstanceName: instance, Entity: "PATIENT", Subtype: "PATIENT_CREATED", SourceID: "pat-1"}
				if _, err := e.CreateEvents(context.Background(), []*herald.Event{ev}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(time.Minute + time.Duration(b.N)*time.Millisecond):
		b.Fatalf("only %d of %d deliveries arrived", received.Load(), b.N*webhooks)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N*webhooks)/elapsed.Seconds(), "deliveries/s")
	// Batch sizes say where the time goes: every batch is one transaction.
	claims, claimed := histogram(b, reg, "herald_claim_batch_size")
	commits, events := histogram(b, reg, "herald_ingest_batch_size")
	b.ReportMetric(claimed/float64(claims), "deliveries/claim")
	b.ReportMetric(events/float64(commits), "events/commit")
}
