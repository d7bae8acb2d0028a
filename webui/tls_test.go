package webui_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/webui"
)

// Behind a TLS proxy (SecureCookies) every cookie is Secure although the
// request reached Herald over plain HTTP; without it, only cookies of
// requests made over TLS are.
func TestSecureCookies(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := mustEnv(t, func(c *webui.Config) { c.SecureCookies = secure })
		resp, err := http.Get(e.srv.URL + "/ui/signin")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var pre *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "herald_pre" {
				pre = c
			}
		}
		if pre == nil || pre.Secure != secure || !pre.HttpOnly {
			t.Fatalf("SecureCookies %t: herald_pre cookie %v, want Secure %t and HttpOnly", secure, pre, secure)
		}

		// Sign in by hand: a cookie jar keeps Secure cookies off plain HTTP.
		b := e.browser()
		page, _ := http.NewRequest("GET", e.srv.URL+"/ui/signin", nil)
		page.AddCookie(pre)
		resp, err = b.hc.Do(page)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		tok := csrfRE.FindStringSubmatch(body)
		if tok == nil {
			t.Fatalf("no CSRF token on the sign-in page:\n%s", body)
		}
		form := url.Values{"csrf": {tok[1]}, "apiClient": {"admin"}, "secret": {adminSecret}, "next": {"/ui/"}}
		req, _ := http.NewRequest("POST", e.srv.URL+"/ui/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(pre)
		resp, err = b.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "herald_session" {
				session = c
			}
		}
		if resp.StatusCode != http.StatusSeeOther || session == nil || session.Secure != secure {
			t.Fatalf("SecureCookies %t: sign-in answered %d with session cookie %v", secure, resp.StatusCode, session)
		}
	}
}

// With RequireHTTPSDestinations the settings form refuses an http:// URL
// beside the URL field, and stores nothing.
func TestSettingsRequireHTTPS(t *testing.T) {
	e := mustEnv(t, func(c *webui.Config) { c.RequireHTTPSDestinations = true })
	b := e.browser()
	b.signIn("admin")
	path := "/ui/t/acme/i/sandbox/webhooks/wh"
	status, _, body := b.post(path, url.Values{"csrf": {b.csrf(path)}, "url": {"http://example.com/hook"}, "format": {"welkin"}, "timeout": {"30"}})
	if status != http.StatusBadRequest || !strings.Contains(body, "url must start with https://") || !strings.Contains(body, "--require-https-destinations") {
		t.Fatalf("http:// url: %d\n%s", status, body)
	}
	if wh, _ := e.store.GetWebhook(context.Background(), "acme", "sandbox", "wh"); wh.URL != "https://example.com/hook" {
		t.Fatalf("a refused form changed the URL to %q", wh.URL)
	}
	status, _, _ = b.post(path, url.Values{"csrf": {b.csrf(path)}, "url": {"https://example.com/other"}, "format": {"welkin"}, "timeout": {"30"}})
	if status != http.StatusSeeOther {
		t.Fatalf("https:// url: %d", status)
	}
}

// The settings form sets, keeps and removes the client certificate; the
// key is never sent to the browser.
func TestSettingsClientCertificate(t *testing.T) {
	e := mustEnv(t)
	b := e.browser()
	b.signIn("admin")
	path := "/ui/t/acme/i/sandbox/webhooks/wh"
	ca := heraldtest.NewCA(t)
	pair, other := ca.Issue(t, "client"), ca.Issue(t, "other")
	save := func(cert, key string) (int, string) {
		t.Helper()
		status, _, body := b.post(path, url.Values{"csrf": {b.csrf(path)}, "url": {"https://example.com/hook"}, "format": {"welkin"},
			"timeout": {"30"}, "client_certificate": {cert}, "client_key": {key}})
		return status, body
	}
	stored := func() (cert, key string) {
		wh, err := e.store.GetWebhook(context.Background(), "acme", "sandbox", "wh")
		if err != nil {
			t.Fatal(err)
		}
		return wh.ClientCertificate, string(wh.ClientKey)
	}
	keyLine := strings.Split(string(pair.KeyPEM), "\n")[1]

	if status, body := save(string(pair.CertPEM), string(pair.KeyPEM)); status != http.StatusSeeOther {
		t.Fatalf("set the pair: %d\n%s", status, body)
	}
	if c, k := stored(); c != string(pair.CertPEM) || k != string(pair.KeyPEM) {
		t.Fatal("the pair was not stored")
	}
	_, _, page := b.get(path)
	page = html.UnescapeString(page) // html/template writes + as &#43;
	if !strings.Contains(page, strings.Split(string(pair.CertPEM), "\n")[1]) || !strings.Contains(page, "A key is stored") || strings.Contains(page, keyLine) {
		t.Fatalf("the page should show the certificate and that a key is stored, never the key:\n%s", page)
	}
	// Saving with the key left empty keeps it.
	if status, _ := save(string(pair.CertPEM), ""); status != http.StatusSeeOther {
		t.Fatalf("save with an empty key: %d", status)
	}
	if _, k := stored(); k != string(pair.KeyPEM) {
		t.Fatal("an empty key field dropped the stored key")
	}
	// Another certificate without its key is refused beside the field.
	status, body := save(string(other.CertPEM), "")
	body = html.UnescapeString(body)
	if status != http.StatusBadRequest || !strings.Contains(body, "clientKey does not go with clientCertificate") || strings.Contains(body, keyLine) {
		t.Fatalf("certificate without its key: %d\n%s", status, body)
	}
	// An empty certificate removes the pair.
	if status, _ := save("", ""); status != http.StatusSeeOther {
		t.Fatalf("remove: %d", status)
	}
	if c, k := stored(); c != "" || k != "" {
		t.Fatal("an empty certificate did not remove the pair")
	}
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
