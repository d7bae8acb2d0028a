package webui_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/webui"
	"github.com/prometheus/client_golang/prometheus"
)

// addClient creates an API client of acme with role and keeps its secret
// for signIn.
func (e *env) addClient(name string, role herald.Role) {
	e.t.Helper()
	_, secret, err := e.gate.CreateClient(context.Background(), "acme", name, role)
	if err != nil {
		e.t.Fatal(err)
	}
	e.secrets[name] = secret
}

// form posts values with the CSRF token of page to path.
func (b *browser) form(page, path string, values url.Values) (int, http.Header, string) {
	b.t.Helper()
	if values == nil {
		values = url.Values{}
	}
	values.Set("csrf", b.csrf(page))
	return b.post(path, values)
}

// wantRedirect fails unless status is 303 to location.
func wantRedirect(t *testing.T, what string, status int, h http.Header, body, location string) {
	t.Helper()
	if status != http.StatusSeeOther || h.Get("Location") != location {
		t.Fatalf("%s: %d to %q, want 303 to %q\n%.2000s", what, status, h.Get("Location"), location, body)
	}
}

// wantPage fails unless the page has status and shows every text (as a
// person reads it: HTML entities decoded).
func wantPage(t *testing.T, what string, status int, body string, wantStatus int, texts ...string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d\n%.3000s", what, status, wantStatus, body)
	}
	plain := html.UnescapeString(body)
	for _, s := range texts {
		if !strings.Contains(plain, s) {
			t.Fatalf("%s: the page does not show %q\n%.3000s", what, s, body)
		}
	}
}

