package access_test

import (
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
)

// TestRoleMatrix is the table of who may make which kind of call, as the
// API and the UI enforce it: each role in its own tenant, in another
// tenant, and without credentials.
func TestRoleMatrix(t *testing.T) {
	perms := []struct {
		name string
		perm access.Perm
	}{
		{"Public", access.Public}, {"Authenticated", access.Authenticated}, {"ReadConfig", access.ReadConfig},
		{"ReadEvents", access.ReadEvents}, {"Produce", access.Produce}, {"Design", access.Design},
		{"Admin", access.Admin}, {"Platform", access.Platform},
	}
	// allowed lists, per role, the perms it has in its own tenant.
	allowed := map[herald.Role]string{
		herald.RolePlatformAdmin: "Public Authenticated ReadConfig ReadEvents Produce Design Admin Platform",
		herald.RoleAdmin:         "Public Authenticated ReadConfig ReadEvents Produce Design Admin",
		herald.RoleDesigner:      "Public Authenticated ReadConfig ReadEvents Design",
		herald.RoleProducer:      "Public Authenticated ReadEvents Produce",
		herald.RoleViewer:        "Public Authenticated ReadConfig ReadEvents",
	}
	for _, role := range herald.Roles {
		p := &herald.Principal{Client: "c", Tenant: "acme", Role: role}
		if role == herald.RolePlatformAdmin {
			p.Tenant = ""
		}
		for _, pm := range perms {
			want := strings.Contains(" "+allowed[role]+" ", " "+pm.name+" ")
			err := access.Allowed(p, pm.perm, "acme")
			if (err == nil) != want || access.Can(p, pm.perm, "acme") != want {
				t.Errorf("%s may %s in its tenant: %v, want %v", role, pm.name, err, want)
			}
			if err != nil && (herald.ErrorCode(err) != herald.EFORBIDDEN || !strings.Contains(herald.ErrorMessage(err), "needs role "+access.RolesText(pm.perm))) {
				t.Errorf("%s refused %s: %v, want EFORBIDDEN naming the roles that may", role, pm.name, err)
			}
			// Another tenant is refused for every role but platform-admin,
			// whatever the perm (Public needs no tenant).
			err = access.Allowed(p, pm.perm, "other")
			if wantOther := role == herald.RolePlatformAdmin || pm.perm == access.Public; (err == nil) != wantOther {
				t.Errorf("%s may %s in another tenant: %v, want %v", role, pm.name, err, wantOther)
			}
			if err != nil && !strings.Contains(herald.ErrorMessage(err), `belongs to tenant "acme" and cannot act on tenant "other"`) {
				t.Errorf("%s in another tenant: %q does not say why", role, herald.ErrorMessage(err))
			}
		}
	}
	for _, pm := range perms[1:] {
		if err := access.Allowed(nil, pm.perm, "acme"); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
			t.Errorf("no credentials, %s: %v, want EUNAUTHORIZED", pm.name, err)
		}
	}
	if err := access.Allowed(nil, access.Public, ""); err != nil {
		t.Errorf("no credentials, Public: %v", err)
	}
	for perm, want := range map[access.Perm]string{
		access.Admin:    "admin or platform-admin",
		access.Design:   "admin, designer or platform-admin",
		access.Platform: "platform-admin",
	} {
		if got := access.RolesText(perm); got != want {
			t.Errorf("RolesText(%d) = %q, want %q", perm, got, want)
		}
	}
}
