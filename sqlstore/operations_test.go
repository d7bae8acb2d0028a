package sqlstore_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/sqlstore"
)

// TestOperationsEvents checks, on both dialects, that each change an
// operations webhook is told about writes its event and delivery with the
// change (the same Write, the same DeactivateWebhook call...), that the
// delivery is claimed and rendered like any other, carrying ids and never
// health data, and that nothing about the operations webhook itself makes
// an operations event.
func TestOperationsEvents(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := heraldtest.NewClock(t0)
			cfg := sqlstore.Config{Now: clock.Now, Keys: storekit.Keys}
			db := storekit.Open(t, dialect, cfg)
			oneWebhook(t, db)

			if _, err := db.GetOperationsWebhook(ctx, "acme"); herald.ErrorCode(err) != herald.ENOTFOUND {
				t.Fatalf("get before set: %v, want ENOTFOUND", err)
			}
			ow, err := db.SetOperationsWebhook(ctx, "acme", herald.OperationsWebhookRequest{URL: "https://ops.example.com/hook"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(ow.Secret, "whsec_") || !ow.Active || len(ow.Events) != len(herald.OperationsEventTypes) {
				t.Fatalf("set: %+v", ow)
			}
			secrets, err := db.WebhookSecrets(ctx, "acme", herald.OperationsInstance, herald.OperationsWebhookName)
			if err != nil || len(secrets) != 1 || secrets[0].Secret != ow.Secret {
				t.Fatalf("the secret returned is not the one stored: %v %v", secrets, err)
			}
			if again, err := db.SetOperationsWebhook(ctx, "acme", herald.OperationsWebhookRequest{URL: "https://ops.example.com/hook"}); err != nil || again.Secret != "" {
				t.Fatalf("a second PUT without rotateSecret made a secret: %+v %v", again, err)
			}
			insts, err := db.ListInstances(ctx, "acme")
			if err != nil || len(insts) != 1 || insts[0].Name != "live" {
				t.Fatalf("instances: %v %v; the reserved instance must not be listed", insts, err)
			}

			// A 410: the delivery gives up and the webhook is deactivated,
			// in one Write, which makes both operations events.
			dlv := claimOne(t, db, clock.Now())
			gone := herald.AttemptResult{DeliveryID: dlv, Status: herald.StatusFailed,
				Attempt:          herald.Attempt{N: 1, StartedAt: clock.Now(), StatusCode: 410, Error: "receiver answered 410 Gone"},
				DeactivateReason: "receiver answered 410 Gone at 2026-11-26 17:00:00 UTC"}
			if _, err := db.Write(ctx, &queue.Write{Results: []herald.AttemptResult{gone}}); err != nil {
				t.Fatal(err)
			}
			ops := opsDeliveries(t, db)
			if got := opsTypes(ops); !slices.Equal(got, []string{herald.OpsDeliveryFailed, herald.OpsWebhookDeactivated}) {
				t.Fatalf("operations deliveries after a 410: %v", got)
			}
			for _, d := range ops {
				if d.Status != herald.StatusPending {
					t.Fatalf("operations delivery %s is %s, want PENDING", d.ID, d.Status)
				}
			}
			data := opsData(t, db, ops, herald.OpsWebhookDeactivated)
			if data["reason"] != gone.DeactivateReason || data["webhook"] != "wh" || data["instance"] != "live" || data["tenant"] != "acme" {
				t.Fatalf("webhook.deactivated data: %v", data)
			}
			failed := opsData(t, db, ops, herald.OpsDeliveryFailed)
			if failed["delivery"] != dlv || failed["statusCode"] != float64(410) || failed["attempts"] != float64(1) || failed["event"] == "" {
				t.Fatalf("delivery.failed data: %v", failed)
			}

			// The engine claims and renders them like any delivery.
			jobs, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: clock.Now(), LeaseUntil: clock.Now().Add(time.Minute), Limit: 10})
			if err != nil || len(jobs) != 2 {
				t.Fatalf("claim operations deliveries: %d jobs, %v", len(jobs), err)
			}
			for _, j := range jobs {
				if j.Webhook.URL != "https://ops.example.com/hook" || len(j.Secrets) != 1 || j.Secrets[0] != ow.Secret {
					t.Fatalf("operations job: url %q secrets %d", j.Webhook.URL, len(j.Secrets))
				}
				body, err := j.Webhook.Payload.Render(j.Event)
				if err != nil {
					t.Fatal(err)
				}
				var got struct {
					Type      string         `json:"type"`
					Timestamp string         `json:"timestamp"`
					Data      map[string]any `json:"data"`
				}
				if err := json.Unmarshal(body, &got); err != nil || got.Type != j.Event.Subtype || got.Timestamp == "" || got.Data["webhook"] != "wh" {
					t.Fatalf("operations body %s: %v", body, err)
				}
				if strings.Contains(string(body), "patient-7") {
					t.Fatalf("operations body carries health data: %s", body)
				}
			}

			// The operations webhook's own failures make no operations
			// event: one of its deliveries gives up (its window closed),
			// then the other on a 410, which deactivates it, and no more
			// operations deliveries appear.
			for i, j := range jobs {
				r := herald.AttemptResult{DeliveryID: j.Delivery.ID, Status: herald.StatusFailed,
					Attempt: herald.Attempt{N: 1, StartedAt: clock.Now(), StatusCode: 503}}
				if i == 1 {
					r.Attempt.StatusCode, r.DeactivateReason = 410, "receiver answered 410 Gone"
				}
				if _, err := db.Write(ctx, &queue.Write{Results: []herald.AttemptResult{r}}); err != nil {
					t.Fatal(err)
				}
				if n := len(opsDeliveries(t, db)); n != 2 {
					t.Fatalf("the operations webhook's own failure (%d) made operations events: %d deliveries, want 2", r.Attempt.StatusCode, n)
				}
			}
			if ow, err := db.GetOperationsWebhook(ctx, "acme"); err != nil || ow.Active || ow.DeactivatedReason == "" {
				t.Fatalf("operations webhook after its 410: %+v %v", ow, err)
			}
			// PUT turns it back on.
			if _, err := db.SetOperationsWebhook(ctx, "acme", herald.OperationsWebhookRequest{URL: "https://ops.example.com/hook"}); err != nil {
				t.Fatal(err)
			}

			// By whom: a person deactivates the webhook.
			if _, err := db.ActivateWebhook(ctx, "acme", "live", "wh"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.DeactivateWebhook(ctx, "acme", "live", "wh", "deactivated by alice@example.com"); err != nil {
				t.Fatal(err)
			}
			ops = opsDeliveries(t, db)
			if len(ops) != 3 || ops[0].EventSubtype != herald.OpsWebhookDeactivated {
				t.Fatalf("manual deactivation: %v", opsTypes(ops))
			}
			if data := opsData(t, db, ops[:1], herald.OpsWebhookDeactivated); data["reason"] != "deactivated by alice@example.com" {
				t.Fatalf("manual deactivation data: %v", data)
			}
			// Deactivating an inactive webhook again tells nobody twice.
			if _, err := db.DeactivateWebhook(ctx, "acme", "live", "wh", "deactivated by bob"); err != nil {
				t.Fatal(err)
			}
			if n := len(opsDeliveries(t, db)); n != 3 {
				t.Fatalf("deactivating an inactive webhook made an operations event: %d", n)
			}

			// Failing for more than an hour, then recovered.
			if _, err := db.ActivateWebhook(ctx, "acme", "live", "wh"); err != nil {
				t.Fatal(err)
			}
			dlv = claimOne(t, db, clock.Now())
			fail := herald.AttemptResult{DeliveryID: dlv, Status: herald.StatusRetrying, NextAttemptAt: clock.Now().Add(2 * time.Hour),
				Attempt: herald.Attempt{N: 1, StartedAt: clock.Now(), StatusCode: 503, Error: "receiver answered 503"}}
			if err := db.RecordAttempts(ctx, []herald.AttemptResult{fail}); err != nil {
				t.Fatal(err)
			}
			if n, err := db.ReportFailing(ctx, clock.Now().Add(-herald.OperationsFailingAfter)); err != nil || n != 0 {
				t.Fatalf("report failing after a minute: %d %v", n, err)
			}
			clock.Advance(2 * time.Hour)
			for i, want := range []int{1, 0} { // once per run of failures
				if n, err := db.ReportFailing(ctx, clock.Now().Add(-herald.OperationsFailingAfter)); err != nil || n != want {
					t.Fatalf("report failing, run %d: %d %v, want %d", i+1, n, err, want)
				}
			}
			ops = opsDeliveries(t, db)
			if len(ops) != 4 || ops[0].EventSubtype != herald.OpsWebhookFailing {
				t.Fatalf("after two hours failing: %v", opsTypes(ops))
			}
			if data := opsData(t, db, ops[:1], herald.OpsWebhookFailing); data["failingSince"] != "2026-11-26T17:00:00.000Z" {
				t.Fatalf("webhook.failing data: %v", data)
			}
			jobs, err = db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: clock.Now(), LeaseUntil: clock.Now().Add(time.Minute), Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var ok []herald.AttemptResult
			for _, j := range jobs {
				if j.Delivery.ID == dlv {
					ok = append(ok, herald.AttemptResult{DeliveryID: dlv, Status: herald.StatusDelivered,
						Attempt: herald.Attempt{N: 2, StartedAt: clock.Now(), StatusCode: 200}})
				}
			}
			if len(ok) != 1 {
				t.Fatalf("the failing delivery was not claimed again")
			}
			if err := db.RecordAttempts(ctx, ok); err != nil {
				t.Fatal(err)
			}
			ops = opsDeliveries(t, db)
			if len(ops) != 5 || ops[0].EventSubtype != herald.OpsWebhookRecovered {
				t.Fatalf("after a success: %v", opsTypes(ops))
			}

			// Events filter: a webhook.deactivated no longer goes.
			if _, err := db.SetOperationsWebhook(ctx, "acme", herald.OperationsWebhookRequest{URL: "https://ops.example.com/hook",
				Events: []string{herald.OpsDeliveryFailed}}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.DeactivateWebhook(ctx, "acme", "live", "wh", "deactivated by carol"); err != nil {
				t.Fatal(err)
			}
			if n := len(opsDeliveries(t, db)); n != 5 {
				t.Fatalf("an event type not subscribed to was sent: %d", n)
			}

			// A delivery that gives up at the end of its retry window (no
			// 410): delivery.failed alone, the webhook stays active.
			if _, err := db.ActivateWebhook(ctx, "acme", "live", "wh"); err != nil {
				t.Fatal(err)
			}
			dlv = claimOne(t, db, clock.Now())
			giveUp := herald.AttemptResult{DeliveryID: dlv, Status: herald.StatusFailed,
				Attempt: herald.Attempt{N: 1, StartedAt: clock.Now(), StatusCode: 503, Error: "receiver answered 503"}}
			if _, err := db.Write(ctx, &queue.Write{Results: []herald.AttemptResult{giveUp}}); err != nil {
				t.Fatal(err)
			}
			ops = opsDeliveries(t, db)
			if len(ops) != 6 || ops[0].EventSubtype != herald.OpsDeliveryFailed {
				t.Fatalf("after a delivery gave up: %v", opsTypes(ops))
			}
			if data := opsData(t, db, ops[:1], herald.OpsDeliveryFailed); data["delivery"] != dlv || data["statusCode"] != float64(503) {
				t.Fatalf("delivery.failed data: %v", data)
			}
			if w, err := db.GetWebhook(ctx, "acme", "live", "wh"); err != nil || !w.Active {
				t.Fatalf("a delivery that gave up deactivated its webhook: %v %v", w, err)
			}

			// Deleted: nothing more, and GET says so.
			if err := db.DeleteOperationsWebhook(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.GetOperationsWebhook(ctx, "acme"); herald.ErrorCode(err) != herald.ENOTFOUND {
				t.Fatalf("get after delete: %v", err)
			}
			if _, err := db.SetOperationsWebhook(ctx, "nobody", herald.OperationsWebhookRequest{URL: "https://ops.example.com/"}); herald.ErrorCode(err) != herald.ENOTFOUND {
				t.Fatalf("set for an unknown tenant: %v", err)
			}
		})
	}
}

