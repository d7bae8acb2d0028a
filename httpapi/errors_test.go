package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/httpapi"
)

// TestErrors checks one case of each error class: status, code, the field
// at fault and a message that says what to fix.
func TestErrors(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	// A second webhook, published but with no URL.
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/designer/webhooks", token: e.admin,
		body: map[string]any{"name": "wh-no-url", "title": "No URL", "triggers": []map[string]string{{"eventEntity": "TASK"}}}})
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/designer/publish", token: e.admin, body: "{}"})
	wh := inst + "/webhooks/wh-patient-sync"
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`

	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		header       map[string]string
		status       int
		code, field  string
		message      string
	}{
		// 400: decoding.
		{"unknown field", "PATCH", wh, `{"uri":"https://x.example"}`, nil, 400, "invalid", "uri", `unknown field "uri"; did you mean "url"?`},
		{"unknown nested field", "PATCH", wh, `{"payload":{"formats":"welkin"}}`, nil, 400, "invalid", "formats", `did you mean "format"?`},
		{"malformed JSON", "PATCH", wh, `{"url": }`, nil, 400, "invalid", "", "not valid JSON: invalid character '}' looking for beginning of value at byte 9"},
		{"truncated JSON", "PATCH", wh, `{"url":"x"`, nil, 400, "invalid", "", "ends before the JSON value is complete"},
		{"wrong type", "PATCH", wh, `{"timeoutSeconds":"30"}`, nil, 400, "invalid", "timeoutSeconds", "timeoutSeconds must be an integer, not a string"},
		{"wrong nested type", "PATCH", wh, `{"payload":{"format":1}}`, nil, 400, "invalid", "payload.format", "payload.format must be a string, not a number"},
		{"array for object", "PATCH", wh, `[]`, nil, 400, "invalid", "", "must be a JSON object, not an array"},
		{"two values", "PATCH", wh, `{} {}`, nil, 400, "invalid", "", "one JSON value"},
		{"empty body", "POST", "/v1/tenants", "", nil, 400, "invalid", "", "body is empty"},
		{"not JSON content type", "POST", "/v1/tenants", `name=acme`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "", "Content-Type: application/json"},
		{"JSON under a form content type (curl -d) is still parsed strictly", "POST", "/v1/tenants", `{"nmae":"acme"}`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400, "invalid", "nmae", `did you mean "name"?`},
		// 400: validation, from the domain.
		{"bad name", "POST", "/v1/tenants", `{"name":"Acme Corp"}`, nil, 400, "invalid", "name", `name "Acme Corp" is not a valid name`},
		{"bad url", "PATCH", wh, `{"url":"ftp://x.example"}`, nil, 400, "invalid", "url", "must start with https://"},
		{"rate limit of 0", "PATCH", wh, `{"rateLimitPerSecond":0}`, nil, 400, "invalid", "rateLimitPerSecond", "rateLimitPerSecond must be between 1 and 10000 requests per second, or null for no limit; it is 0."},
		{"rate limit too high", "PATCH", wh, `{"rateLimitPerSecond":10001}`, nil, 400, "invalid", "rateLimitPerSecond", "it is 10001"},
		{"rate limit not a number", "PATCH", wh, `{"rateLimitPerSecond":"20"}`, nil, 400, "invalid", "rateLimitPerSecond", "rateLimitPerSecond must be an integer, not a string"},
		{"bad predefined field", "PATCH", wh, `{"payload":{"predefinedFields":["NOPE"]}}`, nil, 400, "invalid", "payload.predefinedFields[0]", "not a predefined field"},
		{"bad ordering", "PATCH", wh, `{"ordering":"fifo"}`, nil, 400, "invalid", "ordering", `ordering "fifo" is not known; use one of none, patient, source.`},
		{"bad trigger", "POST", "/v1/tenants/acme/designer/webhooks", `{"name":"w2","title":"W","triggers":[{"eventSubtype":"PATIENT_EXPLODED"}]}`, nil, 400, "invalid", "triggers[0].eventSubtype", "not in the event catalog"},
		{"grace too long", "POST", wh + "/secret/rotate", `{"graceSeconds":604801}`, nil, 400, "invalid", "graceSeconds", "between 0 and 604800"},
		{"recover without since", "POST", wh + "/recover", `{}`, nil, 400, "invalid", "since", "since is required"},
		{"recover bad since", "POST", wh + "/recover", `{"since":"yesterday"}`, nil, 400, "invalid", "since", "not an RFC 3339 time"},
		// 401, 403 are in the auth and role tests.
		// 404.
		{"unknown tenant", "GET", "/v1/tenants/nope/instances", nil, nil, 404, "not_found", "", ""},
		{"unknown instance", "GET", "/v1/tenants/acme/instances/nope/webhooks", nil, nil, 404, "not_found", "", ""},
		{"unknown webhook", "GET", inst + "/webhooks/nope", nil, nil, 404, "not_found", "", ""},
		{"unknown delivery", "GET", inst + "/deliveries/dlv_nope", nil, nil, 404, "not_found", "", ""},
		{"unknown route", "GET", "/v2/nothing", nil, nil, 404, "not_found", "", "There is no GET /v2/nothing"},
		// 405.
		{"wrong method", "DELETE", "/v1/tenants", nil, nil, 405, "method_not_allowed", "", "this path accepts GET, HEAD, POST"},
		// 409.
		{"tenant taken", "POST", "/v1/tenants", `{"name":"acme"}`, nil, 409, "conflict", "", ""},
		{"nothing to publish", "POST", "/v1/tenants/acme/designer/publish", nil, nil, 409, "conflict", "", ""},
		// 413.
		{"body over 1 MiB", "POST", "/v1/tenants", big, nil, 413, "too_large", "", "limit of 1 MiB"},
		// 422.
		{"activate without url", "POST", inst + "/webhooks/wh-no-url/activate", nil, nil, 422, "unprocessable", "", ""},
		{"test without url", "POST", inst + "/webhooks/wh-no-url/test", nil, nil, 422, "unprocessable", "", "no url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(req{method: tc.method, path: tc.path, token: e.admin, body: tc.body, header: tc.header})
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.status, resp)
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			ae := resp.apiError(t)
			if ae.Code != tc.code || ae.Field != tc.field || !strings.Contains(ae.Message, tc.message) || ae.Message == "" {
				t.Fatalf("error %+v, want code %s, field %q, message containing %q", ae, tc.code, tc.field, tc.message)
			}
			if tc.status == 405 && resp.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			if resp.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id header")
			}
		})
	}
}

// TestPanicIsInternalError checks that a panic in a handler becomes a 500
// with the request id, and that the server goes on serving. The panic comes
// from a Tester written for it: there is no real part that panics on demand.
func TestPanicIsInternalError(t *testing.T) {
	var logs logBuffer
	e := mustEnv(t, withLog(&logs), func(c *httpapi.Config) { c.Tester = panicTester{} })
	e.setup()
	resp := e.do(req{method: "POST", path: inst + "/webhooks/wh-patient-sync/test", token: e.admin})
	if resp.status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500: %s", resp.status, resp)
	}
	ae := resp.apiError(t)
	id := resp.header.Get("X-Request-Id")
	if ae.Code != "internal" || id == "" || !strings.Contains(ae.Message, id) || strings.Contains(ae.Message, "boom") {
		t.Fatalf("error %+v (request id %q): want internal naming the request id, hiding the panic", ae, id)
	}
	e.must(200, req{method: "GET", path: "/healthz"})

	// The log has the panic and the access line, both with the request id.
	panics := logs.records(t, "panic serving request")
	if len(panics) != 1 || panics[0]["request_id"] != id || panics[0]["panic"] != "boom" || panics[0]["stack"] == "" {
		t.Fatalf("panic log records %v, want one with request id %s, the panic and a stack", panics, id)
	}
	var access map[string]any
	for _, r := range logs.records(t, "http request") {
		if r["request_id"] == id {
			access = r
		}
	}
	if access == nil || access["status"] != float64(500) || access["method"] != "POST" || access["client"] != "admin" ||
		access["route"] != "POST /v1/tenants/{tenant}/instances/{instance}/webhooks/{name}/test" || access["duration_ms"] == nil {
		t.Fatalf("access log record %v, want status, method, route pattern, client and duration", access)
	}
}

type panicTester struct{}

func (panicTester) TestWebhook(context.Context, *herald.Webhook, []string) (*herald.Attempt, error) {
	panic("boom")
}
