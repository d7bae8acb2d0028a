package httpapi_test

import (
	"strings"
	"testing"
)

// Refused requests whose values hold health data: the caller is told what
// was wrong, with the value, but the log records only the error's code and
// field, and no more than 256 bytes of a path.
func TestLogsHoldNoRequestValues(t *testing.T) {
	logs := &logBuffer{}
	e := mustEnv(t, withLog(logs))
	e.setup()
	const marker = "MARKER-Jane-Doe"
	for _, tc := range []struct {
		path, body string
		field      string // logged as the field at fault; "" for none
	}{
		{inst + "/events", `{"eventSubtype":"PATIENT_CREATED","occurredAt":"` + marker + `"}`, "occurredAt"},
		{inst + "/events", `{"eventSubtype":"` + marker + `"}`, "eventSubtype"},
		{inst + "/events", `{"eventEntity":"` + marker + `","eventSubtype":"PATIENT_CREATED"}`, "eventEntity"},
		{inst + "/events", `{"eventSubtype":"PATIENT_CREATED","tenantName":"` + marker + `"}`, "tenantName"},
		{inst + "/events", `[{"eventSubtype":"PATIENT_CREATED"},{"eventSubtype":"PATIENT_CREATED","occurredAt":"` + marker + `"}]`, "events[1].occurredAt"},
		{inst + "/events", `{"eventSubtype":"PATIENT_CREATED","` + marker + `":"x"}`, ""},        // an unknown field's name is the request's
		{inst + "/events", `{"eventSubtype":"PATIENT_CREATED","sourceName":` + marker + `}`, ""}, // not JSON
		{inst + "/deliveries?" + marker + "=1", ``, ""},
		{inst + "/deliveries?status=" + marker, ``, "status"},
		{inst + "/deliveries?from=" + marker, ``, "from"},
		{inst + "/webhooks/wh-patient-sync/stats?since=" + marker, ``, "since"},
		{"/v1/tenants/acme/designer/webhooks", `{"name":"` + marker + `","title":"t","triggers":[{"eventEntity":"PATIENT"}]}`, "name"},
	} {
		method := "POST"
		if tc.body == "" {
			method = "GET"
		}
		resp := e.must(400, req{method: method, path: tc.path, token: e.admin, body: tc.body})
		if ae := resp.apiError(t); tc.field != "" && !strings.Contains(ae.Message, marker) && !strings.Contains(ae.Message, tc.field) {
			t.Errorf("%s %s: message %q names neither the field nor the value", method, tc.path, ae.Message)
		}
		recs := logs.records(t, "http request")
		last := recs[len(recs)-1]
		errAttr, _ := last["error"].(map[string]any)
		if errAttr["code"] != "invalid" || (tc.field != "" && errAttr["field"] != tc.field) || (tc.field == "" && errAttr["field"] != nil) {
			t.Errorf("%s %s: access log error %v, want code invalid and field %q", method, tc.path, last["error"], tc.field)
		}
	}
	long := "/v1/" + strings.Repeat("a", 900<<10)
	e.must(404, req{method: "GET", path: long, token: e.admin})
	e.must(405, req{method: "GET", path: "/v1/tenants/acme/instances/sandbox/patients/" + marker + "/purge", token: e.admin})

	out := logs.String()
	if strings.Contains(out, marker) {
		t.Errorf("the log holds a rejected value:\n%s", out)
	}
	if run := longestRun(out, 'a'); run > 256 {
		t.Errorf("the log holds %d bytes of one path, want at most 256", run)
	}
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := range len(s) {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// Every answer of /v1 that can hold health data says no cache may keep it.
func TestHealthDataIsNotCached(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	var ev struct{ EventID string }
	e.must(202, req{method: "POST", path: inst + "/events", token: e.admin, body: patientCreated("pat-1")}).json(t, &ev)
	var page struct{ Deliveries []struct{ ID string } }
	e.must(200, req{method: "GET", path: inst + "/deliveries", token: e.admin}).json(t, &page)
	if len(page.Deliveries) != 1 {
		t.Fatalf("%d deliveries, want 1", len(page.Deliveries))
	}
	for _, r := range []req{
		{method: "POST", path: inst + "/events", body: patientCreated("pat-2")},
		{method: "GET", path: inst + "/events/" + ev.EventID},
		{method: "GET", path: inst + "/events?sourceId=pat-1"},
		{method: "GET", path: inst + "/deliveries"},
		{method: "GET", path: inst + "/deliveries/" + page.Deliveries[0].ID},
		{method: "GET", path: inst + "/webhooks/wh-patient-sync/stats"},
		{method: "GET", path: inst + "/webhooks/wh-patient-sync/timeline"},
		{method: "GET", path: inst + "/webhooks"},
		{method: "GET", path: inst + "/deliveries/dlv_nope"},
		{method: "POST", path: inst + "/patients/pat-1/purge"},
	} {
		r.token = e.admin
		if resp := e.do(r); resp.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s (%d): Cache-Control %q, want no-store", r.method, r.path, resp.status, resp.header.Get("Cache-Control"))
		}
	}
	if cc := e.must(200, req{method: "GET", path: "/openapi.json"}).header.Get("Cache-Control"); cc == "no-store" {
		t.Errorf("/openapi.json: Cache-Control %q; the public document may be cached", cc)
	}
}
