package storetest

import (
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

func init() {
	register("WriteHandsOffNewDeliveries", func(e *env) {
		hooks := e.setup("acme", "live",
			hook{name: "a", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "b", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "c", triggers: []herald.Trigger{entity("PATIENT")}})
		now := e.Clock.Now()
		lease := now.Add(time.Minute + herald.DefaultTimeoutSeconds*time.Second) // LeaseUntil plus the webhook's timeout
		var evs []*herald.Event
		for range 3 {
			evs = append(evs, event("acme", "live", "PATIENT_CREATED"))
		}
		// a has room for 2, b for none, c takes the default (1); 3 in all.
		w, err := e.S.Write(e.Ctx, &queue.Write{Events: evs, Handoff: &queue.Handoff{
			Owner: "node-1", LeaseUntil: now.Add(time.Minute), Room: map[string]int{hooks["a"].ID: 2, hooks["b"].ID: 0}, Default: 1, Limit: 3,
		}})
		e.must(err)
		if len(w.Events) != 3 || w.Events[0].Deliveries != 3 || w.Events[0].EventID == "" {
			e.Fatalf("event results %s", jsonString(w.Events))
		}
		per := map[string]int{}
		for _, j := range w.Jobs {
			per[j.Webhook.Name]++
			secrets, _ := e.S.WebhookSecrets(e.Ctx, "acme", "live", j.Webhook.Name)
			if j.Delivery.Status != herald.StatusSent || !j.LeaseUntil.Equal(lease) || !j.ClaimedAt.Equal(now) || j.Event == nil ||
				j.Event.ID != j.Delivery.EventID || j.Webhook.URL == "" || len(j.Secrets) != 1 || j.Secrets[0] != secrets[0].Secret {
				e.Errorf("handed-off job %s", jsonString(j))
			}
			if d := e.delivery("acme", "live", j.Delivery.ID); d.Status != herald.StatusSent || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(lease) {
				e.Errorf("stored handed-off delivery %s", jsonString(d))
			}
		}
		if len(w.Jobs) != 3 || per["a"] != 2 || per["c"] != 1 {
			e.Fatalf("handed off %v, want a 2, c 1", per)
		}
		// The rest are PENDING and due now: another node claims them, and
		// not the handed-off ones.
		got := e.claim("node-2", 100, 100)
		if len(got) != 6 {
			e.Fatalf("node-2 claimed %d, want the 6 not handed off", len(got))
		}
		for _, j := range got {
			for _, h := range w.Jobs {
				if j.Delivery.ID == h.Delivery.ID {
					e.Errorf("claimed a handed-off delivery")
				}
			}
		}

		// Results and new events commit together.
		res := []herald.AttemptResult{{DeliveryID: w.Jobs[0].Delivery.ID, Status: herald.StatusDelivered,
			Attempt: herald.Attempt{N: 1, StartedAt: now, StatusCode: 200}}}
		w2, err := e.S.Write(e.Ctx, &queue.Write{Events: []*herald.Event{event("acme", "live", "PATIENT_UPDATED")}, Results: res})
		e.must(err)
		if len(w2.Events) != 1 || w2.Events[0].Deliveries != 3 || len(w2.Jobs) != 0 {
			e.Errorf("second write %s", jsonString(w2))
		}
		if d := e.delivery("acme", "live", w.Jobs[0].Delivery.ID); d.Status != herald.StatusDelivered || len(d.Attempts) != 1 {
			e.Errorf("recorded delivery %s", jsonString(d))
		}
		// Nothing at all is a no-op.
		w3, err := e.S.Write(e.Ctx, &queue.Write{})
		e.must(err)
		if len(w3.Events) != 0 || len(w3.Jobs) != 0 {
			e.Errorf("empty write %s", jsonString(w3))
		}
	})

	register("WriteHandoffSkipsDuplicates", func(e *env) {
		e.setup("acme", "live", hook{name: "a", triggers: []herald.Trigger{entity("PATIENT")}})
		first := event("acme", "live", "PATIENT_CREATED")
		first.IdempotencyKey = "k1"
		e.create(first)
		again := event("acme", "live", "PATIENT_CREATED")
		again.IdempotencyKey = "k1"
		w, err := e.S.Write(e.Ctx, &queue.Write{Events: []*herald.Event{again}, Handoff: &queue.Handoff{
			Owner: "node-1", LeaseUntil: e.Clock.Now().Add(time.Minute), Default: 10, Limit: 10}})
		e.must(err)
		if !w.Events[0].Duplicate || len(w.Jobs) != 0 {
			e.Errorf("a repeated key handed off %d jobs; result %s", len(w.Jobs), jsonString(w.Events))
		}
	})
}
