package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/heraldhooks/herald"
)

// TestOperationsInstanceIsNotChangedThroughPages: the tenant's reserved
// operations instance is managed through the API's /operations-webhook
// only. Its webhook's page stays readable, but no form of the instance
// pages (activate, deactivate, reveal or rotate the secret, replay, ...)
// changes it, as the API's instance routes do not either.
func TestOperationsInstanceIsNotChangedThroughPages(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	if _, err := e.store.SetOperationsWebhook(ctx, "acme", herald.OperationsWebhookRequest{URL: "https://ops.example.com/hook"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn("admin")
	token := b.csrf("/ui/t/acme/i/sandbox/webhooks/wh")
	page := "/ui/t/acme/i/" + herald.OperationsInstance + "/webhooks/" + herald.OperationsWebhookName
	for _, action := range []string{"/deactivate", "/secret", "/secret/rotate", "/replay"} {
		status, _, body := b.post(page+action, url.Values{"csrf": {token}})
		wantPage(t, action, status, body, http.StatusNotFound, "is reserved for the operations webhook")
	}
	w, err := e.store.GetWebhook(ctx, "acme", herald.OperationsInstance, herald.OperationsWebhookName)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Active {
		t.Fatal("the operations webhook was deactivated through a page")
	}
}
