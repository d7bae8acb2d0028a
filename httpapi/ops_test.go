package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald/httpapi"
)

func TestOps(t *testing.T) {
	e := mustEnv(t)
	e.must(200, req{method: "GET", path: "/healthz"})
	if m := e.must(200, req{method: "GET", path: "/readyz"}).object(t); m["status"] != "ready" {
		t.Errorf("readyz: %v", m)
	}

	// Request ids: a sane incoming one is kept, others are replaced.
	resp := e.do(req{method: "GET", path: "/healthz", header: map[string]string{"X-Request-Id": "lb-1234"}})
	if got := resp.header.Get("X-Request-Id"); got != "lb-1234" {
		t.Errorf("X-Request-Id %q, want the incoming lb-1234", got)
	}
	resp = e.do(req{method: "GET", path: "/healthz", header: map[string]string{"X-Request-Id": "bad id\twith spaces"}})
	if got := resp.header.Get("X-Request-Id"); !strings.HasPrefix(got, "req_") {
		t.Errorf("X-Request-Id %q, want a fresh req_ id", got)
	}

	// Metrics, by route pattern, not by path.
	e.must(200, req{method: "GET", path: "/v1/tenants", token: e.admin})
	e.must(404, req{method: "GET", path: "/v1/tenants/acme", token: e.admin})
	e.must(404, req{method: "GET", path: "/nowhere"})
	body := e.must(200, req{method: "GET", path: "/metrics"}).String()
	for _, want := range []string{
		`http_requests_total{code="200",route="GET /v1/tenants"} 1`,
		`http_requests_total{code="404",route="GET /v1/tenants/{tenant}"} 1`,
		`http_requests_total{code="404",route="unmatched"} 1`,
		`http_request_duration_seconds_count{route="GET /v1/tenants"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestReadyzFails(t *testing.T) {
	e := mustEnv(t, func(c *httpapi.Config) {
		c.Ready = func(context.Context) error { return errors.New("database is migrating") }
	})
	resp := e.must(503, req{method: "GET", path: "/readyz"})
	if ae := resp.apiError(t); ae.Code != "unavailable" || !strings.Contains(ae.Message, "database is migrating") {
		t.Fatalf("readyz error %+v, want unavailable with the reason", ae)
	}
	e.must(200, req{method: "GET", path: "/healthz"})
}

// TestReadyzOnClosedStore checks the default readiness check, Store.Ready,
// against a store that went away, through /readyz and herald_ready.
func TestReadyzOnClosedStore(t *testing.T) {
	e := mustEnv(t)
	if m := e.must(200, req{method: "GET", path: "/metrics"}).String(); !strings.Contains(m, "\nherald_ready 1\n") {
		t.Errorf("metrics of a ready node lack herald_ready 1")
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	// The check runs at most once a second: the scrape above may have
	// just run it.
	for deadline := time.Now().Add(5 * time.Second); e.do(req{method: "GET", path: "/readyz"}).status != 503; {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still not 503 5s after the store closed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.must(200, req{method: "GET", path: "/healthz"})
	if m := e.must(200, req{method: "GET", path: "/metrics"}).String(); !strings.Contains(m, "\nherald_ready 0\n") {
		t.Errorf("metrics of a node whose store is closed lack herald_ready 0")
	}
}

// TestOpenAPI checks that the OpenAPI document describes every route and
// nothing else, and that its references resolve.
func TestOpenAPI(t *testing.T) {
	e := mustEnv(t)
	resp := e.must(200, req{method: "GET", path: "/openapi.json"})
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	resp.json(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	routes := httpapi.RoutePatterns()
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.json describes %s, which is not a route", d)
		}
	}
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(resp.String(), -1) {
		if _, ok := doc.Components[ref[1]][ref[2]]; !ok {
			t.Errorf("openapi.json refers to missing %s/%s", ref[1], ref[2])
		}
	}
	// Every route's errors are described with the error schema.
	if !strings.Contains(resp.String(), `"#/components/schemas/Error"`) {
		t.Error("openapi.json has no error schema")
	}
	if resp.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", resp.header.Get("Content-Type"))
	}
}
