package httpapi_test

import (
	"strings"
	"testing"
)

// TestOperationsWebhookAPI walks PUT, GET and DELETE of the operations
// webhook: the secret once, validation naming the field, the audit trail
// with the URL's credentials redacted, and the reserved instance closed to
// changes through the instance routes.
func TestOperationsWebhookAPI(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	const path = "/v1/tenants/acme/operations-webhook"
	e.must(404, req{method: "GET", path: path, token: e.admin})
	for _, bad := range []struct{ body, field string }{
		{`{}`, "url"},
		{`{"url":"ftp://ops.example.com/"}`, "url"},
		{`{"url":"https://ops.example.com/","events":["patient.created"]}`, "events"},
	} {
		resp := e.must(400, req{method: "PUT", path: path, token: e.admin, body: bad.body})
		if !strings.Contains(string(resp.body), `"field":"`+bad.field+`"`) {
			t.Errorf("PUT %s: %s, want field %s", bad.body, resp.body, bad.field)
		}
	}
	var set struct {
		URL    string
		Events []string
		Secret string
	}
	e.must(200, req{method: "PUT", path: path, token: e.admin, body: map[string]any{"url": "https://ops.example.com/h?key=k-123",
		"events": []string{"webhook.deactivated"}}}).json(t, &set)
	if !strings.HasPrefix(set.Secret, "whsec_") || len(set.Events) != 1 {
		t.Fatalf("first PUT: %+v", set)
	}
	var again struct{ Secret string }
	e.must(200, req{method: "PUT", path: path, token: e.admin, body: map[string]any{"url": "https://ops.example.com/h"}}).json(t, &again)
	if again.Secret != "" {
		t.Fatal("a PUT without rotateSecret returned a secret")
	}
	e.must(200, req{method: "PUT", path: path, token: e.admin, body: map[string]any{"url": "https://ops.example.com/h", "rotateSecret": true}}).json(t, &again)
	if !strings.HasPrefix(again.Secret, "whsec_") || again.Secret == set.Secret {
		t.Fatal("rotateSecret did not make a new secret")
	}
	got := e.must(200, req{method: "GET", path: path, token: e.admin})
	if strings.Contains(string(got.body), "whsec_") {
		t.Fatalf("GET shows the secret: %s", got.body)
	}
	trail := e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit", token: e.admin})
	if !strings.Contains(string(trail.body), "tenant.operations_webhook.set") || strings.Contains(string(trail.body), "k-123") ||
		strings.Contains(string(trail.body), "whsec_") {
		t.Fatalf("audit trail: %s", trail.body)
	}
	// The reserved instance: no changes through the instance routes, and
	// not listed.
	e.must(404, req{method: "POST", path: "/v1/tenants/acme/instances/_operations/webhooks/_operations/deactivate", token: e.admin})
	e.must(404, req{method: "PATCH", path: "/v1/tenants/acme/instances/_operations/webhooks/_operations", token: e.admin,
		body: map[string]any{"url": "https://elsewhere.example/"}})
	if l := e.must(200, req{method: "GET", path: "/v1/tenants/acme/instances", token: e.admin}); strings.Contains(string(l.body), "_operations") {
		t.Fatalf("instance list shows the reserved instance: %s", l.body)
	}
	e.must(204, req{method: "DELETE", path: path, token: e.admin})
	e.must(404, req{method: "GET", path: path, token: e.admin})
	e.must(404, req{method: "DELETE", path: path, token: e.admin})
}
