package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/httpapi"
)

// TestReplay: POST .../replay refuses bad windows naming the field, an
// inactive webhook (422) and a second replay while one runs (409); it
// answers 202 with the count of the events the webhook's triggers select,
// and GET .../replays/{id} shows the batches' progress. Audited as
// webhook.replay; admins only.
func TestReplay(t *testing.T) {
	e := mustEnv(t, func(c *httpapi.Config) { c.Retention = 24 * time.Hour })
	e.setup()
	wh := inst + "/webhooks/wh-patient-sync"
	now := time.Now().UTC()
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	for _, tc := range []struct {
		name  string
		body  map[string]string
		field string
		msg   string
	}{
		{"no since", map[string]string{}, "since", "since is required"},
		{"bad since", map[string]string{"since": "yesterday"}, "since", "not an RFC 3339 time"},
		{"bad until", map[string]string{"since": rfc(now.Add(-time.Hour)), "until": "soon"}, "until", "not an RFC 3339 time"},
		{"until in the future", map[string]string{"since": rfc(now.Add(-time.Hour)), "until": rfc(now.Add(time.Hour))}, "until", "is in the future"},
		{"since after until", map[string]string{"since": rfc(now.Add(-time.Hour)), "until": rfc(now.Add(-2 * time.Hour))}, "since", "must come before until"},
		{"since before retention", map[string]string{"since": rfc(now.Add(-25 * time.Hour))}, "since", "before the retention of 24h0m0s"},
	} {
		ae := e.must(400, req{method: "POST", path: wh + "/replay", token: e.admin, body: tc.body}).apiError(t)
		if ae.Field != tc.field || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("%s: field %q, message %q; want field %q, %q", tc.name, ae.Field, ae.Message, tc.field, tc.msg)
		}
	}

	// Two events while active (two deliveries at ingest), one not
	// selected, then deactivation cancels both.
	e.must(202, req{method: "POST", path: inst + "/events", token: e.admin, body: patientCreated("p1")})
	e.must(202, req{method: "POST", path: inst + "/events", token: e.admin, body: patientCreated("p2")})
	e.must(202, req{method: "POST", path: inst + "/events", token: e.admin, body: map[string]any{"eventEntity": "TASK", "eventSubtype": "TASK_CREATED", "sourceId": "t1"}})
	e.must(200, req{method: "POST", path: wh + "/deactivate", token: e.admin})
	since := map[string]string{"since": rfc(now.Add(-time.Hour))}
	ae := e.must(422, req{method: "POST", path: wh + "/replay", token: e.admin, body: since}).apiError(t)
	if !strings.Contains(ae.Message, "inactive; activate it before replaying") {
		t.Errorf("replay of an inactive webhook: %q", ae.Message)
	}
	e.must(200, req{method: "POST", path: wh + "/activate", token: e.admin})
	viewer := e.mustClient("acme", "viewer", herald.RoleViewer)
	e.must(403, req{method: "POST", path: wh + "/replay", token: viewer, body: since})

	var got struct{ Replay herald.Replay }
	e.must(202, req{method: "POST", path: wh + "/replay", token: e.admin, body: since}).json(t, &got)
	if got.Replay.ID == "" || got.Replay.Events != 2 || got.Replay.Status != herald.ReplayRunning || got.Replay.Webhook != "wh-patient-sync" {
		t.Fatalf("replay answered %+v; want RUNNING with 2 events (the TASK event is not selected)", got.Replay)
	}
	e.must(409, req{method: "POST", path: wh + "/replay", token: e.admin, body: since})
	for {
		rp, err := e.store.ReplayBatch(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rp == nil {
			break
		}
	}
	var one struct{ Replay herald.Replay }
	e.must(200, req{method: "GET", path: wh + "/replays/" + got.Replay.ID, token: viewer}).json(t, &one)
	if r := one.Replay; r.Status != herald.ReplayDone || r.Scanned != 2 || r.Created != 2 || r.Skipped != 0 || r.FinishedAt == nil {
		t.Fatalf("replay after its batches: %+v; want DONE, 2 scanned, 2 created (both deliveries were CANCELLED)", r)
	}
	e.must(404, req{method: "GET", path: wh + "/replays/rpl_nope", token: e.admin})
	var list struct{ Replays []herald.Replay }
	e.must(200, req{method: "GET", path: wh + "/replays?limit=5", token: e.admin}).json(t, &list)
	if len(list.Replays) != 1 {
		t.Fatalf("%d replays listed, want 1", len(list.Replays))
	}
	if e.deliveryCount() != 4 {
		t.Fatalf("%d deliveries, want 4: the two cancelled and one new for each", e.deliveryCount())
	}

	// Again: nothing more.
	e.must(202, req{method: "POST", path: wh + "/replay", token: e.admin, body: since}).json(t, &got)
	for {
		rp, err := e.store.ReplayBatch(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rp == nil {
			break
		}
		if rp.Created != 0 {
			t.Fatalf("second replay created %d deliveries, want 0", rp.Created)
		}
	}
	if e.deliveryCount() != 4 {
		t.Fatalf("%d deliveries after a second replay, want 4", e.deliveryCount())
	}
	entries, _, err := e.store.ListAudit(context.Background(), herald.AuditFilter{Tenant: "acme", Action: "webhook.replay"})
	if err != nil || len(entries) != 2 || !strings.Contains(string(entries[0].Diff), `"events":2`) {
		t.Fatalf("audit of the replays: %d entries, %v", len(entries), err)
	}
}
