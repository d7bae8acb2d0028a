package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
)

var shownSecretRE = regexp.MustCompile(`id="secret-value" class="mono" value="(hsk_[A-Za-z0-9_-]+)"`)

// shownSecret returns the secret a page shows once, or fails.
func shownSecret(t *testing.T, body string) string {
	t.Helper()
	m := shownSecretRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page shows no new secret:\n%s", body)
	}
	return m[1]
}

func (e *env) exchange(client, secret string) error {
	_, err := e.gate.Exchange(context.Background(), access.Credentials{Client: client, Secret: secret, Address: "127.0.0.1:1"})
	return err
}

func TestAPIClientsPage(t *testing.T) {
	e := mustEnv(t)
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/api-clients"
	status, _, body := b.get(page)
	if status != 200 || !strings.Contains(body, `id="client-viewer"`) || !strings.Contains(body, `aria-current="page">API clients`) {
		t.Fatalf("API clients page: %d\n%s", status, body)
	}
	tok := b.csrf(page)
	post := func(path string, form url.Values) (int, http.Header, string) {
		t.Helper()
		form.Set("csrf", tok)
		return b.post(path, form)
	}

	// Create: the secret is on this answer, and only on it.
	status, _, body = post(page, url.Values{"name": {"ehr-sync"}, "role": {"producer"}})
	secret := shownSecret(t, body)
	if status != 200 || !strings.Contains(body, "Copy its secret now") {
		t.Fatalf("create: %d\n%s", status, body)
	}
	if err := e.exchange("ehr-sync", secret); err != nil {
		t.Fatalf("the shown secret does not work: %v", err)
	}
	if _, _, body = b.get(page); strings.Contains(body, secret) || !strings.Contains(body, `id="client-ehr-sync"`) {
		t.Fatalf("the list shows the secret again, or not the client:\n%s", body)
	}
	// Refused creates keep what was typed and say why, beside the field.
	status, _, body = post(page, url.Values{"name": {"ehr-sync"}, "role": {"viewer"}})
	if status != http.StatusConflict || !strings.Contains(body, `api client &#34;ehr-sync&#34; already exists in tenant &#34;acme&#34;.`) || !strings.Contains(body, `value="ehr-sync" required`) {
		t.Fatalf("a taken name: %d\n%s", status, body)
	}
	status, _, body = post(page, url.Values{"name": {"x1"}, "role": {"root"}})
	if status != http.StatusBadRequest || !strings.Contains(body, `role &#34;root&#34; is not a role`) {
		t.Fatalf("a bad role: %d\n%s", status, body)
	}

	// Rotate without grace: a new secret, and the old one stops at once.
	status, _, body = post(page+"/ehr-sync/rotate", url.Values{"grace": {"0"}})
	rotated := shownSecret(t, body)
	if status != 200 || rotated == secret || !strings.Contains(body, "stopped working at once") {
		t.Fatalf("rotate: %d\n%s", status, body)
	}
	if err := e.exchange("ehr-sync", secret); err != access.ErrBadCredentials {
		t.Fatalf("the old secret after a rotation without grace: %v", err)
	}
	if err := e.exchange("ehr-sync", rotated); err != nil {
		t.Fatal(err)
	}
	status, _, body = post(page+"/ehr-sync/rotate", url.Values{"grace": {"42"}})
	if status != http.StatusBadRequest || !strings.Contains(body, "Choose how long the old secret keeps working") {
		t.Fatalf("rotate with a grace not offered: %d\n%s", status, body)
	}
	status, _, body = post(page+"/ehr-sync/rotate", url.Values{"grace": {"3600"}})
	if status != 200 || !strings.Contains(body, "keep working until") || !strings.Contains(body, "the old secret works until") {
		t.Fatalf("rotate with an hour's grace: %d\n%s", status, body)
	}

	// Disable and enable.
	status, h, _ := post(page+"/ehr-sync/disable", url.Values{})
	if status != http.StatusSeeOther || h.Get("Location") != page+"?done=client-disabled" {
		t.Fatalf("disable: %d %v", status, h)
	}
	if _, _, body = b.get(page + "?done=client-disabled"); !strings.Contains(body, "API client disabled") || !strings.Contains(body, `badge bad">disabled`) {
		t.Fatalf("after disabling:\n%s", body)
	}
	if err := e.exchange("ehr-sync", rotated); herald.ErrorCode(err) != herald.EUNAUTHORIZED || !strings.Contains(herald.ErrorMessage(err), "disabled") {
		t.Fatalf("a disabled client's exchange: %v", err)
	}
	if status, h, _ = post(page+"/ehr-sync/enable", url.Values{}); status != http.StatusSeeOther || h.Get("Location") != page+"?done=client-enabled" {
		t.Fatalf("enable: %d %v", status, h)
	}

	// Delete asks first.
	status, _, body = b.get(page + "/ehr-sync/delete")
	if status != 200 || !strings.Contains(body, "cannot be undone") || !strings.Contains(body, `action="/ui/t/acme/api-clients/ehr-sync/delete"`) {
		t.Fatalf("delete confirmation: %d\n%s", status, body)
	}
	if status, h, _ = post(page+"/ehr-sync/delete", url.Values{}); status != http.StatusSeeOther || h.Get("Location") != page+"?done=client-deleted" {
		t.Fatalf("delete: %d %v", status, h)
	}
	if _, _, body = b.get(page); strings.Contains(body, `id="client-ehr-sync"`) {
		t.Fatalf("a deleted client is listed:\n%s", body)
	}
	if status, _, body = b.get(page + "/ehr-sync/delete"); status != http.StatusNotFound || !strings.Contains(body, `api client &#34;ehr-sync&#34; of tenant &#34;acme&#34; not found.`) {
		t.Fatalf("deleting a deleted client: %d\n%s", status, body)
	}

	// Only admins, and never without the CSRF token.
	if status, _, _ = b.post(page, url.Values{"name": {"x2"}, "role": {"viewer"}}); status != http.StatusForbidden {
		t.Fatalf("create without a CSRF token: %d, want 403", status)
	}
	viewer := e.browser()
	viewer.signIn("viewer")
	if status, _, body = viewer.get(page); status != http.StatusForbidden || !strings.Contains(body, "needs role admin or platform-admin") {
		t.Fatalf("a viewer on the API clients page: %d\n%s", status, body)
	}
	if _, _, body = viewer.get("/ui/t/acme/designer"); strings.Contains(body, "/api-clients") {
		t.Fatal("a viewer's navigation links to the API clients page")
	}
}

