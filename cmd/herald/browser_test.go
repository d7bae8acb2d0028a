package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserWebhookLifecycle drives the web UI of the real binary in
// headless Chromium through a webhook's whole life: sign in, create it in
// the Designer, publish, set its URL in Admin, activate, send a test, see a
// delivery and its attempt in the log, rotate the secret, and sign out.
// With -update-screenshots it also photographs every page.
func TestBrowserWebhookLifecycle(t *testing.T) {
	p := startHerald(t, nil, append(sqliteArgs(t), "--ui-api-client-sign-in")...)
	api := p.client(t)
	mustDo(t, api, "POST", "/v1/tenants", map[string]any{"name": "acme"}, nil)
	mustDo(t, api, "POST", "/v1/tenants/acme/instances", map[string]any{"name": "sandbox"}, nil)
	mustDo(t, api, "POST", "/v1/tenants/acme/instances", map[string]any{"name": "live"}, nil)
	rcv := newReceiver(t)
	// Events about record "flaky" are refused, for the log and the chart
	// to show failures too.
	rcv.SetRespond(answer(func(n int, body map[string]any) int {
		if body["sourceId"] == "flaky" {
			return 503
		}
		return 200
	}))

	b := newBrowser(t, p.URL)
	b.open("/ui/")
	b.do("sign-in page", chromedp.WaitVisible(chromedp.CSS("#apiClient")))
	b.screenshot("signin")
	b.signIn("admin", testAdminSecret)
	b.mustContain("Tenants", "acme", "sandbox")
	b.screenshot("home")

	// Designer: an empty draft, then a new webhook, with a refused try first.
	b.open("/ui/t/acme/designer")
	b.mustContain("No webhooks in the draft")
	b.open("/ui/t/acme/designer/new")
	b.do("fill the new webhook with a bad name",
		chromedp.SetValue(chromedp.CSS("#name"), "Patient Sync"),
		chromedp.SetValue(chromedp.CSS("#title"), "Patient sync"),
		chromedp.Click(chromedp.CSS(`input[value="subtype:PATIENT_CREATED"]`)),
		chromedp.Click(chromedp.CSS(`input[value="entity:CDT"]`)),
	)
	// The browser would refuse the pattern itself; the server's answer is
	// what this checks.
	runB(b, "skip browser validation", chromedp.Evaluate[bool](`document.querySelector("form.card").noValidate = true`))
	b.submit(`form.card button[type=submit]`, `#form-error`)
	if msg := b.text("#form-error"); !strings.Contains(msg, `name "Patient Sync" is not a valid name`) {
		t.Fatalf("refused name: the form says %q", msg)
	}
	kept := runB(b, "kept values", chromedp.Evaluate[bool](`document.querySelector("#title").value === "Patient sync" &&
		document.querySelector('input[value="subtype:PATIENT_CREATED"]').checked`))
	if !kept {
		t.Fatal("the refused form did not keep the title and the chosen triggers")
	}
	b.do("fix the name", chromedp.SetValue(chromedp.CSS("#name"), "wh-patient-sync"))
	b.screenshot("designer-new")
	b.submit(`form.card button[type=submit]`, `//p[contains(@class,"flash")][contains(., "Webhook added")]`)
	b.mustContain("wh-patient-sync", "Patient sync", "PATIENT_CREATED", "every CDT event", "1 pending change")
	b.screenshot("designer")

	// Pending changes against the published version, then publish.
	b.open("/ui/t/acme/designer/changes")
	b.mustContain("created", "wh-patient-sync", "+ PATIENT_CREATED", "Nothing has been published yet")
	b.do("comment", chromedp.SetValue(chromedp.CSS("#comment"), "First webhook: patient sync"))
	b.screenshot("designer-changes")
	b.submit(`form[action$="/designer/publish"] button`, `//p[contains(@class,"flash")][contains(., "Published")]`)
	b.mustContain("v1", "First webhook: patient sync", "admin")
	b.screenshot("designer-versions")

	// Admin: the webhook is in the instance, inactive; give it a URL.
	b.open("/ui/t/acme/i/sandbox/webhooks")
	b.mustContain("Patient sync", "inactive", "not set")
	base := "/ui/t/acme/i/sandbox/webhooks/wh-patient-sync"
	b.open(base)
	b.submit(`form[action$="/activate"] button`, `#action-error`)
	if msg := b.text("#action-error"); !strings.Contains(msg, "URL") {
		t.Fatalf("activating without a URL: the page says %q", msg)
	}
	b.do("set the URL and a header",
		chromedp.SetValue(chromedp.CSS("#url"), rcv.URL+"/hook"),
		chromedp.SetValue(chromedp.CSS("#hn0"), "X-Team"),
		chromedp.SetValue(chromedp.CSS("#hv0"), "care-ops"),
	)
	b.submit(`form.settings button[type=submit]`, `//p[contains(@class,"flash")][contains(., "Settings saved")]`)
	if v := runB(b, "saved URL", chromedp.Value(chromedp.CSS("#url"))); v != rcv.URL+"/hook" {
		t.Fatalf("URL after saving = %q, want %q", v, rcv.URL+"/hook")
	}
	b.submit(`form[action$="/activate"] button`, `//p[contains(@class,"flash")][contains(., "activated")]`)
	if badge := b.text(".status-line .badge"); badge != "active" {
		t.Fatalf("status after activating: %q, want active", badge)
	}

	// Reveal the secret (a POST), so the receiver can verify, then test.
	b.submit(`form[action$="/secret"] button`, `#secret-value`)
	secret := runB(b, "secret", chromedp.Value(chromedp.CSS("#secret-value")))
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("revealed secret %q", secret)
	}
	rcv.SetSecrets(secret)
	b.submit(`form[action$="/test"] button`, `#test-result`)
	if res := b.text("#test-result"); !strings.Contains(res, "answered 200") || !strings.Contains(res, "answered 200 in") {
		t.Fatalf("test result: %q", res)
	}

	// Events through the API; the UI shows their deliveries.
	inst := "/v1/tenants/acme/instances/sandbox"
	var ok struct{ EventID string }
	mustDo(t, api, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "p-1",
		"patientId": "p-1", "sourceName": "Jane Doe"}, &ok)
	mustDo(t, api, "POST", inst+"/events", map[string]any{"eventSubtype": "CDT_UPDATED", "sourceId": "flaky"}, nil)
	for i := range 4 {
		mustDo(t, api, "POST", inst+"/events", map[string]any{"eventSubtype": "CDT_CREATED", "sourceId": "cdt-" + string(rune('a'+i))}, nil)
	}
	rcv.WaitDelivered(t, 15*time.Second, ok.EventID)
	waitDeliveries(t, api, inst, "status=DELIVERED", 5)
	waitDeliveries(t, api, inst, "status=RETRYING", 1)

	b.open(base)
	b.mustContain("Attempts per minute", "delivered 5", "rejected")
	b.screenshot("webhook")
	b.phone(func() {
		b.open(base)
		b.fitsWidth("the webhook page")
		b.screenshot("webhook-phone")
	})

	b.open("/ui/t/acme/i/sandbox/webhooks")
	if badge := b.text("tbody .badge"); badge != "active" {
		t.Fatalf("the webhooks list shows %q, want active", badge)
	}
	b.mustContain("5 of ")
	b.screenshot("webhooks")

	b.open("/ui/t/acme/i/sandbox/deliveries")
	b.mustContain("DELIVERED", "RETRYING", "CDT_UPDATED")
	b.screenshot("deliveries")
	b.phone(func() {
		b.open("/ui/t/acme/i/sandbox/deliveries")
		b.fitsWidth("the delivery log")
		b.screenshot("deliveries-phone")
	})
	b.open("/ui/t/acme/i/sandbox/deliveries?status=RETRYING")
	b.mustContain("RETRYING", "503")
	if rows := b.text("tbody"); strings.Contains(rows, "DELIVERED") || !strings.Contains(rows, "RETRYING") {
		t.Fatal("the status filter RETRYING still lists DELIVERED deliveries")
	}
	b.open("/ui/t/acme/i/sandbox/deliveries?eventSubtype=PATIENT_CREATED")
	b.do("open the delivery", chromedp.Click(chromedp.CSS("tbody a")), chromedp.WaitVisible(chromedp.CSS("#delivery-status")))
	b.mustContain("DELIVERED", "Attempt 1", "200", "answered 200", ok.EventID, "Jane Doe")
	if hdrs := runB(b, "request headers", chromedp.TextContent(chromedp.CSS(".attempt details"))); !strings.Contains(hdrs, "webhook-id") ||
		!strings.Contains(hdrs, ok.EventID) || !strings.Contains(hdrs, "X-Team") || !strings.Contains(hdrs, "care-ops") {
		t.Fatalf("request headers of the attempt: %q", hdrs)
	}
	b.screenshot("delivery")

	// The failing delivery says why it waits and until when; resend it.
	b.open("/ui/t/acme/i/sandbox/deliveries?status=RETRYING")
	b.do("open the retrying delivery", chromedp.Click(chromedp.CSS("tbody a")), chromedp.WaitVisible(chromedp.CSS("#delivery-status")))
	b.mustContain("Waits until", "Why", "503")
	b.submit(`form[action$="/resend"] button`, `//p[contains(@class,"flash")][contains(., "queued again")]`)

	// Events view: by source id, with the event's deliveries.
	b.open("/ui/t/acme/i/sandbox/events?q=p-1")
	b.mustContain(ok.EventID, "Jane Doe", "wh-patient-sync", "DELIVERED")
	b.screenshot("events")

	// Rotate the secret: a new one is shown, the old one still signs.
	b.open(base)
	b.do("grace of a day", chromedp.SetValue(chromedp.CSS("#grace"), "86400"))
	b.submit(`form[action$="/secret/rotate"] button`, `//p[contains(@class,"flash")][contains(., "Secret rotated")]`)
	rotated := runB(b, "new secret", chromedp.Value(chromedp.CSS("#secret-value")))
	if !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Fatalf("rotated secret %q (old %q)", rotated, secret)
	}
	b.mustContain("New secret", "old secret until")
	// Requests verify with the new secret, and with the old one during
	// the grace: a receiver switches at its own pace.
	for _, s := range []string{rotated, secret} {
		rcv.SetSecrets(s)
		var ev2 struct{ EventID string }
		mustDo(t, api, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "p-2"}, &ev2)
		rcv.WaitDelivered(t, 15*time.Second, ev2.EventID)
	}

	// Deactivate with a reason on record.
	b.submit(`form[action$="/deactivate"] button`, `//p[contains(@class,"flash")][contains(., "deactivated")]`)
	b.mustContain("deactivated by admin in the web UI")

	// API clients: create one, its secret is shown once and works; delete
	// it after confirming.
	b.open("/ui/t/acme/api-clients")
	b.do("new client", chromedp.SetValue(chromedp.CSS("#client-name"), "ehr-sync"), chromedp.SetValue(chromedp.CSS("#client-role"), "producer"))
	b.submit(`form[action="/ui/t/acme/api-clients"] button`, `#secret-value`)
	clientSecret := runB(b, "client secret", chromedp.Value(chromedp.CSS("#secret-value")))
	producer := newAPIClient(p.URL)
	if err := producer.login(context.Background(), "ehr-sync", clientSecret); err != nil {
		t.Fatalf("the secret the page showed: %v", err)
	}
	b.screenshot("api-clients")
	b.do("delete", chromedp.Click(chromedp.CSS(`a[href="/ui/t/acme/api-clients/ehr-sync/delete"]`)), chromedp.WaitVisible(chromedp.CSS(".danger-zone")))
	b.mustContain("cannot be undone")
	b.submit(`.danger-zone button`, `//p[contains(@class,"flash")][contains(., "API client deleted")]`)
	if _, err := producer.do(context.Background(), "GET", inst+"/deliveries", nil, nil); err == nil || !strings.Contains(err.Error(), "was deleted") {
		t.Fatalf("the deleted client's token: %v", err)
	}

	// Sign out: the session's token is revoked.
	b.submit(`form[action="/ui/signout"] button`, `//p[contains(., "You are signed out")]`)
	b.open("/ui/t/acme/designer")
	b.do("signed out: back to sign-in", chromedp.WaitVisible(chromedp.CSS("#apiClient")))
	b.noDialogs()
}

