package httpapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

// TestInsight reads a webhook's stats and timeline and finds events by
// source id, after two attempts recorded as the engine records them.
func TestInsight(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	viewer := e.mustClient("acme", "acme-viewer", "viewer")
	e.must(202, req{method: "POST", path: inst + "/events", token: e.admin, body: patientCreated("pat-1")})
	e.must(202, req{method: "POST", path: inst + "/events", token: e.admin, body: patientCreated("pat-2")})

	ctx := context.Background()
	now := time.Now()
	jobs, err := e.store.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "test", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10, PerWebhook: 10})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("claimed %d, %v; want 2", len(jobs), err)
	}
	var results []herald.AttemptResult
	for i, j := range jobs {
		res := herald.AttemptResult{DeliveryID: j.Delivery.ID, Status: herald.StatusDelivered,
			Attempt: herald.Attempt{N: 1, StartedAt: now, DurationMs: 5, StatusCode: 200}}
		if i == 1 {
			res.Status, res.NextAttemptAt, res.WaitReason = herald.StatusRetrying, now.Add(5*time.Second), "receiver answered 500"
			res.Attempt.StatusCode = 500
		}
		results = append(results, res)
	}
	if err := e.store.RecordAttempts(ctx, results); err != nil {
		t.Fatal(err)
	}

	var st struct {
		Webhook      string
		Attempts     int
		Succeeded    int
		SuccessRate  *float64
		LastDelivery *struct{ ID, Status string }
	}
	e.must(200, req{method: "GET", path: inst + "/webhooks/wh-patient-sync/stats", token: viewer}).json(t, &st)
	if st.Webhook != "wh-patient-sync" || st.Attempts != 2 || st.Succeeded != 1 || st.SuccessRate == nil || *st.SuccessRate != 0.5 || st.LastDelivery == nil {
		t.Errorf("stats = %+v, want 2 attempts, 1 succeeded, rate 0.5 and a last delivery", st)
	}
	// Attempts are counted by the minute: since the next minute, none.
	e.must(200, req{method: "GET", path: inst + "/webhooks/wh-patient-sync/stats?since=" + url.QueryEscape(now.Truncate(time.Minute).Add(time.Minute).Format(time.RFC3339Nano)), token: viewer}).json(t, &st)
	if st.Attempts != 0 || st.SuccessRate != nil {
		t.Errorf("stats since after the attempts = %+v, want none and a null rate", st)
	}

	var tl struct {
		StepSeconds int
		Buckets     []struct {
			Start                            time.Time
			Delivered, Rejected, Unreachable int
		}
	}
	from := now.Truncate(time.Minute)
	e.must(200, req{method: "GET", path: inst + "/webhooks/wh-patient-sync/timeline?stepSeconds=60&from=" +
		url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(from.Add(3*time.Minute).Format(time.RFC3339)), token: viewer}).json(t, &tl)
	if tl.StepSeconds != 60 || len(tl.Buckets) != 3 || tl.Buckets[0].Delivered != 1 || tl.Buckets[0].Rejected != 1 || tl.Buckets[1].Delivered != 0 {
		t.Errorf("timeline = %+v, want 3 minutes, the first with 1 delivered and 1 rejected", tl)
	}
	e.must(200, req{method: "GET", path: inst + "/webhooks/wh-patient-sync/timeline", token: viewer}).json(t, &tl)
	if len(tl.Buckets) != 60 {
		t.Errorf("default timeline has %d buckets, want 60 (an hour by minute)", len(tl.Buckets))
	}

	var found struct {
		Events []struct{ EventID, SourceID string }
	}
	e.must(200, req{method: "GET", path: inst + "/events?sourceId=pat-2", token: viewer}).json(t, &found)
	if len(found.Events) != 1 || found.Events[0].SourceID != "pat-2" {
		t.Errorf("events?sourceId=pat-2 = %+v", found)
	}
	e.must(200, req{method: "GET", path: inst + "/events?eventId=" + found.Events[0].EventID, token: viewer}).json(t, &found)
	if len(found.Events) != 1 {
		t.Errorf("events?eventId = %+v", found)
	}
	e.must(200, req{method: "GET", path: inst + "/events?sourceId=nobody", token: viewer}).json(t, &found)
	if found.Events == nil || len(found.Events) != 0 {
		t.Errorf("events?sourceId=nobody = %+v, want an empty list", found)
	}

	for _, tc := range []struct {
		path, field, msg string
		status           int
	}{
		{"/events", "sourceId", "Give eventId or sourceId", 400},
		{"/events?source=x", "source", `Unknown query parameter "source"`, 400},
		{"/events?sourceId=x&limit=0", "limit", "limit must be a whole number from 1 to 500", 400},
		{"/webhooks/wh-patient-sync/stats?since=yesterday", "since", "not an RFC 3339 time", 400},
		{"/webhooks/wh-patient-sync/timeline?stepSeconds=0", "stepSeconds", "whole number of minutes", 400},
		{"/webhooks/wh-patient-sync/timeline?stepSeconds=90", "stepSeconds", "whole number of minutes", 400},
		{"/webhooks/wh-patient-sync/timeline?stepSeconds=60&from=" + url.QueryEscape(from.Add(-48*time.Hour).Format(time.RFC3339)), "step", "the limit is 1440", 400},
		{"/webhooks/nope/stats", "", `"nope" not found`, 404},
		{"/webhooks/nope/timeline", "", `"nope" not found`, 404},
	} {
		got := e.must(tc.status, req{method: "GET", path: inst + tc.path, token: viewer}).apiError(t)
		if got.Field != tc.field || !strings.Contains(got.Message, tc.msg) {
			t.Errorf("GET %s: field %q message %q; want field %q and %q", tc.path, got.Field, got.Message, tc.field, tc.msg)
		}
	}
}

func TestPublishedVersion(t *testing.T) {
	e := mustEnv(t)
	e.must(201, req{method: "POST", path: "/v1/tenants", token: e.admin, body: map[string]string{"name": "acme"}})
	viewer := e.mustClient("acme", "acme-viewer", "viewer")
	got := e.must(404, req{method: "GET", path: "/v1/tenants/acme/designer/published", token: viewer}).apiError(t)
	if !strings.Contains(got.Message, "has not published") {
		t.Errorf("before publishing: %q", got.Message)
	}
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/designer/webhooks", token: e.admin, body: map[string]any{
		"name": "wh-patient-sync", "title": "Patient sync", "triggers": []map[string]string{{"eventEntity": "CDT"}}}})
	e.must(201, req{method: "POST", path: "/v1/tenants/acme/designer/publish", token: e.admin, body: map[string]string{"comment": "first"}})
	var v struct {
		Version  int
		Comment  string
		Webhooks []struct{ Name string }
	}
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/designer/published", token: viewer}).json(t, &v)
	if v.Version != 1 || v.Comment != "first" || len(v.Webhooks) != 1 || v.Webhooks[0].Name != "wh-patient-sync" {
		t.Errorf("published = %+v", v)
	}
}
