package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type delivery struct {
	ID       string `json:"id"`
	EventID  string `json:"eventId"`
	Webhook  string `json:"webhook"`
	Status   string `json:"status"`
	Attempts []struct {
		N            int    `json:"n"`
		StatusCode   int    `json:"statusCode"`
		ResponseBody string `json:"responseBody"`
		Error        string `json:"error"`
		DurationMs   int64  `json:"durationMs"`
	} `json:"attempts"`
	WaitReason string `json:"waitReason"`
}

// listDeliveries walks every page of the delivery log.
func listDeliveries(t testing.TB, c *apiClient, inst, query string) []delivery {
	t.Helper()
	var all []delivery
	cursor := ""
	for {
		var page struct {
			Deliveries []delivery `json:"deliveries"`
			NextCursor string     `json:"nextCursor"`
		}
		mustDo(t, c, "GET", inst+"/deliveries?limit=200&"+query+"&cursor="+cursor, nil, &page)
		all = append(all, page.Deliveries...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// waitUntil polls cond until it holds, or fails the test after timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDeliveries waits until the delivery log lists want deliveries for query.
func waitDeliveries(t testing.TB, c *apiClient, inst, query string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := len(listDeliveries(t, c, inst, query))
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log shows %d deliveries for %q, want %d", n, query, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sqliteArgs(t testing.TB) []string {
	return []string{"--database", "sqlite:" + filepath.Join(t.TempDir(), "herald.db"), "--allow-private-destinations"}
}

// postEvents posts n PATIENT_CREATED events from 8 goroutines and returns
// the ids that got a 202 and their source ids.
func postEvents(t testing.TB, c *apiClient, inst string, n int) map[string]string {
	t.Helper()
	var mu sync.Mutex
	ids := map[string]string{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				src := fmt.Sprintf("patient-%04d", i)
				var res struct{ EventID string }
				if _, err := c.do(context.Background(), "POST", inst+"/events", map[string]any{
					"eventEntity": "PATIENT", "eventSubtype": "PATIENT_CREATED", "sourceId": src,
					"sourceName": "Patient " + src, "patientId": src, "url": "https://care.example/" + src,
				}, &res); err != nil {
					t.Errorf("post event %d: %v", i, err)
					return
				}
				mu.Lock()
				ids[res.EventID] = src
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ids
}

func TestEndToEndThreeHundredEvents(t *testing.T) {
	p := startHerald(t, nil, sqliteArgs(t)...)
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)

	ids := postEvents(t, c, inst, 300)
	if len(ids) != 300 {
		t.Fatalf("%d events accepted, want 300", len(ids))
	}
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	recv.WaitDelivered(t, 60*time.Second, slices.Collect(maps.Keys(want))...)

	if n := recv.SignatureFailures(); n != 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
	got := recv.Delivered()
	for id, src := range ids {
		b := jsonBody(t, got[id])
		for k, v := range map[string]string{"eventId": id, "eventEntity": "PATIENT", "eventSubtype": "PATIENT_CREATED",
			"sourceId": src, "sourceName": "Patient " + src, "patientId": src, "url": "https://care.example/" + src,
			"tenantName": "acme", "instanceName": "sandbox"} {
			if b[k] != v {
				t.Fatalf("event %s: body[%q] = %v, want %q (body %v)", id, k, b[k], v, b)
			}
		}
		if ts, _ := b["timestamp"].(string); ts == "" {
			t.Fatalf("event %s: no timestamp in %v", id, b)
		}
	}
	// The delivery log agrees, once the last results are written (they
	// are batched, a few milliseconds behind the receiver).
	waitDeliveries(t, c, inst, "status=DELIVERED", 300)
}

func TestFailedFirstAttemptIsRetried(t *testing.T) {
	p := startHerald(t, nil, sqliteArgs(t)...)
	c := p.client(t)
	recv := newReceiver(t)
	recv.SetRespond(answer(func(n int, _ map[string]any) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}))
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	ids := postEvents(t, c, inst, 3)
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	recv.WaitDelivered(t, 60*time.Second, slices.Collect(maps.Keys(want))...)

	for _, d := range listDeliveries(t, c, inst, "") {
		var full delivery
		deadline := time.Now().Add(10 * time.Second)
		for { // the result of the last attempt is written in batches
			mustDo(t, c, "GET", inst+"/deliveries/"+d.ID, nil, &full)
			if full.Status == "DELIVERED" || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if full.Status != "DELIVERED" || len(full.Attempts) != 2 {
			t.Fatalf("delivery %s: status %s with %d attempts, want DELIVERED with 2: %+v", d.ID, full.Status, len(full.Attempts), full)
		}
		if a := full.Attempts; a[0].N != 1 || a[0].StatusCode != 500 || a[1].N != 2 || a[1].StatusCode != 200 {
			t.Errorf("delivery %s attempts = %+v, want 500 then 200, oldest first", d.ID, a)
		}
		if !strings.Contains(full.Attempts[0].ResponseBody, "answered 500") {
			t.Errorf("first attempt's response body %q, want the receiver's answer", full.Attempts[0].ResponseBody)
		}
	}
}

// A node killed with SIGKILL in the middle of a burst, with requests in
// flight and more queued, loses nothing it acknowledged: the next start on
// the same SQLite file takes back what the dead node had claimed at once
// (not when its leases run out) and delivers every event that got a 202.
func TestKill9DuringBurstLosesNothing(t *testing.T) {
	dbArgs := sqliteArgs(t)
	p := startHerald(t, nil, dbArgs...)
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	// A long timeout makes the lease of a claimed delivery longer than this
	// test waits for it: only the take-back at start can bring it back in time.
	mustDo(t, c, "PATCH", inst+"/webhooks/wh-patient-sync", map[string]any{"timeoutSeconds": 120}, nil)

	// Post from 8 goroutines until the server dies under them.
	var mu sync.Mutex
	accepted := map[string]bool{}
	var wg sync.WaitGroup
	var n atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var res struct{ EventID string }
				code, err := c.do(context.Background(), "POST", inst+"/events", map[string]any{
					"eventSubtype": "CDT_CREATED", "sourceId": fmt.Sprintf("g%d-%d", g, i),
				}, &res)
				if err != nil {
					return // the server is gone; this event was not acknowledged
				}
				if code == http.StatusAccepted {
					mu.Lock()
					accepted[res.EventID] = true
					mu.Unlock()
					n.Add(1)
				}
			}
		}()
	}
	// Deliveries flow for a while; then the receiver hangs, so that at the
	// kill some requests are in flight and more are claimed behind them.
	waitUntil(t, 30*time.Second, "200 events acknowledged", func() bool { return n.Load() >= 200 })
	stuck := newGate()
	t.Cleanup(stuck.open)
	recv.SetRespond(stuck.hold)
	waitUntil(t, 30*time.Second, "400 events acknowledged and a request in flight", func() bool {
		return n.Load() >= 400 && stuck.waiting.Load() > 0
	})
	p.kill()
	arrived := delivered(recv)
	wg.Wait()
	owed := 0
	for id := range accepted {
		if !arrived[id] {
			owed++
		}
	}
	t.Logf("kill -9 after %d events acknowledged with 202; %d of them had not arrived", len(accepted), owed)
	if owed == 0 {
		t.Fatalf("every acknowledged event had arrived before the kill: nothing to recover")
	}
	recv.SetRespond(answer(nil))
	stuck.open()

	p2 := startHerald(t, nil, dbArgs...)
	waitLog(t, p2, "took back deliveries left in flight by the previous run", 10*time.Second)
	recv.WaitDelivered(t, 90*time.Second, slices.Collect(maps.Keys(accepted))...)
	t.Logf("every acknowledged event arrived; %d duplicate deliveries (at-least-once)", recv.Duplicates())
}

