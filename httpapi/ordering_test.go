package httpapi_test

import (
	"slices"
	"testing"

	"github.com/heraldhooks/herald"
)

// TestOrdering sets a webhook's ordering through the API and reads what it
// does to the deliveries: within one POST, array order is acceptance
// order, and the second event of a patient is HELD, naming the delivery it
// waits for.
func TestOrdering(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	wh := inst + "/webhooks/wh-patient-sync"
	var w struct{ Ordering string }
	e.must(200, req{method: "GET", path: wh, token: e.admin}).json(t, &w)
	if w.Ordering != "none" {
		t.Fatalf("default ordering %q, want none", w.Ordering)
	}
	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"ordering": "patient"}}).json(t, &w)
	if w.Ordering != "patient" {
		t.Fatalf("ordering after PATCH %q, want patient", w.Ordering)
	}
	// Another PATCH keeps it.
	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"timeoutSeconds": 20}}).json(t, &w)
	if w.Ordering != "patient" {
		t.Fatalf("ordering after a PATCH without it %q, want patient", w.Ordering)
	}

	var posted struct{ Events []struct{ EventID string } }
	e.must(202, req{method: "POST", path: inst + "/events", token: e.admin,
		body: []any{patientCreated("ann"), patientCreated("ann")}}).json(t, &posted)
	type delivery struct{ ID, EventID, Status, WaitingFor, WaitReason string }
	var held struct{ Deliveries []delivery }
	e.must(200, req{method: "GET", path: inst + "/deliveries?status=held", token: e.admin}).json(t, &held)
	if len(held.Deliveries) != 1 || held.Deliveries[0].EventID != posted.Events[1].EventID {
		t.Fatalf("HELD deliveries %+v, want the second event's", held.Deliveries)
	}
	var all struct{ Deliveries []delivery }
	e.must(200, req{method: "GET", path: inst + "/deliveries?eventId=" + posted.Events[0].EventID, token: e.admin}).json(t, &all)
	if len(all.Deliveries) != 1 {
		t.Fatalf("first event's deliveries %+v", all.Deliveries)
	}
	var d delivery
	e.must(200, req{method: "GET", path: inst + "/deliveries/" + held.Deliveries[0].ID, token: e.admin}).json(t, &d)
	if d.Status != "HELD" || d.WaitingFor != all.Deliveries[0].ID {
		t.Fatalf("held delivery %+v, want HELD waiting for %s", d, all.Deliveries[0].ID)
	}
	ae := e.do(req{method: "POST", path: inst + "/deliveries/" + d.ID + "/resend", token: e.admin})
	if ae.status != 409 {
		t.Fatalf("resend of a HELD delivery: %d %s, want 409", ae.status, ae)
	}
}

// TestOrderingInOpenAPI checks that openapi.json describes the ordering
// field with the values the domain accepts, every delivery status, and
// waitingFor.
func TestOrderingInOpenAPI(t *testing.T) {
	e := mustEnv(t)
	type prop struct{ Enum []string }
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum       []string
				Properties map[string]prop
			}
		}
	}
	e.must(200, req{method: "GET", path: "/openapi.json"}).json(t, &doc)
	s := doc.Components.Schemas
	for _, name := range []string{"Webhook", "WebhookUpdate"} {
		if got := s[name].Properties["ordering"].Enum; !slices.Equal(got, herald.Orderings) {
			t.Errorf("%s.ordering enum %v, want %v", name, got, herald.Orderings)
		}
	}
	if got := s["DeliveryStatus"].Enum; !slices.Equal(got, herald.Statuses) {
		t.Errorf("DeliveryStatus enum %v, want %v", got, herald.Statuses)
	}
	if _, ok := s["Delivery"].Properties["waitingFor"]; !ok {
		t.Error("Delivery has no waitingFor")
	}
}
