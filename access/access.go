// Package access decides who may do what: it issues and verifies the
// self-contained tokens API clients get for their secret, checks API client
// credentials, and holds the role matrix (which role may use which kind of
// call, in which tenant).
//
// Both doors into Herald use it, so they can never disagree: httpapi reads
// the token from the Authorization header, webui from its session cookie.
package access

import (
	"slices"
	"strings"

	"github.com/heraldhooks/herald"
)

// Perm is a kind of call. Platform admins may make every kind; the other
// roles only those that Roles lists for them, and only in their own tenant.
type Perm int

// Perms, from least to most demanding.
const (
	Public        Perm = iota // no token (token exchange, ops)
	Authenticated             // any valid token; tenant-scoped when a tenant is named
	ReadConfig                // reads of designer, webhook and client config: admin, designer, viewer
	ReadEvents                // reads of events and deliveries: admin, designer, producer, viewer
	Produce                   // posting events: admin, producer
	Design                    // designer writes and publishing: admin, designer
	Admin                     // instance admin, instances, API clients, secrets: admin
	Platform                  // tenants: platform-admin only
)

// allowedRoles lists the tenant roles each Perm admits; platform-admin is
// always admitted.
var allowedRoles = map[Perm][]herald.Role{
	Authenticated: {herald.RoleAdmin, herald.RoleDesigner, herald.RoleProducer, herald.RoleViewer},
	ReadConfig:    {herald.RoleAdmin, herald.RoleDesigner, herald.RoleViewer},
	ReadEvents:    {herald.RoleAdmin, herald.RoleDesigner, herald.RoleProducer, herald.RoleViewer},
	Produce:       {herald.RoleAdmin, herald.RoleProducer},
	Design:        {herald.RoleAdmin, herald.RoleDesigner},
	Admin:         {herald.RoleAdmin},
	Platform:      {},
}

// Allowed returns nil when p may make a call of kind perm on tenant ("" when
// the call names no tenant), and otherwise an EFORBIDDEN error saying why:
// the client belongs to another tenant, or its role is not enough (naming
// the roles that are). A nil p is EUNAUTHORIZED for every perm but Public.
func Allowed(p *herald.Principal, perm Perm, tenant string) error {
	if perm == Public {
		return nil
	}
	if p == nil {
		return herald.Errorf(herald.EUNAUTHORIZED, "This call needs credentials; get a token from POST /v1/auth/token.")
	}
	if p.Role == herald.RolePlatformAdmin {
		return nil
	}
	if tenant != "" && tenant != p.Tenant {
		return herald.Errorf(herald.EFORBIDDEN, "%s belongs to tenant %q and cannot act on tenant %q.", capital(p.Describe()), p.Tenant, tenant)
	}
	if !slices.Contains(allowedRoles[perm], p.Role) {
		return herald.Errorf(herald.EFORBIDDEN, "%s has role %s; this call needs role %s.", capital(p.Describe()), p.Role, RolesText(perm))
	}
	return nil
}

// Can reports whether p may make a call of kind perm on tenant: Allowed
// without the reason, for showing or hiding what a person may not use.
func Can(p *herald.Principal, perm Perm, tenant string) bool {
	return Allowed(p, perm, tenant) == nil
}

// RolesText returns the roles that may make a call of kind perm, for
// messages: "admin, designer or platform-admin".
func RolesText(perm Perm) string {
	var names []string
	for _, r := range allowedRoles[perm] {
		names = append(names, string(r))
	}
	names = append(names, string(herald.RolePlatformAdmin))
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// capital returns s with its first letter in upper case.
func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
