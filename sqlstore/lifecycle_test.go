package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/sqlstore"
)

// TestSetStatementsFollowTheDomain checks the statements that move many
// deliveries at once (claim, release, cancel on deactivation, recover,
// the release of HELD ones when ordering is set to none)
// against the domain's rule for one delivery (lifecycle.go): a delivery in
// each status goes through the statement, and must end as the rule says,
// field by field, on both dialects.
func TestSetStatementsFollowTheDomain(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	const reason = "deactivated by admin"
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			for _, op := range []struct {
				name string
				run  func(ctx context.Context, db *sqlstore.DB, now time.Time) error
				rule func(s herald.DeliveryState, timeout time.Duration, now time.Time) herald.DeliveryState
			}{
				{"claim", func(ctx context.Context, db *sqlstore.DB, now time.Time) error {
					_, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: now, LeaseUntil: now.Add(herald.LeaseMargin), Limit: 100})
					return err
				}, func(s herald.DeliveryState, timeout time.Duration, now time.Time) herald.DeliveryState {
					if !herald.Claimable(s, true, now) {
						return s
					}
					return herald.Claim(s, "n1", herald.LeaseEnd(now.Add(herald.LeaseMargin), timeout))
				}},
				{"release", func(ctx context.Context, db *sqlstore.DB, now time.Time) error {
					_, err := db.ReleaseAll(ctx)
					return err
				}, func(s herald.DeliveryState, _ time.Duration, now time.Time) herald.DeliveryState {
					s, _ = herald.Release(s, now)
					return s
				}},
				{"deactivate", func(ctx context.Context, db *sqlstore.DB, now time.Time) error {
					_, err := db.DeactivateWebhook(ctx, "acme", "live", "wh", reason)
					return err
				}, func(s herald.DeliveryState, _ time.Duration, now time.Time) herald.DeliveryState {
					s, _ = herald.Cancel(s, reason)
					return s
				}},
				{"recover", func(ctx context.Context, db *sqlstore.DB, now time.Time) error {
					_, err := db.RecoverWebhook(ctx, "acme", "live", "wh", t0.Add(-time.Hour))
					return err
				}, func(s herald.DeliveryState, _ time.Duration, now time.Time) herald.DeliveryState {
					s, _ = herald.Recover(s, now)
					return s
				}},
				{"ordering set to none", func(ctx context.Context, db *sqlstore.DB, now time.Time) error {
					for _, o := range []string{herald.OrderingPatient, herald.OrderingNone} {
						if _, err := db.UpdateWebhook(ctx, "acme", "live", "wh", herald.WebhookUpdate{Ordering: &o}); err != nil {
							return err
						}
					}
					return nil
				}, func(s herald.DeliveryState, _ time.Duration, now time.Time) herald.DeliveryState {
					s, _ = herald.Unhold(s, herald.UnheldByOrdering, now)
					return s
				}},
			} {
				t.Run(op.name, func(t *testing.T) {
					ctx := context.Background()
					clock := heraldtest.NewClock(t0)
					cfg := sqlstore.Config{Now: clock.Now, Keys: storekit.Keys}
					db := storekit.Open(t, dialect, cfg)
					w := oneWebhook(t, db)
					// One delivery in each status, with attempts in a window
					// and due a second ago when open (a SENT one's lease ran
					// out), and one SENT never attempted.
					states := map[string]herald.DeliveryState{}
					for i, status := range append(herald.Statuses, herald.StatusSent) {
						rs, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}})
						if err != nil {
							t.Fatal(err)
						}
						ds, _, err := db.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", EventID: rs[0].EventID})
						if err != nil || len(ds) != 1 {
							t.Fatalf("list deliveries: %v, %d", err, len(ds))
						}
						first := t0.Add(-time.Hour)
						s := herald.DeliveryState{Status: status, Attempts: 3, WindowStart: 1, FirstAttemptAt: &first, WaitReason: "before", LastStatusCode: 503}
						if herald.Open(status) {
							due := t0.Add(-time.Second)
							s.DueAt = &due
						}
						if status == herald.StatusSent {
							s.Owner = "n0"
						}
						if i == len(herald.Statuses) { // SENT, never attempted
							s.Attempts, s.WindowStart, s.FirstAttemptAt, s.LastStatusCode = 0, 0, nil, 0
						}
						if err := db.SetDeliveryState(ctx, ds[0].ID, s); err != nil {
							t.Fatal(err)
						}
						states[ds[0].ID] = s
					}
					now := clock.Advance(time.Minute)
					if err := op.run(ctx, db, now); err != nil {
						t.Fatal(err)
					}
					if len(states) != len(herald.Statuses)+1 {
						t.Fatalf("%d deliveries set up, want %d", len(states), len(herald.Statuses)+1)
					}
					for id, before := range states {
						got, err := db.DeliveryState(ctx, id)
						if err != nil {
							t.Fatal(err)
						}
						want := op.rule(before, time.Duration(w.TimeoutSeconds)*time.Second, now)
						if !sameState(got, want) {
							t.Errorf("%s of a %s delivery:\n got %s\nwant %s", op.name, before.Status, showState(got), showState(want))
						}
					}
				})
			}
		})
	}
}

