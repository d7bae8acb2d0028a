package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
)

// TestUsersAPI: an admin invites, lists, reads, changes and deletes
// people of their tenant; every change is audited; other roles and other
// tenants are refused as for API clients.
func TestUsersAPI(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	acmeAdmin := e.mustClient("acme", "boss", herald.RoleAdmin)
	base := "/v1/tenants/acme/users"
	var created struct {
		Email, Role, SetupLink string
		SetupComplete          bool
	}
	e.must(201, req{method: "POST", path: base, token: acmeAdmin,
		body: map[string]string{"email": "Jane@Example.com", "displayName": "Jane Doe", "role": "designer"}}).json(t, &created)
	if created.Email != "jane@example.com" || created.Role != "designer" || created.SetupComplete || !strings.HasPrefix(created.SetupLink, "/ui/setup/") {
		t.Fatalf("created %+v", created)
	}
	wantError(t, e.do(req{method: "POST", path: base, token: acmeAdmin,
		body: map[string]string{"email": "JANE@example.com", "displayName": "J", "role": "viewer"}}), 409, "conflict", `a user with email "jane@example.com" already exists.`)
	ae := wantError(t, e.do(req{method: "POST", path: base, token: acmeAdmin,
		body: map[string]string{"email": "x@example.com", "displayName": "X", "role": "platform-admin"}}), 400, "invalid", "platform-admin is not bound to a tenant")
	if ae.Field != "role" {
		t.Fatalf("field %q, want role", ae.Field)
	}
	wantError(t, e.do(req{method: "POST", path: base, token: acmeAdmin,
		body: map[string]string{"email": "nope", "displayName": "X", "role": "viewer"}}), 400, "invalid", `email "nope" is not an email address`)

	var list struct{ Users []struct{ Email string } }
	e.must(200, req{method: "GET", path: base, token: acmeAdmin}).json(t, &list)
	if len(list.Users) != 1 || list.Users[0].Email != "jane@example.com" {
		t.Fatalf("list %+v", list)
	}
	var got struct{ Role string }
	e.must(200, req{method: "PATCH", path: base + "/jane@example.com", token: acmeAdmin, body: map[string]string{"role": "viewer"}}).json(t, &got)
	if got.Role != "viewer" {
		t.Fatalf("after PATCH: %+v", got)
	}
	e.must(200, req{method: "GET", path: base + "/JANE@example.com", token: acmeAdmin}).json(t, &got)
	var ended struct{ SessionsEnded int }
	e.must(200, req{method: "POST", path: base + "/jane@example.com/sign-out-everywhere", token: acmeAdmin}).json(t, &ended)

	// Roles and tenants, as for API clients.
	viewer := e.mustClient("acme", "watcher", herald.RoleViewer)
	wantError(t, e.do(req{method: "GET", path: base, token: viewer}), 403, "forbidden", "needs role admin or platform-admin")
	e.must(201, req{method: "POST", path: "/v1/tenants", token: e.admin, body: map[string]string{"name": "globex"}})
	wantError(t, e.do(req{method: "POST", path: "/v1/tenants/globex/users", token: acmeAdmin,
		body: map[string]string{"email": "y@example.com", "displayName": "Y", "role": "viewer"}}), 403, "forbidden", `cannot act on tenant "globex"`)

	e.must(204, req{method: "DELETE", path: base + "/jane@example.com", token: acmeAdmin})
	wantError(t, e.do(req{method: "GET", path: base + "/jane@example.com", token: acmeAdmin}), 404, "not_found", `user "jane@example.com" of tenant "acme" not found.`)

	entries, _, err := e.store.ListAudit(context.Background(), herald.AuditFilter{Tenant: "acme", Actor: "boss"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range entries {
		actions = append(actions, a.Action+" "+a.Target)
		if strings.Contains(string(a.Diff), "/ui/setup/") || strings.Contains(string(a.Diff), created.SetupLink[len("/ui/setup/"):]) {
			t.Fatalf("an audit entry holds the setup link: %s", a.Diff)
		}
	}
	want := "user.delete user jane@example.com|user.sign-out-everywhere user jane@example.com|user.update user jane@example.com|user.create user jane@example.com|auth.sign-in api-client boss"
	if strings.Join(actions, "|") != want {
		t.Fatalf("audit %q, want %q", strings.Join(actions, "|"), want)
	}
}
