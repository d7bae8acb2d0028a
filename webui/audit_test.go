package webui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/webui"
)

// TestEveryFormIsAudited: every form that changes something has an audit
// action, so a new one cannot be added without.
func TestEveryFormIsAudited(t *testing.T) {
	for _, p := range webui.RoutePatterns() {
		action, exempt := webui.AuditAction(p)
		if strings.HasPrefix(p, "POST ") && action == "" && !exempt {
			t.Errorf("form %s changes something but has no audit action", p)
		}
	}
	if action, _ := webui.AuditAction("GET /ui/t/{tenant}/i/{instance}/deliveries/{id}"); action == "" {
		t.Error("the delivery page shows health data but is not audited")
	}
}

// TestFormsAreAudited: a change made in the UI is on record under who
// made it, with the old and new URL, as one made through the API is.
func TestFormsAreAudited(t *testing.T) {
	e := mustEnv(t)
	b := e.browser()
	b.signIn("admin")
	path := "/ui/t/acme/i/sandbox/webhooks/wh"
	status, _, body := b.post(path, url.Values{"csrf": {b.csrf(path)}, "url": {"https://example.com/new-hook"}, "format": {"welkin"}, "timeout": {"30"},
		"header_name": {"Authorization"}, "header_value": {"Bearer receiver-key-123"}})
	if status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", status, body)
	}
	// A refused form is not on record as done.
	if status, _, _ := b.post(path, url.Values{"csrf": {b.csrf(path)}, "url": {"not a url"}, "format": {"welkin"}, "timeout": {"30"}}); status != http.StatusBadRequest {
		t.Fatalf("bad url: %d", status)
	}
	entries, _, err := e.store.ListAudit(context.Background(), herald.AuditFilter{Tenant: "acme", Action: "webhook.update"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d webhook.update entries, want the one that succeeded", len(entries))
	}
	got := entries[0]
	if got.Actor != "admin" || got.ActorType != herald.ActorAPIClient || got.Source != "127.0.0.1" || got.Instance != "sandbox" || got.Target != "webhook wh" {
		t.Fatalf("entry: %+v", got)
	}
	var diff map[string]struct{ Old, New any }
	if err := json.Unmarshal(got.Diff, &diff); err != nil {
		t.Fatal(err)
	}
	if diff["url"].Old != "https://example.com/hook" || diff["url"].New != "https://example.com/new-hook" || strings.Contains(string(got.Diff), "receiver-key-123") {
		t.Fatalf("diff: %s", got.Diff)
	}
	// Signing out is on record too, under who signed out.
	if status, _, _ := b.post("/ui/signout", url.Values{"csrf": {b.csrf("/ui/")}}); status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", status)
	}
	out, _, err := e.store.ListAudit(context.Background(), herald.AuditFilter{Action: "auth.sign-out"})
	if err != nil || len(out) != 1 || out[0].Actor != "admin" {
		t.Fatalf("sign-out entries: %+v %v", out, err)
	}
}

// TestAuditPageIsForAdmins: the audit page shows the trail to admins and
// refuses everyone else.
func TestAuditPageIsForAdmins(t *testing.T) {
	e := mustEnv(t)
	admin := e.browser()
	admin.signIn("admin")
	path := "/ui/t/acme/i/sandbox/webhooks/wh"
	if status, _, body := admin.post(path, url.Values{"csrf": {admin.csrf(path)}, "url": {"https://example.com/audited"}, "format": {"welkin"}, "timeout": {"30"}}); status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", status, body)
	}
	for _, page := range []string{"/ui/t/acme/audit", "/ui/audit"} {
		status, _, body := admin.get(page)
		if status != http.StatusOK || !strings.Contains(body, "webhook.update") || !strings.Contains(body, "https://example.com/audited") {
			t.Fatalf("%s for the platform admin: %d\n%s", page, status, body)
		}
	}
	viewer := e.browser()
	viewer.signIn("viewer")
	for _, page := range []string{"/ui/t/acme/audit", "/ui/audit"} {
		if status, _, body := viewer.get(page); status != http.StatusForbidden || strings.Contains(body, "webhook.update") {
			t.Fatalf("%s for a viewer: %d, want 403 without the trail\n%s", page, status, body)
		}
	}
}
