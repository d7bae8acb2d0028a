package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
)

// TestOrderingForm sets a webhook's ordering on its page, sees a refusal
// beside the form, and reads a HELD delivery in the log and on its page,
// naming the delivery it waits for.
func TestOrderingForm(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn("admin")
	page := "/ui/t/acme/i/sandbox/webhooks/wh"
	status, _, body := b.get(page)
	wantPage(t, "webhook page", status, body, 200, "Ordering", `name="ordering" value="none" checked`)

	wh, err := e.store.GetWebhook(ctx, "acme", "sandbox", "wh")
	if err != nil {
		t.Fatal(err)
	}
	settings := func(ordering string) url.Values {
		return url.Values{"url": {wh.URL}, "format": {wh.Payload.Format}, "field": wh.Payload.PredefinedFields,
			"timeout": {strconv.Itoa(wh.TimeoutSeconds)}, "ordering": {ordering}}
	}
	status, _, body = b.form(page, page, settings("fifo"))
	wantPage(t, "an unknown ordering", status, body, http.StatusBadRequest, `ordering "fifo" is not known; use one of none, patient, source.`)
	if !strings.Contains(body, `<fieldset class="invalid" aria-describedby="ordering-help">`) {
		t.Errorf("the refusal is not shown beside the ordering choice\n%.3000s", body)
	}
	status, h, body := b.form(page, page, settings("patient"))
	wantRedirect(t, "save ordering", status, h, body, page+"?done=saved")
	if wh, _ = e.store.GetWebhook(ctx, "acme", "sandbox", "wh"); wh.Ordering != herald.OrderingPatient {
		t.Fatalf("ordering after saving: %q", wh.Ordering)
	}
	status, _, body = b.get(page)
	wantPage(t, "webhook page after saving", status, body, 200, `name="ordering" value="patient" checked`)
	if entries := auditEntries(t, e, "webhook.update"); len(entries) == 0 || !strings.Contains(string(entries[0].Diff), `"ordering"`) {
		t.Errorf("the audit does not record the ordering change")
	}

	ev := func() *herald.Event {
		return &herald.Event{TenantName: "acme", InstanceName: "sandbox", Entity: "PATIENT", Subtype: "PATIENT_CREATED", PatientID: "pat-1"}
	}
	if _, err := e.store.CreateEvents(ctx, []*herald.Event{ev(), ev()}); err != nil {
		t.Fatal(err)
	}
	held, _, err := e.store.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "sandbox", Status: herald.StatusHeld})
	if err != nil || len(held) != 1 {
		t.Fatalf("HELD deliveries %v, %v", held, err)
	}
	first := held[0].WaitingFor
	status, _, body = b.get("/ui/t/acme/i/sandbox/deliveries?status=HELD")
	wantPage(t, "log of HELD deliveries", status, body, 200, "HELD", "waits for <code>"+first+"</code>")
	status, _, body = b.get("/ui/t/acme/i/sandbox/deliveries/" + held[0].ID)
	wantPage(t, "HELD delivery", status, body, 200, "Waits for</dt>", "/deliveries/"+first+`"><code>`+first+"</code></a>, the delivery before it of the same patient or source")
}
