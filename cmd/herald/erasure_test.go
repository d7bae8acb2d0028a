package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestErasedPatientLeavesNoTrace: after a patient's erasure and a clean
// stop, no file of the SQLite database (WAL included) holds the erased
// event's data, its source id or the receiver's answer to it, not even in
// the free space the deleted rows left behind.
func TestErasedPatientLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--database", "sqlite:" + filepath.Join(dir, "herald.db"), "--allow-private-destinations"}
	p := startHerald(t, nil, args...)
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)

	const name, source = "MARKER-Jane-Doe-1957", "MARKER-chart-4471"
	var ids []string
	for i := range 20 {
		var res struct{ EventID string }
		mustDo(t, c, "POST", inst+"/events", map[string]any{"eventEntity": "PATIENT", "eventSubtype": "PATIENT_CREATED",
			"sourceId": source, "patientId": "erase-me", "data": map[string]any{"name": name, "visit": i}}, &res)
		ids = append(ids, res.EventID)
	}
	var other struct{ EventID string }
	mustDo(t, c, "POST", inst+"/events", map[string]any{"eventEntity": "PATIENT", "eventSubtype": "PATIENT_CREATED",
		"sourceId": "p-2", "patientId": "keep-me", "data": map[string]any{"name": "KEEP-John"}}, &other)
	recv.WaitDelivered(t, 15*time.Second, append(ids, other.EventID)...)
	// The receiver has them; wait until Herald has written every result,
	// so that the purge finds each attempt.
	waitDeliveries(t, c, inst, "status=DELIVERED", len(ids)+1)

	var counts struct{ Events, Deliveries, Attempts int }
	mustDo(t, c, "POST", inst+"/patients/erase-me/purge", nil, &counts)
	if counts.Events != 20 || counts.Deliveries != 20 || counts.Attempts != 20 {
		t.Fatalf("purge answered %+v, want 20 of each", counts)
	}
	p.stop()

	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	kept := false
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		mustNotHold(t, e.Name()+" after the erasure", b, name, source)
		kept = kept || (e.Name() == "herald.db" && bytes.Contains(b, []byte("KEEP-John")))
	}
	if !kept {
		t.Fatal("herald.db does not hold the event that was not erased: the test looks in the wrong place")
	}
}
