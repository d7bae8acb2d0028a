package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/httpapi"
	"github.com/heraldhooks/herald/keyring"
)

func TestTokenForms(t *testing.T) {
	e := mustEnv(t)
	form := func(v url.Values) string { return v.Encode() }
	formCT := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	for _, tc := range []struct {
		name   string
		body   string
		header map[string]string
		status int
		// oauth is the OAuth2 error code wanted, herald the Herald one.
		oauth, herald string
		message       string
	}{
		{name: "json", body: `{"apiClient":"admin","secret":"` + adminSecret + `"}`, status: 200},
		{name: "json wrong secret", body: `{"apiClient":"admin","secret":"nope"}`, status: 401, herald: "unauthorized", message: "name or secret is wrong"},
		{name: "json unknown client", body: `{"apiClient":"ghost","secret":"nope"}`, status: 401, herald: "unauthorized", message: "name or secret is wrong"},
		{name: "json missing secret", body: `{"apiClient":"admin"}`, status: 400, herald: "invalid", message: "secret is required"},
		{name: "json unknown field", body: `{"client":"admin","secret":"x"}`, status: 400, herald: "invalid", message: `unknown field "client"`},
		{name: "form", body: form(url.Values{"grant_type": {"client_credentials"}, "client_id": {"admin"}, "client_secret": {adminSecret}}), header: formCT, status: 200},
		{name: "form basic", body: form(url.Values{"grant_type": {"client_credentials"}}),
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic("admin", adminSecret)}, status: 200},
		{name: "form wrong secret", body: form(url.Values{"grant_type": {"client_credentials"}, "client_id": {"admin"}, "client_secret": {"x"}}), header: formCT, status: 401, oauth: "invalid_client"},
		{name: "basic wrong secret", body: form(url.Values{"grant_type": {"client_credentials"}}),
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic("admin", "x")}, status: 401, oauth: "invalid_client"},
		{name: "form no client", body: form(url.Values{"grant_type": {"client_credentials"}}), header: formCT, status: 401, oauth: "invalid_client"},
		{name: "form no grant", body: form(url.Values{"client_id": {"admin"}, "client_secret": {adminSecret}}), header: formCT, status: 400, oauth: "invalid_request"},
		{name: "form other grant", body: form(url.Values{"grant_type": {"password"}, "client_id": {"admin"}, "client_secret": {adminSecret}}), header: formCT, status: 400, oauth: "unsupported_grant_type"},
		{name: "json sent by curl -d (form content type)", body: `{"apiClient":"admin","secret":"` + adminSecret + `"}`, header: formCT, status: 200},
		{name: "text body", body: "admin", header: map[string]string{"Content-Type": "text/plain"}, status: 415, herald: "unsupported_media_type", message: "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(req{method: "POST", path: "/v1/auth/token", body: tc.body, header: tc.header})
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.status, resp)
			}
			m := resp.object(t)
			switch {
			case tc.status == 200 && strings.Contains(tc.name, "json"):
				tok, _ := m["token"].(string)
				exp, err := time.Parse(time.RFC3339, m["expiresAt"].(string))
				if err != nil || tok == "" {
					t.Fatalf("want token and expiresAt, got %s", resp)
				}
				if d := time.Until(exp); d < 59*time.Minute || d > 61*time.Minute {
					t.Errorf("expiresAt %s is not an hour from now", exp)
				}
				e.must(200, req{method: "GET", path: "/v1/tenants", token: tok})
			case tc.status == 200:
				if m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) || m["access_token"] == "" {
					t.Fatalf("want an OAuth2 token response, got %s", resp)
				}
				if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", cc)
				}
				e.must(200, req{method: "GET", path: "/v1/tenants", token: m["access_token"].(string)})
			case tc.oauth != "":
				if m["error"] != tc.oauth || m["error_description"] == "" {
					t.Fatalf("want OAuth2 error %s with a description, got %s", tc.oauth, resp)
				}
				if strings.HasPrefix(tc.header["Authorization"], "Basic") && resp.header.Get("WWW-Authenticate") == "" {
					t.Error("401 to Basic auth without WWW-Authenticate")
				}
			default:
				ae := resp.apiError(t)
				if ae.Code != tc.herald || !strings.Contains(ae.Message, tc.message) {
					t.Fatalf("error %+v, want code %s and message containing %q", ae, tc.herald, tc.message)
				}
			}
		})
	}
}

func TestTokenRejected(t *testing.T) {
	e := mustEnv(t)
	good := e.admin
	msg, sig, _ := cutLast(good, ".")
	prefix, body, _ := cutLast(msg, ".") // "v3.<key id>", payload
	payload, _ := base64.RawURLEncoding.DecodeString(body)
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("token payload: %v", err)
	}
	claims["r"] = "platform-admin"
	claims["c"] = "mallory"
	forgedPayload, _ := json.Marshal(claims)
	forged := prefix + "." + base64.RawURLEncoding.EncodeToString(forgedPayload) + "." + sig

	// A token from another deployment (another master key).
	otherKeys, err := keyring.Parse(keyring.Generate())
	if err != nil {
		t.Fatal(err)
	}
	other := mustEnv(t, func(c *httpapi.Config) { c.Access = mustGate(t, c.Store, otherKeys, nil) }).admin

	for _, tc := range []struct {
		name, authorization, message string
	}{
		{"missing", "", "needs an Authorization: Bearer"},
		{"basic scheme", "Basic YWRtaW46eA==", `must be "Bearer <token>"`},
		{"malformed", "Bearer abc", "malformed"},
		{"altered payload", "Bearer " + forged, "signature is invalid"},
		{"other deployment", "Bearer " + other, "not issued by it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(req{method: "GET", path: "/v1/tenants", header: map[string]string{"Authorization": tc.authorization}})
			if resp.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", resp.status, resp)
			}
			if ae := resp.apiError(t); ae.Code != "unauthorized" || !strings.Contains(ae.Message, tc.message) {
				t.Fatalf("error %+v, want unauthorized saying %q", ae, tc.message)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		e.must(200, req{method: "GET", path: "/v1/tenants", token: good})
		e.clock.Advance(time.Hour + time.Second)
		resp := e.do(req{method: "GET", path: "/v1/tenants", token: good})
		if resp.status != 401 {
			t.Fatalf("status %d, want 401: %s", resp.status, resp)
		}
		if ae := resp.apiError(t); !strings.Contains(ae.Message, "expired at") {
			t.Fatalf("error %+v, want it to say the token expired", ae)
		}
		// A new token works on the advanced clock.
		resp = e.must(200, req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": "admin", "secret": adminSecret}})
		var out struct{ Token string }
		resp.json(t, &out)
		e.must(200, req{method: "GET", path: "/v1/tenants", token: out.Token})
	})
}

// TestTokenValidAcrossNodes checks that a token issued by one handler is
// accepted by another handler on the same store: a second node.
func TestTokenValidAcrossNodes(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	viewer := e.mustClient("acme", "viewer-1", "viewer")
	node2 := mustSecondNode(t, e)
	resp := node2.must(200, req{method: "GET", path: "/v1/tenants", token: viewer})
	var out struct{ Tenants []struct{ Name string } }
	resp.json(t, &out)
	if len(out.Tenants) != 1 || out.Tenants[0].Name != "acme" {
		t.Fatalf("viewer of acme sees tenants %s, want only acme", resp)
	}
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
