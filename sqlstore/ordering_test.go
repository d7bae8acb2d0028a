package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
)

// TestOrderingTwoNodes ingests events of one patient for an ordered
// webhook through two store handles on one PostgreSQL database, as two
// nodes would, all at once: they make one chain, not two heads.
func TestOrderingTwoNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := storekit.PostgresDSN(t)
	open := func() *sqlstore.DB {
		db, err := sqlstore.Open(ctx, dsn, sqlstore.Config{Keys: storekit.Keys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	nodes := []*sqlstore.DB{open(), open()}
	orderedWebhook(t, nodes[0], herald.OrderingPatient)

	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = nodes[i%2].CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live",
				Subtype: "PATIENT_UPDATED", Entity: "PATIENT", PatientID: "ann"}})
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ds, _, err := nodes[1].ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	heads, waitedOn := 0, map[string]bool{}
	for _, d := range ds {
		if d.Status != herald.StatusHeld {
			heads++
			continue
		}
		if waitedOn[d.WaitingFor] {
			t.Errorf("two deliveries wait for %s", d.WaitingFor)
		}
		waitedOn[d.WaitingFor] = true
	}
	if len(ds) != n || heads != 1 || len(waitedOn) != n-1 {
		t.Fatalf("%d deliveries, %d heads, %d waited on; want %d in one chain", len(ds), heads, len(waitedOn), n)
	}
}

// orderedWebhook publishes webhook wh for PATIENT events in acme/live,
// active, with ordering o.
func orderedWebhook(t *testing.T, db *sqlstore.DB, o string) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateInstance(ctx, "acme", "live"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDesignerWebhook(ctx, "acme", &herald.DesignerWebhook{Name: "wh", Title: "Wh",
		Triggers: []herald.Trigger{{EventEntity: "PATIENT"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Publish(ctx, "acme", "", "test"); err != nil {
		t.Fatal(err)
	}
	url := "https://example.com/hook"
	if _, err := db.UpdateWebhook(ctx, "acme", "live", "wh", herald.WebhookUpdate{URL: &url, Ordering: &o}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ActivateWebhook(ctx, "acme", "live", "wh"); err != nil {
		t.Fatal(err)
	}
}

// TestOrderingReplay replays events of one patient, made before an ordered
// webhook was active, while a live event of the patient is owed: the
// replayed deliveries join the patient's chain behind it, in event order,
// worked in batches smaller than the window. Both dialects.
func TestOrderingReplay(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := heraldtest.NewClock(t0)
			db := storekit.Open(t, dialect, sqlstore.Config{Now: clock.Now, Keys: storekit.Keys})
			orderedWebhook(t, db, herald.OrderingPatient)
			if _, err := db.DeactivateWebhook(ctx, "acme", "live", "wh", ""); err != nil {
				t.Fatal(err)
			}
			post := func() string {
				t.Helper()
				rs, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT",
					Subtype: "PATIENT_UPDATED", PatientID: "ann"}})
				if err != nil || rs[0].Err != nil {
					t.Fatal(err, rs)
				}
				clock.Advance(time.Millisecond)
				return rs[0].EventID
			}
			missed := []string{post(), post(), post()} // while inactive: no deliveries
			if _, err := db.ActivateWebhook(ctx, "acme", "live", "wh"); err != nil {
				t.Fatal(err)
			}
			live := post()
			if _, err := db.CreateReplay(ctx, "acme", "live", "wh", t0.Add(-time.Second), clock.Now().Add(time.Minute), ""); err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				rp, err := db.ReplayBatch(ctx, 2, 1000)
				if err != nil {
					t.Fatal(err)
				}
				if rp == nil {
					break
				}
				if i > 10 {
					t.Fatal("the replay never ends")
				}
			}
			ds, _, err := db.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			byEvent := map[string]*herald.Delivery{}
			for _, d := range ds {
				byEvent[d.EventID] = d
			}
			if d := byEvent[live]; d == nil || d.Status != herald.StatusPending {
				t.Fatalf("the live delivery: %+v; want PENDING, the head", d)
			}
			prev := byEvent[live].ID
			for i, ev := range missed {
				d := byEvent[ev]
				if d == nil || d.Status != herald.StatusHeld || d.WaitingFor != prev {
					t.Fatalf("replayed delivery %d: %+v; want HELD behind %s", i, d, prev)
				}
				prev = d.ID
			}
		})
	}
}