func auditEntries(t *testing.T, e *env, action string) []*herald.AuditEntry {
	t.Helper()
	list, _, err := e.store.ListAudit(context.Background(), herald.AuditFilter{Tenant: "acme", Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestDesignerForms walks a designer through the draft: add a webhook,
// edit it, delete another, see the pending changes and publish, with the
// refusals shown beside the form.
func TestDesignerForms(t *testing.T) {
	e := mustEnv(t)
	e.addClient("designer", herald.RoleDesigner)
	b := e.browser()
	b.signIn("designer")
	ctx := context.Background()
	const base = "/ui/t/acme/designer"

	status, _, body := b.get(base + "/new")
	wantPage(t, "new form", status, body, 200, `name="name"`, `value="entity:PATIENT"`, `value="subtype:CDT_CREATED"`)

	// Add.
	status, h, body := b.form(base+"/new", base+"/new", url.Values{"name": {" wh-cdt "}, "title": {"CDT sync"},
		"trigger": {"entity:CDT", "subtype:PATIENT_CREATED"}})
	wantRedirect(t, "create", status, h, body, base+"?done=created")
	got, err := e.store.GetDesignerWebhook(ctx, "acme", "wh-cdt")
	if err != nil || got.Title != "CDT sync" || len(got.Triggers) != 2 || got.Triggers[0] != (herald.Trigger{EventEntity: "CDT"}) ||
		got.Triggers[1] != (herald.Trigger{EventSubtype: "PATIENT_CREATED"}) {
		t.Fatalf("created webhook %+v, %v", got, err)
	}
	status, _, body = b.get(base + "?done=created")
	wantPage(t, "designer after create", status, body, 200, "Webhook added to the draft", "wh-cdt", "CDT sync")

	// Refusals keep what was typed and name the field.
	status, _, body = b.form(base+"/new", base+"/new", url.Values{"name": {"wh-cdt"}, "title": {"Again"}, "trigger": {"entity:CDT"}})
	wantPage(t, "create a taken name", status, body, http.StatusConflict, `designer webhook "wh-cdt" already exists`, `value="Again"`)
	if !regexp.MustCompile(`id="name" name="name" value="wh-cdt"[^>]*aria-invalid="true"`).MatchString(body) {
		t.Errorf("create a taken name: the name field is not marked invalid\n%s", body)
	}
	status, _, body = b.form(base+"/new", base+"/new", url.Values{"name": {"wh-none"}, "title": {"No triggers"}})
	wantPage(t, "create without triggers", status, body, http.StatusBadRequest, "triggers needs at least one trigger", `value="wh-none"`)
	status, _, body = b.form(base+"/new", base+"/new", url.Values{"name": {"Bad Name"}, "title": {"x"}, "trigger": {"entity:CDT"}})
	wantPage(t, "create with a bad name", status, body, http.StatusBadRequest, "name")
	if _, err := e.store.GetDesignerWebhook(ctx, "acme", "wh-none"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Errorf("a refused form created wh-none: %v", err)
	}

	// Edit shows what is stored.
	edit := base + "/webhooks/wh-cdt"
	status, _, body = b.get(edit)
	wantPage(t, "edit form", status, body, 200, `value="CDT sync"`, `value="entity:CDT" checked`, `value="subtype:PATIENT_CREATED" checked`, "Delete from draft")
	if strings.Contains(body, `value="entity:PATIENT" checked`) {
		t.Errorf("edit form ticks a trigger the webhook does not have")
	}
	status, h, body = b.form(edit, edit, url.Values{"title": {"CDT and tasks"}, "trigger": {"entity:CDT", "entity:TASK"}})
	wantRedirect(t, "update", status, h, body, base+"?done=updated")
	got, _ = e.store.GetDesignerWebhook(ctx, "acme", "wh-cdt")
	if got.Title != "CDT and tasks" || len(got.Triggers) != 2 || got.Triggers[1] != (herald.Trigger{EventEntity: "TASK"}) {
		t.Fatalf("updated webhook %+v", got)
	}
	entries := auditEntries(t, e, "designer.webhook.update")
	if len(entries) != 1 || entries[0].Actor != "designer" || !strings.Contains(string(entries[0].Diff), `"title":{"old":"CDT sync","new":"CDT and tasks"}`) {
		t.Fatalf("audit of the update: %+v", entries)
	}
	status, _, body = b.form(edit, edit, url.Values{"title": {"Nothing"}})
	wantPage(t, "update without triggers", status, body, http.StatusBadRequest, "triggers needs at least one trigger", `value="Nothing"`)
	if got, _ := e.store.GetDesignerWebhook(ctx, "acme", "wh-cdt"); got.Title != "CDT and tasks" {
		t.Errorf("a refused update changed the title to %q", got.Title)
	}
	if len(auditEntries(t, e, "designer.webhook.update")) != 1 {
		t.Errorf("a refused update is on record")
	}
	status, _, body = b.form(edit, base+"/webhooks/wh-gone", url.Values{"title": {"x"}, "trigger": {"entity:CDT"}})
	wantPage(t, "update of an unknown webhook", status, body, http.StatusNotFound, `designer webhook "wh-gone" not found`)

	// Delete.
	status, h, body = b.form(base, base+"/webhooks/wh/delete", nil)
	wantRedirect(t, "delete", status, h, body, base+"?done=deleted")
	if _, err := e.store.GetDesignerWebhook(ctx, "acme", "wh"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("deleted webhook still in the draft: %v", err)
	}
	status, _, body = b.get(base + "?done=deleted")
	wantPage(t, "designer after delete", status, body, 200, "Webhook removed from the draft", "Deleted in the draft (still live until published): <code>wh</code>")
	status, _, body = b.form(base, base+"/webhooks/wh/delete", nil)
	wantPage(t, "delete again", status, body, http.StatusNotFound)

	// Pending changes, then publish.
	status, _, body = b.get(base + "/changes")
	wantPage(t, "changes", status, body, 200, "wh-cdt", "wh", "created", "deleted")
	status, _, body = b.form(base+"/changes", base+"/publish", url.Values{"comment": {strings.Repeat("c", 1001)}})
	wantPage(t, "publish with a long comment", status, body, http.StatusBadRequest, "The comment is 1001 characters long; the limit is 1000.")
	status, h, body = b.form(base+"/changes", base+"/publish", url.Values{"comment": {"CDT sync replaces wh"}})
	wantRedirect(t, "publish", status, h, body, base+"/versions?done=published")
	versions, err := e.store.ListVersions(ctx, "acme")
	if err != nil || len(versions) != 2 || versions[0].Version != 2 || versions[0].Comment != "CDT sync replaces wh" || versions[0].PublishedBy != "designer" {
		t.Fatalf("versions after publishing: %+v, %v", versions, err)
	}
	status, _, body = b.get(base + "/versions?done=published")
	wantPage(t, "versions", status, body, 200, "Published. Every instance has the new version", "CDT sync replaces wh")
	if _, err := e.store.GetWebhook(ctx, "acme", "sandbox", "wh-cdt"); err != nil {
		t.Errorf("the published webhook is not in the instance: %v", err)
	}
	status, _, body = b.form(base+"/changes", base+"/publish", url.Values{"comment": {"again"}})
	wantPage(t, "publish with nothing changed", status, body, http.StatusConflict, "nothing to publish: the draft has no changes since version 2.")
}

// TestDesignerFormsForAViewer: a viewer sees the draft but cannot change
// it, neither through the page (no buttons) nor by posting the form.
func TestDesignerFormsForAViewer(t *testing.T) {
	e := mustEnv(t)
	b := e.browser()
	b.signIn("viewer")
	edit := "/ui/t/acme/designer/webhooks/wh"
	status, _, body := b.get(edit)
	wantPage(t, "edit form", status, body, 200, `value="Wh"`, `value="entity:PATIENT" checked`)
	if strings.Contains(body, "Save to draft") || strings.Contains(body, "Delete from draft") {
		t.Errorf("a viewer is offered to change the draft")
	}
	for _, path := range []string{edit, edit + "/delete", "/ui/t/acme/designer/new", "/ui/t/acme/designer/publish"} {
		status, _, body := b.form(edit, path, url.Values{"name": {"wh-x"}, "title": {"x"}, "trigger": {"entity:CDT"}})
		wantPage(t, "viewer posting "+path, status, body, http.StatusForbidden, "has role viewer")
	}
	if got, _ := e.store.GetDesignerWebhook(context.Background(), "acme", "wh"); got == nil || got.Title != "Wh" {
		t.Errorf("a viewer changed the draft: %+v", got)
	}
}

// TestRecoverForm: deliveries cancelled by a deactivation come back with
// the recover form once the webhook is active again.
func TestRecoverForm(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/i/sandbox/webhooks/wh"
	if _, err := e.store.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "sandbox", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}}); err != nil {
		t.Fatal(err)
	}
	status, h, body := b.form(page, page+"/deactivate", nil)
	wantRedirect(t, "deactivate", status, h, body, page+"?done=deactivated")
	list, _, _ := e.store.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "sandbox"})
	if len(list) != 1 || list[0].Status != herald.StatusCancelled {
		t.Fatalf("after deactivating: %+v", list)
	}
	status, _, body = b.get(page + "?done=deactivated")
	wantPage(t, "page after deactivating", status, body, 200, "Webhook deactivated", "deactivated by admin in the web UI")

	status, _, body = b.form(page, page+"/recover", url.Values{"since": {"2000-01-01T00:00"}})
	wantPage(t, "recover while inactive", status, body, http.StatusUnprocessableEntity, `webhook "wh" is inactive; activate it before recovering`, `value="2000-01-01T00:00"`)

	status, h, body = b.form(page, page+"/activate", nil)
	wantRedirect(t, "activate", status, h, body, page+"?done=activated")

	for _, tc := range []struct{ since, msg string }{
		{"", "Give the time from which to recover deliveries (UTC)."},
		{"yesterday", `Since "yesterday" is not a date and time; use the form 2026-11-26T17:00 (UTC).`},
	} {
		status, _, body = b.form(page, page+"/recover", url.Values{"since": {tc.since}})
		wantPage(t, "recover since "+tc.since, status, body, http.StatusBadRequest, tc.msg)
	}
	status, _, body = b.form(page, page+"/recover", url.Values{"since": {"2100-01-01T00:00"}})
	wantPage(t, "recover since the future", status, body, 200, "Recovered 0 failed or cancelled deliveries")
	status, _, body = b.form(page, page+"/recover", url.Values{"since": {"2000-01-01T00:00"}})
	wantPage(t, "recover", status, body, 200, "Recovered 1 failed or cancelled deliveries made since 2000-01-01")
	d, err := e.store.GetDelivery(ctx, "acme", "sandbox", list[0].ID)
	if err != nil || d.Status != herald.StatusPending || d.WaitReason != "recovered" {
		t.Fatalf("recovered delivery: %+v, %v", d, err)
	}
	entries := auditEntries(t, e, "webhook.recover")
	if len(entries) != 2 || !strings.Contains(string(entries[0].Diff), `"recovered":1`) {
		t.Errorf("audit of the recoveries: %d entries, newest %s", len(entries), entries[0].Diff)
	}
}

