package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/sqlstore"
)

// TestRetentionSkipsEventsAReplayHolds: on PostgreSQL the retention purge
// leaves alone an old event without deliveries while a replay batch holds
// it (FOR KEY SHARE, as replayBatch does): the batch may be giving it a
// delivery, which a delete decided before that commit would leave without
// its event. Once the batch is over, the next run deletes it.
func TestRetentionSkipsEventsAReplayHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := heraldtest.NewClock(t0)
	dsn := storekit.PostgresDSN(t)
	db, err := sqlstore.Open(ctx, dsn, sqlstore.Config{Now: clock.Now, Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateInstance(ctx, "acme", "live"); err != nil {
		t.Fatal(err)
	}
	rs, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}})
	if err != nil || rs[0].Err != nil {
		t.Fatal(err, rs)
	}
	clock.Advance(31 * 24 * time.Hour)

	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	batch, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Rollback()
	var id string
	if err := batch.QueryRowContext(ctx, `SELECT id FROM events WHERE id = $1 FOR KEY SHARE`, rs[0].EventID).Scan(&id); err != nil {
		t.Fatal(err)
	}

	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := db.PurgeFinished(pctx, clock.Now().Add(-30*24*time.Hour), 100)
	if err != nil {
		t.Fatalf("purge while a replay batch holds the event: %v (it must skip the event, not wait for it)", err)
	}
	if n.Events != 0 {
		t.Fatalf("purge deleted %d events while a replay batch held the only one", n.Events)
	}

	if err := batch.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n, err = db.PurgeFinished(ctx, clock.Now().Add(-30*24*time.Hour), 100); err != nil || n.Events != 1 {
		t.Fatalf("purge once the batch is over: %+v, %v; want the event deleted", n, err)
	}
}

// TestPurgeForgetsOldRateWindows: the retention run deletes the rate-limit
// windows of PostgreSQL nodes that are an hour old, and a webhook's next
// take starts a new window as if it had never had one.
func TestPurgeForgetsOldRateWindows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := heraldtest.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	dsn := storekit.PostgresDSN(t)
	db, err := sqlstore.Open(ctx, dsn, sqlstore.Config{Now: clock.Now, Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	windows := func() (n int) {
		t.Helper()
		if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_rate_windows`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	take := func(webhook string) int {
		t.Helper()
		_, n, err := db.TakeSlots(ctx, queue.SlotRequest{Webhook: webhook, Limit: 10, Window: clock.Now().Truncate(time.Second), Want: 4})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	take("wh_old")
	clock.Advance(2 * time.Hour)
	take("wh_new")
	if _, err := db.PurgeFinished(ctx, clock.Now().Add(-30*24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if n := windows(); n != 1 {
		t.Fatalf("%d rate-limit windows after the purge, want 1: the one of the last hour", n)
	}
	clock.Advance(time.Second)
	if n := take("wh_old"); n != 4 {
		t.Fatalf("a take after the window was purged got %d slots, want 4", n)
	}
}
