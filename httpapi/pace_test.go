package httpapi_test

import (
	"encoding/json"
	"testing"
)

// TestRateLimitAndPace: PATCH sets rateLimitPerSecond, a PATCH without it
// keeps it, null clears it; the webhook's answer carries this node's pace
// (a webhook not sent to yet: its maximum, nothing in flight); the audit
// trail has the change.
func TestRateLimitAndPace(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	wh := inst + "/webhooks/wh-patient-sync"
	type answer struct {
		RateLimitPerSecond *int `json:"rateLimitPerSecond"`
		Pace               *struct {
			InFlightLimit, Max, InFlight int
		} `json:"pace"`
	}
	get := func() answer {
		var a answer
		e.must(200, req{method: "GET", path: wh, token: e.admin}).json(t, &a)
		return a
	}
	if a := get(); a.RateLimitPerSecond != nil {
		t.Errorf("a new webhook has rateLimitPerSecond %d, want null", *a.RateLimitPerSecond)
	}
	var patched answer
	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"rateLimitPerSecond": 20}}).json(t, &patched)
	if patched.RateLimitPerSecond == nil || *patched.RateLimitPerSecond != 20 {
		t.Errorf("PATCH answered rateLimitPerSecond %v, want 20", patched.RateLimitPerSecond)
	}
	var page auditPage
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit", token: e.admin}).json(t, &page)
	var diff map[string]struct{ Old, New any }
	if err := json.Unmarshal(page.Entries[0].Diff, &diff); err != nil || page.Entries[0].Action != "webhook.update" {
		t.Fatalf("the newest audit entry is %s (%v), want the webhook.update", page.Entries[0].Action, err)
	}
	if d, ok := diff["rateLimitPerSecond"]; !ok || d.Old != nil || d.New != float64(20) {
		t.Errorf("the audit diff of rateLimitPerSecond is %+v (%v), want from null to 20", d, ok)
	}
	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"timeoutSeconds": 10}})
	a := get()
	if a.RateLimitPerSecond == nil || *a.RateLimitPerSecond != 20 {
		t.Errorf("after a PATCH without it, rateLimitPerSecond = %v, want 20", a.RateLimitPerSecond)
	}
	if a.Pace == nil || a.Pace.InFlightLimit != 8 || a.Pace.Max != 8 || a.Pace.InFlight != 0 {
		t.Errorf("pace = %+v, want inFlightLimit 8 of max 8, none in flight", a.Pace)
	}
	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"rateLimitPerSecond": nil}})
	if a := get(); a.RateLimitPerSecond != nil {
		t.Errorf("after null, rateLimitPerSecond = %d, want null", *a.RateLimitPerSecond)
	}
}
