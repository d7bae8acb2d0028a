package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEmit posts made-up events with herald emit to a real node, through
// an API client's credentials: each arrives at the webhook, signed, with
// the catalog's entity and a made-up patient, and emit prints one line
// per event. A subtype not in the catalog, or no credentials, is refused
// with a message saying what to give.
func TestEmit(t *testing.T) {
	p := startHerald(t, nil, "--database", "sqlite:"+t.TempDir()+"/herald.db", "--allow-private-destinations")
	c := p.client(t)
	recv := newReceiver(t)
	_, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)

	env := []string{"HERALD_SERVER=" + p.URL, "HERALD_API_CLIENT=admin", "HERALD_API_SECRET=" + testAdminSecret}
	out := runHerald(t, env, "emit", "acme/sandbox", "patient_created", "--count", "3")
	ids := regexp.MustCompile(`(?m)^(evt_\S+)  PATIENT_CREATED  patient \S+  1 delivery$`).FindAllStringSubmatch(out, -1)
	if len(ids) != 3 {
		t.Fatalf("emit printed:\n%s\nwant 3 lines of accepted events with 1 delivery each", out)
	}
	for _, m := range ids {
		recv.WaitDelivered(t, 15*time.Second, m[1])
	}
	for _, r := range recv.Requests() {
		var body struct {
			EventEntity string
			PatientID   string
			SourceID    string
			SourceName  string
			URL         string
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		// A patient's events are about itself: its own id, a made-up name.
		if body.EventEntity != "PATIENT" || body.PatientID == "" || body.SourceID != body.PatientID ||
			len(strings.Fields(body.SourceName)) != 2 || !strings.HasSuffix(body.URL, "/"+body.PatientID) {
			t.Errorf("an emitted event carries %s", r.Body)
		}
	}

	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"emit", "acme/sandbox", "PATIENT_EXPLODED"}, "not in the event catalog"},
		{[]string{"HERALD_SERVER=" + p.URL, "HERALD_TOKEN=", "HERALD_API_CLIENT="}, []string{"emit", "acme/sandbox", "PATIENT_CREATED"}, "no credentials"},
		{env, []string{"emit", "acme", "PATIENT_CREATED"}, "is not TENANT/INSTANCE"},
		{env, []string{"emit", "acme/nowhere", "PATIENT_CREATED"}, "404"},
	} {
		out, err := runHeraldResult(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("herald %v: %v, want it refused saying %q:\n%s", tc.args, err, tc.want, out)
		}
	}
}
