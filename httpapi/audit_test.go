package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/httpapi"
)

// TestEveryChangeIsAudited: a route that changes something has an audit
// action, so a new route cannot be added without one.
func TestEveryChangeIsAudited(t *testing.T) {
	for _, p := range httpapi.RoutePatterns() {
		action, exempt := httpapi.AuditAction(p)
		if !strings.HasPrefix(p, "GET ") && action == "" && !exempt {
			t.Errorf("route %s changes something but has no audit action", p)
		}
	}
	for _, p := range []string{"GET " + "/v1/tenants/{tenant}/instances/{instance}/events/{id}", "GET /v1/tenants/{tenant}/instances/{instance}/deliveries/{id}",
		"GET /v1/tenants/{tenant}/instances/{instance}/webhooks/{name}/secret",
		"GET /v1/tenants/{tenant}/instances/{instance}/webhooks/{name}/headers/{item}",
		"GET /v1/tenants/{tenant}/instances/{instance}/webhooks/{name}/query-parameters/{item}"} {
		if action, _ := httpapi.AuditAction(p); action == "" {
			t.Errorf("route %s reads health data or a secret but is not audited", p)
		}
	}
}

type auditPage struct {
	Entries    []herald.AuditEntry
	NextCursor string
}

func TestAuditTrailRecordsWhoDidWhat(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	e.must(200, req{method: "PATCH", path: inst + "/webhooks/wh-patient-sync", token: e.admin, body: map[string]any{
		"url":             "https://receiver.example/new?key=k1",
		"headers":         []map[string]string{{"name": "Authorization", "value": "Bearer receiver-key-123"}},
		"queryParameters": []map[string]string{{"name": "key", "value": "qp-secret-456"}},
	}})
	e.must(200, req{method: "GET", path: inst + "/webhooks/wh-patient-sync/secret", token: e.admin})
	var ev struct{ EventID string }
	e.must(202, req{method: "POST", path: inst + "/events", token: e.admin, body: patientCreated("p-1")}).json(t, &ev)
	e.must(200, req{method: "GET", path: inst + "/events/" + ev.EventID, token: e.admin})

	viewer := e.mustClient("acme", "acme-viewer", herald.RoleViewer)
	e.must(403, req{method: "GET", path: "/v1/tenants/acme/audit", token: viewer})
	e.must(403, req{method: "GET", path: "/v1/audit", token: e.mustClient("acme", "acme-admin", herald.RoleAdmin)})

	resp := e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit", token: e.admin})
	if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if strings.Contains(resp.String(), "receiver-key-123") || strings.Contains(resp.String(), "qp-secret-456") ||
		strings.Contains(resp.String(), ":pw@") || strings.Contains(resp.String(), "k1") {
		t.Fatalf("the audit trail shows a secret: %s", resp)
	}
	var page auditPage
	resp.json(t, &page)
	var actions []string
	for i := len(page.Entries) - 1; i >= 0; i-- {
		actions = append(actions, page.Entries[i].Action)
	}
	want := []string{"instance.create", "designer.webhook.create", "designer.publish", "webhook.update", "webhook.activate",
		"webhook.update", "webhook.secret.reveal", "event.read", "api-client.create", "auth.sign-in", "api-client.create", "auth.sign-in"}
	if strings.Join(actions, " ") != strings.Join(want, " ") {
		t.Fatalf("actions oldest first:\n got %v\nwant %v", actions, want)
	}
	upd := page.Entries[6] // the second webhook.update, newest first
	if upd.Action != "webhook.update" || upd.Actor != "admin" || upd.ActorType != herald.ActorAPIClient || upd.Role != herald.RolePlatformAdmin ||
		upd.Source != "127.0.0.1" || upd.Tenant != "acme" || upd.Instance != "sandbox" || upd.Target != "webhook wh-patient-sync" {
		t.Fatalf("webhook.update entry: %+v", upd)
	}
	var diff map[string]struct{ Old, New any }
	if err := json.Unmarshal(upd.Diff, &diff); err != nil {
		t.Fatal(err)
	}
	if diff["url"].Old != "https://receiver.example/hooks" || diff["url"].New != "https://receiver.example/new?key=%5Bredacted%5D" {
		t.Errorf("url diff %+v", diff["url"])
	}
	if h, _ := json.Marshal(diff["headers"].New); string(h) != `[{"name":"Authorization","value":"[redacted]"}]` {
		t.Errorf("headers diff %s", h)
	}
	if page.Entries[4].Target != ev.EventID {
		t.Errorf("event.read target %q, want %s", page.Entries[4].Target, ev.EventID)
	}
	if in := page.Entries[0]; in.Actor != "acme-admin" || in.Role != herald.RoleAdmin || in.Source != "127.0.0.1" || in.Target != "api-client acme-admin" {
		t.Errorf("sign-in entry: %+v", in)
	}

	// The platform trail holds the tenant's and the platform's entries.
	var all auditPage
	e.must(200, req{method: "GET", path: "/v1/audit?action=tenant&limit=5", token: e.admin}).json(t, &all)
	if len(all.Entries) != 1 || all.Entries[0].Action != "tenant.create" || all.Entries[0].Target != "tenant acme" {
		t.Fatalf("platform trail filtered to tenant.*: %+v", all.Entries)
	}
	var paged auditPage
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit?limit=3", token: e.admin}).json(t, &paged)
	if len(paged.Entries) != 3 || paged.NextCursor == "" {
		t.Fatalf("page of 3: %d entries, next %q", len(paged.Entries), paged.NextCursor)
	}
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit?limit=3&cursor=" + paged.NextCursor, token: e.admin}).json(t, &paged)
	if paged.Entries[0].Seq != page.Entries[3].Seq {
		t.Fatalf("page 2 starts at %d, want %d", paged.Entries[0].Seq, page.Entries[3].Seq)
	}

	// A wrong secret, then the client locked out: both on record, the
	// secret tried nowhere.
	e.must(401, req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": "acme-viewer", "secret": "hsk_wrong-guess-777"}})
	var failed auditPage
	e.must(200, req{method: "GET", path: "/v1/audit?action=auth.sign-in.failed", token: e.admin}).json(t, &failed)
	if len(failed.Entries) != 1 || failed.Entries[0].Actor != "acme-viewer" || failed.Entries[0].Source != "127.0.0.1" ||
		strings.Contains(string(failed.Entries[0].Diff), "wrong-guess") {
		t.Fatalf("failed sign-in entries: %+v", failed.Entries)
	}
	if ae := e.must(400, req{method: "GET", path: "/v1/tenants/acme/audit?from=yesterday", token: e.admin}).apiError(t); ae.Field != "from" {
		t.Errorf("bad from: %+v", ae)
	}
	e.must(404, req{method: "GET", path: "/v1/tenants/nobody/audit", token: e.admin})

	// The chain verifies.
	v := herald.AuditVerifier{}
	if err := e.store.WalkAudit(t.Context(), v.Next); err != nil || v.Count < 10 {
		t.Fatalf("chain: %d entries, %v", v.Count, err)
	}
}
