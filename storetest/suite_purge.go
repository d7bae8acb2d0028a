package storetest

import (
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

func init() {
	register("PurgeFinished", func(e *env) {
		hooks := e.setup("acme", "live",
			hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "gone", triggers: []herald.Trigger{entity("TASK")}},
			hook{name: "idle", triggers: []herald.Trigger{entity("CDT")}})
		only := func(name string) []string { // every webhook but name, to exclude from a claim
			var out []string
			for n, w := range hooks {
				if n != name {
					out = append(out, w.ID)
				}
			}
			return out
		}
		old := e.create(event("acme", "live", "PATIENT_CREATED"), event("acme", "live", "PATIENT_CREATED"),
			event("acme", "live", "PATIENT_CREATED"), event("acme", "live", "PATIENT_CREATED"),
			event("acme", "live", "TASK_CREATED"), event("acme", "live", "CDT_CREATED"))
		orphan := e.create(event("acme", "live", "MESSAGE_CREATED")) // matches nothing
		jobs := e.claim("n1", 10, 10, only("wh")...)
		gone := e.claim("n1", 10, 10, only("gone")...)
		if len(jobs) != 4 || len(gone) != 1 {
			e.Fatalf("claimed %d and %d, want 4 and 1", len(jobs), len(gone))
		}
		byEvent := map[string]*queue.Job{}
		for _, j := range jobs {
			byEvent[j.Delivery.EventID] = j
		}
		delivered, failed, retrying, sent := byEvent[old[0].EventID], byEvent[old[1].EventID], byEvent[old[2].EventID], byEvent[old[3].EventID]
		result := func(j *queue.Job, status string, code int) herald.AttemptResult {
			return herald.AttemptResult{DeliveryID: j.Delivery.ID, Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: code},
				Status: status, NextAttemptAt: Epoch.Add(100 * time.Hour)}
		}
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{result(delivered, herald.StatusDelivered, 200),
			result(failed, herald.StatusFailed, 500), result(retrying, herald.StatusRetrying, 503), result(gone[0], herald.StatusRetrying, 503)}))
		_, err := e.S.DeactivateWebhook(e.Ctx, "acme", "live", "gone", "receiver retired") // its RETRYING one is CANCELLED
		e.must(err)

		e.Clock.Advance(48 * time.Hour)
		recent := e.create(event("acme", "live", "PATIENT_CREATED")) // delivered recently: kept
		// This claim also takes back the SENT one, whose lease ran out long
		// ago; it stays SENT, still owed.
		var newest *queue.Job
		for _, j := range e.claim("n1", 10, 10, only("wh")...) {
			if j.Delivery.EventID == recent[0].EventID {
				newest = j
			}
		}
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: newest.Delivery.ID,
			Attempt: herald.Attempt{StartedAt: e.Clock.Now(), StatusCode: 200}, Status: herald.StatusDelivered}}))

		cut := e.Clock.Now().Add(-24 * time.Hour)
		first, err := e.S.PurgeFinished(e.Ctx, cut, 1)
		e.must(err)
		if first.Deliveries != 1 || first.Events != 1 {
			e.Fatalf("PurgeFinished(limit 1) = %+v, want one delivery and one event", first)
		}
		rest, err := e.S.PurgeFinished(e.Ctx, cut, 100)
		e.must(err)
		rest.Add(first)
		// DELIVERED, FAILED and CANCELLED with an attempt each; their three
		// events and the orphan.
		if want := (herald.PurgeCounts{Events: 4, Deliveries: 3, Attempts: 3}); rest != want {
			e.Errorf("PurgeFinished purged %+v in all, want %+v", rest, want)
		}
		if again, err := e.S.PurgeFinished(e.Ctx, cut, 100); err != nil || again != (herald.PurgeCounts{}) {
			e.Errorf("a second purge = %+v, %v; want nothing left to purge", again, err)
		}

		left := statuses(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"}))
		if want := map[string]int{herald.StatusRetrying: 1, herald.StatusSent: 1, herald.StatusPending: 1, herald.StatusDelivered: 1}; jsonString(left) != jsonString(want) {
			e.Errorf("left after purge: %v, want %v", left, want)
		}
		for _, j := range []*queue.Job{delivered, failed, gone[0]} {
			_, err := e.S.GetDelivery(e.Ctx, "acme", "live", j.Delivery.ID)
			e.wantCode(err, herald.ENOTFOUND)
			_, err = e.S.GetEvent(e.Ctx, "acme", "live", j.Delivery.EventID)
			e.wantCode(err, herald.ENOTFOUND)
		}
		_, err = e.S.GetEvent(e.Ctx, "acme", "live", orphan[0].EventID)
		e.wantCode(err, herald.ENOTFOUND)
		// Still owed: kept, with their events and attempts, however old.
		if d := e.delivery("acme", "live", retrying.Delivery.ID); d.Status != herald.StatusRetrying || len(d.Attempts) != 1 {
			e.Errorf("the RETRYING delivery after the purge: %s", jsonString(d))
		}
		for _, id := range []string{retrying.Delivery.EventID, sent.Delivery.EventID, old[5].EventID, newest.Delivery.EventID} {
			_, err = e.S.GetEvent(e.Ctx, "acme", "live", id)
			e.must(err)
		}
		// The attempt counts behind the stats go with the same retention:
		// the old attempts are gone from them, the recent one stays.
		stats, err := e.S.WebhookStats(e.Ctx, "acme", "live", Epoch.Add(-time.Hour))
		e.must(err)
		for _, s := range stats {
			if want := map[string]int{"wh": 1}[s.Webhook]; s.Attempts != want {
				e.Errorf("stats of %s after purge = %d attempts, want %d", s.Webhook, s.Attempts, want)
			}
		}
	})

	register("PurgePatient", func(e *env) {
		hooks := e.setup("acme", "live",
			hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "cdt", triggers: []herald.Trigger{entity("CDT")}})
		e.setup("acme", "sandbox")
		about := func(patient, sub string) *herald.Event {
			ev := event("acme", "live", sub)
			ev.PatientID = patient
			return ev
		}
		jane := e.create(about("jane", "PATIENT_CREATED"), about("jane", "PATIENT_UPDATED"), about("jane", "CDT_CREATED"),
			about("jane", "MESSAGE_CREATED")) // the last matches no webhook
		john := e.create(about("john", "PATIENT_CREATED"), about("john", "CDT_CREATED"))
		elsewhere := event("acme", "sandbox", "PATIENT_CREATED")
		elsewhere.PatientID = "jane" // same patient id, another instance: not this purge's
		e.create(elsewhere)

		// Jane's deliveries in every state: DELIVERED with an attempt, SENT
		// (in flight), PENDING; John's alike.
		jobs := e.claim("n1", 2, 2, hooks["cdt"].ID)
		if len(jobs) != 2 {
			e.Fatalf("claimed %d, want 2", len(jobs))
		}
		var delivered, inFlight *queue.Job
		for _, j := range jobs {
			switch j.Delivery.EventID {
			case jane[0].EventID:
				delivered = j
			case jane[1].EventID:
				inFlight = j
			}
		}
		if delivered == nil || inFlight == nil {
			e.Fatalf("claimed %v, want Jane's two PATIENT deliveries", ids(jobs))
		}
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{{DeliveryID: delivered.Delivery.ID,
			Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: 200}, Status: herald.StatusDelivered}}))

		got, err := e.S.PurgePatient(e.Ctx, "acme", "live", "jane")
		e.must(err)
		if want := (herald.PurgeCounts{Events: 4, Deliveries: 3, Attempts: 1}); got != want {
			e.Errorf("PurgePatient = %+v, want %+v", got, want)
		}
		for _, r := range jane {
			_, err := e.S.GetEvent(e.Ctx, "acme", "live", r.EventID)
			e.wantCode(err, herald.ENOTFOUND)
		}
		for _, r := range john {
			_, err := e.S.GetEvent(e.Ctx, "acme", "live", r.EventID)
			e.must(err)
		}
		if ds := e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"}); len(ds) != 2 {
			e.Errorf("%d deliveries left, want John's 2", len(ds))
		}
		_, err = e.S.GetEvent(e.Ctx, "acme", "sandbox", elsewhere.ID)
		e.must(err)

		// The result of the attempt that was in flight arrives after the
		// purge: it is dropped, fails nothing written with it, and brings
		// nothing back.
		johns := e.claim("n1", 10, 10, hooks["cdt"].ID)
		if len(johns) != 1 {
			e.Fatalf("claimed %d of John's, want 1", len(johns))
		}
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{
			{DeliveryID: inFlight.Delivery.ID, Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: 500}, Status: herald.StatusRetrying, NextAttemptAt: Epoch},
			{DeliveryID: johns[0].Delivery.ID, Attempt: herald.Attempt{StartedAt: Epoch, StatusCode: 200}, Status: herald.StatusDelivered},
		}))
		_, err = e.S.GetDelivery(e.Ctx, "acme", "live", inFlight.Delivery.ID)
		e.wantCode(err, herald.ENOTFOUND)
		if d := e.delivery("acme", "live", johns[0].Delivery.ID); d.Status != herald.StatusDelivered || len(d.Attempts) != 1 {
			e.Errorf("John's delivery recorded with the late result: %s", jsonString(d))
		}
		e.Clock.Advance(time.Hour) // past every lease: nothing of Jane's comes back
		for _, j := range e.claim("n2", 100, 100) {
			if j.Event.PatientID == "jane" {
				e.Errorf("claimed %s of the purged patient", j.Delivery.ID)
			}
		}

		again, err := e.S.PurgePatient(e.Ctx, "acme", "live", "jane")
		e.must(err)
		if again != (herald.PurgeCounts{}) {
			e.Errorf("purging again = %+v, want nothing", again)
		}
		_, err = e.S.PurgePatient(e.Ctx, "acme", "prod", "jane")
		e.wantCode(err, herald.ENOTFOUND, `instance "prod" of tenant "acme" not found.`)
		_, err = e.S.PurgePatient(e.Ctx, "globex", "live", "jane")
		e.wantCode(err, herald.ENOTFOUND, `tenant "globex" not found.`)
	})

	register("PurgePatientInBatches", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		const n = 1203 // more than two transactions' worth
		events := make([]*herald.Event, n)
		for i := range events {
			events[i] = event("acme", "live", "PATIENT_UPDATED")
		}
		e.create(events...)
		e.create(event("acme", "live", "PATIENT_UPDATED"))
		got, err := e.S.PurgePatient(e.Ctx, "acme", "live", "pat-1")
		e.must(err)
		if want := (herald.PurgeCounts{Events: n + 1, Deliveries: n + 1}); got != want {
			e.Errorf("PurgePatient = %+v, want %+v", got, want)
		}
		if ds := e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"}); len(ds) != 0 {
			e.Errorf("%d deliveries left", len(ds))
		}
	})
}