// TestWebhookActionsWithoutURL: a webhook published without a URL cannot
// be activated or tested, and the page says what to do instead.
func TestWebhookActionsWithoutURL(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	if err := e.store.CreateDesignerWebhook(ctx, "acme", &herald.DesignerWebhook{Name: "wh-new", Title: "New", Triggers: []herald.Trigger{{EventEntity: "CDT"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Publish(ctx, "acme", "", "test"); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/i/sandbox/webhooks/wh-new"
	status, _, body := b.form(page, page+"/activate", nil)
	wantPage(t, "activate without URL", status, body, http.StatusUnprocessableEntity, "This webhook has no URL yet, so it cannot be activated")
	status, _, body = b.form(page, page+"/test", nil)
	wantPage(t, "test without URL", status, body, http.StatusUnprocessableEntity, "This webhook has no URL to send a test to")
	if w, _ := e.store.GetWebhook(ctx, "acme", "sandbox", "wh-new"); w.Active {
		t.Error("activated without a URL")
	}
	status, _, body = b.form(page, "/ui/t/acme/i/sandbox/webhooks/wh-nope/activate", nil)
	wantPage(t, "activate an unknown webhook", status, body, http.StatusNotFound)
}

// TestSecretForms: the secret is revealed only by a POST, and a rotation
// shows the new one and says how long the old one keeps signing.
func TestSecretForms(t *testing.T) {
	clock := heraldtest.NewClock(time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC))
	e := mustEnv(t, func(c *webui.Config) { c.Now = clock.Now })
	ctx := context.Background()
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/i/sandbox/webhooks/wh"
	secrets, err := e.store.WebhookSecrets(ctx, "acme", "sandbox", "wh")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, body := b.get(page); strings.Contains(html.UnescapeString(body), secrets[0].Secret) {
		t.Fatal("the webhook page shows the secret without being asked")
	}
	status, _, body := b.form(page, page+"/secret", nil)
	wantPage(t, "reveal", status, body, 200, `value="`+secrets[0].Secret+`"`, "Current secret")

	status, _, body = b.form(page, page+"/secret/rotate", url.Values{"grace": {"86400"}})
	wantPage(t, "rotate with a day's grace", status, body, 200, "New secret",
		"Requests carry the signatures of the new and the old secret until 2026-11-27 17:00")
	after, _ := e.store.WebhookSecrets(ctx, "acme", "sandbox", "wh")
	if len(after) != 2 || after[1].Secret != secrets[0].Secret || !strings.Contains(html.UnescapeString(body), `value="`+after[0].Secret+`"`) {
		t.Fatalf("after rotating: %+v (before %+v); the page shows the new one: %v", after, secrets, strings.Contains(html.UnescapeString(body), after[0].Secret))
	}
	status, _, body = b.form(page, page+"/secret", nil)
	wantPage(t, "reveal within the grace", status, body, 200, "A previous secret keeps signing until")

	status, _, body = b.form(page, page+"/secret/rotate", url.Values{"grace": {"42"}})
	wantPage(t, "rotate with a grace not offered", status, body, http.StatusBadRequest, "Choose how long the old secret keeps signing")
	status, _, body = b.form(page, page+"/secret/rotate", url.Values{"grace": {"0"}})
	wantPage(t, "rotate without grace", status, body, 200, "Secret rotated. The old secret stopped signing at once.")
	if now, _ := e.store.WebhookSecrets(ctx, "acme", "sandbox", "wh"); len(now) != 1 {
		t.Errorf("after a rotation without grace: %d secrets sign, want 1", len(now))
	}
	if entries := auditEntries(t, e, "webhook.secret.rotate"); len(entries) != 2 {
		t.Errorf("%d rotations on record, want 2", len(entries))
	}
}

// TestSendTestForm sends the test request to a receiver on loopback
// through the real engine and shows its answer.
func TestSendTestForm(t *testing.T) {
	var mu sync.Mutex
	var got map[string]any
	var sig string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &got)
		sig = r.Header.Get("webhook-signature")
		io.WriteString(w, "thanks <b>")
	}))
	t.Cleanup(rc.Close)
	var eng *dispatch.Engine
	e := mustEnv(t, func(c *webui.Config, store *sqlstore.DB) {
		var err error
		eng, err = dispatch.New(dispatch.Config{Store: store, Destinations: netguard.Policy{AllowPrivate: true},
			Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		c.Tester = eng
	})
	ctx := context.Background()
	if _, err := e.store.UpdateWebhook(ctx, "acme", "sandbox", "wh", herald.WebhookUpdate{URL: &rc.URL}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/i/sandbox/webhooks/wh"
	status, _, body := b.form(page, page+"/test", nil)
	wantPage(t, "send test", status, body, 200, `id="test-result"`, "The receiver answered <strong>200</strong>", "thanks <b>")
	if strings.Contains(body, "thanks <b>") {
		t.Error("the receiver's answer is shown as HTML")
	}
	mu.Lock()
	defer mu.Unlock()
	if got["sourceId"] != "SOURCE_ID" || got["tenantName"] != "acme" || got["instanceName"] != "sandbox" || !strings.HasPrefix(sig, "v1,") {
		t.Errorf("the receiver got %v signed %q", got, sig)
	}
	if list, _, _ := e.store.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "sandbox"}); len(list) != 0 {
		t.Errorf("the test is in the delivery log: %d deliveries", len(list))
	}
}

