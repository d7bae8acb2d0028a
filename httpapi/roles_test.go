package httpapi_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestRoleMatrix calls a representative route of each permission with
// every role, and a tenant admin of another tenant.
func TestRoleMatrix(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	e.must(201, req{method: "POST", path: "/v1/tenants", token: e.admin, body: map[string]string{"name": "globex"}})
	tokens := map[string]string{
		"platform": e.admin,
		"admin":    e.mustClient("acme", "acme-admin", "admin"),
		"designer": e.mustClient("acme", "acme-designer", "designer"),
		"producer": e.mustClient("acme", "acme-producer", "producer"),
		"viewer":   e.mustClient("acme", "acme-viewer", "viewer"),
		"other":    e.mustClient("globex", "globex-admin", "admin"),
	}
	roles := []string{"platform", "admin", "designer", "producer", "viewer", "other"}
	n := 0
	unique := func() string { n++; return fmt.Sprintf("x%d", n) }

	for _, tc := range []struct {
		method, path string
		body         func() any
		allowed      map[string]int // role -> success status; others get 403
	}{
		{"POST", "/v1/tenants", func() any { return map[string]string{"name": unique()} },
			map[string]int{"platform": 201}},
		{"GET", "/v1/tenants", nil,
			map[string]int{"platform": 200, "admin": 200, "designer": 200, "producer": 200, "viewer": 200, "other": 200}},
		{"GET", "/v1/catalog", nil,
			map[string]int{"platform": 200, "admin": 200, "designer": 200, "producer": 200, "viewer": 200, "other": 200}},
		{"GET", inst, nil,
			map[string]int{"platform": 200, "admin": 200, "designer": 200, "producer": 200, "viewer": 200}},
		{"POST", "/v1/tenants/acme/instances", func() any { return map[string]string{"name": unique()} },
			map[string]int{"platform": 201, "admin": 201}},
		{"POST", "/v1/tenants/acme/api-clients", func() any { return map[string]string{"name": unique(), "role": "viewer"} },
			map[string]int{"platform": 201, "admin": 201}},
		{"GET", "/v1/tenants/acme/api-clients", nil,
			map[string]int{"platform": 200, "admin": 200, "designer": 200, "viewer": 200}},
		{"POST", "/v1/tenants/acme/designer/webhooks", func() any {
			return map[string]any{"name": unique(), "title": "T", "triggers": []map[string]string{{"eventEntity": "CDT"}}}
		}, map[string]int{"platform": 201, "admin": 201, "designer": 201}},
		{"GET", "/v1/tenants/acme/designer/draft", nil,
			map[string]int{"platform": 200, "admin": 200, "designer": 200, "viewer": 200}},
		{"GET", inst + "/webhooks", nil,
			map[string]int{"platform": 200, "admin": 200, "designer": 200, "viewer": 200}},
		{"PATCH", inst + "/webhooks/wh-patient-sync", func() any { return map[string]int{"timeoutSeconds": 20} },
			map[string]int{"platform": 200, "admin": 200}},
		{"GET", inst + "/webhooks/wh-patient-sync/secret", nil,
			map[string]int{"platform": 200, "admin": 200}},
		{"PUT", "/v1/tenants/acme/operations-webhook", func() any { return map[string]string{"url": "https://ops.example.com/"} },
			map[string]int{"platform": 200, "admin": 200}},
		{"GET", "/v1/tenants/acme/operations-webhook", nil,
			map[string]int{"platform": 200, "admin": 200}},
		{"POST", inst + "/events", func() any { return patientCreated(unique()) },
			map[string]int{"platform": 202, "admin": 202, "producer": 202}},
		{"GET", inst + "/deliveries", nil,
			map[string]int{"platform": 200, "admin": 200, "designer": 200, "producer": 200, "viewer": 200}},
	} {
		for _, role := range roles {
			t.Run(tc.method+" "+tc.path+" as "+role, func(t *testing.T) {
				var body any
				if tc.body != nil {
					body = tc.body()
				}
				resp := e.do(req{method: tc.method, path: tc.path, token: tokens[role], body: body})
				want, ok := tc.allowed[role]
				if !ok {
					want = 403
				}
				if resp.status != want {
					t.Fatalf("status %d, want %d: %s", resp.status, want, resp)
				}
				if want != 403 {
					return
				}
				ae := resp.apiError(t)
				wantMsg := "needs role"
				if role == "other" && strings.HasPrefix(tc.path, "/v1/tenants/acme") {
					wantMsg = `cannot act on tenant "acme"`
				}
				if ae.Code != "forbidden" || !strings.Contains(ae.Message, wantMsg) {
					t.Fatalf("error %+v, want forbidden saying %q", ae, wantMsg)
				}
			})
		}
	}
}

func TestCreateAPIClient(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	admin := e.mustClient("acme", "acme-admin", "admin")

	resp := e.must(201, req{method: "POST", path: "/v1/tenants/acme/api-clients", token: admin,
		body: map[string]string{"name": "ehr-sync", "role": "producer"}})
	m := resp.object(t)
	secret, _ := m["secret"].(string)
	if !strings.HasPrefix(secret, "hsk_") || m["name"] != "ehr-sync" || m["role"] != "producer" || m["tenant"] != "acme" || m["createdAt"] == nil {
		t.Fatalf("created client %s: want name, role, tenant, secret hsk_..., createdAt", resp)
	}
	// The secret works once shown, and is never shown again.
	e.must(200, req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": "ehr-sync", "secret": secret}})
	list := e.must(200, req{method: "GET", path: "/v1/tenants/acme/api-clients", token: admin})
	if strings.Contains(list.String(), secret) || strings.Contains(list.String(), `"secret"`) {
		t.Fatalf("client list shows a secret: %s", list)
	}
	if !strings.Contains(list.String(), `"ehr-sync"`) {
		t.Fatalf("client list lacks ehr-sync: %s", list)
	}

	for _, tc := range []struct {
		name   string
		token  string
		body   map[string]string
		status int
		field  string
		msg    string
	}{
		{"taken name", admin, map[string]string{"name": "ehr-sync", "role": "viewer"}, 409, "", ""},
		{"no role", admin, map[string]string{"name": "c1"}, 400, "role", "role is required"},
		{"bad role", admin, map[string]string{"name": "c1", "role": "root"}, 400, "role", `role "root" is not a role`},
		{"bad name", admin, map[string]string{"name": "Bad Name", "role": "viewer"}, 400, "name", "not a valid name"},
		{"tenant admin makes platform admin", admin, map[string]string{"name": "c1", "role": "platform-admin"}, 403, "", "Only a platform-admin"},
		{"platform admin under a tenant", e.admin, map[string]string{"name": "c1", "role": "platform-admin"}, 400, "role", "not bound to a tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(req{method: "POST", path: "/v1/tenants/acme/api-clients", token: tc.token, body: tc.body})
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.status, resp)
			}
			ae := resp.apiError(t)
			if ae.Field != tc.field || !strings.Contains(ae.Message, tc.msg) {
				t.Fatalf("error %+v, want field %q and message containing %q", ae, tc.field, tc.msg)
			}
		})
	}
	e.must(404, req{method: "POST", path: "/v1/tenants/nope/api-clients", token: e.admin, body: map[string]string{"name": "c2", "role": "viewer"}})
}
