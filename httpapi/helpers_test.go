package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/httpapi"
	"github.com/heraldhooks/herald/keyring"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
)

const adminSecret = "hsk_test-platform-admin-secret"

// env is a Herald API on a real SQLite store, served on 127.0.0.1, with a
// platform admin "admin" and, once setup has run, tenant acme with
// instance sandbox.
type env struct {
	t       *testing.T
	store   *sqlstore.DB
	engine  *dispatch.Engine
	srv     *httptest.Server
	clock   *heraldtest.Clock // the API's, the engine's and the store's: real time, moved forward to expire tokens or order what tests create
	reg     *prometheus.Registry
	admin   string // platform-admin token
	mu      sync.Mutex
	tokens  map[string]string
	secrets map[string]string
}

type envOption func(*httpapi.Config)

// mustEnv starts the API with the real store and the real dispatch engine
// as ingester and tester (not running: nothing is delivered behind the
// tests' backs).
func mustEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	clk := heraldtest.NewRunningClock()
	store := storekit.OpenSQLite(t, sqlstore.Config{Now: clk.Now})
	reg := prometheus.NewRegistry()
	eng := mustEngine(t, store, clk.Now)
	e := &env{t: t, store: store, engine: eng, clock: clk, reg: reg,
		tokens: map[string]string{}, secrets: map[string]string{}}
	cfg := httpapi.Config{
		Store:      store,
		Access:     mustGate(t, store, storekit.Keys, e.clock.Now),
		Ingester:   eng,
		Tester:     eng,
		Listeners:  eng,
		Pacer:      eng,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:        e.clock.Now,
		Registerer: reg,
		Gatherer:   reg,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)

	if _, err := cfg.Access.EnsureAdmin(context.Background(), adminSecret); err != nil {
		t.Fatal(err)
	}
	e.secrets["admin"] = adminSecret
	e.admin = e.token("admin")
	return e
}

