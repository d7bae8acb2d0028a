package sqlstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/heraldhooks/herald"
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
