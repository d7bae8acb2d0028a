package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/sqlstore"
)

// forDialects runs fn on a fresh SQLite and a fresh PostgreSQL store, each
// set up by benchStore.
func forDialects(b *testing.B, fn func(b *testing.B, db *sqlstore.DB)) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			db := storekit.Open(b, dialect, sqlstore.Config{})
			benchStore(b, db)
			fn(b, db)
		})
	}
}

// benchStore has one instance with four active webhooks, three of which
// match the benchmark's events.
func benchStore(b *testing.B, db *sqlstore.DB) {
	ctx := context.Background()
	if _, err := db.CreateTenant(ctx, "acme"); err != nil {
		b.Fatal(err)
	}
	if _, err := db.CreateInstance(ctx, "acme", "live"); err != nil {
		b.Fatal(err)
	}
	for i, tr := range []herald.Trigger{{EventEntity: "PATIENT"}, {EventSubtype: "PATIENT_CREATED"}, {EventEntity: "PATIENT"}, {EventEntity: "CDT"}} {
		name := fmt.Sprintf("wh-%d", i)
		if err := db.CreateDesignerWebhook(ctx, "acme", &herald.DesignerWebhook{Name: name, Title: name, Triggers: []herald.Trigger{tr}}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Publish(ctx, "acme", "", ""); err != nil {
		b.Fatal(err)
	}
	u := "https://example.com/"
	for i := range 4 {
		name := fmt.Sprintf("wh-%d", i)
		if _, err := db.UpdateWebhook(ctx, "acme", "live", name, herald.WebhookUpdate{URL: &u}); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ActivateWebhook(ctx, "acme", "live", name); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEvents(n int) []*herald.Event {
	evs := make([]*herald.Event, n)
	for i := range evs {
		evs[i] = &herald.Event{TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED",
			SourceID: "49ec1a", PatientID: "49ec1a", SourceName: "Jane Doe", Data: []byte(`{"mrn":"42","note":"a short note"}`)}
		if i%2 == 0 {
			evs[i].IdempotencyKey = fmt.Sprintf("key-%d-%d", time.Now().UnixNano(), i)
		}
	}
	return evs
}

// BenchmarkCreateEvents500 measures one group commit of 500 events, each
// with three deliveries.
func BenchmarkCreateEvents500(b *testing.B) {
	forDialects(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		for b.Loop() {
			b.StopTimer()
			evs := benchEvents(500)
			b.StartTimer()
			if _, err := db.CreateEvents(ctx, evs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimRecord measures claiming 100 deliveries and recording their
// results, the engine's loop, against a backlog.
func BenchmarkClaimRecord(b *testing.B) {
	forDialects(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		for range 20 {
			if _, err := db.CreateEvents(ctx, benchEvents(500)); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			now := time.Now()
			jobs, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "bench", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 100, PerWebhook: 40})
			if err != nil {
				b.Fatal(err)
			}
			results := make([]herald.AttemptResult, len(jobs))
			for i, j := range jobs {
				results[i] = herald.AttemptResult{DeliveryID: j.Delivery.ID, Status: herald.StatusRetrying, NextAttemptAt: now,
					Attempt: herald.Attempt{StartedAt: now, DurationMs: 3, StatusCode: 503, ResponseBody: "busy"}}
			}
			if err := db.RecordAttempts(ctx, results); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWrite measures the engine's steady-state transaction: 500 new
// events (three deliveries each, all handed off to the writing node) and
// the results of the previous write's deliveries, in one commit.
func BenchmarkWrite(b *testing.B) {
	forDialects(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		var results []herald.AttemptResult
		deliveries := 0
		for b.Loop() {
			b.StopTimer()
			evs := benchEvents(500)
			now := time.Now()
			b.StartTimer()
			w, err := db.Write(ctx, &queue.Write{Events: evs, Results: results,
				Handoff: &queue.Handoff{Owner: "bench", LeaseUntil: now.Add(time.Minute), Default: 1 << 20, Limit: 1 << 20}})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			deliveries += len(w.Jobs)
			results = results[:0]
			for _, j := range w.Jobs {
				results = append(results, herald.AttemptResult{DeliveryID: j.Delivery.ID, Status: herald.StatusDelivered,
					Attempt: herald.Attempt{N: 1, StartedAt: now, DurationMs: 1, StatusCode: 200, ResponseBody: "ok"}})
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(deliveries, 1)), "ns/delivery")
	})
}
