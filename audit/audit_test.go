package audit_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/audit"
)

func TestEntry(t *testing.T) {
	for _, tc := range []struct{ pattern, path, target string }{
		{"PATCH /v1/tenants/{tenant}/instances/{instance}/webhooks/{name}", "/v1/tenants/acme/instances/live/webhooks/wh", "webhook wh"},
		{"DELETE /v1/tenants/{tenant}/designer/webhooks/{name}", "/v1/tenants/acme/designer/webhooks/wh", "designer webhook wh"},
		{"POST /v1/tenants/{tenant}/api-clients/{name}/rotate", "/v1/tenants/acme/api-clients/ehr/rotate", "api-client ehr"},
		{"GET /v1/tenants/{tenant}/instances/{instance}/events/{id}", "/v1/tenants/acme/instances/live/events/evt_1", "evt_1"},
		{"POST /v1/tenants/{tenant}/instances", "/v1/tenants/acme/instances", ""},
	} {
		mux := http.NewServeMux()
		var got *herald.AuditEntry
		mux.HandleFunc(tc.pattern, func(w http.ResponseWriter, r *http.Request) {
			got = audit.Entry(r, "x", &herald.Principal{Client: "admin", Tenant: "acme", Role: herald.RoleAdmin}, audit.Note{})
		})
		method, _, _ := strings.Cut(tc.pattern, " ")
		req := httptest.NewRequest(method, tc.path, nil)
		req.RemoteAddr = "127.0.0.7:4242"
		mux.ServeHTTP(httptest.NewRecorder(), req)
		if got == nil || got.Target != tc.target || got.Source != "127.0.0.7" || got.Tenant != "acme" || got.Actor != "admin" ||
			got.ActorType != herald.ActorAPIClient || got.Role != herald.RoleAdmin {
			t.Errorf("%s: entry %+v, want target %q", tc.pattern, got, tc.target)
		}
	}
	var n audit.Note
	n.Add("webhook wh", map[string]any{"a": 1})
	n.Add("", map[string]any{"b": 2})
	if n.Target != "webhook wh" || len(n.Diff) != 2 {
		t.Fatalf("note %+v", n)
	}
}

func TestHeld(t *testing.T) {
	rec := httptest.NewRecorder()
	h := audit.Hold(rec)
	h.Header().Set("Location", "/next")
	h.WriteHeader(http.StatusSeeOther)
	h.Write([]byte("see other"))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("written before Release: %d %q", rec.Code, rec.Body)
	}
	if !h.Succeeded() {
		t.Fatal("303 is a success")
	}
	h.Release()
	if rec.Code != http.StatusSeeOther || rec.Body.String() != "see other" || rec.Header().Get("Location") != "/next" {
		t.Fatalf("released %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	bad := audit.Hold(httptest.NewRecorder())
	bad.WriteHeader(http.StatusBadRequest)
	if bad.Succeeded() {
		t.Fatal("400 is not a success")
	}
}
