package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
)

// TestSecretValuesAreMasked: no GET shows a secret header's or query
// parameter's value, to any role; a PATCH that sends back what GET showed
// keeps the stored value; an admin can reveal one, and that is audited.
func TestSecretValuesAreMasked(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	hook := inst + "/webhooks/wh-patient-sync"
	e.must(200, req{method: "PATCH", path: hook, token: e.admin, body: map[string]any{
		"headers": []map[string]any{
			{"name": "Authorization", "value": "Bearer receiver-key-123"},
			{"name": "X-Tenant", "value": "acme-plain"},
			{"name": "X-Custom", "value": "custom-credential-789", "secret": true},
		},
		"queryParameters": []map[string]any{{"name": "key", "value": "qp-secret-456"}, {"name": "src", "value": "herald"}},
	}})
	viewer := e.mustClient("acme", "acme-viewer", herald.RoleViewer)
	designer := e.mustClient("acme", "acme-designer", herald.RoleDesigner)
	for _, who := range []struct{ name, token string }{{"admin", e.admin}, {"viewer", viewer}, {"designer", designer}} {
		for _, path := range []string{hook, inst + "/webhooks"} {
			body := e.must(200, req{method: "GET", path: path, token: who.token}).String()
			for _, secret := range []string{"receiver-key-123", "qp-secret-456", "custom-credential-789"} {
				if strings.Contains(body, secret) {
					t.Errorf("%s's GET %s shows %q: %s", who.name, path, secret, body)
				}
			}
			if !strings.Contains(body, `"value":"••••-123"`) || !strings.Contains(body, `"value":"acme-plain"`) || !strings.Contains(body, `"value":"herald"`) {
				t.Errorf("%s's GET %s: want secrets masked to their last four and plain values shown: %s", who.name, path, body)
			}
		}
	}

	// GET, change the timeout, PATCH the headers back as shown: the
	// secrets are kept, not replaced by their masks.
	var shown herald.Webhook
	e.must(200, req{method: "GET", path: hook, token: e.admin}).json(t, &shown)
	e.must(200, req{method: "PATCH", path: hook, token: e.admin, body: map[string]any{
		"headers": shown.Headers, "queryParameters": shown.QueryParameters, "timeoutSeconds": 20}})
	stored, err := e.store.GetWebhook(context.Background(), "acme", "sandbox", "wh-patient-sync")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Headers[0].Value != "Bearer receiver-key-123" || stored.Headers[2].Value != "custom-credential-789" ||
		stored.QueryParameters[0].Value != "qp-secret-456" || stored.TimeoutSeconds != 20 {
		t.Fatalf("after echoing the masked values: %+v %+v", stored.Headers, stored.QueryParameters)
	}
	// Leaving the flag out keeps the one the API set.
	if stored.Headers[2].Secret != herald.FlagTrue {
		t.Fatalf("X-Custom lost its secret flag: %+v", stored.Headers[2])
	}

	// A mask that matches no stored value is refused, naming the field.
	ae := e.must(400, req{method: "PATCH", path: hook, token: e.admin, body: map[string]any{
		"headers": []map[string]any{{"name": "X-Other", "value": "••••-123"}}}}).apiError(t)
	if ae.Field != "headers[0].value" || !strings.Contains(ae.Message, "masked") {
		t.Fatalf("masked value for a new header: %+v", ae)
	}
	e.must(400, req{method: "PATCH", path: hook, token: e.admin, body: map[string]any{
		"payload": map[string]any{"customFields": []map[string]any{{"name": "k", "value": "v", "secret": true}}}}})

	// Reveal: admins only, audited.
	var v struct{ Name, Value string }
	e.must(200, req{method: "GET", path: hook + "/headers/authorization", token: e.admin}).json(t, &v)
	if v.Name != "Authorization" || v.Value != "Bearer receiver-key-123" {
		t.Fatalf("reveal = %+v", v)
	}
	e.must(200, req{method: "GET", path: hook + "/query-parameters/key", token: e.admin}).json(t, &v)
	if v.Value != "qp-secret-456" {
		t.Fatalf("reveal query parameter = %+v", v)
	}
	e.must(403, req{method: "GET", path: hook + "/headers/Authorization", token: viewer})
	e.must(403, req{method: "GET", path: hook + "/headers/Authorization", token: designer})
	e.must(404, req{method: "GET", path: hook + "/headers/X-Nothing", token: e.admin})
	var page auditPage
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit?action=webhook.header.reveal", token: e.admin}).json(t, &page)
	if len(page.Entries) != 1 || page.Entries[0].Target != "webhook wh-patient-sync header Authorization" {
		t.Fatalf("reveal audit entries: %+v", page.Entries)
	}
}

func TestSecretByDefault(t *testing.T) {
	for name, want := range map[string]bool{"Authorization": true, "Cookie": true, "X-Api-Key": true, "x-auth-token": true,
		"api_key": true, "password": true, "X-Client-Secret": true, "X-Tenant": false, "Content-Language": false, "src": false} {
		if got := herald.SecretByDefault(name); got != want {
			t.Errorf("SecretByDefault(%q) = %v, want %v", name, got, want)
		}
	}
	for v, want := range map[string]string{"": "", "short": "••••", "Bearer receiver-key-123": "••••-123"} {
		if got := herald.MaskValue(v); got != want {
			t.Errorf("MaskValue(%q) = %q, want %q", v, got, want)
		}
	}
}
