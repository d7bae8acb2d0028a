package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/signature"
)

// TestOperationsWebhookHearsOfA410 runs the real binary: a webhook whose
// receiver answers 410 Gone is deactivated, and the tenant's operations
// receiver (verifying every request with signature.Verify and the secret
// the PUT returned) gets a signed webhook.deactivated with the reason and
// a delivery.failed naming the delivery, and nothing of the event's health
// data.
func TestOperationsWebhookHearsOfA410(t *testing.T) {
	p := startHerald(t, nil, sqliteArgs(t)...)
	c := p.client(t)
	recv := newReceiver(t)
	recv.SetRespond(answer(func(int, map[string]any) int { return http.StatusGone }))
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)

	ops := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Strict: true,
		Verify: func(secret string, h http.Header, body []byte) error {
			return signature.Verify(secret, h, body, time.Now(), 5*time.Minute)
		}})
	var set struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
		Active bool     `json:"active"`
		Secret string   `json:"secret"`
	}
	mustDo(t, c, "PUT", "/v1/tenants/acme/operations-webhook", map[string]any{"url": ops.URL + "/ops"}, &set)
	if !strings.HasPrefix(set.Secret, "whsec_") || !set.Active || len(set.Events) != 4 {
		t.Fatalf("PUT operations-webhook answered %+v", set)
	}
	ops.SetSecrets(set.Secret)
	var got struct{ Secret string }
	mustDo(t, c, "GET", "/v1/tenants/acme/operations-webhook", nil, &got)
	if got.Secret != "" {
		t.Fatal("GET operations-webhook shows the secret")
	}
	// The reserved instance is no instance of the tenant's, and takes no
	// events.
	var insts struct{ Instances []struct{ Name string } }
	mustDo(t, c, "GET", "/v1/tenants/acme/instances", nil, &insts)
	if len(insts.Instances) != 1 || insts.Instances[0].Name != "sandbox" {
		t.Fatalf("instances: %+v", insts)
	}
	if code, _ := c.do(context.Background(), "POST", "/v1/tenants/acme/instances/_operations/events", map[string]any{
		"eventEntity": "PATIENT", "eventSubtype": "PATIENT_CREATED", "sourceId": "x"}, nil); code != http.StatusNotFound {
		t.Fatalf("POST events to the reserved instance: %d, want 404", code)
	}

	ids := postEvents(t, c, inst, 1)
	var eventID, patient string
	for id, src := range ids {
		eventID, patient = id, src
	}
	bodies := map[string]map[string]any{}
	ops.WaitFor(t, 30*time.Second, "webhook.deactivated and delivery.failed", func() bool {
		for _, r := range ops.Delivered() {
			var b map[string]any
			if err := json.Unmarshal(r.Body, &b); err == nil {
				if typ, _ := b["type"].(string); typ != "" {
					bodies[typ] = b
				}
			}
		}
		return bodies["webhook.deactivated"] != nil && bodies["delivery.failed"] != nil
	})
	if n := ops.SignatureFailures(); n != 0 {
		t.Fatalf("%d operations requests failed signature verification", n)
	}
	for _, r := range ops.Requests() {
		if !r.Verified || strings.Contains(string(r.Body), patient) {
			t.Fatalf("operations request not verified, or carrying the patient: %s", r.Body)
		}
	}
	deact := bodies["webhook.deactivated"]["data"].(map[string]any)
	if deact["tenant"] != "acme" || deact["instance"] != "sandbox" || deact["webhook"] != "wh-patient-sync" ||
		!strings.Contains(deact["reason"].(string), "410 Gone") {
		t.Fatalf("webhook.deactivated data: %v", deact)
	}
	failed := bodies["delivery.failed"]["data"].(map[string]any)
	ds := listDeliveries(t, c, inst, "")
	if len(ds) != 1 || failed["delivery"] != ds[0].ID || failed["event"] != eventID || failed["statusCode"] != float64(410) {
		t.Fatalf("delivery.failed data: %v (deliveries %+v)", failed, ds)
	}
	var wh struct {
		Active            bool
		DeactivatedReason string
	}
	mustDo(t, c, "GET", inst+"/webhooks/wh-patient-sync", nil, &wh)
	if wh.Active || !strings.Contains(wh.DeactivatedReason, "410") {
		t.Fatalf("webhook after a 410: %+v", wh)
	}
	// The setting is in the audit trail.
	var trail struct {
		Entries []struct{ Action string } `json:"entries"`
	}
	mustDo(t, c, "GET", "/v1/tenants/acme/audit", nil, &trail)
	found := false
	for _, e := range trail.Entries {
		found = found || e.Action == "tenant.operations_webhook.set"
	}
	if !found {
		t.Fatalf("no tenant.operations_webhook.set in the audit trail: %+v", trail)
	}
}
