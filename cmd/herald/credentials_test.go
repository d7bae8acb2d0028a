package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest/storekit"
)

// revocationDeadline is the promise: a token whose client was deleted,
// disabled or rotated (past its grace), or which was revoked, is refused
// by every node within this long.
const revocationDeadline = 5 * time.Second

// login returns an API client of base signed in with a client's secret.
func login(t *testing.T, base, client, secret string) *apiClient {
	t.Helper()
	c := newAPIClient(base)
	if err := c.login(context.Background(), client, secret); err != nil {
		t.Fatalf("login %s at %s: %v", client, base, err)
	}
	return c
}

// onNode returns a client of base that uses c's token.
func onNode(c *apiClient, base string) *apiClient {
	return &apiClient{base: base, token: c.token, hc: c.hc}
}

// waitRefused polls GET path with c until it answers 401 saying want, and
// returns when it did; it fails the test if that takes longer than within.
func waitRefused(t *testing.T, c *apiClient, path, want string, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, err := c.do(context.Background(), "GET", path, nil, nil)
		now := time.Now()
		var ae *apiError
		if code == http.StatusUnauthorized && errors.As(err, &ae) {
			if !strings.Contains(ae.Message, want) {
				t.Fatalf("401 saying %q, want it to say %q", ae.Message, want)
			}
			return now
		}
		if code != http.StatusOK {
			t.Fatalf("GET %s answered %d %v while waiting for a 401", path, code, err)
		}
		if now.After(deadline) {
			t.Fatalf("GET %s still answers 200 %v after the change; want 401 saying %q", path, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterCredentialChangesReachEveryNode: on two real nodes sharing
// PostgreSQL, a change made on node 1 (deleting, disabling or rotating a
// client, revoking a token) makes node 2 refuse the token within 5 s,
// saying why; a rotated client's old token works on node 2 through the
// grace and is refused once the grace has ended, by time alone.
func TestClusterCredentialChangesReachEveryNode(t *testing.T) {
	dsn := storekit.PostgresDSN(t)
	n1 := startHerald(t, []string{"HERALD_NODE_ID=node-1"}, "--database", dsn)
	n2 := startHerald(t, []string{"HERALD_NODE_ID=node-2"}, "--database", dsn)
	admin := n1.client(t)
	mustDo(t, admin, "POST", "/v1/tenants", map[string]any{"name": "acme"}, nil)
	secrets := map[string]string{}
	for _, name := range []string{"c-deleted", "c-disabled", "c-rotated", "c-grace", "c-revoked"} {
		var out struct{ Secret string }
		mustDo(t, admin, "POST", "/v1/tenants/acme/api-clients", map[string]any{"name": name, "role": "viewer"}, &out)
		secrets[name] = out.Secret
	}
	// Each client's token, from node 1, works on node 2.
	tokens := map[string]*apiClient{}
	const path = "/v1/tenants/acme/api-clients"
	for name, secret := range secrets {
		tokens[name] = onNode(login(t, n1.URL, name, secret), n2.URL)
		mustDo(t, tokens[name], "GET", path, nil, nil)
	}

	for _, tc := range []struct {
		client, method, path string
		body                 any
		as                   *apiClient
		want                 string
	}{
		{"c-deleted", "DELETE", "/v1/tenants/acme/api-clients/c-deleted", nil, admin, `API client "c-deleted" of tenant acme was deleted`},
		{"c-disabled", "POST", "/v1/tenants/acme/api-clients/c-disabled/disable", nil, admin, `API client "c-disabled" of tenant acme is disabled`},
		{"c-rotated", "POST", "/v1/tenants/acme/api-clients/c-rotated/rotate", map[string]any{"graceSeconds": 0}, admin, "had its secret rotated"},
		{"c-revoked", "POST", "/v1/auth/revoke", nil, onNode(tokens["c-revoked"], n1.URL), "The bearer token was revoked"},
	} {
		mustDo(t, tc.as, tc.method, tc.path, tc.body, nil)
		changed := time.Now()
		refused := waitRefused(t, tokens[tc.client], path, tc.want, revocationDeadline)
		t.Logf("%s: node 2 refused the token %v after the change on node 1", tc.client, refused.Sub(changed).Round(time.Millisecond))
	}

	// A rotation with grace: the old token and secret work on node 2 until
	// the grace ends, by time alone; then the token is refused.
	var rotated struct {
		Secret                  string
		PreviousSecretExpiresAt time.Time
	}
	mustDo(t, admin, "POST", "/v1/tenants/acme/api-clients/c-grace/rotate", map[string]any{"graceSeconds": 3}, &rotated)
	graceEnd := rotated.PreviousSecretExpiresAt
	old := tokens["c-grace"]
	mustDo(t, old, "GET", path, nil, nil)
	duringGrace := onNode(login(t, n2.URL, "c-grace", secrets["c-grace"]), n2.URL) // the old secret, on node 2
	login(t, n2.URL, "c-grace", rotated.Secret)
	if time.Now().After(graceEnd) {
		t.Fatal("the grace ended before the test could use it; the machine is too slow for this test")
	}
	refused := waitRefused(t, old, path, "had its secret rotated", time.Until(graceEnd)+revocationDeadline)
	if refused.Before(graceEnd.Add(-50 * time.Millisecond)) {
		t.Fatalf("the old token was refused at %s, before its grace ended at %s", refused.Format(time.StampMilli), graceEnd.Format(time.StampMilli))
	}
	t.Logf("c-grace: node 2 refused the old token %v after its grace ended", refused.Sub(graceEnd).Round(time.Millisecond))
	waitRefused(t, duringGrace, path, "had its secret rotated", revocationDeadline)
	var refusedOld *apiError
	if _, err := newAPIClient(n2.URL).do(context.Background(), "POST", "/v1/auth/token",
		map[string]string{"apiClient": "c-grace", "secret": secrets["c-grace"]}, nil); !errors.As(err, &refusedOld) || refusedOld.Status != 401 {
		t.Fatalf("the old secret after its grace: %v, want 401", err)
	}
}

// tokenRequest sends a token request from a client (whose transport may
// dial from another loopback address) and returns the status and answer.
func tokenRequest(t *testing.T, hc *http.Client, base, client, secret string) (int, http.Header, string) {
	t.Helper()
	body := fmt.Sprintf(`{"apiClient":%q,"secret":%q}`, client, secret)
	resp, err := hc.Post(base+"/v1/auth/token", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header, b.String()
}

// wantLimited fails unless the answer is 429 rate_limited with a
// Retry-After in seconds and a message holding want.
func wantLimited(t *testing.T, status int, h http.Header, body, want string) {
	t.Helper()
	if status != http.StatusTooManyRequests || !strings.Contains(body, `"code":"rate_limited"`) || !strings.Contains(body, want) {
		t.Fatalf("answer %d %s, want 429 rate_limited saying %q", status, body, want)
	}
	if n, err := strconv.Atoi(h.Get("Retry-After")); err != nil || n < 1 || n > 300 {
		t.Fatalf("Retry-After %q, want the seconds until the window ends", h.Get("Retry-After"))
	}
}

// TestTokenRequestLimits: 101 token requests in a row for one client and
// the 101st, and a correct one after it, get 429 with Retry-After; another
// client from the same address does not; past the per-address limit every
// client from that address does, and a client dialling from another
// loopback address does not.
func TestTokenRequestLimits(t *testing.T) {
	p := startHerald(t, nil, append(sqliteArgs(t), "--auth-limit-per-address", "110")...)
	admin := p.client(t) // one request from 127.0.0.1
	secrets := map[string]string{}
	for _, name := range []string{"a", "b"} {
		var out struct{ Secret string }
		mustDo(t, admin, "POST", "/v1/tenants", map[string]any{"name": "t-" + name}, nil)
		mustDo(t, admin, "POST", "/v1/tenants/t-"+name+"/api-clients", map[string]any{"name": name, "role": "viewer"}, &out)
		secrets[name] = out.Secret
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	for i := 1; i <= 100; i++ {
		secret := "hsk_wrong"
		if i == 50 {
			secret = secrets["a"]
		}
		status, _, body := tokenRequest(t, hc, p.URL, "a", secret)
		if (i == 50 && status != 200) || (i != 50 && status != 401) {
			t.Fatalf("request %d for a: %d %s", i, status, body)
		}
	}
	status, h, body := tokenRequest(t, hc, p.URL, "a", "hsk_wrong")
	wantLimited(t, status, h, body, `Too many token requests for API client \"a\": more than 100 in 5 minutes. Try again after`)
	status, h, body = tokenRequest(t, hc, p.URL, "a", secrets["a"])
	wantLimited(t, status, h, body, `for API client \"a\"`)
	if !strings.Contains(p.logs.String(), "token request refused") || strings.Contains(p.logs.String(), secrets["a"]) {
		t.Fatalf("failed token requests are not logged, or a secret is:\n%s", p.logs)
	}

	// Another client from the same address is not limited: 102 requests
	// from it so far (the refusal from memory was not counted).
	if status, _, body = tokenRequest(t, hc, p.URL, "b", secrets["b"]); status != 200 {
		t.Fatalf("client b from the same address: %d %s", status, body)
	}
	// Past the address's limit (110), every client from it is refused.
	for i := 104; i <= 110; i++ {
		if status, _, body = tokenRequest(t, hc, p.URL, "b", "hsk_wrong"); status != 401 {
			t.Fatalf("request %d from the address: %d %s", i, status, body)
		}
	}
	status, h, body = tokenRequest(t, hc, p.URL, "b", secrets["b"])
	wantLimited(t, status, h, body, "from address 127.0.0.1: more than 110 in 5 minutes")
	status, h, body = tokenRequest(t, hc, p.URL, "admin", testAdminSecret)
	wantLimited(t, status, h, body, "from address 127.0.0.1")

	// From another loopback address, client b gets its token.
	other := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	if status, _, body = tokenRequest(t, other, p.URL, "b", secrets["b"]); status != 200 {
		t.Fatalf("client b from 127.0.0.2: %d %s", status, body)
	}
}

// TestAdminSecretChangeEndsOldTokens: a restart with the same
// HERALD_ADMIN_SECRET keeps the admin's tokens; a restart with another
// one ends them, and only the new secret gets new ones.
func TestAdminSecretChangeEndsOldTokens(t *testing.T) {
	args := sqliteArgs(t)
	first := startHerald(t, nil, args...)
	admin := first.client(t)
	mustDo(t, admin, "GET", "/v1/tenants", nil, nil)
	first.stop()

	same := startHerald(t, nil, args...)
	mustDo(t, onNode(admin, same.URL), "GET", "/v1/tenants", nil, nil)
	same.stop()

	const newSecret = "a-new-admin-secret-after-a-leak"
	changed := startHerald(t, []string{"HERALD_ADMIN_SECRET=" + newSecret}, args...)
	var ae *apiError
	code, err := onNode(admin, changed.URL).do(context.Background(), "GET", "/v1/tenants", nil, nil)
	if code != http.StatusUnauthorized || !errors.As(err, &ae) || !strings.Contains(ae.Message, `API client "admin" had its secret rotated`) {
		t.Fatalf("the old admin token after HERALD_ADMIN_SECRET changed: %d %v", code, err)
	}
	if err := newAPIClient(changed.URL).login(context.Background(), "admin", testAdminSecret); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("the old admin secret: %v, want 401", err)
	}
	mustDo(t, login(t, changed.URL, "admin", newSecret), "GET", "/v1/tenants", nil, nil)
	if !strings.Contains(changed.logs.String(), "HERALD_ADMIN_SECRET changed") {
		t.Errorf("the change is not logged:\n%s", changed.logs)
	}
}
