package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest/storekit"
)

// TestReplayBackfillsOnce is the replay promise with the real binary: 100
// events posted before the webhook was published, 100 more while it was
// inactive; activate, replay since before the first: all 200 arrive at the
// loopback receiver, once each; a second replay sends none again. On
// SQLite with one node, and on PostgreSQL with two nodes sharing the
// batches.
func TestReplayBackfillsOnce(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		p := startHerald(t, nil, sqliteArgs(t)...)
		replayScenario(t, []*proc{p})
	})
	t.Run("postgres", func(t *testing.T) {
		args := []string{"--database", storekit.PostgresDSN(t), "--allow-private-destinations"}
		replayScenario(t, []*proc{
			startHerald(t, []string{"HERALD_NODE_ID=node-a"}, args...),
			startHerald(t, []string{"HERALD_NODE_ID=node-b"}, args...),
		})
	})
}

type replayAnswer struct {
	Replay struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Events  int    `json:"events"`
		Scanned int    `json:"scanned"`
		Created int    `json:"created"`
		Skipped int    `json:"skipped"`
	} `json:"replay"`
}

func replayScenario(t *testing.T, nodes []*proc) {
	c := nodes[0].client(t)
	recv := newReceiver(t)
	inst := "/v1/tenants/acme/instances/sandbox"
	wh := inst + "/webhooks/wh-patient-sync"
	start := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	mustDo(t, c, "POST", "/v1/tenants", map[string]any{"name": "acme"}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/instances", map[string]any{"name": "sandbox"}, nil)

	before := postEvents(t, c, inst, 100) // no webhook yet
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/webhooks", map[string]any{
		"name": "wh-patient-sync", "title": "Patient sync", "triggers": []map[string]string{{"eventSubtype": "PATIENT_CREATED"}},
	}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/publish", map[string]any{}, nil)
	mustDo(t, c, "PATCH", wh, map[string]any{"url": recv.URL + "/hook"}, nil)
	inactive := postEvents(t, c, inst, 100) // published, not active
	if len(before) != 100 || len(inactive) != 100 {
		t.Fatalf("%d and %d events accepted, want 100 and 100", len(before), len(inactive))
	}
	if n := len(listDeliveries(t, c, inst, "")); n != 0 {
		t.Fatalf("%d deliveries before the replay, want 0", n)
	}
	var s struct{ Secret string }
	mustDo(t, c, "GET", wh+"/secret", nil, &s)
	recv.SetSecrets(s.Secret)
	mustDo(t, c, "POST", wh+"/activate", nil, nil)

	replay := func() replayAnswer {
		t.Helper()
		var a replayAnswer
		status, err := c.do(context.Background(), "POST", wh+"/replay", map[string]any{"since": start}, &a)
		if err != nil || status != 202 {
			t.Fatalf("replay: %d, %v", status, err)
		}
		if a.Replay.Events != 200 || a.Replay.Status != "RUNNING" {
			t.Fatalf("replay answered %+v, want 200 events, RUNNING", a.Replay)
		}
		// Any node answers for the replay, whichever node works it.
		last := nodes[len(nodes)-1].client(t)
		waitUntil(t, 60*time.Second, "the replay is done", func() bool {
			mustDo(t, last, "GET", wh+"/replays/"+a.Replay.ID, nil, &a)
			return a.Replay.Status == "DONE"
		})
		return a
	}

	first := replay()
	if r := first.Replay; r.Scanned != 200 || r.Created != 200 || r.Skipped != 0 {
		t.Fatalf("first replay: %+v, want 200 scanned and created", r)
	}
	want := slices.Collect(maps.Keys(before))
	want = append(want, slices.Collect(maps.Keys(inactive))...)
	recv.WaitDelivered(t, 60*time.Second, want...)
	waitDeliveries(t, c, inst, "status=DELIVERED", 200)

	second := replay()
	if r := second.Replay; r.Scanned != 200 || r.Created != 0 || r.Skipped != 200 {
		t.Fatalf("second replay: %+v, want 200 scanned, none created, 200 skipped", r)
	}
	// Give anything wrongly made time to be sent: the claim loop sends a
	// due delivery within milliseconds.
	time.Sleep(time.Second)
	if n, d := recv.Count(), recv.Duplicates(); n != 200 || d != 0 {
		t.Fatalf("the receiver took %d requests (%d repeats), want 200 and none repeated", n, d)
	}
	if n := len(listDeliveries(t, c, inst, "")); n != 200 {
		t.Fatalf("%d deliveries, want 200", n)
	}
	if n := recv.SignatureFailures(); n != 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
	var audit struct {
		Entries []struct{ Action, Actor string } `json:"entries"`
	}
	mustDo(t, c, "GET", "/v1/tenants/acme/audit?action=webhook.replay", nil, &audit)
	if len(audit.Entries) != 2 {
		t.Errorf("%d webhook.replay audit entries, want 2: %s", len(audit.Entries), fmt.Sprint(audit.Entries))
	}
}
