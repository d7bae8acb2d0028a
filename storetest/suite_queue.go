package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

func init() {
	register("ClaimReturnsFullJobs", func(e *env) {
		hooks := e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		headers := []herald.NameValue{{Name: "X-Key", Value: "v", Secret: herald.FlagTrue}}
		_, err := e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{Headers: &headers})
		e.must(err)
		ev := event("acme", "live", "PATIENT_CREATED")
		ev.Data = json.RawMessage(`{"a":1}`)
		res := e.create(ev)

		e.Clock.Advance(time.Second)
		now := e.Clock.Now()
		// Leased for the webhook's timeout (30s) beyond LeaseUntil.
		lease := now.Add(30*time.Second + herald.DefaultTimeoutSeconds*time.Second)
		jobs, err := e.S.ClaimDeliveries(e.Ctx, queue.ClaimRequest{Owner: "node-1", Now: now, LeaseUntil: now.Add(30 * time.Second), Limit: 10, PerWebhook: 10})
		e.must(err)
		if len(jobs) != 1 {
			e.Fatalf("claimed %d jobs, want 1", len(jobs))
		}
		j := jobs[0]
		if j.Delivery.Status != herald.StatusSent || j.Delivery.EventID != res[0].EventID || j.Delivery.Webhook != "wh" ||
			j.Delivery.NextAttemptAt == nil || !j.Delivery.NextAttemptAt.Equal(lease) || !j.LeaseUntil.Equal(lease) || !j.ClaimedAt.Equal(now) {
			e.Errorf("job delivery = %s", jsonString(j.Delivery))
		}
		if j.Event == nil || j.Event.ID != res[0].EventID || string(j.Event.Data) != `{"a":1}` || j.Event.TenantName != "acme" {
			e.Errorf("job event = %s", jsonString(j.Event))
		}
		if j.Webhook == nil || j.Webhook.ID != hooks["wh"].ID || j.Webhook.URL != "https://example.com/hooks/wh" ||
			!slices.Equal(j.Webhook.Headers, headers) || !j.Webhook.Active {
			e.Errorf("job webhook = %s", jsonString(j.Webhook))
		}
		secrets, _ := e.S.WebhookSecrets(e.Ctx, "acme", "live", "wh")
		if len(j.Secrets) != 1 || j.Secrets[0] != secrets[0].Secret {
			e.Errorf("job secrets = %v", j.Secrets)
		}
		if d := e.delivery("acme", "live", j.Delivery.ID); d.Status != herald.StatusSent {
			e.Errorf("stored status %s, want SENT", d.Status)
		}
		// Leased: nobody gets it again until the lease runs out.
		if again := e.claim("node-2", 10, 10); len(again) != 0 {
			e.Errorf("claimed a leased delivery again")
		}
		if jobs, _ := e.S.ClaimDeliveries(e.Ctx, queue.ClaimRequest{Owner: "x", Now: now, LeaseUntil: lease, Limit: 0}); len(jobs) != 0 {
			e.Errorf("Limit 0 claimed %d", len(jobs))
		}
	})

	register("ClaimLeaseExpiry", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		e.create(event("acme", "live", "PATIENT_CREATED"))
		first := e.claim("crashed-node", 10, 10) // a one-minute lease beyond the 30s timeout
		if len(first) != 1 {
			e.Fatalf("claimed %d", len(first))
		}
		leased := time.Minute + herald.DefaultTimeoutSeconds*time.Second
		next, err := e.S.NextDue(e.Ctx)
		e.must(err)
		if next == nil || !next.Equal(Epoch.Add(leased)) {
			e.Errorf("NextDue while leased = %v, want the lease's end", next)
		}
		e.Clock.Advance(leased - time.Second)
		if got := e.claim("node-2", 10, 10); len(got) != 0 {
			e.Fatalf("claimed before the lease ran out")
		}
		e.Clock.Advance(time.Second)
		got := e.claim("node-2", 10, 10)
		if len(got) != 1 || got[0].Delivery.ID != first[0].Delivery.ID {
			e.Fatalf("after the lease: claimed %v, want the crashed node's delivery", ids(got))
		}
		if !got[0].LeaseUntil.Equal(e.Clock.Now().Add(leased)) {
			e.Errorf("new lease until %v", got[0].LeaseUntil)
		}
	})

	register("ClaimFairness", func(e *env) {
		hooks := e.setup("acme", "live",
			hook{name: "busy", triggers: []herald.Trigger{subtype("PATIENT_CREATED")}},
			hook{name: "quiet", triggers: []herald.Trigger{subtype("PATIENT_UPDATED")}},
			hook{name: "third", triggers: []herald.Trigger{subtype("PATIENT_DELETED")}})
		var evs []*herald.Event
		for range 300 {
			evs = append(evs, event("acme", "live", "PATIENT_CREATED"))
		}
		e.create(evs...)
		e.Clock.Advance(time.Second)
		e.create(event("acme", "live", "PATIENT_UPDATED"), event("acme", "live", "PATIENT_UPDATED"))
		e.Clock.Advance(time.Second)
		e.create(event("acme", "live", "PATIENT_DELETED"))
		e.Clock.Advance(time.Second)

		// The busy webhook's 300 older deliveries do not starve the others.
		jobs := e.claim("n1", 20, 5)
		per := map[string]int{}
		for _, j := range jobs {
			per[j.Webhook.Name]++
		}
		if len(jobs) != 8 || per["busy"] != 5 || per["quiet"] != 2 || per["third"] != 1 {
			e.Fatalf("claimed %v, want busy 5, quiet 2, third 1", per)
		}
		// Oldest due first.
		for i := 1; i < len(jobs); i++ {
			if jobs[i].Delivery.CreatedAt.Before(jobs[i-1].Delivery.CreatedAt) {
				e.Errorf("job %d was due before job %d", i, i-1)
			}
		}
		// The overall limit takes the oldest due across webhooks.
		e.Clock.Advance(2 * time.Minute) // leases run out
		jobs = e.claim("n1", 3, 5)
		if len(jobs) != 3 || jobs[0].Webhook.Name != "busy" {
			e.Fatalf("limited claim = %d jobs", len(jobs))
		}
		// Excluded webhooks (no free slot on this node) are skipped.
		jobs = e.claim("n1", 50, 50, hooks["busy"].ID)
		for _, j := range jobs {
			if j.Webhook.Name == "busy" {
				e.Fatalf("claimed for an excluded webhook")
			}
		}
		if len(jobs) != 3 {
			e.Errorf("claimed %d for quiet and third, want 3", len(jobs))
		}
	})

	register("ClaimConcurrentClaimersDisjoint", func(e *env) {
		var hs []hook
		for i := range 4 {
			hs = append(hs, hook{name: fmt.Sprintf("wh-%d", i), triggers: []herald.Trigger{entity("PATIENT")}})
		}
		e.setup("acme", "live", hs...)
		var evs []*herald.Event
		for range 150 {
			evs = append(evs, event("acme", "live", "PATIENT_CREATED"))
		}
		e.create(evs...) // 600 deliveries
		// Every finding goes into errs under mu, never into a channel a
		// claimer could block on: however many double claims there are,
		// the claimers run to the end and the test fails listing them.
		var mu sync.Mutex
		seen := map[string]string{}
		var errs []error
		var wg sync.WaitGroup
		for c := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("node-%d", c)
				for {
					now := e.Clock.Now()
					jobs, err := e.S.ClaimDeliveries(e.Ctx, queue.ClaimRequest{Owner: owner, Now: now, LeaseUntil: now.Add(time.Hour), Limit: 20, PerWebhook: 10})
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, j := range jobs {
						if prev, ok := seen[j.Delivery.ID]; ok {
							errs = append(errs, fmt.Errorf("delivery %s claimed by %s and %s", j.Delivery.ID, prev, owner))
						}
						seen[j.Delivery.ID] = owner
					}
					// A store that hands out claimed deliveries again would
					// keep this loop going forever: stop at twice the work.
					stop := err != nil || len(jobs) == 0 || len(errs) > 600
					mu.Unlock()
					if stop {
						return
					}
				}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if i == 10 {
				e.Errorf("... and %d more", len(errs)-10)
				break
			}
			e.Error(err)
		}
		if len(seen) != 600 {
			e.Errorf("claimed %d distinct deliveries, want all 600", len(seen))
		}
	})

	register("RecordAttemptsRetryBookkeeping", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		e.create(event("acme", "live", "PATIENT_CREATED"))
		e.Clock.Advance(time.Second)
		t1 := e.Clock.Now()
		id := e.claim("n1", 1, 1)[0].Delivery.ID
		long := strings.Repeat("x", herald.MaxResponseBody+100)
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: id,
			Attempt: herald.Attempt{StartedAt: t1, DurationMs: 120, StatusCode: 503, ResponseBody: long, Error: "receiver answered 503"},
			Status:  herald.StatusRetrying, NextAttemptAt: t1.Add(5 * time.Second), WaitReason: "receiver answered 503; retry 1"}}))
		d := e.delivery("acme", "live", id)
		if d.Status != herald.StatusRetrying || d.AttemptCount != 1 || d.LastStatusCode != 503 || d.WaitReason != "receiver answered 503; retry 1" ||
			d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(t1.Add(5*time.Second)) || d.FirstAttemptAt == nil || !d.FirstAttemptAt.Equal(t1) {
			e.Fatalf("after a failed attempt: %s", jsonString(d))
		}
		a := d.Attempts[0]
		if len(d.Attempts) != 1 || a.N != 1 || !a.StartedAt.Equal(t1) || a.DurationMs != 120 || a.StatusCode != 503 ||
			a.Error != "receiver answered 503" || len(a.ResponseBody) > herald.MaxResponseBody {
			e.Fatalf("attempt = %+v (body %d bytes)", a, len(a.ResponseBody))
		}
		// Not due before NextAttemptAt.
		if got := e.claim("n1", 1, 1); len(got) != 0 {
			e.Fatalf("claimed a retry before it was due")
		}
		next, _ := e.S.NextDue(e.Ctx)
		if next == nil || !next.Equal(t1.Add(5*time.Second)) {
			e.Errorf("NextDue = %v", next)
		}
		e.Clock.Advance(5 * time.Second)
		t2 := e.Clock.Now()
		jobs := e.claim("n1", 1, 1)
		if len(jobs) != 1 || jobs[0].Delivery.AttemptCount != 1 {
			e.Fatalf("retry not claimed")
		}
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: id,
			Attempt: herald.Attempt{StartedAt: t2, DurationMs: 30, Error: "connection refused"},
			Status:  herald.StatusRetrying, NextAttemptAt: t2.Add(30 * time.Second), WaitReason: "connection refused; retry 2"}}))
		e.Clock.Advance(30 * time.Second)
		t3 := e.Clock.Now()
		e.claim("n1", 1, 1)
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: id,
			Attempt: herald.Attempt{StartedAt: t3, DurationMs: 10, StatusCode: 200, ResponseBody: "ok"}, Status: herald.StatusDelivered}}))
		d = e.delivery("acme", "live", id)
		if d.Status != herald.StatusDelivered || d.AttemptCount != 3 || d.NextAttemptAt != nil || d.LastStatusCode != 200 ||
			!d.FirstAttemptAt.Equal(t1) || len(d.Attempts) != 3 {
			e.Fatalf("delivered: %s", jsonString(d))
		}
		for i, a := range d.Attempts {
			if a.N != i+1 {
				e.Errorf("attempt %d has n=%d; want oldest first", i, a.N)
			}
		}
		if d.Attempts[1].Error != "connection refused" || d.Attempts[2].ResponseBody != "ok" {
			e.Errorf("attempts = %s", jsonString(d.Attempts))
		}
		next, _ = e.S.NextDue(e.Ctx)
		if next != nil {
			e.Errorf("NextDue with nothing open = %v", next)
		}

		// FAILED is final too.
		e.create(event("acme", "live", "PATIENT_CREATED"))
		id2 := e.claim("n1", 1, 1)[0].Delivery.ID
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: id2,
			Attempt: herald.Attempt{StartedAt: t3, StatusCode: 500}, Status: herald.StatusFailed, WaitReason: "gave up after 24h"}}))
		if d := e.delivery("acme", "live", id2); d.Status != herald.StatusFailed || d.NextAttemptAt != nil || d.WaitReason != "gave up after 24h" {
			e.Errorf("failed: %s", jsonString(d))
		}
		e.must(e.S.RecordAttempts(e.Ctx, nil))
		// A result for a delivery that no longer exists is ignored.
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: "dlv_gone", Status: herald.StatusDelivered}}))
	})

	register("RecordAttempts410Deactivates", func(e *env) {
		e.setup("acme", "live", hook{name: "gone", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "fine", triggers: []herald.Trigger{entity("PATIENT")}})
		e.create(event("acme", "live", "PATIENT_CREATED"), event("acme", "live", "PATIENT_CREATED"), event("acme", "live", "PATIENT_CREATED"))
		jobs := e.claim("n1", 1, 1, e.webhookID("acme", "live", "fine"))
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: jobs[0].Delivery.ID,
			Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: 410}, Status: herald.StatusFailed,
			WaitReason: "receiver answered 410 Gone", DeactivateReason: "410 Gone from the receiver"}}))
		w, err := e.S.GetWebhook(e.Ctx, "acme", "live", "gone")
		e.must(err)
		if w.Active || w.DeactivatedReason != "410 Gone from the receiver" || w.DeactivatedAt == nil {
			e.Errorf("webhook after 410 = %s", jsonString(w))
		}
		got := statuses(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "gone"}))
		if got[herald.StatusFailed] != 1 || got[herald.StatusCancelled] != 2 {
			e.Errorf("statuses after 410 = %v, want 1 FAILED, 2 CANCELLED", got)
		}
		if got := statuses(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "fine"})); got[herald.StatusPending] != 3 {
			e.Errorf("other webhook = %v", got)
		}
	})

	register("RecordAttempts410KeepsAnEarlierDeactivation", func(e *env) {
		e.setup("acme", "live", hook{name: "gone", triggers: []herald.Trigger{entity("PATIENT")}})
		e.create(event("acme", "live", "PATIENT_CREATED"))
		jobs := e.claim("n1", 1, 1)
		_, err := e.S.DeactivateWebhook(e.Ctx, "acme", "live", "gone", "paused for maintenance")
		e.must(err)
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: jobs[0].Delivery.ID,
			Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: 410}, Status: herald.StatusFailed,
			WaitReason: "receiver answered 410 Gone", DeactivateReason: "410 Gone from the receiver"}}))
		w, err := e.S.GetWebhook(e.Ctx, "acme", "live", "gone")
		e.must(err)
		if w.Active || w.DeactivatedReason != "paused for maintenance" {
			e.Errorf("webhook after a late 410 = %s; want the admin's reason kept", jsonString(w))
		}
		if d := e.delivery("acme", "live", jobs[0].Delivery.ID); len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 410 {
			e.Errorf("the 410 attempt is not on record: %s", jsonString(d))
		}
	})

	register("ClaimCountsAttemptsOfTheWindow", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		e.create(event("acme", "live", "PATIENT_CREATED"))
		// fail records a failed attempt of the only claimed delivery and
		// makes it due again a second later.
		fail := func(jobs []*queue.Job, final bool) string {
			e.Helper()
			if len(jobs) != 1 {
				e.Fatalf("claimed %d, want 1", len(jobs))
			}
			r := herald.AttemptResult{DeliveryID: jobs[0].Delivery.ID, Attempt: herald.Attempt{StartedAt: e.Clock.Now(), StatusCode: 503},
				Status: herald.StatusRetrying, NextAttemptAt: e.Clock.Now().Add(time.Second)}
			if final {
				r.Status, r.NextAttemptAt = herald.StatusFailed, time.Time{}
			}
			e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{r}))
			e.Clock.Advance(time.Second)
			return r.DeliveryID
		}
		want := func(jobs []*queue.Job, attempts, window int) {
			e.Helper()
			if d := jobs[0].Delivery; d.AttemptCount != attempts || d.WindowAttempts != window {
				e.Errorf("claimed with %d attempts, %d in the window; want %d and %d", d.AttemptCount, d.WindowAttempts, attempts, window)
			}
		}
		jobs := e.claim("n1", 1, 1)
		want(jobs, 0, 0)
		id := fail(jobs, false)
		jobs = e.claim("n1", 1, 1)
		want(jobs, 1, 1)
		fail(jobs, false)
		jobs = e.claim("n1", 1, 1)
		want(jobs, 2, 2)
		fail(jobs, true)

		// A resend starts a fresh window; the attempts stay on record.
		_, err := e.S.ResendDelivery(e.Ctx, "acme", "live", id)
		e.must(err)
		jobs = e.claim("n1", 1, 1)
		want(jobs, 3, 0)
		fail(jobs, false)
		jobs = e.claim("n1", 1, 1)
		want(jobs, 4, 1)
		fail(jobs, true)

		// So does a recover.
		_, err = e.S.RecoverWebhook(e.Ctx, "acme", "live", "wh", Epoch)
		e.must(err)
		jobs = e.claim("n1", 1, 1)
		want(jobs, 5, 0)
		fail(jobs, false)
		jobs = e.claim("n1", 1, 1)
		want(jobs, 6, 1)
	})

	register("ReleaseDeliveries", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		e.create(event("acme", "live", "PATIENT_CREATED"), event("acme", "live", "PATIENT_CREATED"), event("acme", "live", "PATIENT_CREATED"))
		a := e.claim("node-a", 2, 2)
		b := e.claim("node-b", 1, 1)
		if len(a) != 2 || len(b) != 1 {
			e.Fatalf("claimed %d and %d", len(a), len(b))
		}
		// One of node-a's was tried before: it goes back as RETRYING.
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: a[1].Delivery.ID,
			Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: 500}, Status: herald.StatusRetrying, NextAttemptAt: Epoch}}))
		a = append(a[:1], e.claim("node-a", 1, 1)...)
		e.Clock.Advance(time.Second)
		n, err := e.S.ReleaseDeliveries(e.Ctx, "node-a")
		e.must(err)
		if n != 2 {
			e.Fatalf("ReleaseDeliveries(node-a) = %d, want 2", n)
		}
		if d := e.delivery("acme", "live", a[0].Delivery.ID); d.Status != herald.StatusPending || !d.NextAttemptAt.Equal(e.Clock.Now()) {
			e.Errorf("released untried delivery: %s", jsonString(d))
		}
		if d := e.delivery("acme", "live", a[1].Delivery.ID); d.Status != herald.StatusRetrying {
			e.Errorf("released tried delivery: %s", jsonString(d))
		}
		if d := e.delivery("acme", "live", b[0].Delivery.ID); d.Status != herald.StatusSent {
			e.Errorf("node-b's delivery was released: %s", jsonString(d))
		}
		if got := e.claim("node-c", 10, 10); len(got) != 2 {
			e.Errorf("claimed %d released deliveries, want 2", len(got))
		}
		n, err = e.S.ReleaseAll(e.Ctx)
		e.must(err)
		if n != 3 {
			e.Errorf("ReleaseAll = %d, want 3", n)
		}
		if got := e.claim("node-d", 10, 10); len(got) != 3 {
			e.Errorf("claimed %d after ReleaseAll, want 3", len(got))
		}
		if n, _ := e.S.ReleaseDeliveries(e.Ctx, "nobody"); n != 0 {
			e.Errorf("ReleaseDeliveries(nobody) = %d", n)
		}
	})

	register("ReleaseUnheld", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		var evs []*herald.Event
		for range 5 {
			evs = append(evs, event("acme", "live", "PATIENT_CREATED"))
		}
		e.create(evs...)
		a := e.claim("node-a", 4, 4)
		b := e.claim("node-b", 1, 1)
		if len(a) != 4 || len(b) != 1 {
			e.Fatalf("claimed %d and %d", len(a), len(b))
		}
		lease := a[0].LeaseUntil
		// a[1] was tried before and claimed again: it goes back as RETRYING.
		// a[3] is recorded: no longer SENT, though still named as held.
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{
			{DeliveryID: a[1].Delivery.ID, Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: 500}, Status: herald.StatusRetrying, NextAttemptAt: Epoch},
			{DeliveryID: a[3].Delivery.ID, Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: 200}, Status: herald.StatusDelivered},
		}))
		if again := e.claim("node-a", 1, 1); len(again) != 1 || again[0].Delivery.ID != a[1].Delivery.ID {
			e.Fatalf("claim of the retry = %v", ids(again))
		}
		e.Clock.Advance(time.Second)

		// node-a holds a[0] (and names a[3], long done, and IDs that do not
		// exist); a[1] and a[2] were claimed but never reached it.
		held := []string{a[0].Delivery.ID, a[3].Delivery.ID, "dlv_nonexistent"}
		// More IDs than one statement can carry parameters for.
		for i := range 40000 {
			held = append(held, fmt.Sprintf("dlv_unknown%06d", i))
		}
		n, err := e.S.ReleaseUnheld(e.Ctx, "node-a", held)
		e.must(err)
		if n != 2 {
			e.Fatalf("ReleaseUnheld(node-a) = %d, want 2", n)
		}
		now := e.Clock.Now()
		if d := e.delivery("acme", "live", a[0].Delivery.ID); d.Status != herald.StatusSent || !d.NextAttemptAt.Equal(lease) {
			e.Errorf("held delivery lost its claim: %s", jsonString(d))
		}
		if d := e.delivery("acme", "live", a[1].Delivery.ID); d.Status != herald.StatusRetrying || !d.NextAttemptAt.Equal(now) {
			e.Errorf("released tried delivery: %s", jsonString(d))
		}
		if d := e.delivery("acme", "live", a[2].Delivery.ID); d.Status != herald.StatusPending || !d.NextAttemptAt.Equal(now) {
			e.Errorf("released untried delivery: %s", jsonString(d))
		}
		if d := e.delivery("acme", "live", a[3].Delivery.ID); d.Status != herald.StatusDelivered || d.NextAttemptAt != nil {
			e.Errorf("recorded delivery changed: %s", jsonString(d))
		}
		if d := e.delivery("acme", "live", b[0].Delivery.ID); d.Status != herald.StatusSent {
			e.Errorf("node-b's delivery was released: %s", jsonString(d))
		}
		next, err := e.S.NextDue(e.Ctx)
		e.must(err)
		if next == nil || next.After(now) {
			e.Errorf("NextDue after the release = %v, want now", next)
		}
		// Due at once: another node claims them.
		if got, want := ids(e.claim("node-c", 10, 10)), ids([]*queue.Job{a[1], a[2]}); !slices.Equal(got, want) {
			e.Errorf("claimed %v after the release, want %v", got, want)
		}
		if n, err := e.S.ReleaseUnheld(e.Ctx, "node-a", held); err != nil || n != 0 {
			e.Errorf("second ReleaseUnheld = %d, %v; want 0", n, err)
		}
		// Holding nothing releases all of the owner's claims.
		if n, err := e.S.ReleaseUnheld(e.Ctx, "node-b", nil); err != nil || n != 1 {
			e.Errorf("ReleaseUnheld(node-b, nil) = %d, %v; want 1", n, err)
		}
	})

	register("ReleaseUnheldMany", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		var evs []*herald.Event
		for range 700 {
			evs = append(evs, event("acme", "live", "PATIENT_CREATED"))
		}
		e.create(evs...)
		jobs := e.claim("node-a", 1000, 1000)
		if len(jobs) != 700 {
			e.Fatalf("claimed %d", len(jobs))
		}
		n, err := e.S.ReleaseUnheld(e.Ctx, "node-a", ids(jobs)[:50])
		e.must(err)
		if n != 650 {
			e.Errorf("ReleaseUnheld = %d, want 650", n)
		}
		if got := statuses(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"})); got[herald.StatusSent] != 50 || got[herald.StatusPending] != 650 {
			e.Errorf("statuses after the release = %v, want 50 SENT and 650 PENDING", got)
		}
	})

	register("NextDue", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		next, err := e.S.NextDue(e.Ctx)
		e.must(err)
		if next != nil {
			e.Fatalf("NextDue of an empty store = %v", next)
		}
		e.create(event("acme", "live", "PATIENT_CREATED"))
		e.Clock.Advance(time.Minute)
		e.create(event("acme", "live", "PATIENT_CREATED"))
		next, err = e.S.NextDue(e.Ctx)
		e.must(err)
		if next == nil || !next.Equal(Epoch) {
			e.Errorf("NextDue = %v, want %v", next, Epoch)
		}
	})
}