func TestSendTestWithoutTester(t *testing.T) {
	e := mustEnv(t)
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/i/sandbox/webhooks/wh"
	status, _, body := b.form(page, page+"/test", nil)
	wantPage(t, "send test", status, body, http.StatusUnprocessableEntity, "Test sending is not available on this node.")
}

// TestResendForm: a cancelled delivery is queued again from its page; one
// of an inactive webhook is refused there with the reason.
func TestResendForm(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	if _, err := e.store.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "sandbox", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DeactivateWebhook(ctx, "acme", "sandbox", "wh", ""); err != nil {
		t.Fatal(err)
	}
	list, _, _ := e.store.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "sandbox"})
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/i/sandbox/deliveries/" + list[0].ID
	status, _, body := b.form(page, page+"/resend", nil)
	wantPage(t, "resend while inactive", status, body, http.StatusUnprocessableEntity, `webhook "wh" is inactive; activate it before resending`)
	if _, err := e.store.ActivateWebhook(ctx, "acme", "sandbox", "wh"); err != nil {
		t.Fatal(err)
	}
	status, h, body := b.form(page, page+"/resend", nil)
	wantRedirect(t, "resend", status, h, body, page+"?done=resent")
	if d, _ := e.store.GetDelivery(ctx, "acme", "sandbox", list[0].ID); d.Status != herald.StatusPending {
		t.Errorf("resent delivery is %s, want PENDING", d.Status)
	}
	status, _, body = b.get(page + "?done=resent")
	wantPage(t, "delivery after resend", status, body, 200, "Delivery queued again, due now.")
	status, _, body = b.form(page, "/ui/t/acme/i/sandbox/deliveries/dlv_nope/resend", nil)
	wantPage(t, "resend an unknown delivery", status, body, http.StatusNotFound)
}

