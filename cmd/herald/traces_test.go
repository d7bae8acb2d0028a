package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP trace collector on 127.0.0.1: it decodes the
// protobuf export requests Herald's exporter sends to /v1/traces and keeps
// every span.
type collector struct {
	URL string
	mu  sync.Mutex
	all []span
}

// span is what the tests look at in an exported span.
type span struct {
	Name                     string
	TraceID, SpanID, Parent  string
	Kind                     string
	Attrs, Resource          map[string]string
	Links                    []string // trace ids
	LinkedSpans              []string // span ids
	StatusCode, StatusReason string
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s), want POST /v1/traces with protobuf", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			t.Errorf("collector: export request does not decode: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.add(&req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func (c *collector) add(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := span{Name: s.Name, TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					Parent: hex.EncodeToString(s.ParentSpanId), Kind: s.Kind.String(), Attrs: attrMap(s.Attributes), Resource: res,
					StatusCode: s.GetStatus().GetCode().String(), StatusReason: s.GetStatus().GetMessage()}
				for _, l := range s.Links {
					sp.Links = append(sp.Links, hex.EncodeToString(l.TraceId))
					sp.LinkedSpans = append(sp.LinkedSpans, hex.EncodeToString(l.SpanId))
				}
				c.all = append(c.all, sp)
			}
		}
	}
}

// attrMap writes every attribute value as text.
func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.GetStringValue()
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = fmt.Sprint(v.GetIntValue())
		default:
			m[kv.Key] = fmt.Sprint(v)
		}
	}
	return m
}

// spans returns the spans received so far.
func (c *collector) spans() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