func TestDefaultSettingsRefuseLoopback(t *testing.T) {
	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(t.TempDir(), "herald.db"))
	c := p.client(t)
	recv := newReceiver(t)
	port := recv.URL[strings.LastIndex(recv.URL, ":")+1:] + "/hook"
	urls := map[string]string{
		"wh-ipv4":      "http://127.0.0.1:" + port,
		"wh-localhost": "http://localhost:" + port,
		"wh-mapped":    "http://[::ffff:127.0.0.1]:" + port,
		"wh-decimal":   "http://2130706433:" + port,
	}
	mustDo(t, c, "POST", "/v1/tenants", map[string]any{"name": "acme"}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/instances", map[string]any{"name": "sandbox"}, nil)
	for name := range urls {
		mustDo(t, c, "POST", "/v1/tenants/acme/designer/webhooks", map[string]any{
			"name": name, "title": name, "triggers": []map[string]string{{"eventEntity": "PATIENT"}}}, nil)
	}
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/publish", map[string]any{"comment": "guard"}, nil)
	inst := "/v1/tenants/acme/instances/sandbox"
	for name, u := range urls {
		mustDo(t, c, "PATCH", inst+"/webhooks/"+name, map[string]any{"url": u}, nil)
		mustDo(t, c, "POST", inst+"/webhooks/"+name+"/activate", nil, nil)
	}
	var res struct{ Deliveries int }
	mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "p1"}, &res)
	if res.Deliveries != len(urls) {
		t.Fatalf("event made %d deliveries, want %d", res.Deliveries, len(urls))
	}
	// Every delivery's first attempt fails with a reason naming the guard.
	deadline := time.Now().Add(30 * time.Second)
	for name := range urls {
		for {
			dl := listDeliveries(t, c, inst, "webhook="+name)
			var full delivery
			if len(dl) == 1 {
				mustDo(t, c, "GET", inst+"/deliveries/"+dl[0].ID, nil, &full)
			}
			if len(full.Attempts) > 0 {
				if e := full.Attempts[0].Error; !strings.Contains(e, "loopback") || !strings.Contains(e, "--allow-private-destinations") {
					t.Errorf("%s (%s): attempt error %q, want it to name loopback and the flag", name, urls[name], e)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no attempt recorded within 30s", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if n := recv.Count(); n != 0 {
		t.Fatalf("the loopback receiver got %d requests, want none", n)
	}
}

func TestDemoOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, heraldBin, "demo", "--once", "--data", t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("herald demo --once: %v\n%s", err, out.String())
	}
	for _, want := range []string{"created tenant \"acme\"", "published", "activated", "signature verified",
		"receiver answered 503", "Every sample was delivered", "apiClient=admin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "✓ delivered"); n != demoExpected {
		t.Errorf("demo printed %d deliveries, want %d:\n%s", n, demoExpected, out.String())
	}
}

