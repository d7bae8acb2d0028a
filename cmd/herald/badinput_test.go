package main

import (
	"bytes"
	"encoding/json"
	"github.com/heraldhooks/herald/heraldtest"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every refused request says what was wrong and with which field, with the
// right 4xx, and nothing it carried is stored or delivered: a webhook
// listening to every entity of the catalog receives only the events sent
// after the table, the delivery log lists nothing else, and no event has
// the source id the refused ones carry.
func TestBadInputsAreRefusedClearly(t *testing.T) {
	p := startHerald(t, nil, sqliteArgs(t)...)
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook") // active: anything accepted would be delivered
	recv.SetSecrets(secret)
	var catalog struct {
		Entities []struct{ Entity string } `json:"entities"`
	}
	mustDo(t, c, "GET", "/v1/catalog", nil, &catalog)
	var everything []map[string]string
	for _, e := range catalog.Entities {
		everything = append(everything, map[string]string{"eventEntity": e.Entity})
	}
	if len(everything) < 2 {
		t.Fatalf("the catalog lists %d entities", len(everything))
	}
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/webhooks", map[string]any{
		"name": "wh-everything", "title": "Every event", "triggers": everything}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/webhooks", map[string]any{
		"name": "wh-no-url", "title": "No URL yet", "triggers": []map[string]string{{"eventEntity": "TASK"}}}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/publish", map[string]any{"comment": "second"}, nil)
	all := newReceiver(t)
	mustDo(t, c, "PATCH", inst+"/webhooks/wh-everything", map[string]any{"url": all.URL + "/hook"}, nil)
	var allSecret struct{ Secret string }
	mustDo(t, c, "GET", inst+"/webhooks/wh-everything/secret", nil, &allSecret)
	all.SetSecrets(allSecret.Secret)
	mustDo(t, c, "POST", inst+"/webhooks/wh-everything/activate", nil, nil)
	forged := c.token[:len(c.token)-4] + "AAAA"
	if forged == c.token {
		forged = c.token[:len(c.token)-4] + "BBBB"
	}
	huge := `{"eventSubtype":"DOCUMENT_CREATED","sourceId":"refused","sourceName":"` + strings.Repeat("x", 1<<20) + `"}`

	for _, tc := range []struct {
		name         string
		method, path string
		token        string // "" uses the admin's; "-" sends none
		body         string
		status       int
		code         string
		mention      []string // words the message must contain
	}{
		{"malformed JSON", "POST", inst + "/events", "", `{"eventSubtype":`, 400, "invalid", []string{"JSON"}},
		{"not JSON at all", "POST", inst + "/events", "", `eventSubtype=PATIENT_CREATED`, 400, "invalid", []string{"JSON"}},
		{"empty body", "POST", inst + "/events", "", ``, 400, "invalid", []string{"body"}},
		{"missing eventSubtype", "POST", inst + "/events", "", `{"sourceId":"refused"}`, 400, "invalid", []string{"eventSubtype"}},
		{"unknown eventSubtype", "POST", inst + "/events", "", `{"eventSubtype":"PATIENT_EXPLODED","sourceId":"refused"}`, 400, "invalid", []string{"eventSubtype", "PATIENT_EXPLODED"}},
		{"lower-case eventSubtype", "POST", inst + "/events", "", `{"eventSubtype":"patient_created","sourceId":"refused"}`, 400, "invalid", []string{"eventSubtype"}},
		{"entity contradicts subtype", "POST", inst + "/events", "", `{"eventEntity":"CDT","eventSubtype":"TASK_CREATED","sourceId":"refused"}`, 400, "invalid", []string{"eventEntity"}},
		{"wrong type", "POST", inst + "/events", "", `{"eventSubtype":"MESSAGE_CREATED","sourceId":42}`, 400, "invalid", []string{"sourceId"}},
		{"bad occurredAt", "POST", inst + "/events", "", `{"eventSubtype":"ASSESSMENT_COMPLETED","sourceId":"refused","occurredAt":"yesterday"}`, 400, "invalid", []string{"occurredAt"}},
		{"data not an object", "POST", inst + "/events", "", `{"eventSubtype":"CALENDAR_EVENT_CREATED","sourceId":"refused","data":[1,2]}`, 400, "invalid", []string{"data"}},
		{"unknown field", "POST", inst + "/events", "", `{"eventSubtype":"CARE_PLAN_UPDATED","sourceId":"refused","patient_id":"p1"}`, 400, "invalid", []string{"patient_id"}},
		{"bad element of an array", "POST", inst + "/events", "", `[{"eventSubtype":"USER_ACCESS_UPDATED","sourceId":"refused"},{"eventSubtype":"NOPE","sourceId":"refused"}]`, 400, "invalid", []string{"events[1]", "eventSubtype"}},
		{"oversize event", "POST", inst + "/events", "", huge, 413, "too_large", []string{"MiB"}},
		{"unknown tenant", "POST", "/v1/tenants/nobody/instances/sandbox/events", "", `{"eventSubtype":"PATIENT_CREATED"}`, 404, "not_found", []string{"nobody"}},
		{"unknown instance", "POST", "/v1/tenants/acme/instances/nowhere/events", "", `{"eventSubtype":"PATIENT_CREATED"}`, 404, "not_found", []string{"nowhere"}},
		{"non-http URL", "PATCH", inst + "/webhooks/wh-no-url", "", `{"url":"ftp://example.com/hook"}`, 400, "invalid", []string{"url", "https://"}},
		{"garbage URL", "PATCH", inst + "/webhooks/wh-no-url", "", `{"url":"not a url"}`, 400, "invalid", []string{"url"}},
		{"URL without host", "PATCH", inst + "/webhooks/wh-no-url", "", `{"url":"https://"}`, 400, "invalid", []string{"url"}},
		{"reserved header", "PATCH", inst + "/webhooks/wh-no-url", "", `{"headers":[{"name":"webhook-signature","value":"x"}]}`, 400, "invalid", []string{"headers[0]"}},
		{"timeout out of range", "PATCH", inst + "/webhooks/wh-no-url", "", `{"timeoutSeconds":0}`, 400, "invalid", []string{"timeoutSeconds"}},
		{"unknown payload field", "PATCH", inst + "/webhooks/wh-no-url", "", `{"payload":{"predefinedFields":["SSN"]}}`, 400, "invalid", []string{"predefinedFields[0]", "SSN"}},
		{"misspelled setting", "PATCH", inst + "/webhooks/wh-no-url", "", `{"uri":"https://example.com"}`, 400, "invalid", []string{"uri"}},
		{"activation without URL", "POST", inst + "/webhooks/wh-no-url/activate", "", ``, 422, "unprocessable", []string{"url"}},
		{"test without URL", "POST", inst + "/webhooks/wh-no-url/test", "", ``, 422, "unprocessable", []string{"url"}},
		{"unknown webhook", "PATCH", inst + "/webhooks/wh-nope", "", `{"url":"https://example.com"}`, 404, "not_found", []string{"wh-nope"}},
		{"tenant name with capitals", "POST", "/v1/tenants", "", `{"name":"Acme Corp"}`, 400, "invalid", []string{"name", "Acme Corp"}},
		{"tenant name missing", "POST", "/v1/tenants", "", `{}`, 400, "invalid", []string{"name"}},
		{"instance name starting with a hyphen", "POST", "/v1/tenants/acme/instances", "", `{"name":"-live"}`, 400, "invalid", []string{"name"}},
		{"duplicate tenant", "POST", "/v1/tenants", "", `{"name":"acme"}`, 409, "conflict", []string{"acme"}},
		{"webhook name with underscore", "POST", "/v1/tenants/acme/designer/webhooks", "", `{"name":"wh_sync","title":"x","triggers":[{"eventEntity":"PATIENT"}]}`, 400, "invalid", []string{"name"}},
		{"trigger not in catalog", "POST", "/v1/tenants/acme/designer/webhooks", "", `{"name":"wh-x","title":"x","triggers":[{"eventSubtype":"PATIENT_EXPLODED"}]}`, 400, "invalid", []string{"triggers[0]"}},
		{"no triggers", "POST", "/v1/tenants/acme/designer/webhooks", "", `{"name":"wh-x","title":"x","triggers":[]}`, 400, "invalid", []string{"triggers"}},
		{"recover without since", "POST", inst + "/webhooks/wh-patient-sync/recover", "", `{}`, 400, "invalid", []string{"since"}},
		{"bad status filter", "GET", inst + "/deliveries?status=DONE", "", ``, 400, "invalid", []string{"status"}},
		{"bad cursor", "GET", inst + "/deliveries?cursor=garbage", "", ``, 400, "invalid", []string{"cursor"}},
		{"missing token", "POST", inst + "/events", "-", `{"eventSubtype":"ENCOUNTER_CREATED","sourceId":"refused"}`, 401, "unauthorized", []string{"token"}},
		{"forged token", "POST", inst + "/events", forged, `{"eventSubtype":"TASK_COMPLETED","sourceId":"refused"}`, 401, "unauthorized", []string{"token"}},
		{"wrong client secret", "POST", "/v1/auth/token", "-", `{"apiClient":"admin","secret":"guess"}`, 401, "unauthorized", []string{"secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, p.URL+tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			switch tc.token {
			case "":
				req.Header.Set("Authorization", "Bearer "+c.token)
			case "-":
			default:
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("answer is not the JSON error shape: %s", raw)
			}
			if resp.StatusCode != tc.status || e.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s: %s", resp.StatusCode, e.Error.Code, tc.status, tc.code, raw)
			}
			for _, w := range tc.mention {
				if !strings.Contains(e.Error.Message, w) {
					t.Errorf("message %q does not mention %q", e.Error.Message, w)
				}
			}
			if m := strings.TrimSpace(e.Error.Message); !(strings.HasSuffix(m, ".") || strings.HasSuffix(m, "?")) || len(m) < 15 {
				t.Errorf("message %q is not a sentence a person can act on", e.Error.Message)
			}
		})
	}

	// A good event and, after it, a sentinel arrive; none of the refused
	// ones does. Whatever was stored before the good event would be
	// delivered before the sentinel, which bounds the wait for stragglers;
	// the delivery log, written with each event, needs no wait at all.
	sent := map[string]bool{}
	for _, src := range []string{"good", "sentinel"} {
		var res struct{ EventID string }
		mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": src}, &res)
		sent[res.EventID] = true
		recv.WaitDelivered(t, 30*time.Second, res.EventID)
		all.WaitDelivered(t, 30*time.Second, res.EventID)
	}
	for name, r := range map[string]*heraldtest.Receiver{"wh-patient-sync": recv, "wh-everything": all} {
		if got := r.Delivered(); r.Count() != len(sent) || len(got) != len(sent) {
			var b bytes.Buffer
			for id, req := range got {
				json.NewEncoder(&b).Encode(map[string]any{id: jsonBody(t, req)})
			}
			t.Errorf("%s's receiver got %d requests, want only the good event's and the sentinel's:\n%s", name, r.Count(), b.String())
		}
	}
	dl := listDeliveries(t, c, inst, "")
	for _, d := range dl {
		if !sent[d.EventID] {
			t.Errorf("delivery %s of event %s (%s), which the table did not send successfully", d.ID, d.EventID, d.Webhook)
		}
	}
	if len(dl) != 2*len(sent) {
		t.Errorf("the delivery log lists %d deliveries, want %d (the good event and the sentinel, to two webhooks)", len(dl), 2*len(sent))
	}
	var found struct {
		Events []struct{ EventID string } `json:"events"`
	}
	mustDo(t, c, "GET", inst+"/events?sourceId=refused", nil, &found)
	if len(found.Events) != 0 {
		t.Errorf("%d refused events were stored: %+v", len(found.Events), found.Events)
	}
}
