package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/storetest"
)

// Three real nodes on one PostgreSQL; one is killed with SIGKILL in the
// middle of a burst of 5,000 events posted across all three, while it has
// deliveries claimed (the receiver hangs, so some are in flight). Every
// event that got a 202 arrives at least once: the other nodes take over
// the dead node's claims when their leases run out.
func TestClusterKill9LosesNothing(t *testing.T) {
	dsn := storekit.PostgresDSN(t)
	args := []string{"--database", dsn, "--allow-private-destinations"}
	nodes := []*proc{
		startHerald(t, []string{"HERALD_NODE_ID=node-a"}, args...),
		startHerald(t, []string{"HERALD_NODE_ID=node-b"}, args...),
		startHerald(t, []string{"HERALD_NODE_ID=node-c"}, args...),
	}
	clients := make([]*apiClient, len(nodes))
	for i, n := range nodes {
		clients[i] = n.client(t) // a token from each node; any node's token works on every node
	}
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, clients[0], recv.URL+"/hook")
	recv.SetSecrets(secret)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	claimedBy := func(owner string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM deliveries WHERE status = 'SENT' AND claimed_by = $1`, owner).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	const total = 5000
	var mu sync.Mutex
	accepted := map[string]bool{}
	var next, acked atomic.Int64
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[g%3]
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				var res struct{ EventID string }
				code, err := c.do(context.Background(), "POST", inst+"/events", map[string]any{
					"eventSubtype": "PATIENT_CREATED", "sourceId": fmt.Sprintf("p-%d", i)}, &res)
				if err != nil || code != http.StatusAccepted {
					if g%3 == 2 {
						c = clients[0] // node c died: its client moves to node a, like a load balancer would
					}
					continue // not acknowledged: the producer would retry it
				}
				mu.Lock()
				accepted[res.EventID] = true
				mu.Unlock()
				acked.Add(1)
			}
		}()
	}
	// Deliveries flow for a while; then the receiver hangs, so that node c
	// has requests in flight and more claimed behind them when it dies.
	waitUntil(t, 60*time.Second, "a sixth of the events acknowledged", func() bool { return acked.Load() >= total/6 })
	stuck := newGate()
	t.Cleanup(stuck.open)
	recv.SetRespond(stuck.hold)
	waitUntil(t, 60*time.Second, "a third of the events acknowledged, with deliveries claimed by node-c", func() bool {
		return acked.Load() >= total/3 && stuck.waiting.Load() > 0 && claimedBy("node-c") > 0
	})
	nodes[2].kill()
	arrived := delivered(recv)
	heldByC := claimedBy("node-c") // the dead node's claims, until their leases run out
	t.Logf("node-c killed with SIGKILL after %d acknowledged events, holding %d deliveries", acked.Load(), heldByC)
	if heldByC == 0 {
		t.Fatalf("node-c held no delivery when it was killed: nothing to take over")
	}
	recv.SetRespond(answer(nil))
	stuck.open()
	wg.Wait()
	owed := 0
	for id := range accepted {
		if !arrived[id] {
			owed++
		}
	}
	t.Logf("%d of %d events acknowledged with 202; %d of them had not arrived at the kill", len(accepted), total, owed)
	if len(accepted) < total*9/10 {
		t.Errorf("only %d of %d events were acknowledged", len(accepted), total)
	}
	if owed == 0 {
		t.Fatalf("every acknowledged event had arrived before the kill: nothing to recover")
	}
	// A killed node's claimed deliveries (in flight and queued) come back when
	// their lease runs out, 65 s for the default 30 s timeout: allow for that.
	recv.WaitDelivered(t, 3*time.Minute, slices.Collect(maps.Keys(accepted))...)
	if n := claimedBy("node-c"); n != 0 {
		t.Errorf("%d deliveries are still claimed by the dead node-c", n)
	}
	t.Logf("every acknowledged event arrived; duplicates: %d", recv.Duplicates())
}

// A node whose database becomes unreachable answers 503 to producers and
// accepts nothing it cannot store; the deliveries it was working on when
// the database went away (the first attempt of each hangs at the receiver
// until the cut, then fails) keep their results until the database is
// back, then are retried and arrive. No accepted event is lost.
func TestDatabaseOutageAnswers503AndLosesNothing(t *testing.T) {
	dsn := storekit.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := storetest.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	p := startHerald(t, nil, "--database", u.String(), "--allow-private-destinations")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("herald log:\n%s", p.logs)
		}
	})
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL+"/hook")
	recv.SetSecrets(secret)
	cut := newGate() // opens once the database is cut off
	t.Cleanup(cut.open)
	recv.SetRespond(answer(func(n int, _ map[string]any) int {
		if n == 1 {
			cut.wait(context.Background())
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}))

	before := postEvents(t, c, inst, 20)
	if len(before) != 20 {
		t.Fatalf("%d events accepted before the cut, want 20", len(before))
	}
	waitUntil(t, 30*time.Second, "a first attempt in flight at the receiver", func() bool { return cut.waiting.Load() > 0 })
	proxy.Cut()
	cut.open() // the first attempts fail now, with no database to write that to

	// While the database is unreachable: 503 with a clear message, never 202.
	deadline := time.Now().Add(30 * time.Second)
	var got503 int
	for got503 < 3 {
		code, err := c.do(context.Background(), "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED"}, nil)
		if code == http.StatusAccepted {
			t.Fatalf("an event got 202 while the database was cut off")
		}
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(strings.ToLower(err.Error()), "database") {
				t.Errorf("503 message %q does not say the database is the problem", err)
			}
			got503++
		} else if time.Now().After(deadline) {
			t.Fatalf("no 503 within 30s of the cut; last answer %d %v", code, err)
		}
		time.Sleep(100 * time.Millisecond) // a producer's pause before it tries again
	}
	// Readiness is probed with a write at most once a second: allow it
	// that long to notice.
	waitReadyz(t, p, http.StatusServiceUnavailable)
	for id := range delivered(recv) {
		if before[id] != "" {
			t.Fatalf("event %s arrived while the database was cut off: its delivery did not span the outage", id)
		}
	}

	proxy.Restore()
	// Delivery and ingest resume by themselves.
	var after map[string]string
	deadline = time.Now().Add(60 * time.Second)
	for {
		var res struct{ EventID string }
		_, err := c.do(context.Background(), "POST", inst+"/events", map[string]any{"eventSubtype": "PATIENT_CREATED", "sourceId": "after"}, &res)
		if err == nil {
			after = map[string]string{res.EventID: "after"}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest did not resume within 60s of restoring the database: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := map[string]bool{}
	for id := range before {
		want[id] = true
	}
	for id := range after {
		want[id] = true
	}
	recv.WaitDelivered(t, 90*time.Second, slices.Collect(maps.Keys(want))...)
	waitReadyz(t, p, http.StatusOK)

	// The log has every event delivered, and the attempts made while the
	// database was away are on record: the node kept their results.
	waitDeliveries(t, c, inst, "status=DELIVERED", len(want))
	for _, d := range listDeliveries(t, c, inst, "") {
		if before[d.EventID] == "" {
			continue
		}
		var full delivery
		mustDo(t, c, "GET", inst+"/deliveries/"+d.ID, nil, &full)
		if a := full.Attempts; len(a) < 2 || a[0].StatusCode != http.StatusServiceUnavailable || a[len(a)-1].StatusCode != http.StatusOK {
			t.Errorf("delivery %s of an event posted before the cut: attempts %+v, want the 503 answered during the outage, then 200", d.ID, a)
		}
	}
}

// Maintenance runs on one leader; the other nodes try too, find the
// leader alive and stay followers; when the leader dies another node takes
// over within one lease period (the maintenance interval).
func TestLeaderHandOver(t *testing.T) {
	dsn := storekit.PostgresDSN(t)
	env := []string{"HERALD_MAINTENANCE_INTERVAL=500ms"}
	a := startHerald(t, append(env, "HERALD_NODE_ID=node-a"), "--database", dsn)
	waitLog(t, a, "maintenance leader", 15*time.Second)
	b := startHerald(t, append(env, "HERALD_NODE_ID=node-b"), "--database", dsn)
	waitUntil(t, 30*time.Second, "node-b has run maintenance as a follower twice", func() bool {
		return maintenanceRuns(t, b, "follower") >= 2
	})
	if n := maintenanceRuns(t, b, "leader"); n != 0 || strings.Contains(b.logs.String(), "maintenance leader") {
		t.Fatalf("node-b led %d maintenance runs while node-a is alive:\n%s", n, b.logs)
	}
	if maintenanceRuns(t, a, "leader") == 0 {
		t.Fatalf("node-a has not run maintenance as the leader:\n%s", a.logs)
	}
	a.kill()
	waitLog(t, b, "maintenance leader", 30*time.Second)
	waitLog(t, b, "maintenance done", 30*time.Second)
	if maintenanceRuns(t, b, "leader") == 0 {
		t.Fatalf("node-b says it leads but its metrics count no leader run")
	}
}

// maintenanceRuns reads herald_maintenance_runs_total{role=role} from p's
// /metrics; 0 when the series is not there yet.
func maintenanceRuns(t testing.TB, p *proc, role string) int {
	t.Helper()
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	prefix := `herald_maintenance_runs_total{role="` + role + `"} `
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return int(n)
		}
	}
	return 0
}

func waitLog(t testing.TB, p *proc, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.logs.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within %v:\n%s", substr, timeout, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