// A node stopped with SIGTERM lets requests in flight finish for the drain
// timeout and then gives back every delivery it still holds, in flight or
// queued: right after it exits, the database shows them due again with no
// owner. (Without that release they would stay SENT under the dead node
// until their lease ran out; a restart on SQLite takes them back anyway,
// so the database is read before any restart.) Then nothing is lost: the
// next start delivers them all.
func TestSIGTERMReleasesInFlightWork(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "herald.db")
	dbArgs := []string{"--database", "sqlite:" + dbPath, "--allow-private-destinations"}
	p := startHerald(t, nil, dbArgs...)
	c := p.client(t)
	recv := newReceiver(t)
	stuck := newGate() // a stuck receiver: nothing answers until the node is gone
	t.Cleanup(stuck.open)
	recv.SetRespond(stuck.hold)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	const n = 20
	ids := postEvents(t, c, inst, n)
	if len(ids) != n {
		t.Fatalf("%d events accepted, want %d", len(ids), n)
	}
	waitUntil(t, 30*time.Second, "a request in flight at the receiver", func() bool { return stuck.waiting.Load() > 0 })
	// Every delivery is claimed by the node: in flight, or queued behind
	// the per-webhook limit.
	waitDeliveries(t, c, inst, "status=SENT", n)

	p.stop() // must exit cleanly even though the receiver hangs

	// Read the database the node left behind, before anything starts again.
	states := map[string]int{}
	db, err := sql.Open("sqlite", dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT status, claimed_by, COUNT(*) FROM deliveries GROUP BY status, claimed_by`)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for rows.Next() {
		var status, owner string
		var count int
		if err := rows.Scan(&status, &owner, &count); err != nil {
			t.Fatal(err)
		}
		states[fmt.Sprintf("%s owner=%q", status, owner)] += count
		total += count
		if (status != "PENDING" && status != "RETRYING") || owner != "" {
			t.Errorf("%d deliveries %s claimed by %q after the SIGTERM exit, want every one PENDING or RETRYING with no owner", count, status, owner)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if total != n {
		t.Errorf("the database holds %d deliveries, want %d", total, n)
	}
	t.Logf("deliveries after the SIGTERM exit: %v", states)
	if t.Failed() {
		t.Fatalf("herald log:\n%s", p.logs)
	}

	stuck.open()
	startHerald(t, nil, dbArgs...)
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	recv.WaitDelivered(t, 60*time.Second, slices.Collect(maps.Keys(want))...)
}

// During a rotation's grace period every request carries a signature for
// the new and for the old secret, so a receiver can switch at its own pace;
// a rotation without grace drops the old one at once.
func TestSecretRotationSignsWithBothDuringGrace(t *testing.T) {
	p := startHerald(t, nil, sqliteArgs(t)...)
	c := p.client(t)
	recv := newReceiver(t)
	inst, oldSecret := setupWebhook(t, c, recv.URL+"/hook")
	hook := inst + "/webhooks/wh-patient-sync"

	var rotated struct{ Secret string }
	mustDo(t, c, "POST", hook+"/secret/rotate", map[string]any{"graceSeconds": 3600}, &rotated)
	if rotated.Secret == oldSecret || !strings.HasPrefix(rotated.Secret, "whsec_") {
		t.Fatalf("rotate returned %q", rotated.Secret)
	}
	var current struct{ Secret string }
	mustDo(t, c, "GET", hook+"/secret", nil, &current)
	if current.Secret != rotated.Secret {
		t.Fatalf("GET secret = %q after rotation, want the new one", current.Secret)
	}
	// A receiver still on the old secret, then one already on the new.
	for _, secret := range []string{oldSecret, rotated.Secret} {
		recv.SetSecrets(secret)
		var res struct{ EventID string }
		mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "p"}, &res)
		recv.WaitDelivered(t, 30*time.Second, res.EventID)
	}

	mustDo(t, c, "POST", hook+"/secret/rotate", map[string]any{"graceSeconds": 0}, &rotated)
	recv.SetSecrets(oldSecret)
	recv.SetRespond(answer(nil))
	var res struct{ EventID string }
	mustDo(t, c, "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "q"}, &res)
	// The receiver on the first secret now refuses (401) every attempt.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("receiver: %d requests, %d bad signatures, %d duplicates", recv.Count(), recv.SignatureFailures(), recv.Duplicates())
			for _, d := range listDeliveries(t, c, inst, "") {
				t.Logf("delivery %+v", d)
			}
		}
	})
	waitUntil(t, 30*time.Second, "a request the old secret cannot verify", func() bool {
		return recv.SignatureFailures() > 0
	})
	recv.SetSecrets(rotated.Secret)
	var full delivery
	waitUntil(t, 10*time.Second, "the refused attempt on record", func() bool {
		for _, d := range listDeliveries(t, c, inst, "") {
			if d.EventID == res.EventID {
				mustDo(t, c, "GET", inst+"/deliveries/"+d.ID, nil, &full)
			}
		}
		return len(full.Attempts) > 0
	})
	if full.Attempts[0].StatusCode != http.StatusUnauthorized {
		t.Errorf("first attempt after the graceless rotation = %+v, want the receiver's 401", full.Attempts)
	}
}
