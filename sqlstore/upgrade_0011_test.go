package sqlstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/signature"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
)

// TestUpgradeFrom0010DeliversWhatWasOwed builds a database as schema 0010
// left it (before migration 0011 rebuilt events, deliveries and attempts
// and moved first attempts into the delivery rows), with deliveries in
// every state and their attempts, and opens it with the current store.
// The history reads back as it was; then a real engine delivers every
// delivery that was owed (PENDING, RETRYING, SENT under an expired lease,
// SENT under the lease of a node that is gone and released) to a receiver
// on loopback, signed with the secret stored before, exactly once each,
// and none of those that were done; each delivery's attempts go on from
// where they were.
func TestUpgradeFrom0010DeliversWhatWasOwed(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
			var mu sync.Mutex
			got := map[string]int{} // webhook-id (the event id) -> requests
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if err := signature.Verify(secret, r.Header, body, time.Now(), time.Minute); err != nil {
					t.Errorf("a request not signed with the secret stored before the upgrade: %v", err)
				}
				mu.Lock()
				got[r.Header.Get("webhook-id")]++
				mu.Unlock()
				w.WriteHeader(http.StatusOK)
			}))
			defer receiver.Close()

			dsn, old := oldSchema(t, dialect, 10)
			ctx := context.Background()
			now := time.Now()
			at := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
			stmts := []string{
				`INSERT INTO tenants (name, created_at) VALUES ('acme', 1000)`,
				`INSERT INTO instances (tenant, name, created_at) VALUES ('acme', 'live', 1000)`,
				fmt.Sprintf(`INSERT INTO webhooks (id, tenant, instance, name, title, triggers, version, url, headers, query_parameters,
					payload, timeout_seconds, active, deactivated_reason, created_at, updated_at)
					VALUES ('wh_1', 'acme', 'live', 'wh', 'Patients', '[{"eventEntity":"PATIENT"}]', 1,
					'%s/hook', '[]', '[]', '{"format":"standard","predefinedFields":["EVENT_SUBTYPE"],"customFields":[]}', 5, 1, '', 2000, 2000)`, receiver.URL),
				`INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES ('wh_1', '` + secret + `', 2000)`,
			}
			// One event per delivery, so the receiver tells them apart by
			// webhook-id.
			type old0010 struct {
				id, status string
				due        any // due_at: NULL once final
				claimedBy  string
				codes      []int // attempts on record, oldest first
			}
			deliveries := []old0010{
				{"dlv_pending", herald.StatusPending, at(-time.Minute), "", nil},
				{"dlv_retrying", herald.StatusRetrying, at(-time.Second), "", []int{503, 0}},
				{"dlv_retry_once", herald.StatusRetrying, at(-time.Second), "", []int{500}},
				{"dlv_sent_expired", herald.StatusSent, at(-10 * time.Second), "dead-node", []int{503}},
				{"dlv_sent_leased", herald.StatusSent, at(time.Hour), "old-node", nil},
				{"dlv_delivered", herald.StatusDelivered, nil, "", []int{503, 200}},
				{"dlv_delivered_once", herald.StatusDelivered, nil, "", []int{204}},
				{"dlv_failed", herald.StatusFailed, nil, "", []int{500, 500, 500}},
			}
			for i, d := range deliveries {
				evt := evtOf(d.id)
				created := at(-time.Hour + time.Duration(i)*time.Second)
				stmts = append(stmts, fmt.Sprintf(`INSERT INTO events (id, tenant, instance, entity, subtype, source_id, source_name, patient_id, url,
					initiated_by, initiated_by_name, initiated_by_object_id, initiated_by_object_type, initiated_time, data, occurred_at, created_at,
					idempotency_key, deliveries)
					VALUES ('%s', 'acme', 'live', 'PATIENT', 'PATIENT_CREATED', 'p-%d', 'Jane Doe', 'p-%d', '', '', '', '', '', '', '{"mrn":"%d"}', NULL, %d, 'key-%d', 1)`,
					evt, i, i, i, created, i))
				due := "NULL"
				if d.due != nil {
					due = fmt.Sprint(d.due)
				}
				first := "NULL"
				if len(d.codes) > 0 {
					first = fmt.Sprint(created + 1000)
				}
				last := 0
				if len(d.codes) > 0 {
					last = d.codes[len(d.codes)-1]
				}
				stmts = append(stmts, fmt.Sprintf(`INSERT INTO deliveries (id, event_id, tenant, instance, webhook_id, webhook_name, event_entity, event_subtype,
					status, attempt_count, due_at, claimed_by, wait_reason, first_attempt_at, last_status_code, created_at, updated_at, window_start)
					VALUES ('%s', '%s', 'acme', 'live', 'wh_1', 'wh', 'PATIENT', 'PATIENT_CREATED', '%s', %d, %s, '%s', '', %s, %d, %d, %d, 0)`,
					d.id, evt, d.status, len(d.codes), due, d.claimedBy, first, last, created, created+5000))
				for n, code := range d.codes {
					stmts = append(stmts, fmt.Sprintf(`INSERT INTO attempts (delivery_id, n, started_at, duration_ms, status_code, response_body, error)
						VALUES ('%s', %d, %d, %d, %d, 'body %d of %s', '%s')`, d.id, n+1, created+1000*int64(n+1), 10*(n+1), code, n+1, d.id, errorOf(code)))
				}
			}
			for _, stmt := range stmts {
				if _, err := old.ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%v\n%s", err, stmt)
				}
			}
			old.Close()

			db, err := sqlstore.Open(ctx, dsn, sqlstore.Config{Keys: storekit.Keys})
			if err != nil {
				t.Fatalf("open the 0010 database: %v", err)
			}
			defer db.Close()

			// The history, as it was written.
			for _, d := range deliveries {
				up, err := db.GetDelivery(ctx, "acme", "live", d.id)
				if err != nil {
					t.Fatal(err)
				}
				if up.Status != d.status || up.EventID != evtOf(d.id) || up.Webhook != "wh" {
					t.Errorf("%s after the upgrade: %s, event %s, webhook %s; want %s", d.id, up.Status, up.EventID, up.Webhook, d.status)
				}
				if (d.due == nil) != (up.NextAttemptAt == nil) || (d.due != nil && up.NextAttemptAt.UnixMilli() != d.due.(int64)) {
					t.Errorf("%s after the upgrade: next attempt (due_at) %v, want %v", d.id, up.NextAttemptAt, d.due)
				}
				checkAttempts(t, up, d.codes, len(d.codes))
			}
			list, _, err := db.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Status: herald.StatusRetrying})
			if err != nil {
				t.Fatal(err)
			}
			if ids := deliveryIDs(list); !slices.Equal(ids, []string{"dlv_retrying", "dlv_retry_once"}) {
				t.Errorf("RETRYING deliveries listed after the upgrade: %v", ids)
			}

			// What a node does at start: the gone node's leases go back.
			if n, err := db.ReleaseDeliveries(ctx, "old-node"); err != nil || n != 1 {
				t.Fatalf("ReleaseDeliveries(old-node) = %d, %v; want 1", n, err)
			}
			wake, cancelWake := context.WithCancel(ctx)
			defer cancelWake()
			engine, err := dispatch.New(dispatch.Config{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Wake: db.Subscribe(wake), Destinations: netguard.Policy{AllowPrivate: true},
				PollInterval: 50 * time.Millisecond, DrainTimeout: time.Second, Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- engine.Run(runCtx) }()
			defer func() {
				stop()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			// And an event stored after the upgrade goes out beside them.
			res, err := engine.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT",
				Subtype: "PATIENT_UPDATED", SourceID: "p-new", PatientID: "p-new"}})
			if err != nil || len(res) != 1 || res[0].Err != nil || res[0].Deliveries != 1 {
				t.Fatalf("an event after the upgrade: %+v, %v", res, err)
			}

			owed := map[string]bool{"dlv_pending": true, "dlv_retrying": true, "dlv_retry_once": true, "dlv_sent_expired": true, "dlv_sent_leased": true}
			deadline := time.Now().Add(30 * time.Second)
			for {
				left := 0
				for _, d := range deliveries {
					if owed[d.id] {
						got, err := db.GetDelivery(ctx, "acme", "live", d.id)
						if err != nil {
							t.Fatal(err)
						}
						if got.Status != herald.StatusDelivered {
							left++
						}
					}
				}
				if left == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d deliveries owed before the upgrade are still not delivered after 30s", left)
				}
				time.Sleep(20 * time.Millisecond)
			}
			newest, _, err := db.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", EventID: res[0].EventID})
			if err != nil || len(newest) != 1 {
				t.Fatalf("the new event's delivery: %v, %v", newest, err)
			}
			waitDelivered(t, db, newest[0].ID)

			mu.Lock()
			defer mu.Unlock()
			for _, d := range deliveries {
				want := 0
				if owed[d.id] {
					want = 1
				}
				if got[evtOf(d.id)] != want {
					t.Errorf("the receiver got %s %d times, want %d", evtOf(d.id), got[evtOf(d.id)], want)
				}
				after, err := db.GetDelivery(ctx, "acme", "live", d.id)
				if err != nil {
					t.Fatal(err)
				}
				codes := d.codes
				if owed[d.id] {
					codes = append(slices.Clone(codes), 200)
				}
				checkAttempts(t, after, codes, len(d.codes))
			}
			if got[res[0].EventID] != 1 {
				t.Errorf("the receiver got the event stored after the upgrade %d times, want 1", got[res[0].EventID])
			}
		})
	}
}

