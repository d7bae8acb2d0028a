package httpapi_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/signature"
)

// openListen opens the listen stream of wh-patient-sync with token and
// returns its answer; the caller reads and closes the body.
func (e *env) openListen(token string) *http.Response {
	e.t.Helper()
	hr, err := http.NewRequest("GET", e.srv.URL+inst+"/webhooks/wh-patient-sync/listen", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// nextAttempt reads the stream up to its next attempt event.
func nextAttempt(t *testing.T, sc *bufio.Scanner) herald.ListenRequest {
	t.Helper()
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "attempt":
			var r herald.ListenRequest
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &r); err != nil {
				t.Fatalf("attempt event %q: %v", line, err)
			}
			return r
		}
	}
	t.Fatalf("the stream ended without an attempt: %v", sc.Err())
	return herald.ListenRequest{}
}

// A "listen:" webhook's test request goes over the stream, signed as it
// would go to a URL, and the listener's answer is the attempt; with no
// listener the attempt fails saying so.
func TestListenStream(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	wh := inst + "/webhooks/wh-patient-sync"
	e.must(200, req{method: "PATCH", path: wh, token: e.admin,
		body: map[string]any{"url": "listen:", "headers": []map[string]string{{"name": "X-Env", "value": "laptop"}}}})
	var sec struct{ Secret string }
	e.must(200, req{method: "GET", path: wh + "/secret", token: e.admin}).json(t, &sec)

	var none struct{ Attempt herald.Attempt }
	e.must(200, req{method: "POST", path: wh + "/test", token: e.admin}).json(t, &none)
	if none.Attempt.StatusCode != 0 || !strings.Contains(none.Attempt.Error, "no herald listen is connected to this webhook") {
		t.Errorf("with no listener, the attempt is %+v, want an error saying no herald listen is connected", none.Attempt)
	}

	resp := e.openListen(e.admin)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	tested := make(chan response, 1)
	go func() { tested <- e.do(req{method: "POST", path: wh + "/test", token: e.admin}) }()
	r := nextAttempt(t, sc)
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	if err := signature.Verify(sec.Secret, h, []byte(r.Body), time.Now(), 0); err != nil {
		t.Errorf("the request on the stream does not verify: %v (headers %v)", err, r.Headers)
	}
	if r.Headers["x-env"] != "laptop" || r.Headers["content-type"] != "application/json" || r.Attempt != 1 || r.TimeoutSeconds != 30 {
		t.Errorf("attempt on the stream = %+v", r)
	}

	// Refusals name the field; an answer for another webhook or an unknown
	// attempt finds nothing.
	for _, tc := range []struct {
		body  any
		path  string
		want  int
		field string
	}{
		{map[string]any{"statusCode": 42}, r.ID, 400, "statusCode"},
		{map[string]any{"statusCode": 0}, r.ID, 400, "error"},
		{map[string]any{"statusCode": 200, "durationMs": -1}, r.ID, 400, "durationMs"},
		{map[string]any{"statusCode": 200, "color": "red"}, r.ID, 400, "color"},
		{map[string]any{"statusCode": 200}, "lsn_unknown", 404, ""},
	} {
		got := e.do(req{method: "POST", path: wh + "/listen/" + tc.path, token: e.admin, body: tc.body})
		if got.status != tc.want || (tc.field != "" && got.apiError(t).Field != tc.field) {
			t.Errorf("answer %v: %d %s, want %d naming %q", tc.body, got.status, got, tc.want, tc.field)
		}
	}

	e.must(204, req{method: "POST", path: wh + "/listen/" + r.ID, token: e.admin,
		body: map[string]any{"statusCode": 503, "body": "down for a moment", "durationMs": 7}})
	var got struct{ Attempt herald.Attempt }
	(<-tested).json(t, &got)
	if a := got.Attempt; a.StatusCode != 503 || a.ResponseBody != "down for a moment" || !strings.Contains(a.Error, "503") {
		t.Errorf("the attempt = %+v, want the listener's 503 with its body", a)
	}
	e.must(404, req{method: "POST", path: wh + "/listen/" + r.ID, token: e.admin, body: map[string]any{"statusCode": 200}})

	// A listener that goes away with an attempt fails it at once, not at
	// the end of the webhook's timeout.
	go func() { tested <- e.do(req{method: "POST", path: wh + "/test", token: e.admin}) }()
	nextAttempt(t, sc)
	start := time.Now()
	resp.Body.Close()
	var gone struct{ Attempt herald.Attempt }
	(<-tested).json(t, &gone)
	if a := gone.Attempt; !strings.Contains(a.Error, "disconnected before it answered") || time.Since(start) > 10*time.Second {
		t.Errorf("the attempt whose listener went = %+v after %s, want it failed at once saying the listener disconnected", a, time.Since(start))
	}
}

// Only admins may listen, and only to a "listen:" webhook.
func TestListenStreamRefusals(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	resp := e.openListen(e.admin)
	if resp.StatusCode != 422 {
		t.Errorf("listening to a webhook with an https url: %d, want 422", resp.StatusCode)
	}
	e.must(200, req{method: "PATCH", path: inst + "/webhooks/wh-patient-sync", token: e.admin, body: map[string]any{"url": "listen:"}})
	for _, role := range []herald.Role{herald.RoleViewer, herald.RoleDesigner, herald.RoleProducer} {
		tok := e.mustClient("acme", "c-"+string(role), role)
		if resp := e.openListen(tok); resp.StatusCode != 403 {
			t.Errorf("%s listening: %d, want 403", role, resp.StatusCode)
		}
		if got := e.do(req{method: "POST", path: inst + "/webhooks/wh-patient-sync/listen/lsn_x", token: tok, body: map[string]any{"statusCode": 200}}); got.status != 403 {
			t.Errorf("%s answering: %d, want 403", role, got.status)
		}
	}
	tenantAdmin := e.mustClient("acme", "acme-admin", herald.RoleAdmin)
	if resp := e.openListen(tenantAdmin); resp.StatusCode != 200 {
		t.Errorf("the tenant's admin listening: %d, want 200", resp.StatusCode)
	}
	// Connecting is on record, under who connected.
	var trail struct {
		Entries []struct{ Action, Actor string }
	}
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit?action=webhook.listen", token: e.admin}).json(t, &trail)
	if len(trail.Entries) != 1 || trail.Entries[0].Actor != "acme-admin" {
		t.Errorf("audit entries of webhook.listen = %+v, want one by acme-admin", trail.Entries)
	}
}