// TestSignOutRevokesTheSession: after signing out, the session's token is
// refused, also when a copy of the cookie is sent again.
func TestSignOutRevokesTheSession(t *testing.T) {
	e := mustEnv(t)
	b := e.browser()
	b.signIn("admin")
	u, _ := url.Parse(e.srv.URL + "/ui/")
	var token string
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == "herald_session" {
			token = c.Value
		}
	}
	if _, err := e.gate.Verify(context.Background(), token); err != nil {
		t.Fatalf("the session's token before signing out: %v", err)
	}
	status, h, _ := b.post("/ui/signout", url.Values{"csrf": {b.csrf("/ui/t/acme/designer")}})
	if status != http.StatusSeeOther || h.Get("Location") != "/ui/signin?out=1" {
		t.Fatalf("sign out: %d %v", status, h)
	}
	if _, err := e.gate.Verify(context.Background(), token); !strings.Contains(herald.ErrorMessage(err), "revoked") {
		t.Fatalf("the session's token after signing out: %v, want revoked", err)
	}
	replay := e.browser()
	replay.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "herald_session", Value: token, Path: "/ui/"}})
	if status, h, _ = replay.get("/ui/t/acme/designer"); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/signin") {
		t.Fatalf("a copy of the signed-out cookie: %d %v, want the sign-in page", status, h)
	}
}

// TestSignInIsLimited: sign-ins count with token requests; past the limit
// the form says when to try again, with the right secret too.
func TestSignInIsLimited(t *testing.T) {
	e := mustEnv(t, func(c *access.Config) { c.LimitPerClient = 2 })
	b := e.browser()
	for range 2 {
		tok := b.csrf("/ui/signin")
		b.post("/ui/signin", url.Values{"csrf": {tok}, "apiClient": {"admin"}, "secret": {"wrong"}})
	}
	tok := b.csrf("/ui/signin")
	status, h, body := b.post("/ui/signin", url.Values{"csrf": {tok}, "apiClient": {"admin"}, "secret": {adminSecret}})
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, `Too many token requests for API client &#34;admin&#34;: more than 2 in 5 minutes. Try again after`) {
		t.Fatalf("a sign-in over the limit: %d %v\n%s", status, h, body)
	}
}