// TestBrowserRefusesWhatItShould checks the defences with the browser:
// a form post without a CSRF token is refused with a clear 403, event
// fields are text and never markup, and no page loads a script of
// anyone else's nor runs an inline one.
func TestBrowserRefusesWhatItShould(t *testing.T) {
	p := startHerald(t, nil, append(sqliteArgs(t), "--ui-api-client-sign-in")...)
	api := p.client(t)
	rcv := newReceiver(t)
	inst, secret := setupWebhook(t, api, rcv.URL+"/hook")
	rcv.SetSecrets(secret)
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	var res struct{ EventID string }
	mustDo(t, api, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "xss-1",
		"sourceName": evil, "patientId": "p-9"}, &res)
	rcv.WaitDelivered(t, 15*time.Second, res.EventID)

	b := newBrowser(t, p.URL)
	b.signIn("admin", testAdminSecret)

	// A POST without the token, as another site's form would send it.
	got := runB(b, "post without a CSRF token", chromedp.Evaluate[[]any](`fetch("/ui/t/acme/i/sandbox/webhooks/wh-patient-sync/deactivate",
		{method: "POST", body: new URLSearchParams({reason: "x"})}).then(async r => [r.status, await r.text()])`, chromedp.EvalAwaitPromise))
	if len(got) != 2 || got[0] != float64(403) || !strings.Contains(got[1].(string), "CSRF token is missing") {
		t.Fatalf("POST without CSRF token: %v", got)
	}
	// And with a wrong one.
	got = runB(b, "post with a wrong CSRF token", chromedp.Evaluate[[]any](`fetch("/ui/t/acme/i/sandbox/webhooks/wh-patient-sync/deactivate",
		{method: "POST", body: new URLSearchParams({csrf: "forged"})}).then(async r => [r.status, await r.text()])`, chromedp.EvalAwaitPromise))
	if len(got) != 2 || got[0] != float64(403) {
		t.Fatalf("POST with a forged CSRF token: %v", got)
	}
	var wh struct{ Active bool }
	mustDo(t, api, "GET", inst+"/webhooks/wh-patient-sync", nil, &wh)
	if !wh.Active {
		t.Fatal("a POST without a valid CSRF token deactivated the webhook")
	}
	b.open("/ui/t/acme/i/sandbox/webhooks/wh-patient-sync/deactivate") // GET: no such page
	b.mustContain("Not found")

	// The event's fields are shown as text, in the events view and the
	// delivery page, and nothing ran.
	for _, path := range []string{"/ui/t/acme/i/sandbox/events?q=xss-1", "/ui/t/acme/i/sandbox/events?q=" + res.EventID} {
		b.open(path)
		if shown := b.text(".source-name"); shown != evil {
			t.Fatalf("%s shows the source name as %q, want the text %q", path, shown, evil)
		}
		if n := runB(b, "scripts and images in main", chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`)); n != 0 {
			t.Fatalf("%s: the event's source name became %d elements", path, n)
		}
	}
	b.do("open the delivery", chromedp.Click(chromedp.CSS(".event tbody a")), chromedp.WaitVisible(chromedp.CSS("#delivery-status")))
	if shown := b.text(".source-name"); shown != evil {
		t.Fatalf("the delivery page shows the source name as %q", shown)
	}
	scripts := runB(b, "scripts", chromedp.Evaluate[[]string](`Array.from(document.scripts).map(s => s.src || "inline")`))
	if len(scripts) != 1 || scripts[0] != p.URL+"/ui/static/app.js" {
		t.Fatalf("the page's scripts are %q, want only /ui/static/app.js", scripts)
	}
	b.noDialogs()

	// A producer may read the log but not the webhooks, nor change anything.
	var created struct{ Secret string }
	mustDo(t, api, "POST", "/v1/tenants/acme/api-clients", map[string]any{"name": "ehr-sync", "role": "producer"}, &created)
	b.submit(`form[action="/ui/signout"] button`, `//p[contains(., "You are signed out")]`)
	b.signIn("ehr-sync", created.Secret)
	b.open("/ui/t/acme/i/sandbox/webhooks")
	b.mustContain("Not allowed", `API client "ehr-sync" has role producer; this call needs role admin, designer, viewer or platform-admin.`)
	b.open("/ui/t/acme/i/sandbox/deliveries")
	b.mustContain("DELIVERED")
	b.open("/ui/t/globex/designer")
	b.mustContain("cannot act on tenant")
	b.screenshot("forbidden")
}