// claimOne stores an event for acme/live (with a patient id, which no
// operations event may carry) and claims its delivery.
func claimOne(t *testing.T, db *sqlstore.DB, now time.Time) string {
	t.Helper()
	ctx := context.Background()
	if _, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT",
		Subtype: "PATIENT_CREATED", PatientID: "patient-7", Data: json.RawMessage(`{"name":"Ada"}`)}}); err != nil {
		t.Fatal(err)
	}
	jobs, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Delivery.Instance == "live" {
			return j.Delivery.ID
		}
	}
	t.Fatal("no delivery of acme/live was claimed")
	return ""
}

// opsDeliveries lists acme's operations deliveries, newest first.
func opsDeliveries(t *testing.T, db *sqlstore.DB) []*herald.Delivery {
	t.Helper()
	ds, _, err := db.ListDeliveries(context.Background(), herald.DeliveryFilter{Tenant: "acme", Instance: herald.OperationsInstance})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func opsTypes(ds []*herald.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.EventSubtype)
	}
	slices.Sort(out)
	return out
}

// opsData returns the data of the operations event of type typ among ds.
func opsData(t *testing.T, db *sqlstore.DB, ds []*herald.Delivery, typ string) map[string]any {
	t.Helper()
	for _, d := range ds {
		if d.EventSubtype != typ {
			continue
		}
		e, err := db.GetEvent(context.Background(), "acme", herald.OperationsInstance, d.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if e.PatientID != "" || strings.Contains(string(e.Data), "patient-7") || strings.Contains(string(e.Data), "Ada") {
			t.Fatalf("operations event carries health data: %s", e.Data)
		}
		var m map[string]any
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("no %s among %v", typ, opsTypes(ds))
	return nil
}
