package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhooks/herald/storetest"
)

// Three real nodes on one PostgreSQL; one is killed with SIGKILL in the
// middle of a burst of 5,000 events posted across all three. Every event
// that got a 202 arrives at least once.
func TestClusterKill9LosesNothing(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
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
	inst, secret := setupWebhook(t, clients[0], recv.URL)
	recv.setSecret(secret)

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
	waitUntil(t, 60*time.Second, "a third of the events acknowledged", func() bool { return acked.Load() >= total/3 })
	nodes[2].kill()
	t.Logf("node-c killed with SIGKILL after %d acknowledged events", acked.Load())
	wg.Wait()
	t.Logf("%d of %d events acknowledged with 202", len(accepted), total)
	if len(accepted) < total*9/10 {
		t.Errorf("only %d of %d events were acknowledged", len(accepted), total)
	}
	// A killed node's claimed deliveries (in flight and queued) come back when
	// their lease runs out, 65 s for the default 30 s timeout: allow for that.
	recv.waitFor(t, accepted, 3*time.Minute)
	t.Logf("every acknowledged event arrived; duplicates: %d", recv.duplicates(accepted))
}

func TestDatabaseOutageAnswers503AndLosesNothing(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
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
	c := p.client(t)
	recv := newReceiver(t)
	inst, secret := setupWebhook(t, c, recv.URL)
	recv.setSecret(secret)

	before := postEvents(t, c, inst, 20)
	proxy.Cut()

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
	}
	// Readiness is probed with a write at most once a second: allow it
	// that long to notice.
	waitReadyz(t, p, http.StatusServiceUnavailable)

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
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("herald log:\n%s", p.logs)
		}
	})
	recv.waitFor(t, want, 90*time.Second)
	waitReadyz(t, p, http.StatusOK)
}

// Maintenance runs on one leader; when the leader dies another node takes
// over within one lease period (the maintenance interval).
func TestLeaderHandOver(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	env := []string{"HERALD_MAINTENANCE_INTERVAL=500ms"}
	a := startHerald(t, append(env, "HERALD_NODE_ID=node-a"), "--database", dsn)
	waitLog(t, a, "maintenance leader", 15*time.Second)
	b := startHerald(t, append(env, "HERALD_NODE_ID=node-b"), "--database", dsn)
	time.Sleep(1500 * time.Millisecond) // three intervals in which b must not lead
	if strings.Contains(b.logs.String(), "maintenance leader") {
		t.Fatalf("node-b leads while node-a is alive:\n%s", b.logs)
	}
	a.kill()
	waitLog(t, b, "maintenance leader", 5*time.Second)
	waitLog(t, b, "maintenance done", 5*time.Second)
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
