package webui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/webui"
)

const adminSecret = "test-platform-admin-secret"

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// env is the UI on a real SQLite store with tenant acme, instance sandbox,
// an active webhook wh, and clients admin (platform) and viewer (acme).
type env struct {
	t       *testing.T
	store   *sqlstore.DB
	gate    *access.Gate
	srv     *httptest.Server
	secrets map[string]string // by client name
}

// mustEnv starts the UI; opts are funcs of *webui.Config or
// *access.Config, or of *webui.Config and the store (for what is built on
// it, such as an engine).
func mustEnv(t *testing.T, opts ...any) *env {
	t.Helper()
	store := storekit.NewSQLite(t)
	cfg := access.Config{Store: store, Keys: storekit.Keys}
	// These tests sign in as API clients, which the UI allows only when
	// told to; the tests of people turn it off.
	ucfg := webui.Config{Store: store, APIClientSignIn: true}
	for _, o := range opts {
		switch o := o.(type) {
		case func(*access.Config):
			o(&cfg)
		case func(*webui.Config):
			o(&ucfg)
		case func(*webui.Config, *sqlstore.DB):
			o(&ucfg, store)
		default:
			t.Fatalf("mustEnv: option %T", o)
		}
	}
	gate, err := access.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ucfg.Access = gate
	h, err := webui.New(ucfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	if _, err := gate.EnsureAdmin(ctx, adminSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateInstance(ctx, "acme", "sandbox"); err != nil {
		t.Fatal(err)
	}
	_, viewerSecret, err := gate.CreateClient(ctx, "acme", "viewer", herald.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateDesignerWebhook(ctx, "acme", &herald.DesignerWebhook{Name: "wh", Title: "Wh", Triggers: []herald.Trigger{{EventEntity: "PATIENT"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Publish(ctx, "acme", "", "test"); err != nil {
		t.Fatal(err)
	}
	u := "https://example.com/hook"
	if _, err := store.UpdateWebhook(ctx, "acme", "sandbox", "wh", herald.WebhookUpdate{URL: &u}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ActivateWebhook(ctx, "acme", "sandbox", "wh"); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, gate: gate, srv: srv, secrets: map[string]string{"admin": adminSecret, "viewer": viewerSecret}}
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t  *testing.T
	hc *http.Client
	e  *env
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, http.Header, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.e.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func (b *browser) post(path string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	resp, err := b.hc.PostForm(b.e.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// csrf returns the CSRF token of the forms on page path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, _, body := b.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("%s has no CSRF token:\n%s", path, body)
	}
	return m[1]
}

func (b *browser) signIn(client string) {
	b.t.Helper()
	tok := b.csrf("/ui/signin")
	status, h, body := b.post("/ui/signin", url.Values{"csrf": {tok}, "apiClient": {client}, "secret": {b.e.secrets[client]}, "next": {"/ui/"}})
	if status != http.StatusSeeOther || h.Get("Location") != "/ui/" {
		b.t.Fatalf("sign in: %d %s\n%s", status, h.Get("Location"), body)
	}
}

func TestHeadersAndSignIn(t *testing.T) {
	e := mustEnv(t)
	b := e.browser()
	status, h, _ := b.get("/ui/t/acme/designer")
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/signin?expired=1&next=%2Fui%2Ft%2Facme%2Fdesigner") {
		t.Fatalf("signed out: %d to %q, want the sign-in page", status, h.Get("Location"))
	}
	status, h, body := b.get("/ui/signin")
	if status != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || strings.Contains(body, "<script>") {
		t.Fatalf("sign-in page: %d %v", status, h)
	}
	tok := b.csrf("/ui/signin")
	status, _, body = b.post("/ui/signin", url.Values{"csrf": {tok}, "apiClient": {"admin"}, "secret": {"wrong"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "The API client name or secret is wrong.") || !strings.Contains(body, `value="admin"`) {
		t.Fatalf("wrong secret: %d\n%s", status, body)
	}
	status, _, _ = b.post("/ui/signin", url.Values{"apiClient": {"admin"}, "secret": {adminSecret}})
	if status != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF token: %d, want 403", status)
	}
	b.signIn("admin")
	for _, c := range b.hc.Jar.Cookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(e.srv.URL, "http://"), Path: "/ui/"}) {
		if c.Name == "herald_session" && c.Value == "" {
			t.Fatal("empty session cookie")
		}
	}
	if status, _, body = b.get("/ui/t/acme/i/sandbox/webhooks"); status != 200 || !strings.Contains(body, "Wh") {
		t.Fatalf("webhooks: %d\n%s", status, body)
	}
}

// TestCSRFAndRoles: forms without the session's CSRF token are refused
// whatever the role; a viewer's valid form is refused by the role matrix.
func TestCSRFAndRoles(t *testing.T) {
	e := mustEnv(t)
	admin := e.browser()
	admin.signIn("admin")
	path := "/ui/t/acme/i/sandbox/webhooks/wh/deactivate"
	status, _, body := admin.post(path, url.Values{})
	if status != http.StatusForbidden || !strings.Contains(body, "CSRF token is missing") {
		t.Fatalf("no CSRF token: %d\n%s", status, body)
	}
	viewer := e.browser()
	viewer.signIn("viewer")
	// Another session's token is no good either.
	status, _, _ = admin.post(path, url.Values{"csrf": {viewer.csrf("/ui/t/acme/designer")}})
	if status != http.StatusForbidden {
		t.Fatalf("another session's CSRF token: %d, want 403", status)
	}
	status, _, body = viewer.post(path, url.Values{"csrf": {viewer.csrf("/ui/t/acme/designer")}})
	if status != http.StatusForbidden || !strings.Contains(body, "has role viewer; this call needs role admin or platform-admin") {
		t.Fatalf("viewer deactivating: %d\n%s", status, body)
	}
	if wh, _ := e.store.GetWebhook(context.Background(), "acme", "sandbox", "wh"); !wh.Active {
		t.Fatal("a refused form deactivated the webhook")
	}
	status, h, _ := admin.post(path, url.Values{"csrf": {admin.csrf("/ui/t/acme/i/sandbox/webhooks/wh")}})
	if status != http.StatusSeeOther || !strings.HasSuffix(h.Get("Location"), "?done=deactivated") {
		t.Fatalf("admin deactivating: %d %v", status, h)
	}
}

// TestSettingsErrorsKeepTheForm: a refused setting is shown beside its
// field, with what was typed, as a 400.
func TestSettingsErrorsKeepTheForm(t *testing.T) {
	e := mustEnv(t)
	b := e.browser()
	b.signIn("admin")
	tok := b.csrf("/ui/t/acme/i/sandbox/webhooks/wh")
	status, _, body := b.post("/ui/t/acme/i/sandbox/webhooks/wh", url.Values{"csrf": {tok}, "url": {"ftp://nope"},
		"header_name": {"X-Key"}, "header_value": {"v<1>"}, "format": {"welkin"}, "timeout": {"30"}})
	if status != http.StatusBadRequest || !strings.Contains(body, "url must start with https:// or http://") ||
		!strings.Contains(body, `value="ftp://nope"`) || !strings.Contains(body, `value="v&lt;1&gt;"`) || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("bad url: %d\n%s", status, body)
	}
	if wh, _ := e.store.GetWebhook(context.Background(), "acme", "sandbox", "wh"); wh.URL != "https://example.com/hook" {
		t.Fatalf("a refused form changed the URL to %q", wh.URL)
	}
}

// TestPagesAreNotCached: every UI answer but the static assets says no
// cache may keep it; pages show events, deliveries and attempts.
func TestPagesAreNotCached(t *testing.T) {
	e := mustEnv(t)
	res, err := e.store.CreateEvents(context.Background(), []*herald.Event{{TenantName: "acme", InstanceName: "sandbox",
		Entity: "PATIENT", Subtype: "PATIENT_CREATED", PatientID: "pat-1", SourceID: "pat-1"}})
	if err != nil || len(res) != 1 {
		t.Fatal(res, err)
	}
	b := e.browser()
	if _, h, _ := b.get("/ui/t/acme/i/sandbox/deliveries"); h.Get("Cache-Control") != "no-store" { // signed out: a redirect
		t.Errorf("redirect to sign in: Cache-Control %q, want no-store", h.Get("Cache-Control"))
	}
	b.signIn("admin")
	list, _, _ := e.store.ListDeliveries(context.Background(), herald.DeliveryFilter{Tenant: "acme", Instance: "sandbox"})
	if len(list) != 1 {
		t.Fatalf("%d deliveries, want 1", len(list))
	}
	for _, p := range []string{"/ui/", "/ui/t/acme/i/sandbox/deliveries", "/ui/t/acme/i/sandbox/deliveries/" + list[0].ID,
		"/ui/t/acme/i/sandbox/events?q=pat-1", "/ui/t/acme/i/sandbox/webhooks/wh", "/ui/t/acme/i/sandbox/deliveries/dlv_nope", "/ui/nowhere"} {
		if status, h, _ := b.get(p); h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", p, status, h.Get("Cache-Control"))
		}
	}
	if status, h, _ := b.get("/ui/static/style.css"); status != 200 || h.Get("Cache-Control") == "no-store" {
		t.Errorf("static asset: %d, Cache-Control %q; want it cacheable", status, h.Get("Cache-Control"))
	}
}
