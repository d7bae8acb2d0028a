package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/signature"
)

// TestDesignerToInstanceFlow walks a webhook from the designer draft
// through publishing to an instance, its admin settings, secrets, test
// send, deactivation and recovery.
func TestDesignerToInstanceFlow(t *testing.T) {
	e := mustEnv(t)
	tok := e.admin
	e.must(201, req{method: "POST", path: "/v1/tenants", token: tok, body: map[string]string{"name": "acme"}})
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/instances", token: tok, body: map[string]string{"name": "sandbox"}})
	designer := e.mustClient("acme", "acme-designer", "designer")

	// Designer: create, read, merge-patch, draft.
	resp := e.must(201, req{method: "POST", path: "/v1/tenants/acme/designer/webhooks", token: designer, body: map[string]any{
		"name": "wh-patient-sync", "title": "Patient sync",
		"triggers": []map[string]string{{"eventSubtype": "PATIENT_CREATED"}, {"eventEntity": "CDT"}},
	}})
	if loc := resp.header.Get("Location"); loc != "/v1/tenants/acme/designer/webhooks/wh-patient-sync" {
		t.Errorf("Location %q", loc)
	}
	e.must(409, req{method: "POST", path: "/v1/tenants/acme/designer/webhooks", token: designer, body: map[string]any{
		"name": "wh-patient-sync", "title": "Again", "triggers": []map[string]string{{"eventEntity": "CDT"}}}})
	resp = e.must(200, req{method: "PATCH", path: "/v1/tenants/acme/designer/webhooks/wh-patient-sync", token: designer,
		body: map[string]string{"title": "Patient sync v2"}})
	var dw struct {
		Title    string
		Triggers []map[string]string
	}
	resp.json(t, &dw)
	if dw.Title != "Patient sync v2" || len(dw.Triggers) != 2 {
		t.Fatalf("after PATCH of title: %s; want new title and both triggers kept", resp)
	}
	var list struct{ Webhooks []struct{ Name string } }
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/designer/webhooks", token: designer}).json(t, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].Name != "wh-patient-sync" {
		t.Fatalf("designer webhooks: %+v", list)
	}
	var draft struct {
		Changes []struct{ Action, Name string }
	}
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/designer/draft", token: designer}).json(t, &draft)
	if len(draft.Changes) != 1 || draft.Changes[0].Action != "created" || draft.Changes[0].Name != "wh-patient-sync" {
		t.Fatalf("draft: %+v, want one created change", draft)
	}
	// Nothing reaches the instance before publishing.
	var whs struct{ Webhooks []json.RawMessage }
	e.must(200, req{method: "GET", path: inst + "/webhooks", token: tok}).json(t, &whs)
	if len(whs.Webhooks) != 0 {
		t.Fatalf("instance has webhooks before publish: %+v", whs)
	}

	// Publish with an empty body, then with nothing left to publish.
	resp = e.must(201, req{method: "POST", path: "/v1/tenants/acme/designer/publish", token: designer})
	var ver struct {
		Version     int
		PublishedAt time.Time
		PublishedBy string
	}
	resp.json(t, &ver)
	if ver.Version != 1 || ver.PublishedAt.IsZero() || ver.PublishedBy != "acme-designer" {
		t.Fatalf("publish: %s", resp)
	}
	e.must(409, req{method: "POST", path: "/v1/tenants/acme/designer/publish", token: designer, body: map[string]string{"comment": "again"}})
	var versions struct{ Versions []struct{ Version int } }
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/designer/versions", token: designer}).json(t, &versions)
	if len(versions.Versions) != 1 || versions.Versions[0].Version != 1 {
		t.Fatalf("versions: %+v", versions)
	}

	// Admin: the published webhook is in the instance, inactive.
	wh := inst + "/webhooks/wh-patient-sync"
	var got struct {
		Title   string
		Active  bool
		URL     string
		Payload struct {
			Format           string
			PredefinedFields []string
			CustomFields     []map[string]string
		}
		TimeoutSeconds    int
		DeactivatedReason string
	}
	e.must(200, req{method: "GET", path: wh, token: tok}).json(t, &got)
	if got.Active || got.Title != "Patient sync v2" || got.Payload.Format != "welkin" {
		t.Fatalf("instance webhook after publish: %+v", got)
	}
	e.must(422, req{method: "POST", path: wh + "/activate", token: tok})

	// PATCH merges, also inside payload.
	receiver := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Respond: heraldtest.Answer{Body: "ok"}.Respond})
	e.must(200, req{method: "PATCH", path: wh, token: tok, body: map[string]any{
		"url": receiver.URL + "/hook", "payload": map[string]any{"customFields": []map[string]string{{"name": "env", "value": "test"}}},
	}})
	e.must(200, req{method: "PATCH", path: wh, token: tok, body: map[string]any{"payload": map[string]any{"format": "standard"}}}).json(t, &got)
	if got.URL != receiver.URL+"/hook" || got.Payload.Format != "standard" || len(got.Payload.CustomFields) != 1 ||
		len(got.Payload.PredefinedFields) == 0 || got.TimeoutSeconds != 30 {
		t.Fatalf("after two merging PATCHes: %+v", got)
	}
	e.must(200, req{method: "PATCH", path: wh, token: tok, body: map[string]any{"payload": map[string]any{"format": "welkin"}}})

	// Secrets: read, rotate (the old one keeps signing), read again.
	var sec struct{ Secret string }
	e.must(200, req{method: "GET", path: wh + "/secret", token: tok}).json(t, &sec)
	if !strings.HasPrefix(sec.Secret, "whsec_") {
		t.Fatalf("secret %q", sec.Secret)
	}
	old := sec.Secret
	var rotated struct{ Secret string }
	e.must(200, req{method: "POST", path: wh + "/secret/rotate", token: tok}).json(t, &rotated)
	if !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == old {
		t.Fatalf("rotated secret %q (old %q)", rotated.Secret, old)
	}
	e.must(200, req{method: "GET", path: wh + "/secret", token: tok}).json(t, &sec)
	if sec.Secret != rotated.Secret {
		t.Fatalf("secret after rotation %q, want %q", sec.Secret, rotated.Secret)
	}

	// Test send, through the real engine, to a receiver on 127.0.0.1 that
	// checks the signature with the new secret.
	resp = e.must(200, req{method: "POST", path: wh + "/test", token: tok})
	var test struct {
		Attempt struct {
			N            int
			StatusCode   int
			ResponseBody string
			Error        string
		}
	}
	resp.json(t, &test)
	if test.Attempt.StatusCode != 200 || test.Attempt.Error != "" || test.Attempt.ResponseBody != "ok" {
		t.Fatalf("test attempt: %s", resp)
	}
	body, ok := receiver.Last()
	if !ok {
		t.Fatal("the receiver got no request")
	}
	if !strings.Contains(string(body.Body), `"sourceId":"SOURCE_ID"`) || !strings.Contains(string(body.Body), `"tenantName":"acme"`) {
		t.Fatalf("test body %s: want placeholders with the real tenant", body.Body)
	}
	if err := signature.Verify(rotated.Secret, body.Header, body.Body, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("test request signature: %v", err)
	}
	// A failing receiver is still a 200 whose attempt says what happened.
	receiver.SetAnswer(heraldtest.Answer{Status: http.StatusServiceUnavailable, Body: "ok"})
	e.must(200, req{method: "POST", path: wh + "/test", token: tok}).json(t, &test)
	if test.Attempt.StatusCode != 503 {
		t.Fatalf("test to a failing receiver: %+v", test.Attempt)
	}

	// Activate, post an event, deactivate: the delivery is cancelled, then
	// recovered.
	e.must(200, req{method: "POST", path: wh + "/activate", token: tok}).json(t, &got)
	if !got.Active {
		t.Fatal("not active after activate")
	}
	start := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	e.must(202, req{method: "POST", path: inst + "/events", token: tok, body: patientCreated("p1")})
	e.must(200, req{method: "POST", path: wh + "/deactivate", token: tok}).json(t, &got)
	if got.Active || got.DeactivatedReason != "deactivated by admin" {
		t.Fatalf("after deactivate: %+v", got)
	}
	var page struct{ Deliveries []struct{ ID, Status string } }
	e.must(200, req{method: "GET", path: inst + "/deliveries", token: tok}).json(t, &page)
	if len(page.Deliveries) != 1 || page.Deliveries[0].Status != "CANCELLED" {
		t.Fatalf("deliveries after deactivate: %+v", page)
	}
	e.must(422, req{method: "POST", path: wh + "/recover", token: tok, body: map[string]string{"since": start}})
	e.must(200, req{method: "POST", path: wh + "/activate", token: tok})
	var rec struct{ Recovered *int }
	e.must(200, req{method: "POST", path: wh + "/recover", token: tok, body: map[string]string{"since": start}}).json(t, &rec)
	if rec.Recovered == nil || *rec.Recovered != 1 {
		t.Fatalf("recover: %+v, want 1", rec)
	}
	e.must(200, req{method: "GET", path: inst + "/deliveries", token: tok}).json(t, &page)
	if page.Deliveries[0].Status != "PENDING" {
		t.Fatalf("delivery after recover: %+v", page.Deliveries[0])
	}
	// Resend of a pending delivery.
	e.must(200, req{method: "POST", path: inst + "/deliveries/" + page.Deliveries[0].ID + "/resend", token: tok})

	// Deleting from the draft shows as a pending deletion.
	e.must(204, req{method: "DELETE", path: "/v1/tenants/acme/designer/webhooks/wh-patient-sync", token: designer})
	e.must(404, req{method: "GET", path: "/v1/tenants/acme/designer/webhooks/wh-patient-sync", token: designer})
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/designer/draft", token: designer}).json(t, &draft)
	if len(draft.Changes) != 1 || draft.Changes[0].Action != "deleted" {
		t.Fatalf("draft after delete: %+v", draft)
	}
	// Until published, the instance keeps it.
	e.must(200, req{method: "GET", path: wh, token: tok})
}
