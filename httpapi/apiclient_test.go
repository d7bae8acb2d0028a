package httpapi_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/httpapi"
)

// withLimits gives the API an access layer with small token request limits.
func withLimits(perClient, perAddress int) envOption {
	return func(c *httpapi.Config) {
		g, err := access.New(access.Config{Store: c.Store, Keys: storekit.Keys, Now: c.Now,
			LimitPerClient: perClient, LimitPerAddress: perAddress, Audit: c.Store})
		if err != nil {
			panic(err)
		}
		c.Access = g
	}
}

// wantError fails unless resp has status and an error whose code is code
// and whose message holds msg.
func wantError(t *testing.T, resp response, status int, code, msg string) apiError {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status %d, want %d: %s", resp.status, status, resp)
	}
	ae := resp.apiError(t)
	if ae.Code != code || !strings.Contains(ae.Message, msg) {
		t.Fatalf("error %+v, want %s saying %q", ae, code, msg)
	}
	return ae
}

// exchange returns a token for a client's secret, or fails.
func (e *env) exchange(client, secret string) string {
	e.t.Helper()
	var out struct{ Token string }
	e.must(200, req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": client, "secret": secret}}).json(e.t, &out)
	return out.Token
}

func TestAPIClientLifeCycle(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	base := "/v1/tenants/acme/api-clients/ehr-sync"
	var created struct {
		Secret          string
		SecretRotatedAt *time.Time
	}
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/api-clients", token: e.admin,
		body: map[string]string{"name": "ehr-sync", "role": "producer"}}).json(t, &created)
	first := created.Secret

	got := e.must(200, req{method: "GET", path: base, token: e.admin})
	m := got.object(t)
	if m["name"] != "ehr-sync" || m["tenant"] != "acme" || m["role"] != "producer" || m["disabled"] != false ||
		m["createdAt"] == nil || m["secretRotatedAt"] != nil || m["previousSecretExpiresAt"] != nil || len(m) != 7 {
		t.Fatalf("GET %s = %s", base, got)
	}
	if _, ok := m["secretRotatedAt"]; !ok || strings.Contains(got.String(), first) {
		t.Fatalf("GET %s = %s: want secretRotatedAt shown (null) and no secret", base, got)
	}
	t1 := e.exchange("ehr-sync", first)

	// Rotate with a minute's grace: the old secret and its token keep working.
	var rotated struct {
		Secret                  string
		SecretRotatedAt         *time.Time
		PreviousSecretExpiresAt *time.Time
	}
	resp := e.must(200, req{method: "POST", path: base + "/rotate", token: e.admin, body: `{"graceSeconds":60}`})
	resp.json(t, &rotated)
	if rotated.Secret == "" || rotated.Secret == first || rotated.SecretRotatedAt == nil || rotated.PreviousSecretExpiresAt == nil ||
		rotated.PreviousSecretExpiresAt.Sub(*rotated.SecretRotatedAt) != time.Minute || resp.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate: %s (%v)", resp, resp.header)
	}
	if m := e.must(200, req{method: "GET", path: base, token: e.admin}).object(t); m["previousSecretExpiresAt"] == nil {
		t.Fatalf("GET after the rotation shows no grace end: %v", m)
	}
	e.must(200, req{method: "GET", path: inst + "/deliveries", token: t1})
	e.exchange("ehr-sync", first)
	t2 := e.exchange("ehr-sync", rotated.Secret)

	// Rotating again without grace ends the old secret and its tokens now.
	e.must(200, req{method: "POST", path: base + "/rotate", token: e.admin, body: `{"graceSeconds":0}`}).json(t, &rotated)
	wantError(t, e.do(req{method: "GET", path: inst + "/deliveries", token: t1}), 401, "unauthorized", `API client "ehr-sync" of tenant acme had its secret rotated`)
	wantError(t, e.do(req{method: "GET", path: inst + "/deliveries", token: t2}), 401, "unauthorized", "had its secret rotated")
	wantError(t, e.do(req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": "ehr-sync", "secret": first}}), 401, "unauthorized", "name or secret is wrong")
	t3 := e.exchange("ehr-sync", rotated.Secret)

	// Disabled: no tokens, and the ones it had stop; enabled again, they stay void.
	if m := e.must(200, req{method: "POST", path: base + "/disable", token: e.admin}).object(t); m["disabled"] != true {
		t.Fatalf("disable answered %v", m)
	}
	wantError(t, e.do(req{method: "GET", path: inst + "/deliveries", token: t3}), 401, "unauthorized", `API client "ehr-sync" of tenant acme is disabled`)
	wantError(t, e.do(req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": "ehr-sync", "secret": rotated.Secret}}), 401, "unauthorized", "is disabled")
	if m := e.must(200, req{method: "POST", path: base + "/enable", token: e.admin, body: `{}`}).object(t); m["disabled"] != false {
		t.Fatalf("enable answered %v", m)
	}
	wantError(t, e.do(req{method: "GET", path: inst + "/deliveries", token: t3}), 401, "unauthorized", "was disabled after this token was issued")
	t4 := e.exchange("ehr-sync", rotated.Secret)
	e.must(200, req{method: "GET", path: inst + "/deliveries", token: t4})

	// Deleted: gone, and its tokens with it.
	e.must(204, req{method: "DELETE", path: base, token: e.admin})
	wantError(t, e.do(req{method: "GET", path: base, token: e.admin}), 404, "not_found", `api client "ehr-sync" of tenant "acme" not found.`)
	wantError(t, e.do(req{method: "GET", path: inst + "/deliveries", token: t4}), 401, "unauthorized", `API client "ehr-sync" of tenant acme was deleted`)
}

func TestAPIClientRouteEdges(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	e.must(201, req{method: "POST", path: "/v1/tenants", token: e.admin, body: map[string]string{"name": "globex"}})
	e.mustClient("acme", "ehr-sync", "producer")
	viewer := e.mustClient("acme", "acme-viewer", "viewer")
	producer := e.mustClient("acme", "acme-producer", "producer")
	other := e.mustClient("globex", "globex-admin", "admin")
	c := "/v1/tenants/acme/api-clients/ehr-sync"
	for _, tc := range []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code, field  string
		message      string
	}{
		{"get unknown client", "GET", "/v1/tenants/acme/api-clients/nope", e.admin, nil, 404, "not_found", "", `api client "nope" of tenant "acme" not found.`},
		{"get in unknown tenant", "GET", "/v1/tenants/nope/api-clients/ehr-sync", e.admin, nil, 404, "not_found", "", `tenant "nope" not found.`},
		{"rotate unknown client", "POST", "/v1/tenants/acme/api-clients/nope/rotate", e.admin, nil, 404, "not_found", "", `api client "nope" of tenant "acme" not found.`},
		{"disable unknown client", "POST", "/v1/tenants/acme/api-clients/nope/disable", e.admin, nil, 404, "not_found", "", `api client "nope" of tenant "acme" not found.`},
		{"enable unknown client", "POST", "/v1/tenants/acme/api-clients/nope/enable", e.admin, nil, 404, "not_found", "", `api client "nope" of tenant "acme" not found.`},
		{"delete unknown client", "DELETE", "/v1/tenants/acme/api-clients/nope", e.admin, nil, 404, "not_found", "", `api client "nope" of tenant "acme" not found.`},
		{"delete in unknown tenant", "DELETE", "/v1/tenants/nope/api-clients/x", e.admin, nil, 404, "not_found", "", `tenant "nope" not found.`},
		{"grace as a string", "POST", c + "/rotate", e.admin, `{"graceSeconds":"60"}`, 400, "invalid", "graceSeconds", "graceSeconds must be an integer, not a string"},
		{"negative grace", "POST", c + "/rotate", e.admin, `{"graceSeconds":-1}`, 400, "invalid", "graceSeconds", "between 0 and 604800"},
		{"grace over a week", "POST", c + "/rotate", e.admin, `{"graceSeconds":604801}`, 400, "invalid", "graceSeconds", "between 0 and 604800"},
		{"unknown rotate field", "POST", c + "/rotate", e.admin, `{"grace":60}`, 400, "invalid", "grace", `unknown field "grace"`},
		{"malformed rotate body", "POST", c + "/rotate", e.admin, `{"graceSeconds":`, 400, "invalid", "", "ends before the JSON value is complete"},
		{"disable with a body", "POST", c + "/disable", e.admin, `{"reason":"x"}`, 400, "invalid", "reason", `unknown field "reason"`},
		{"revoke with a body", "POST", "/v1/auth/revoke", e.admin, `{"token":"x"}`, 400, "invalid", "token", `unknown field "token"`},
		{"revoke without a token", "POST", "/v1/auth/revoke", "", nil, 401, "unauthorized", "", "needs an Authorization: Bearer"},
		{"viewer rotates", "POST", c + "/rotate", viewer, nil, 403, "forbidden", "", "needs role admin or platform-admin"},
		{"viewer deletes", "DELETE", c, viewer, nil, 403, "forbidden", "", "needs role admin or platform-admin"},
		{"producer reads", "GET", c, producer, nil, 403, "forbidden", "", "needs role admin, designer, viewer or platform-admin"},
		{"other tenant's admin disables", "POST", c + "/disable", other, nil, 403, "forbidden", "", `cannot act on tenant "acme"`},
		{"token request with an unknown field", "POST", "/v1/auth/token", "", `{"apiClient":"ehr-sync","secret":"x","tenants":"acme"}`, 400, "invalid", "tenants", `unknown field "tenants"`},
		{"token request with a tenant of another type", "POST", "/v1/auth/token", "", `{"apiClient":"ehr-sync","secret":"x","tenant":1}`, 400, "invalid", "tenant", "tenant must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ae := wantError(t, e.do(req{method: tc.method, path: tc.path, token: tc.token, body: tc.body}), tc.status, tc.code, tc.message)
			if ae.Field != tc.field {
				t.Fatalf("error %+v, want field %q", ae, tc.field)
			}
		})
	}
	e.must(200, req{method: "GET", path: c, token: viewer})
}

func TestRevokeEndsTheTokenOnly(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	secret := e.secrets["admin"]
	a, b := e.exchange("admin", secret), e.exchange("admin", secret)
	e.must(204, req{method: "POST", path: "/v1/auth/revoke", token: a})
	wantError(t, e.do(req{method: "GET", path: "/v1/tenants", token: a}), 401, "unauthorized", "The bearer token was revoked")
	wantError(t, e.do(req{method: "POST", path: "/v1/auth/revoke", token: a}), 401, "unauthorized", "was revoked")
	e.must(200, req{method: "GET", path: "/v1/tenants", token: b})
	// A second node learns of it from the database.
	node2 := mustSecondNode(t, e)
	wantError(t, node2.do(req{method: "GET", path: "/v1/tenants", token: a}), 401, "unauthorized", "was revoked")
	node2.must(200, req{method: "GET", path: "/v1/tenants", token: b})
}

// TestNamesArePerTenant: a tenant admin may use a name another tenant
// uses, and nothing it gets back says that the other tenant has it.
func TestNamesArePerTenant(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	e.must(201, req{method: "POST", path: "/v1/tenants", token: e.admin, body: map[string]string{"name": "globex"}})
	acmeAdmin := e.mustClient("acme", "acme-admin", "admin")
	globexAdmin := e.mustClient("globex", "globex-admin", "admin")

	var acme, globex struct{ Secret string }
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/api-clients", token: acmeAdmin, body: map[string]string{"name": "ehr-sync", "role": "producer"}}).json(t, &acme)
	resp := e.must(201, req{method: "POST", path: "/v1/tenants/globex/api-clients", token: globexAdmin, body: map[string]string{"name": "ehr-sync", "role": "viewer"}})
	resp.json(t, &globex)
	if strings.Contains(resp.String(), "acme") {
		t.Fatalf("globex's new client mentions acme: %s", resp)
	}
	ae := wantError(t, e.do(req{method: "POST", path: "/v1/tenants/globex/api-clients", token: globexAdmin,
		body: map[string]string{"name": "ehr-sync", "role": "viewer"}}), 409, "conflict", `api client "ehr-sync" already exists in tenant "globex".`)
	if strings.Contains(ae.Message, "acme") {
		t.Fatalf("a conflict in globex mentions acme: %+v", ae)
	}
	list := e.must(200, req{method: "GET", path: "/v1/tenants/globex/api-clients", token: globexAdmin})
	if strings.Contains(list.String(), "acme") {
		t.Fatalf("globex's list mentions acme: %s", list)
	}
	// Another tenant's clients answer the same whether the name exists there or not.
	held := e.do(req{method: "GET", path: "/v1/tenants/acme/api-clients/ehr-sync", token: globexAdmin})
	free := e.do(req{method: "GET", path: "/v1/tenants/acme/api-clients/no-such-client", token: globexAdmin})
	if held.status != 403 || held.String() != free.String() {
		t.Fatalf("another tenant's held name answers %d %s, a free one %d %s: want the same 403", held.status, held, free.status, free)
	}

	// The name alone and either secret get that tenant's client.
	for secret, want := range map[string]string{acme.Secret: "acme", globex.Secret: "globex"} {
		tok := e.exchange("ehr-sync", secret)
		var out struct{ Tenants []struct{ Name string } }
		e.must(200, req{method: "GET", path: "/v1/tenants", token: tok}).json(t, &out)
		if len(out.Tenants) != 1 || out.Tenants[0].Name != want {
			t.Fatalf("the token of %s's ehr-sync sees %+v", want, out.Tenants)
		}
	}
	e.must(200, req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": "ehr-sync", "tenant": "acme", "secret": acme.Secret}})
	wantError(t, e.do(req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": "ehr-sync", "tenant": "globex", "secret": acme.Secret}}),
		401, "unauthorized", "The API client name or secret is wrong.")

	// A tenant's client named like the platform's admin is another client.
	var named struct{ Secret string }
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/api-clients", token: acmeAdmin, body: map[string]string{"name": "admin", "role": "viewer"}}).json(t, &named)
	e.exchange("admin", e.secrets["admin"])
	tok := e.exchange("admin", named.Secret)
	e.must(403, req{method: "POST", path: "/v1/tenants", token: tok, body: map[string]string{"name": "initech"}})
}

func TestTokenRequestsAreLimited(t *testing.T) {
	e := mustEnv(t, withLimits(3, 100))
	e.setup()
	secret := e.secrets["admin"]
	// Counts are kept per fixed 5-minute window: start the test at the
	// beginning of the next one, so that it cannot cross a window's end
	// (which starts a new count) half way.
	now := e.clock.Now()
	e.clock.Advance(now.Truncate(5 * time.Minute).Add(5*time.Minute + time.Second).Sub(now))
	for range 3 {
		e.exchange("admin", secret)
	}
	resp := e.do(req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": "admin", "secret": secret}})
	wantError(t, resp, 429, "rate_limited", `Too many token requests for API client "admin": more than 3 in 5 minutes. Try again after `)
	if n, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || n < 1 || n > 300 {
		t.Fatalf("Retry-After %q, want the seconds left in the window", resp.header.Get("Retry-After"))
	}
	// The OAuth2 form gets the same answer, in Herald's error shape.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"admin"}, "client_secret": {secret}}.Encode()
	resp = e.do(req{method: "POST", path: "/v1/auth/token", body: form, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
	wantError(t, resp, 429, "rate_limited", "Try again after")
	if resp.header.Get("Retry-After") == "" {
		t.Fatal("the OAuth2 form's 429 has no Retry-After")
	}
	// Tokens already issued keep working.
	e.must(200, req{method: "GET", path: "/v1/tenants", token: e.admin})
	// The lockout is on record once, not once per refused request.
	var page auditPage
	e.must(200, req{method: "GET", path: "/v1/audit?action=auth.locked", token: e.admin}).json(t, &page)
	if len(page.Entries) != 1 || page.Entries[0].Target != "client admin" || page.Entries[0].Source != "127.0.0.1" {
		t.Fatalf("lockout audit entries: %+v", page.Entries)
	}
}
