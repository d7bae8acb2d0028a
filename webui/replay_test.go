package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// TestReplayForm: the replay form on the webhook's page, with its default
// window (the last 24 h), its refusals beside the form, and a replay that
// gives the events made while the webhook was inactive a delivery each,
// audited, with its progress in the page's table.
func TestReplayForm(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/i/sandbox/webhooks/wh"
	status, _, body := b.get(page)
	dayAgo := time.Now().UTC().Add(-24 * time.Hour).Format("2006-01-02T15:")
	wantPage(t, "webhook page", status, body, 200, `action="`+page+`/replay"`, `id="replay-since" name="since" type="datetime-local" value="`+dayAgo)

	if _, err := e.store.DeactivateWebhook(ctx, "acme", "sandbox", "wh", ""); err != nil {
		t.Fatal(err)
	}
	post := func(n int) {
		for range n {
			if _, err := e.store.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "sandbox", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	post(3) // while inactive: no deliveries
	status, _, body = b.form(page, page+"/replay", url.Values{"since": {"2000-01-01T00:00"}})
	wantPage(t, "replay while inactive", status, body, http.StatusUnprocessableEntity, `webhook "wh" is inactive; activate it before replaying`, `value="2000-01-01T00:00"`)
	if _, err := e.store.ActivateWebhook(ctx, "acme", "sandbox", "wh"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ since, until, msg string }{
		{"", "", "Give the time from which to replay events (UTC)."},
		{"yesterday", "", `Since "yesterday" is not a date and time`},
		{"2000-01-01T00:00", "never", `Until "never" is not a date and time`},
		{"2000-01-02T00:00", "2000-01-01T00:00", "must come before until"},
	} {
		status, _, body = b.form(page, page+"/replay", url.Values{"since": {tc.since}, "until": {tc.until}})
		wantPage(t, "replay since "+tc.since+" until "+tc.until, status, body, http.StatusBadRequest, tc.msg)
	}
	if n := len(auditEntries(t, e, "webhook.replay")); n != 0 {
		t.Fatalf("%d audit entries for refused replays, want 0", n)
	}

	status, _, body = b.form(page, page+"/replay", url.Values{"since": {"2000-01-01T00:00"}, "until": {""}})
	wantPage(t, "replay", status, body, 200, "Replaying 3 events made from 2000-01-01 00:00:00 UTC", `<table id="replays">`, "RUNNING")
	for {
		rp, err := e.store.ReplayBatch(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rp == nil {
			break
		}
	}
	list, _, err := e.store.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "sandbox"})
	if err != nil || len(list) != 3 {
		t.Fatalf("deliveries after the replay: %d, %v; want 3", len(list), err)
	}
	status, _, body = b.get(page)
	wantPage(t, "page after the replay", status, body, 200, "<td>DONE</td><td>3</td><td>3</td><td>3</td><td>0</td>")
	entries := auditEntries(t, e, "webhook.replay")
	if len(entries) != 1 || !strings.Contains(string(entries[0].Diff), `"events":3`) || entries[0].Actor == "" {
		t.Fatalf("audit of the replay: %d entries, %+v", len(entries), entries)
	}

	// A viewer sees the progress but no form.
	v := e.browser()
	v.signIn("viewer")
	status, _, body = v.get(page)
	if status != 200 || strings.Contains(body, page+"/replay") {
		t.Fatalf("viewer's page: %d, replay form shown: %v", status, strings.Contains(body, page+"/replay"))
	}
}