// oneWebhook makes tenant acme, instance live and its one active webhook
// wh, which every PATIENT event reaches.
func oneWebhook(t *testing.T, db *sqlstore.DB) *herald.Webhook {
	t.Helper()
	ctx := context.Background()
	if _, err := db.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateInstance(ctx, "acme", "live"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDesignerWebhook(ctx, "acme", &herald.DesignerWebhook{Name: "wh", Title: "wh", Triggers: []herald.Trigger{{EventEntity: "PATIENT"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Publish(ctx, "acme", "", ""); err != nil {
		t.Fatal(err)
	}
	u, timeout := "https://example.com/", 7
	if _, err := db.UpdateWebhook(ctx, "acme", "live", "wh", herald.WebhookUpdate{URL: &u, TimeoutSeconds: &timeout}); err != nil {
		t.Fatal(err)
	}
	w, err := db.ActivateWebhook(ctx, "acme", "live", "wh")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func sameState(a, b herald.DeliveryState) bool {
	same := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.Status == b.Status && a.Attempts == b.Attempts && a.WindowStart == b.WindowStart && same(a.FirstAttemptAt, b.FirstAttemptAt) &&
		same(a.DueAt, b.DueAt) && a.Owner == b.Owner && a.WaitReason == b.WaitReason && a.LastStatusCode == b.LastStatusCode
}

func showState(s herald.DeliveryState) string {
	show := func(t *time.Time) string {
		if t == nil {
			return "nil"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%s attempts %d (window from %d) first %s due %s owner %q reason %q code %d",
		s.Status, s.Attempts, s.WindowStart, show(s.FirstAttemptAt), show(s.DueAt), s.Owner, s.WaitReason, s.LastStatusCode)
}

// TestCatchUpWhenTheWebhookAnswersAgain: a webhook failing, one of its
// deliveries RETRYING two hours out; the first 2xx it answers makes that
// delivery due at once (herald.CatchUp), in the same write, on both
// dialects. A webhook that never failed catches nothing up.
func TestCatchUpWhenTheWebhookAnswersAgain(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			clock := heraldtest.NewClock(t0)
			db := storekit.Open(t, dialect, sqlstore.Config{Now: clock.Now, Keys: storekit.Keys})
			oneWebhook(t, db)
			claim := func(want int) []*queue.Job {
				t.Helper()
				jobs, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: clock.Now(), LeaseUntil: clock.Now().Add(herald.LeaseMargin), Limit: 10})
				if err != nil || len(jobs) != want {
					t.Fatalf("claimed %d, want %d: %v", len(jobs), want, err)
				}
				return jobs
			}
			result := func(j *queue.Job, code int, next time.Time) herald.AttemptResult {
				r := herald.AttemptResult{DeliveryID: j.Delivery.ID, Status: herald.StatusDelivered,
					Attempt: herald.Attempt{N: j.Delivery.AttemptCount + 1, StartedAt: clock.Now(), StatusCode: code}}
				if code >= 300 {
					r.Status, r.NextAttemptAt, r.WaitReason, r.Attempt.Error = herald.StatusRetrying, next, "receiver answered 503", "receiver answered 503"
				}
				return r
			}
			for range 2 {
				if _, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}}); err != nil {
					t.Fatal(err)
				}
			}
			jobs := claim(2)
			later, soon := jobs[0], jobs[1]
			if _, err := db.Write(ctx, &queue.Write{Results: []herald.AttemptResult{
				result(later, 503, clock.Now().Add(2*time.Hour)), result(soon, 503, clock.Now().Add(time.Second))}}); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Second)
			soon = claim(1)[0]
			if _, err := db.Write(ctx, &queue.Write{Results: []herald.AttemptResult{result(soon, 200, time.Time{})}}); err != nil {
				t.Fatal(err)
			}
			now := clock.Now()
			s, err := db.DeliveryState(ctx, later.Delivery.ID)
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != herald.StatusRetrying || s.DueAt == nil || !s.DueAt.Equal(now) || s.WaitReason != herald.ReasonCaughtUp || s.Attempts != 1 {
				t.Fatalf("the RETRYING delivery after its webhook answered again: %s; want RETRYING due now (%s), %q", showState(s), now, herald.ReasonCaughtUp)
			}
			// Healthy now: the next 2xx moves nothing.
			again := claim(1)[0]
			if again.Delivery.ID != later.Delivery.ID {
				t.Fatalf("claimed %s, want the caught-up %s", again.Delivery.ID, later.Delivery.ID)
			}
		})
	}
}
