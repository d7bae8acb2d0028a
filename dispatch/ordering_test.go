package dispatch_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
)

// setOrdering sets webhook name's ordering.
func setOrdering(tb testing.TB, db *sqlstore.DB, name, o string) {
	tb.Helper()
	if _, err := db.UpdateWebhook(context.Background(), tenant, instance, name, herald.WebhookUpdate{Ordering: &o}); err != nil {
		tb.Fatal(err)
	}
}

// patientEvents ingests one event per patient id through e, in one call
// (array order is acceptance order), and returns their ids.
func patientEvents(tb testing.TB, e *dispatch.Engine, patients ...string) []string {
	tb.Helper()
	events := make([]*herald.Event, len(patients))
	for i, p := range patients {
		events[i] = &herald.Event{TenantName: tenant, InstanceName: instance, Entity: "PATIENT", Subtype: "PATIENT_UPDATED",
			SourceID: p, PatientID: p}
	}
	res, err := e.CreateEvents(context.Background(), events)
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, len(res))
	for i, r := range res {
		if r.Err != nil {
			tb.Fatal(r.Err)
		}
		ids[i] = r.EventID
	}
	return ids
}

// TestOrderingPerPatient runs the engine on SQLite with a webhook ordered
// by patient, whose receiver fails patient A's first event three times:
// A's later events arrive only after it succeeds, in order, while patient
// B's events, interleaved with A's, are not held back by A's retries.
func TestOrderingPerPatient(t *testing.T) {
	var mu sync.Mutex
	var firstA string
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, r *heraldtest.Request) {
		mu.Lock()
		fail := r.ID == firstA && r.Seen <= 3
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	db, _ := mustStore(t, hook{name: "wh", url: rc.URL})
	setOrdering(t, db, "wh", herald.OrderingPatient)
	cfg := testConfig(t, db)
	cfg.Schedule = []time.Duration{0, 150 * time.Millisecond}
	e, _ := mustRun(t, cfg)

	mu.Lock() // the receiver waits until it knows A's first event
	ids := patientEvents(t, e, "pat-a", "pat-b", "pat-a", "pat-b", "pat-a", "pat-b")
	firstA = ids[0]
	mu.Unlock()
	waitStatus(t, db, "wh", len(ids), 20*time.Second, herald.StatusDelivered)

	// The position of each event's successful request among all requests.
	okAt := map[string]int{}
	var order []string // the events, as their first requests came
	for _, r := range rc.Requests() {
		if r.Seen == 1 {
			order = append(order, r.ID)
		}
		if r.Status == http.StatusOK {
			okAt[r.ID] = r.N
		}
	}
	a1, b1, a2, b2, a3, b3 := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
	if n := len(rc.Requests()); n != len(ids)+3 {
		t.Errorf("%d requests, want %d: each event once, and A's first 3 times more", n, len(ids)+3)
	}
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	if !(pos[a1] < pos[a2] && pos[a2] < pos[a3]) || !(pos[b1] < pos[b2] && pos[b2] < pos[b3]) {
		t.Errorf("first requests in order %v; want each patient's events in acceptance order", order)
	}
	if firstRequestN(rc, a2) < okAt[a1] {
		t.Errorf("A's second event was sent (request %d) before A's first was delivered (request %d)", firstRequestN(rc, a2), okAt[a1])
	}
	if okAt[b3] > okAt[a1] {
		t.Errorf("B's last event was delivered at request %d, after A's first (request %d): B waited for A's retries", okAt[b3], okAt[a1])
	}
	// The log says what each waited for.
	ds := map[string]*herald.Delivery{}
	for _, d := range deliveries(t, db, "wh") {
		ds[d.EventID] = d
	}
	if ds[a2].WaitingFor != ds[a1].ID || ds[a3].WaitingFor != ds[a2].ID {
		t.Errorf("A's second waited for %q, third for %q; want %s, %s", ds[a2].WaitingFor, ds[a3].WaitingFor, ds[a1].ID, ds[a2].ID)
	}
}

// firstRequestN is the number of the first request the receiver took for
// event id, or 0.
func firstRequestN(rc *heraldtest.Receiver, id string) int {
	for _, r := range rc.Requests() {
		if r.ID == id {
			return r.N
		}
	}
	return 0
}

// TestOrderingTwoNodes runs two engines on one PostgreSQL database, with
// events of three patients ingested through both in turn and each event's
// first attempt refused: every patient's events still reach the receiver
// one at a time, in the order they were accepted.
func TestOrderingTwoNodes(t *testing.T) {
	dsn := storekit.PostgresDSN(t)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, r *heraldtest.Request) {
		time.Sleep(5 * time.Millisecond)
		if r.Seen == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	db1, db2 := mustOpen(t, dsn), mustOpen(t, dsn)
	mustSetup(t, db1, hook{name: "wh", url: rc.URL})
	setOrdering(t, db1, "wh", herald.OrderingPatient)
	var engines []*dispatch.Engine
	for _, db := range []*sqlstore.DB{db1, db2} {
		cfg := testConfig(t, db)
		cfg.Schedule = []time.Duration{0, 50 * time.Millisecond}
		e, _ := mustRun(t, cfg)
		engines = append(engines, e)
	}

	patients := []string{"pat-a", "pat-b", "pat-c"}
	accepted := map[string][]string{} // per patient, its events in acceptance order
	const rounds = 5
	for i := range rounds * 2 {
		ids := patientEvents(t, engines[i%2], patients...)
		for j, p := range patients {
			accepted[p] = append(accepted[p], ids[j])
		}
	}
	waitStatus(t, db1, "wh", rounds*2*len(patients), 30*time.Second, herald.StatusDelivered)

	patientOf := map[string]string{}
	for p, ids := range accepted {
		for _, id := range ids {
			patientOf[id] = p
		}
	}
	// Per patient, the requests as the receiver took them: the same event
	// until it is delivered, then the next accepted.
	next := map[string]int{}
	for _, r := range rc.Requests() {
		p := patientOf[r.ID]
		want := accepted[p][next[p]]
		if r.ID != want {
			t.Fatalf("request %d for %s is event %s; want %s, the next accepted of the patient", r.N, p, r.ID, want)
		}
		if r.Status == http.StatusOK {
			next[p]++
		}
	}
}
