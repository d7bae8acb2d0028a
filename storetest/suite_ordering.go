package storetest

import (
	"errors"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

// Ordering per key (herald.Chained, Hold, Unhold; the store keeps the
// chains).

// ordered sets up webhook wh (PATIENT events) with ordering o.
func (e *env) ordered(o string) *herald.Webhook {
	e.Helper()
	e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
	w, err := e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{Ordering: &o})
	e.must(err)
	return w
}

// about is a PATIENT_UPDATED event of patient (and source) id.
func about(id string) *herald.Event {
	ev := event("acme", "live", "PATIENT_UPDATED")
	ev.PatientID, ev.SourceID = id, id
	return ev
}

// byEvent returns the delivery of each event, by event ID.
func (e *env) byEvent() map[string]*herald.Delivery {
	e.Helper()
	out := map[string]*herald.Delivery{}
	for _, d := range e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"}) {
		out[d.EventID] = d
	}
	return out
}

// result records one attempt of job j ending in status (due again in a
// second when RETRYING).
func (e *env) result(j *queue.Job, status string) {
	e.Helper()
	now := e.Clock.Now()
	r := herald.AttemptResult{DeliveryID: j.Delivery.ID, Attempt: herald.Attempt{StartedAt: now, StatusCode: 500}, Status: status, WaitReason: "x"}
	switch status {
	case herald.StatusDelivered:
		r.Attempt.StatusCode = 204
	case herald.StatusRetrying:
		r.NextAttemptAt = now.Add(time.Second)
	}
	e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{r}))
}

// claimedEvents claims what is due and returns the jobs by event ID.
func (e *env) claimedEvents() map[string]*queue.Job {
	e.Helper()
	out := map[string]*queue.Job{}
	for _, j := range e.claim("n1", 100, 100) {
		out[j.Delivery.EventID] = j
	}
	return out
}

