package storetest

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
)

func init() {
	register("CreateEventsMatchesTriggers", func(e *env) {
		e.setup("acme", "live",
			hook{name: "by-subtype", triggers: []herald.Trigger{subtype("PATIENT_CREATED")}},
			hook{name: "by-entity", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "cdt", triggers: []herald.Trigger{entity("CDT"), subtype("TASK_CREATED")}},
			hook{name: "off", triggers: []herald.Trigger{entity("PATIENT")}, inactive: true},
		)
		e.setup("acme", "sandbox") // same webhooks, none active: no deliveries there

		created := event("acme", "live", "PATIENT_CREATED")
		created.Data = json.RawMessage(`{"mrn":"42"}`)
		created.OccurredAt = Epoch.Add(-time.Hour)
		res := e.create(created, event("acme", "live", "PATIENT_UPDATED"), event("acme", "live", "TASK_CREATED"),
			event("acme", "live", "MESSAGE_CREATED"), event("acme", "sandbox", "PATIENT_CREATED"))
		for i, want := range []int{2, 1, 1, 0, 0} {
			if res[i].Deliveries != want || res[i].Duplicate || res[i].EventID == "" {
				e.Errorf("event %d: result %+v, want %d deliveries", i, res[i], want)
			}
		}
		if created.ID != res[0].EventID || !created.CreatedAt.Equal(Epoch) {
			e.Errorf("CreateEvents did not fill ID and CreatedAt: %+v", created)
		}

		got, err := e.S.GetEvent(e.Ctx, "acme", "live", res[0].EventID)
		e.must(err)
		if got.Subtype != "PATIENT_CREATED" || got.Entity != "PATIENT" || got.SourceID != "src-1" || got.PatientID != "pat-1" ||
			string(got.Data) != `{"mrn":"42"}` || !got.OccurredAt.Equal(Epoch.Add(-time.Hour)) || !got.CreatedAt.Equal(Epoch) ||
			got.TenantName != "acme" || got.InstanceName != "live" {
			e.Errorf("GetEvent = %s", jsonString(got))
		}
		_, err = e.S.GetEvent(e.Ctx, "acme", "sandbox", res[0].EventID)
		e.wantCode(err, herald.ENOTFOUND, res[0].EventID)
		_, err = e.S.GetEvent(e.Ctx, "acme", "prod", res[0].EventID)
		e.wantCode(err, herald.ENOTFOUND, `instance "prod" of tenant "acme" not found.`)

		ds := e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"})
		byHook := map[string][]string{}
		for _, d := range ds {
			if d.Status != herald.StatusPending || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(Epoch) || d.AttemptCount != 0 {
				e.Errorf("new delivery %s", jsonString(d))
			}
			byHook[d.Webhook] = append(byHook[d.Webhook], d.EventSubtype)
		}
		for _, subs := range byHook {
			slices.Sort(subs) // one batch, one millisecond: no order among them
		}
		if jsonString(byHook) != `{"by-entity":["PATIENT_CREATED","PATIENT_UPDATED"],"by-subtype":["PATIENT_CREATED"],"cdt":["TASK_CREATED"]}` {
			e.Errorf("deliveries by webhook = %s", jsonString(byHook))
		}
	})

	register("CreateEventsIdempotency", func(e *env) {
		e.setup("acme", "live", hook{name: "all", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "created", triggers: []herald.Trigger{subtype("PATIENT_CREATED")}})
		e.setup("acme", "sandbox")
		keyed := func(instance, key string) *herald.Event {
			ev := event("acme", instance, "PATIENT_CREATED")
			ev.IdempotencyKey = key
			return ev
		}
		// The same key twice in one batch: the second is the first.
		res := e.create(keyed("live", "k1"), keyed("live", "k1"), keyed("live", "k2"), keyed("sandbox", "k1"))
		if res[0].Duplicate || res[0].Deliveries != 2 {
			e.Fatalf("first keyed event: %+v", res[0])
		}
		if !res[1].Duplicate || res[1].EventID != res[0].EventID || res[1].Deliveries != 2 {
			e.Errorf("repeat in the batch: %+v, want duplicate of %+v", res[1], res[0])
		}
		if res[2].Duplicate || res[2].EventID == res[0].EventID {
			e.Errorf("other key: %+v", res[2])
		}
		if res[3].Duplicate || res[3].EventID == res[0].EventID {
			e.Errorf("same key in another instance is another event: %+v", res[3])
		}
		// And again in a later batch.
		e.Clock.Advance(time.Second)
		res2 := e.create(keyed("live", "k2"), keyed("live", "k3"))
		if !res2[0].Duplicate || res2[0].EventID != res[2].EventID || res2[0].Deliveries != 2 {
			e.Errorf("repeat across batches: %+v, want duplicate of %+v", res2[0], res[2])
		}
		if res2[1].Duplicate {
			e.Errorf("new key: %+v", res2[1])
		}
		if n := len(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"})); n != 6 {
			e.Errorf("live has %d deliveries, want 6 (3 events x 2 webhooks)", n)
		}
		got, err := e.S.GetEvent(e.Ctx, "acme", "live", res[0].EventID)
		e.must(err)
		if got.IdempotencyKey != "k1" {
			e.Errorf("stored idempotency key %q", got.IdempotencyKey)
		}
	})

	register("CreateEventsUnknownInstance", func(e *env) {
		e.setup("acme", "live", hook{name: "all", triggers: []herald.Trigger{entity("PATIENT")}})
		res, err := e.S.CreateEvents(e.Ctx, []*herald.Event{
			event("acme", "live", "PATIENT_CREATED"),
			event("acme", "prod", "PATIENT_CREATED"),
			event("globex", "live", "PATIENT_CREATED"),
			event("acme", "live", "PATIENT_UPDATED"),
		})
		e.must(err)
		if res[0].Err != nil || res[0].Deliveries != 1 || res[3].Err != nil || res[3].Deliveries != 1 {
			e.Errorf("good events spoiled: %+v", res)
		}
		e.wantCode(res[1].Err, herald.ENOTFOUND, `instance "prod" of tenant "acme" not found.`)
		e.wantCode(res[2].Err, herald.ENOTFOUND, `tenant "globex" not found.`)
		if res[1].EventID != "" || res[2].EventID != "" {
			e.Errorf("refused events got IDs: %+v", res)
		}
		if n := len(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"})); n != 2 {
			e.Errorf("%d deliveries, want 2", n)
		}
		empty, err := e.S.CreateEvents(e.Ctx, nil)
		if err != nil || len(empty) != 0 {
			e.Errorf("CreateEvents(nil) = %v, %v", empty, err)
		}
	})

	register("CreateEventsLargeBatch", func(e *env) {
		e.setup("acme", "live", hook{name: "a", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "b", triggers: []herald.Trigger{entity("PATIENT")}})
		var evs []*herald.Event
		for i := range 1200 {
			ev := event("acme", "live", "PATIENT_UPDATED")
			if i%3 == 0 {
				ev.IdempotencyKey = "key-" + string(rune('a'+i%26)) + time.Duration(i).String()
			}
			evs = append(evs, ev)
		}
		res := e.create(evs...)
		total := 0
		for _, r := range res {
			total += r.Deliveries
		}
		if total != 2400 {
			e.Fatalf("%d deliveries, want 2400", total)
		}
		if n := len(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Limit: 500})); n != 2400 {
			e.Fatalf("listed %d deliveries, want 2400", n)
		}
		// Pages default to 50 and hold at most 500.
		for limit, want := range map[int]int{0: 50, -1: 50, 10000: 500, 499: 499} {
			page, next, err := e.S.ListDeliveries(e.Ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Limit: limit})
			e.must(err)
			if len(page) != want || next == "" {
				e.Errorf("limit %d: %d deliveries, next %q; want %d and a next page", limit, len(page), next, want)
			}
		}
	})

	register("CreateEventsConcurrentSameKey", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		const n = 8
		results := make([][]herald.EventResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Keys in opposite orders in half of the batches: racing
				// batches must neither deadlock nor both create.
				keys := []string{"a", "b", "c"}
				if i%2 == 1 {
					slices.Reverse(keys)
				}
				var evs []*herald.Event
				for _, k := range keys {
					ev := event("acme", "live", "PATIENT_CREATED")
					ev.IdempotencyKey = k
					evs = append(evs, ev)
				}
				results[i], errs[i] = e.S.CreateEvents(e.Ctx, evs)
			}()
		}
		wg.Wait()
		ids := map[string]map[string]bool{}
		created := 0
		for i := range n {
			e.must(errs[i])
			keys := []string{"a", "b", "c"}
			if i%2 == 1 {
				slices.Reverse(keys)
			}
			for j, r := range results[i] {
				if r.Err != nil || r.Deliveries != 1 {
					e.Fatalf("batch %d event %d: %+v", i, j, r)
				}
				if ids[keys[j]] == nil {
					ids[keys[j]] = map[string]bool{}
				}
				ids[keys[j]][r.EventID] = true
				if !r.Duplicate {
					created++
				}
			}
		}
		if created != 3 || len(ids["a"]) != 1 || len(ids["b"]) != 1 || len(ids["c"]) != 1 {
			e.Fatalf("created %d events, ids per key %v; want each key created once", created, ids)
		}
		if got := len(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"})); got != 3 {
			e.Errorf("%d deliveries, want 3", got)
		}
	})

	register("CreateEventsKnownID", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		first := event("acme", "live", "PATIENT_CREATED")
		res := e.create(first)
		again := event("acme", "live", "PATIENT_UPDATED")
		again.ID = first.ID
		res2 := e.create(again)
		if !res2[0].Duplicate || res2[0].EventID != res[0].EventID || res2[0].Deliveries != 1 {
			e.Errorf("event with a stored ID = %+v, want a duplicate of %+v", res2[0], res[0])
		}
		if got := len(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"})); got != 1 {
			e.Errorf("%d deliveries, want 1", got)
		}
	})
}
