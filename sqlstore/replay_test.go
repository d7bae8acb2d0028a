package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
)

// TestReplay walks a replay on both dialects: events from before the
// webhook was published, while it was inactive, and live ones whose
// deliveries are DELIVERED, PENDING, FAILED and CANCELLED. A replay over
// all of them, worked in batches of 4, gives a delivery to exactly those
// that have none DELIVERED or open, and a second replay of the same window
// gives none. A replay waits while its webhook's backlog is full, and
// stops when its webhook is deactivated.
func TestReplay(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := heraldtest.NewClock(t0)
			cfg := sqlstore.Config{Now: clock.Now, Keys: storekit.Keys}
			db := storekit.Open(t, dialect, cfg)
			post := func(entity string, n int) []string {
				t.Helper()
				var ids []string
				for range n {
					rs, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: entity, Subtype: entity + "_CREATED"}})
					if err != nil || rs[0].Err != nil {
						t.Fatal(err, rs)
					}
					ids = append(ids, rs[0].EventID)
					clock.Advance(time.Millisecond)
				}
				return ids
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			_, err := db.CreateTenant(ctx, "acme")
			must(err)
			_, err = db.CreateInstance(ctx, "acme", "live")
			must(err)
			before := post("PATIENT", 3) // before the webhook exists
			post("ORDER", 1)             // never selected
			must(db.CreateDesignerWebhook(ctx, "acme", &herald.DesignerWebhook{Name: "wh", Title: "wh", Triggers: []herald.Trigger{{EventEntity: "PATIENT"}}}))
			_, err = db.Publish(ctx, "acme", "", "")
			must(err)
			u := "https://example.com/"
			_, err = db.UpdateWebhook(ctx, "acme", "live", "wh", herald.WebhookUpdate{URL: &u})
			must(err)
			inactive := post("PATIENT", 3) // published, inactive
			since, until := t0.Add(-time.Second), clock.Now().Add(time.Hour)
			if _, err := db.CreateReplay(ctx, "acme", "live", "wh", since, until, ""); herald.ErrorCode(err) != herald.EUNPROCESSABLE {
				t.Fatalf("replay of an inactive webhook: %v, want EUNPROCESSABLE", err)
			}
			_, err = db.ActivateWebhook(ctx, "acme", "live", "wh")
			must(err)
			live := post("PATIENT", 4) // one delivery each, at ingest
			dels, _, err := db.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "wh", Limit: 500})
			must(err)
			if len(dels) != 4 {
				t.Fatalf("%d deliveries after the live events, want 4", len(dels))
			}
			statusOf := map[string]string{live[0]: herald.StatusDelivered, live[1]: herald.StatusPending, live[2]: herald.StatusFailed, live[3]: herald.StatusCancelled}
			for _, d := range dels {
				s := herald.DeliveryState{Status: statusOf[d.EventID], Attempts: 1}
				if herald.Open(s.Status) {
					now := clock.Now()
					s.DueAt = &now
				}
				must(db.SetDeliveryState(ctx, d.ID, s))
			}
			clock.Advance(time.Second)

			run := func(backlog int) (batches int, last *herald.Replay) {
				t.Helper()
				for {
					rp, err := db.ReplayBatch(ctx, 4, backlog)
					must(err)
					if rp == nil {
						return batches, last
					}
					batches++
					last = rp
					if batches > 10 {
						t.Fatal("the replay never ends")
					}
				}
			}

			rp, err := db.CreateReplay(ctx, "acme", "live", "wh", since, until, "user jane@example.com")
			must(err)
			if rp.Events != 10 || rp.Status != herald.ReplayRunning {
				t.Fatalf("replay answered %d events, %s; want 10 (3 before, 3 inactive, 4 live; the ORDER event is not selected), RUNNING", rp.Events, rp.Status)
			}
			if _, err := db.CreateReplay(ctx, "acme", "live", "wh", since, until, ""); herald.ErrorCode(err) != herald.ECONFLICT {
				t.Fatalf("a second replay while one runs: %v, want ECONFLICT", err)
			}
			// A webhook whose backlog is full makes its replay wait.
			if n, _ := run(1); n != 0 {
				t.Fatalf("%d batches with a full backlog (1 PENDING delivery, backlog 1), want 0", n)
			}
			n, done := run(1000)
			if n != 3 || done.Status != herald.ReplayDone || done.Scanned != 10 || done.Created != 8 || done.Skipped != 2 {
				t.Fatalf("after %d batches: %+v; want 3 batches of 4 events, DONE, scanned 10, created 8 (3 before, 3 inactive, FAILED, CANCELLED), skipped 2 (DELIVERED, PENDING)", n, done)
			}
			got, err := db.GetReplay(ctx, "acme", "live", "wh", rp.ID)
			must(err)
			if got.Status != herald.ReplayDone || got.Created != 8 || got.FinishedAt == nil || got.RequestedBy != "user jane@example.com" {
				t.Fatalf("GetReplay: %+v", got)
			}

			// Each selected event now has exactly one delivery DELIVERED or
			// open; the FAILED and CANCELLED ones stay beside the new ones.
			owed := func() map[string]int {
				dels, _, err := db.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "wh", Limit: 500})
				must(err)
				out := map[string]int{}
				for _, d := range dels {
					if d.Status == herald.StatusDelivered || herald.Open(d.Status) {
						out[d.EventID]++
					}
				}
				return out
			}
			check := func(when string) {
				t.Helper()
				o := owed()
				for _, ids := range [][]string{before, inactive, live} {
					for _, id := range ids {
						if o[id] != 1 {
							t.Errorf("%s: event %s has %d deliveries delivered or owed, want 1", when, id, o[id])
						}
					}
				}
				if len(o) != 10 {
					t.Errorf("%s: %d events have deliveries, want 10", when, len(o))
				}
			}
			check("after the replay")

			again, err := db.CreateReplay(ctx, "acme", "live", "wh", since, until, "")
			must(err)
			if _, done := run(1000); done.Created != 0 || done.Skipped != 10 || done.Status != herald.ReplayDone {
				t.Fatalf("second replay: %+v, want created 0, skipped 10, DONE", done)
			}
			check("after a second replay")
			list, err := db.ListReplays(ctx, "acme", "live", "wh", 0)
			must(err)
			if len(list) != 2 || list[0].ID != again.ID {
				t.Fatalf("ListReplays: %d, want 2, newest first", len(list))
			}
			if _, err := db.GetReplay(ctx, "acme", "live", "wh", "rpl_nope"); herald.ErrorCode(err) != herald.ENOTFOUND {
				t.Fatalf("unknown replay: %v, want ENOTFOUND", err)
			}

			// A webhook deactivated under a running replay stops it.
			third, err := db.CreateReplay(ctx, "acme", "live", "wh", since, until, "")
			must(err)
			_, err = db.DeactivateWebhook(ctx, "acme", "live", "wh", "")
			must(err)
			if n, done := run(1000); n != 1 || done.Status != herald.ReplayStopped || done.Reason == "" || done.Scanned != 0 {
				t.Fatalf("replay of a deactivated webhook: %d batches, %+v; want one batch that STOPS it with a reason", n, done)
			}
			if got, _ := db.GetReplay(ctx, "acme", "live", "wh", third.ID); got.Status != herald.ReplayStopped {
				t.Fatalf("GetReplay after the stop: %s", got.Status)
			}
		})
	}
}