func evtOf(deliveryID string) string { return "evt_" + deliveryID }

// errorOf is the error an attempt of the 0010 data records for its code.
func errorOf(code int) string {
	switch {
	case code == 0:
		return "connection refused"
	case code >= 300:
		return fmt.Sprintf("receiver answered %d", code)
	}
	return ""
}

// checkAttempts checks that d's attempts are numbered 1, 2... with the
// codes given; the first old of them as the 0010 data wrote them.
func checkAttempts(t *testing.T, d *herald.Delivery, codes []int, old int) {
	t.Helper()
	if len(d.Attempts) != len(codes) || d.AttemptCount != len(codes) {
		t.Errorf("%s: %d attempts (count %d), want %d", d.ID, len(d.Attempts), d.AttemptCount, len(codes))
		return
	}
	for i, a := range d.Attempts {
		if a.N != i+1 || a.StatusCode != codes[i] {
			t.Errorf("%s attempt %d: n %d, code %d; want n %d, code %d", d.ID, i, a.N, a.StatusCode, i+1, codes[i])
		}
		if i < old && (a.ResponseBody != fmt.Sprintf("body %d of %s", i+1, d.ID) || a.Error != errorOf(codes[i]) ||
			a.DurationMs != int64(10*(i+1)) || a.StartedAt.UnixMilli() != d.CreatedAt.UnixMilli()+1000*int64(i+1)) {
			t.Errorf("%s attempt %d after the upgrade: %+v", d.ID, i+1, a)
		}
	}
}

func deliveryIDs(ds []*herald.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// waitDelivered waits until the delivery id of acme/live is DELIVERED.
func waitDelivered(t *testing.T, db *sqlstore.DB, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := db.GetDelivery(context.Background(), "acme", "live", id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status == herald.StatusDelivered {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s after 30s, want DELIVERED", id, d.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