// waitFor polls until cond holds for the spans received, or fails after
// 20s showing them.
func (c *collector) waitFor(t *testing.T, what string, cond func([]span) bool) []span {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := c.spans()
		if cond(all) {
			return all
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(all, "", " ")
			t.Fatalf("collector: no %s within 20s; spans:\n%s", what, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func byName(all []span, name string) []span {
	var out []span
	for _, s := range all {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// tracingEnv points a node's exporter at col, exporting every 50ms.
func tracingEnv(col *collector) []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + col.URL, "OTEL_BSP_SCHEDULE_DELAY=50"}
}

// Health data the tests post, which must never be in a span.
const (
	markerPatient = "pat-MARKER-5521"
	markerName    = "Marker Patientname"
	markerData    = "MARKER-DATA-9917"
	markerQuery   = "MARKER-QUERY-3310"
)

// postTraced posts one PATIENT_CREATED event carrying the markers, with
// traceparent as its header, and returns the event id.
func postTraced(t *testing.T, c *apiClient, inst, traceparent string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"eventSubtype": "PATIENT_CREATED", "patientId": markerPatient, "sourceId": markerPatient,
		"sourceName": markerName, "data": map[string]string{"mrn": markerData}})
	req, err := http.NewRequest("POST", c.base+inst+"/events", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if traceparent != "" {
		req.Header.Set("Traceparent", traceparent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ EventID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST events: %d, %v", resp.StatusCode, err)
	}
	return out.EventID
}

// TestTracesFollowAnEvent posts an event with a W3C traceparent to a node
// that exports to an in-test OTLP/HTTP collector, whose receiver fails the
// first attempt: the receiver sees a traceparent in the producer's trace on
// each attempt, and the collector gets the event's whole path in that
// trace: the API request, the ingest, the commit, the claim of the retry,
// and both attempts, each the parent of the request the receiver got. No
// span holds the event's health data, and the access log line of the
// request carries the trace id.
func TestTracesFollowAnEvent(t *testing.T) {
	col := newCollector(t)
	p := startHerald(t, tracingEnv(col), sqliteArgs(t)...)
	c := p.client(t)
	recv := newReceiver(t)
	recv.SetRespond(answer(func(n int, _ map[string]any) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}))
	inst, secret := setupWebhook(t, c, recv.URL+"/hook?token="+markerQuery)
	recv.SetSecrets(secret)

	const trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	id := postTraced(t, c, inst, "00-"+trace+"-"+parent+"-01")
	recv.WaitDelivered(t, 60*time.Second, id)

	// The receiver: both attempts in the producer's trace, as two spans.
	var got []string
	for _, r := range recv.Requests() {
		tp := r.Header.Get("Traceparent")
		parts := strings.Split(tp, "-")
		if len(parts) != 4 || parts[0] != "00" || parts[1] != trace || parts[3] != "01" {
			t.Fatalf("attempt %d reached the receiver with traceparent %q, want one in trace %s", r.Seen, tp, trace)
		}
		got = append(got, parts[2])
	}
	if len(got) != 2 || got[0] == got[1] || got[0] == parent {
		t.Fatalf("the receiver's traceparents name spans %v: want two attempts, each its own span", got)
	}

	all := col.waitFor(t, "attempt spans for both attempts", func(all []span) bool {
		return len(byName(all, "herald.attempt")) == 2 && len(byName(all, "herald.claim")) > 0
	})
	api := byName(all, "POST /v1/tenants/{tenant}/instances/{instance}/events")
	if len(api) != 1 || api[0].TraceID != trace || api[0].Parent != parent || api[0].Kind != "SPAN_KIND_SERVER" ||
		api[0].Attrs["http.response.status_code"] != "202" || api[0].Attrs["herald.tenant"] != "acme" ||
		api[0].Attrs["http.route"] != "/v1/tenants/{tenant}/instances/{instance}/events" {
		t.Fatalf("API span of POST events = %+v, want one server span named by its route, child of the producer's span", api)
	}
	if res := api[0].Resource; res["service.name"] != "herald" || res["service.version"] == "" || res["service.instance.id"] == "" {
		t.Errorf("resource = %v, want service.name herald with a version and instance id", res)
	}
	ingest := byName(all, "herald.ingest")
	if len(ingest) != 1 || ingest[0].TraceID != trace || ingest[0].Parent != api[0].SpanID ||
		ingest[0].Attrs["herald.event_id"] != id || ingest[0].Attrs["herald.deliveries"] != "1" {
		t.Fatalf("ingest spans = %+v, want one child of the API span with the event id and 1 delivery", ingest)
	}
	if !slices.ContainsFunc(byName(all, "herald.commit"), func(s span) bool { return slices.Contains(s.LinkedSpans, ingest[0].SpanID) }) {
		t.Errorf("no herald.commit span links to the ingest span %s", ingest[0].SpanID)
	}
	if !slices.ContainsFunc(byName(all, "herald.claim"), func(s span) bool { return slices.Contains(s.Links, trace) }) {
		t.Errorf("no herald.claim span links to trace %s (the retry is claimed)", trace)
	}
	attempts := byName(all, "herald.attempt")
	slices.SortFunc(attempts, func(a, b span) int { return strings.Compare(a.Attrs["herald.attempt"], b.Attrs["herald.attempt"]) })
	for i, want := range []struct{ n, code, outcome string }{{"1", "503", "retrying"}, {"2", "200", "delivered"}} {
		a := attempts[i]
		if a.TraceID != trace || a.Parent != ingest[0].SpanID || a.SpanID != got[i] || a.Kind != "SPAN_KIND_CLIENT" ||
			a.Attrs["herald.attempt"] != want.n || a.Attrs["http.response.status_code"] != want.code ||
			a.Attrs["herald.outcome"] != want.outcome || a.Attrs["herald.event_id"] != id ||
			a.Attrs["herald.webhook"] != "wh-patient-sync" || !strings.HasPrefix(a.Attrs["herald.delivery_id"], "dlv") {
			t.Errorf("attempt span %d = %+v, want attempt %s answered %s (%s) in trace %s under the ingest span, the parent of the receiver's request %s",
				i+1, a, want.n, want.code, want.outcome, trace, got[i])
		}
	}
	if attempts[0].Attrs["herald.wait_ms"] == "" || attempts[0].Attrs["herald.retry_in_ms"] == "" || attempts[0].StatusCode != "STATUS_CODE_ERROR" {
		t.Errorf("first attempt span = %+v, want its wait, the wait before the retry, and an error status", attempts[0])
	}

	// No health data anywhere in what was exported: not the patient id,
	// the name, the event's data, nor the webhook URL's query.
	for _, s := range col.spans() {
		b, _ := json.Marshal(s)
		for _, m := range []string{markerPatient, markerName, markerData, markerQuery} {
			if strings.Contains(string(b), m) {
				t.Errorf("span %s holds %q: %s", s.Name, m, b)
			}
		}
	}

	// The access log line of the POST carries the trace id.
	if !slices.ContainsFunc(strings.Split(p.logs.String(), "\n"), func(l string) bool {
		return strings.Contains(l, "http request") && strings.Contains(l, "route=\"POST /v1/tenants/{tenant}/instances/{instance}/events\"") &&
			strings.Contains(l, "trace_id="+trace)
	}) {
		t.Errorf("no access log line of POST events with trace_id=%s:\n%s", trace, p.logs)
	}
}

// TestNoTracesWithoutEndpoint: with no OTEL_EXPORTER_OTLP_ENDPOINT a node
// neither continues a producer's trace nor sends a traceparent.
func TestNoTracesWithoutEndpoint(t *testing.T) {
	p := startHerald(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="}, sqliteArgs(t)...)
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	id := postTraced(t, c, inst, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	recv.WaitDelivered(t, 30*time.Second, id)
	r, _ := recv.Last()
	if tp := r.Header.Get("Traceparent"); tp != "" {
		t.Errorf("a node without tracing sent traceparent %q", tp)
	}
	if strings.Contains(p.logs.String(), "trace_id") {
		t.Errorf("a node without tracing logged a trace_id:\n%s", p.logs)
	}
}