// TestReplayBacklogCountsHeld: deliveries HELD behind an earlier one of
// their key have no due time, yet they are owed: they fill a webhook's
// backlog as due ones do, so a replay does not pile more behind them.
func TestReplayBacklogCountsHeld(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := heraldtest.NewClock(t0)
			db := storekit.Open(t, dialect, sqlstore.Config{Now: clock.Now, Keys: storekit.Keys})
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			orderedWebhook(t, db, herald.OrderingNone)
			for range 3 {
				rs, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}})
				if err != nil || rs[0].Err != nil {
					t.Fatal(err, rs)
				}
				clock.Advance(time.Millisecond)
			}
			dels, _, err := db.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "wh", Limit: 500})
			must(err)
			for i, d := range dels {
				s := herald.DeliveryState{Status: herald.StatusFailed, Attempts: 1}
				if i < 2 {
					s = herald.Hold(herald.DeliveryState{}, "dlv_before")
				}
				must(db.SetDeliveryState(ctx, d.ID, s))
			}
			clock.Advance(time.Second)
			_, err = db.CreateReplay(ctx, "acme", "live", "wh", t0.Add(-time.Second), clock.Now(), "")
			must(err)
			if rp, err := db.ReplayBatch(ctx, 10, 2); err != nil || rp != nil {
				t.Fatalf("replay batch with 2 HELD deliveries and a backlog of 2: %+v, %v; want none (the replay waits)", rp, err)
			}
			if rp, err := db.ReplayBatch(ctx, 10, 3); err != nil || rp == nil || rp.Created != 1 {
				t.Fatalf("replay batch with 2 HELD deliveries and a backlog of 3: %+v, %v; want one batch creating 1 (for the FAILED one)", rp, err)
			}
		})
	}
}