// TestSwitchAndHomes: the switcher and the home pages send each role where
// it can work, and refuse names that are not names.
func TestSwitchAndHomes(t *testing.T) {
	e := mustEnv(t)
	e.addClient("producer", herald.RoleProducer)
	admin := e.browser()
	admin.signIn("admin")
	for _, tc := range []struct{ query, location string }{
		{"to=acme", "/ui/t/acme/designer"},
		{"to=acme/sandbox", "/ui/t/acme/i/sandbox/"},
		{"to=acme/sandbox&section=deliveries", "/ui/t/acme/i/sandbox/deliveries"},
		{"to=acme/sandbox&section=events", "/ui/t/acme/i/sandbox/events"},
		{"to=acme/sandbox&section=webhooks", "/ui/t/acme/i/sandbox/webhooks"},
		{"to=acme/sandbox&section=..%2F..%2Fevil", "/ui/t/acme/i/sandbox/"},
	} {
		status, h, body := admin.get("/ui/switch?" + tc.query)
		wantRedirect(t, "switch "+tc.query, status, h, body, tc.location)
	}
	for _, q := range []string{"to=", "to=Acme", "to=acme/Sand_box", "to=%2F%2Fevil.example", "to=acme/sandbox/extra"} {
		status, _, body := admin.get("/ui/switch?" + q)
		wantPage(t, "switch "+q, status, body, http.StatusBadRequest)
	}

	status, _, body := admin.get("/ui/")
	wantPage(t, "platform admin's home", status, body, 200, "acme", "sandbox")
	status, _, body = admin.get("/ui/t/acme/")
	wantPage(t, "tenant home", status, body, 200, "/ui/t/acme/i/sandbox/")
	status, h, body := admin.get("/ui/t/acme/i/sandbox/")
	wantRedirect(t, "admin's instance home", status, h, body, "/ui/t/acme/i/sandbox/webhooks")

	producer := e.browser()
	producer.signIn("producer")
	status, h, body = producer.get("/ui/")
	wantRedirect(t, "producer's home", status, h, body, "/ui/t/acme/")
	status, h, body = producer.get("/ui/t/acme/i/sandbox/")
	wantRedirect(t, "producer's instance home", status, h, body, "/ui/t/acme/i/sandbox/deliveries")
	// The switcher only redirects; the page it leads to checks the role.
	if _, err := e.store.CreateTenant(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	status, h, body = producer.get("/ui/switch?to=other")
	wantRedirect(t, "producer switching to another tenant", status, h, body, "/ui/t/other/designer")
	status, _, body = producer.get("/ui/t/other/designer")
	wantPage(t, "another tenant's designer", status, body, http.StatusForbidden)

	visitor := e.browser()
	status, h, body = visitor.get("/ui/")
	wantRedirect(t, "visitor's home", status, h, body, "/ui/signin")
	status, h, _ = visitor.get("/ui/switch?to=acme")
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/signin") {
		t.Errorf("visitor switching: %d to %q, want the sign-in page", status, h.Get("Location"))
	}
}