func init() {
	register("OrderingKeepsOrderPerKey", func(e *env) {
		e.ordered(herald.OrderingPatient)
		// One POST: array order is acceptance order.
		res := e.create(about("ann"), about("bob"), about("ann"), about("ann"))
		a1, b1, a2, a3 := res[0].EventID, res[1].EventID, res[2].EventID, res[3].EventID
		ds := e.byEvent()
		if ds[a1].Status != herald.StatusPending || ds[b1].Status != herald.StatusPending {
			e.Fatalf("heads: ann %s, bob %s; want both PENDING", ds[a1].Status, ds[b1].Status)
		}
		for _, c := range []struct{ ev, waits string }{{a2, a1}, {a3, a2}} {
			d := ds[c.ev]
			if d.Status != herald.StatusHeld || d.WaitingFor != ds[c.waits].ID || d.NextAttemptAt != nil ||
				d.WaitReason != herald.HeldReason(ds[c.waits].ID) {
				e.Fatalf("later delivery of ann: %s; want HELD waiting for %s", jsonString(d), ds[c.waits].ID)
			}
		}
		if got := e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Status: herald.StatusHeld}); len(got) != 2 {
			e.Errorf("status filter HELD: %d deliveries, want 2", len(got))
		}
		// A later request joins the chain at its tail.
		a4 := e.create(about("ann"))[0].EventID
		if d := e.byEvent()[a4]; d.Status != herald.StatusHeld || d.WaitingFor != ds[a3].ID {
			e.Fatalf("a later event of ann: %s; want HELD behind %s", jsonString(d), ds[a3].ID)
		}

		// The heads go; ann's retries hold back only ann.
		jobs := e.claimedEvents()
		if len(jobs) != 2 || jobs[a1] == nil || jobs[b1] == nil {
			e.Fatalf("claimed %v, want the two heads", jobs)
		}
		e.result(jobs[a1], herald.StatusRetrying)
		e.result(jobs[b1], herald.StatusDelivered)
		b2 := e.create(about("bob"))[0].EventID
		if d := e.byEvent()[b2]; d.Status != herald.StatusPending || d.WaitingFor != "" {
			e.Fatalf("bob's next, his last one delivered: %s; want PENDING", jsonString(d))
		}
		e.Clock.Advance(2 * time.Second)
		jobs = e.claimedEvents()
		if len(jobs) != 2 || jobs[a1] == nil || jobs[b2] == nil {
			e.Fatalf("claimed %v after ann's retry came due, want ann's head again and bob's next", jobs)
		}
		e.result(jobs[b2], herald.StatusDelivered)
		e.result(jobs[a1], herald.StatusRetrying)
		e.Clock.Advance(2 * time.Second)

		// The head gives up: the next goes, saying what it waited for.
		e.result(e.claimedEvents()[a1], herald.StatusFailed)
		d := e.byEvent()[a2]
		if d.Status != herald.StatusPending || d.WaitingFor != ds[a1].ID || d.NextAttemptAt == nil ||
			d.WaitReason != herald.UnheldReason(ds[a1].ID, herald.StatusFailed) {
			e.Fatalf("after the head FAILED: %s; want PENDING, due, waited for %s", jsonString(d), ds[a1].ID)
		}
		if d := e.byEvent()[a3]; d.Status != herald.StatusHeld {
			e.Fatalf("the third went with the second: %s", jsonString(d))
		}
		jobs = e.claimedEvents()
		if len(jobs) != 1 || jobs[a2] == nil {
			e.Fatalf("claimed %v, want ann's second only", jobs)
		}
		e.result(jobs[a2], herald.StatusDelivered)
		if jobs = e.claimedEvents(); len(jobs) != 1 || jobs[a3] == nil {
			e.Fatalf("claimed %v, want ann's third only", jobs)
		}
		// A HELD delivery is not resent out of turn.
		_, err := e.S.ResendDelivery(e.Ctx, "acme", "live", e.byEvent()[a4].ID)
		e.wantCode(err, herald.ECONFLICT, "waits for "+ds[a3].ID)
	})

	register("OrderingWithoutKeyOrNone", func(e *env) {
		e.ordered(herald.OrderingPatient)
		first := e.create(about("ann"))[0].EventID
		noKey := about("")
		second := e.create(noKey, about("ann"))
		ds := e.byEvent()
		if ds[second[0].EventID].Status != herald.StatusPending || ds[second[1].EventID].Status != herald.StatusHeld {
			e.Fatalf("an event without patientId: %s, then ann's: %s; want PENDING, HELD", ds[second[0].EventID].Status, ds[second[1].EventID].Status)
		}
		// Ordering set to none: the held go at once, and new ones are not held.
		none := herald.OrderingNone
		w, err := e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{Ordering: &none})
		e.must(err)
		if w.Ordering != herald.OrderingNone {
			e.Errorf("ordering = %q", w.Ordering)
		}
		third := e.create(about("ann"))[0].EventID
		ds = e.byEvent()
		for _, ev := range []string{first, second[1].EventID, third} {
			if d := ds[ev]; d.Status != herald.StatusPending {
				e.Errorf("with ordering none: %s; want PENDING", jsonString(d))
			}
		}
		if d := ds[second[1].EventID]; d.WaitReason != herald.UnheldByOrdering || d.WaitingFor != ds[first].ID {
			e.Errorf("released by ordering none: %s", jsonString(d))
		}
		bad := "fifo"
		_, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{Ordering: &bad})
		e.wantCode(err, herald.EINVALID, `ordering "fifo" is not known`)
		if he, ok := errors.AsType[*herald.Error](err); !ok || he.Field != "ordering" {
			e.Errorf("error %#v, want one naming the field ordering", err)
		}
	})

	register("OrderingDeactivationCancelsHeld", func(e *env) {
		e.ordered(herald.OrderingPatient)
		res := e.create(about("ann"), about("ann"))
		_, err := e.S.DeactivateWebhook(e.Ctx, "acme", "live", "wh", "")
		e.must(err)
		ds := e.byEvent()
		for _, r := range res {
			if d := ds[r.EventID]; d.Status != herald.StatusCancelled {
				e.Fatalf("after deactivation: %s; want CANCELLED", jsonString(d))
			}
		}
		_, err = e.S.ActivateWebhook(e.Ctx, "acme", "live", "wh")
		e.must(err)
		// The key's tail is CANCELLED: the next event of ann goes at once.
		next := e.create(about("ann"))[0].EventID
		if d := e.byEvent()[next]; d.Status != herald.StatusPending {
			e.Fatalf("after a CANCELLED tail: %s; want PENDING", jsonString(d))
		}
		// Recovered, the cancelled ones join the chain again, oldest
		// first, behind what is owed of the key.
		n, err := e.S.RecoverWebhook(e.Ctx, "acme", "live", "wh", Epoch.Add(-time.Hour))
		e.must(err)
		ds = e.byEvent()
		r1, r2 := ds[res[0].EventID], ds[res[1].EventID]
		if n != 2 || r1.Status != herald.StatusHeld || r1.WaitingFor != ds[next].ID || r2.Status != herald.StatusHeld || r2.WaitingFor != r1.ID {
			e.Fatalf("recovered %d: %s, %s; want both HELD, behind %s and each other", n, jsonString(r1), jsonString(r2), ds[next].ID)
		}
		e.result(e.claimedEvents()[next], herald.StatusDelivered)
		if jobs := e.claimedEvents(); len(jobs) != 1 || jobs[r1.EventID] == nil {
			e.Fatalf("claimed %v after the head was delivered, want the older recovered one", jobs)
		}
	})

	register("OrderingRecoverRestartsTheChain", func(e *env) {
		e.ordered(herald.OrderingPatient)
		res := e.create(about("ann"), about("ann"), about("ann"))
		_, err := e.S.DeactivateWebhook(e.Ctx, "acme", "live", "wh", "")
		e.must(err)
		_, err = e.S.ActivateWebhook(e.Ctx, "acme", "live", "wh")
		e.must(err)
		// The key's tail is recovered with the others: the oldest goes,
		// the others wait in turn (not for the tail, which is one of them).
		_, err = e.S.RecoverWebhook(e.Ctx, "acme", "live", "wh", Epoch.Add(-time.Hour))
		e.must(err)
		ds := e.byEvent()
		d1, d2, d3 := ds[res[0].EventID], ds[res[1].EventID], ds[res[2].EventID]
		if d1.Status != herald.StatusPending || d2.Status != herald.StatusHeld || d2.WaitingFor != d1.ID ||
			d3.Status != herald.StatusHeld || d3.WaitingFor != d2.ID {
			e.Fatalf("recovered: %s, %s, %s; want PENDING, then HELD each behind the one before", jsonString(d1), jsonString(d2), jsonString(d3))
		}
		later := e.create(about("ann"))[0].EventID
		if d := e.byEvent()[later]; d.Status != herald.StatusHeld || d.WaitingFor != d3.ID {
			e.Fatalf("a new event after the recovery: %s; want HELD behind %s", jsonString(d), d3.ID)
		}
	})

	register("OrderingErasureReleases", func(e *env) {
		e.ordered(herald.OrderingSource)
		// One source, three patients: s1 (jane) <- s2 (john) <- s3 (john) <- s4 (jane) <- s5 (ann).
		ev := func(patient string) *herald.Event {
			x := about(patient)
			x.SourceID = "src-9"
			return x
		}
		res := e.create(ev("jane"), ev("john"), ev("john"), ev("jane"), ev("ann"))
		ds := e.byEvent()
		s1, s4, s5 := ds[res[0].EventID], ds[res[3].EventID], ds[res[4].EventID]
		// Two HELD ones in a row erased: the one after them waits for the
		// one before them.
		_, err := e.S.PurgePatient(e.Ctx, "acme", "live", "john")
		e.must(err)
		if d := e.byEvent()[s4.EventID]; d.Status != herald.StatusHeld || d.WaitingFor != s1.ID || d.WaitReason != herald.HeldReason(s1.ID) {
			e.Fatalf("after the two before it were erased while HELD: %s; want HELD behind %s", jsonString(d), s1.ID)
		}
		// The head erased, with the one after it (HELD behind it): the
		// next goes.
		_, err = e.S.PurgePatient(e.Ctx, "acme", "live", "jane")
		e.must(err)
		if d := e.byEvent()[s5.EventID]; d.Status != herald.StatusPending || d.WaitingFor != s4.ID || d.WaitReason != herald.UnheldReason(s4.ID, "erased") {
			e.Fatalf("after the head of its key was erased: %s; want PENDING, waited for %s", jsonString(d), s4.ID)
		}
		s6 := e.create(ev("ann"))[0].EventID
		if d := e.byEvent()[s6]; d.Status != herald.StatusHeld || d.WaitingFor != s5.ID {
			e.Errorf("a new event of the source: %s; want HELD behind %s", jsonString(d), s5.ID)
		}
	})

	register("OrderingConcurrentIngestsMakeOneChain", func(e *env) {
		e.ordered(herald.OrderingPatient)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = e.S.CreateEvents(e.Ctx, []*herald.Event{about("ann")})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			e.must(err)
		}
		checkOneChain(e.T, e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live"}), n)
	})
}

// checkOneChain fails unless ds, n deliveries of one key, form one chain:
// one head not held, each other waiting for a different one, all reached
// from the head.
func checkOneChain(t interface {
	Helper()
	Fatalf(string, ...any)
}, ds []*herald.Delivery, n int) {
	t.Helper()
	if len(ds) != n {
		t.Fatalf("%d deliveries, want %d", len(ds), n)
	}
	next := map[string]string{}
	head := ""
	for _, d := range ds {
		if d.Status != herald.StatusHeld {
			if head != "" {
				t.Fatalf("two heads: %s and %s", head, d.ID)
			}
			head = d.ID
			continue
		}
		if _, dup := next[d.WaitingFor]; dup {
			t.Fatalf("two deliveries wait for %s", d.WaitingFor)
		}
		next[d.WaitingFor] = d.ID
	}
	seen := 1
	for at := head; next[at] != ""; at = next[at] {
		seen++
	}
	if head == "" || seen != n {
		t.Fatalf("head %q reaches %d of %d deliveries", head, seen, n)
	}
}
