package webui_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
)

// TestPagesMaskSecretValues: the webhook page shows secret header and query
// parameter values masked, to an admin as to a viewer; saving the form as
// shown keeps the stored values.
func TestPagesMaskSecretValues(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	headers := []herald.NameValue{{Name: "Authorization", Value: "Bearer receiver-key-123"}, {Name: "X-Tenant", Value: "acme-plain"}}
	params := []herald.NameValue{{Name: "key", Value: "qp-secret-456"}}
	if _, err := e.store.UpdateWebhook(ctx, "acme", "sandbox", "wh", herald.WebhookUpdate{Headers: &headers, QueryParameters: &params}); err != nil {
		t.Fatal(err)
	}
	path := "/ui/t/acme/i/sandbox/webhooks/wh"
	for _, who := range []string{"viewer", "admin"} {
		b := e.browser()
		b.signIn(who)
		status, _, page := b.get(path)
		page = html.UnescapeString(page)
		if status != 200 || strings.Contains(page, "receiver-key-123") || strings.Contains(page, "qp-secret-456") {
			t.Fatalf("%s's webhook page shows a secret value (%d):\n%s", who, status, page)
		}
		if who == "admin" && (!strings.Contains(page, "••••-123") || !strings.Contains(page, "acme-plain")) {
			t.Fatalf("admin's form should hold the masked secret and the plain value:\n%s", page)
		}
	}

	// The admin saves the form as shown, with a new timeout.
	b := e.browser()
	b.signIn("admin")
	status, _, body := b.post(path, url.Values{"csrf": {b.csrf(path)}, "url": {"https://example.com/hook"}, "format": {"welkin"}, "timeout": {"25"},
		"header_name": {"Authorization", "X-Tenant"}, "header_value": {"••••-123", "acme-plain"},
		"query_name": {"key"}, "query_value": {"••••-456"}})
	if status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", status, body)
	}
	wh, err := e.store.GetWebhook(ctx, "acme", "sandbox", "wh")
	if err != nil {
		t.Fatal(err)
	}
	if wh.TimeoutSeconds != 25 || wh.Headers[0].Value != "Bearer receiver-key-123" || wh.QueryParameters[0].Value != "qp-secret-456" {
		t.Fatalf("after saving the masked form: %+v %+v", wh.Headers, wh.QueryParameters)
	}
}