// mustEngine returns a dispatch engine on store with clock now, not
// running: what a node's API ingests events through, and tests with.
func mustEngine(t *testing.T, store *sqlstore.DB, now func() time.Time) *dispatch.Engine {
	t.Helper()
	eng, err := dispatch.New(dispatch.Config{
		Store:        store,
		Now:          now,
		Destinations: netguard.Policy{AllowPrivate: true},
		Registerer:   prometheus.NewRegistry(),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// mustGate returns the access layer of one node on store, with the keys
// of a deployment and a clock (nil: time.Now).
func mustGate(t *testing.T, store herald.Store, keys *keyring.Ring, now func() time.Time) *access.Gate {
	t.Helper()
	g, err := access.New(access.Config{Store: store, Keys: keys, Now: now, Audit: store})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// response is what a test sees of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return string(r.body) }

// json decodes the body into v, failing the test if it is not JSON.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response body is not JSON (%v): %s", err, r.body)
	}
}

// object decodes the body as a JSON object.
func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (r response) apiError(t *testing.T) apiError {
	t.Helper()
	var b struct {
		Error *apiError `json:"error"`
	}
	r.json(t, &b)
	if b.Error == nil {
		t.Fatalf("want an error body, got %s", r.body)
	}
	return *b.Error
}

// req is one request: body is sent as is when it is a string or []byte,
// and as JSON otherwise (nil: no body).
type req struct {
	method, path string
	token        string
	body         any
	header       map[string]string
}

func (e *env) do(r req) response {
	e.t.Helper()
	var raw []byte
	switch b := r.body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = j
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if bad := contractViolations(contractValidator(e.t), r.method, hr.URL.String(), hr.Header, raw,
		resp.StatusCode, resp.Header, b); bad != "" {
		e.t.Errorf("%s %s answered %d, which openapi.json does not describe:%s\nanswer: %s", r.method, r.path, resp.StatusCode, bad, b)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// must does r and fails the test unless the status is want.
func (e *env) must(want int, r req) response {
	e.t.Helper()
	resp := e.do(r)
	if resp.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", r.method, r.path, resp.status, want, resp.body)
	}
	return resp
}

// token returns a bearer token for a client whose secret the env knows.
func (e *env) token(client string) string {
	e.t.Helper()
	e.mu.Lock()
	tok, ok := e.tokens[client]
	e.mu.Unlock()
	if ok {
		return tok
	}
	resp := e.must(200, req{method: "POST", path: "/v1/auth/token", body: map[string]string{"apiClient": client, "secret": e.secrets[client]}})
	var out struct{ Token string }
	resp.json(e.t, &out)
	e.mu.Lock()
	e.tokens[client] = out.Token
	e.mu.Unlock()
	return out.Token
}

// mustClient creates an API client of tenant with role through the API and
// returns its token.
func (e *env) mustClient(tenant, name string, role herald.Role) string {
	e.t.Helper()
	resp := e.must(201, req{method: "POST", path: "/v1/tenants/" + tenant + "/api-clients", token: e.admin,
		body: map[string]string{"name": name, "role": string(role)}})
	var out struct{ Secret string }
	resp.json(e.t, &out)
	e.mu.Lock()
	e.secrets[name] = out.Secret
	e.mu.Unlock()
	return e.token(name)
}

// setup creates tenant acme, instance sandbox, and the published webhook
// wh-patient-sync (triggers PATIENT_CREATED and CDT) with a URL, active.
func (e *env) setup() {
	e.t.Helper()
	e.must(201, req{method: "POST", path: "/v1/tenants", token: e.admin, body: map[string]string{"name": "acme"}})
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/instances", token: e.admin, body: map[string]string{"name": "sandbox"}})
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/designer/webhooks", token: e.admin, body: map[string]any{
		"name": "wh-patient-sync", "title": "Patient sync",
		"triggers": []map[string]string{{"eventSubtype": "PATIENT_CREATED"}, {"eventEntity": "CDT"}},
	}})
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/designer/publish", token: e.admin, body: map[string]string{"comment": "first"}})
	e.must(200, req{method: "PATCH", path: inst + "/webhooks/wh-patient-sync", token: e.admin,
		body: map[string]string{"url": "https://receiver.example/hooks"}})
	e.must(200, req{method: "POST", path: inst + "/webhooks/wh-patient-sync/activate", token: e.admin})
}

const inst = "/v1/tenants/acme/instances/sandbox"

func patientCreated(sourceID string) map[string]any {
	return map[string]any{"eventEntity": "PATIENT", "eventSubtype": "PATIENT_CREATED", "sourceId": sourceID, "patientId": sourceID}
}

// deliveryCount returns how many deliveries the instance has.
func (e *env) deliveryCount() int {
	e.t.Helper()
	var page struct{ Deliveries []json.RawMessage }
	e.must(200, req{method: "GET", path: inst + "/deliveries?limit=500", token: e.admin}).json(e.t, &page)
	return len(page.Deliveries)
}

// mustSecondNode serves a second API handler on the same store, with an
// engine of its own (not running), as a second node of the deployment
// would.
func mustSecondNode(t *testing.T, first *env) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	eng := mustEngine(t, first.store, nil)
	h, err := httpapi.New(httpapi.Config{Store: first.store, Access: mustGate(t, first.store, storekit.Keys, nil), Ingester: eng,
		Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: first.store, engine: eng, clock: heraldtest.NewRunningClock(), reg: reg, srv: httptest.NewServer(h),
		tokens: map[string]string{}, secrets: map[string]string{}}
	t.Cleanup(e.srv.Close)
	return e
}

// logBuffer collects JSON log lines written from the server's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the log records whose msg is msg.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// withLog sends the API's log, at debug level and up, to b.
func withLog(b *logBuffer) envOption {
	return func(c *httpapi.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// String returns everything logged so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jsonOf returns v as JSON, for messages.
func jsonOf(v any) string {
	j, _ := json.Marshal(v)
	return string(j)
}
