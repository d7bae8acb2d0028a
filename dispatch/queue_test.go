package dispatch

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestQueueTakesTurns walks the local queues by hand: webhooks take turns,
// the limits on requests in flight hold, claims top up only queues at most
// half full, a job whose lease is too short is dropped, and a stop keeps
// only what is in flight.
func TestQueueTakesTurns(t *testing.T) {
	e, err := New(Config{Store: storekit.NewSQLite(t), Concurrency: 3, PerWebhookInFlight: 2, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const slow = time.Second // requests this slow get the smallest queues
	// job returns a job claimed waited ago, leased for its timeout and the
	// engine's Lease from then.
	job := func(hook string, i int, waited time.Duration) *herald.Job {
		return &herald.Job{Delivery: &herald.Delivery{ID: fmt.Sprintf("%s%d", hook, i)},
			Webhook: &herald.Webhook{ID: hook, TimeoutSeconds: 30}, ClaimedAt: now.Add(-waited),
			LeaseUntil: now.Add(-waited + 30*time.Second + e.cfg.Lease)}
	}
	var a, b []*herald.Job
	for i := range 5 {
		a = append(a, job("a", i, 0))
	}
	for i := range 2 {
		b = append(b, job("b", i, 0))
	}
	id := func(j *herald.Job) string {
		if j == nil {
			return "none"
		}
		return j.Delivery.ID
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.enqueue(append(slices.Clone(a), b...))
	var got []string
	for j := e.next(now); j != nil; j = e.next(now) {
		got = append(got, id(j))
	}
	if want := []string{"a0", "b0", "a1"}; !slices.Equal(got, want) {
		t.Fatalf("started %v, want %v: turns, until Concurrency (3) is reached", got, want)
	}
	// a has 2 in flight, its limit: a finishing request of b starts
	// nothing of a's, one of a's lets b take its turn first.
	if got := id(e.done(a[0], slow, now)); got != "b1" {
		t.Errorf("after a0: started %s, want b1 (b's turn)", got)
	}
	if got := id(e.done(b[0], slow, now)); got != "a2" {
		t.Errorf("after b0: started %s, want a2", got)
	}
	if got := id(e.done(b[1], slow, now)); got != "none" {
		t.Errorf("after b1: started %s, want none: a1 and a2 are in flight, a's limit", got)
	}
	if got := id(e.done(a[1], slow, now)); got != "a3" {
		t.Errorf("after a1: started %s, want a3", got)
	}
	if e.inFlight != 2 || e.queued != 1 || e.hooks["b"] != nil {
		t.Errorf("in flight %d, queued %d, b tracked %v; want 2, 1 and b forgotten", e.inFlight, e.queued, e.hooks["b"] != nil)
	}

	// Claims: a's queue (1 of 4) is topped up, at most 3 for every webhook.
	limit, per, exclude := e.claimSpace()
	if limit != 191 || per != 3 || len(exclude) != 0 {
		t.Errorf("claimSpace = %d, %d, %v; want 191 in all (192 less 1 queued), 3 per webhook, none excluded", limit, per, exclude)
	}
	e.enqueue([]*herald.Job{job("a", 5, 0), job("a", 6, 0)})
	if _, _, exclude := e.claimSpace(); !slices.Equal(exclude, []string{"a"}) {
		t.Errorf("with 3 of 4 queued, excluded %v; want a", exclude)
	}

	// A job that waited in the queue for more than maxQueueWait is
	// dropped, not started; the claim loop will release it.
	e.enqueue([]*herald.Job{job("c", 0, maxQueueWait+time.Millisecond), job("c", 1, maxQueueWait)})
	if got := id(e.done(a[2], slow, now)); got != "c1" {
		t.Errorf("after a2: started %s, want c1 (c0 waited too long)", got)
	}
	if !e.orphans.Load() || e.held["c0"] != 0 {
		t.Errorf("dropped job: orphans %v, held %d; want it released by the claim loop", e.orphans.Load(), e.held["c0"])
	}

	e.stop()
	var held []string
	for id := range e.held {
		held = append(held, id)
	}
	slices.Sort(held)
	if want := []string{"a0", "a1", "a2", "a3", "b0", "b1", "c1"}; !slices.Equal(held, want) {
		// Results of a0..a2, b0 and b1 are still to be written in a real
		// run; here nothing wrote them.
		t.Errorf("held after stop = %v, want %v", held, want)
	}
	if got := id(e.done(a[3], slow, now)); got != "none" || e.queued != 0 {
		t.Errorf("after stop: started %s with %d queued; want nothing", got, e.queued)
	}
}

// TestQueuedJobNeedsLeaseForItsTimeout: a queued job starts only while its
// lease covers its webhook's timeout and the time to write the result. The
// engine's own claims always do within maxQueueWait; a job leased for less
// (claimed by a node with a shorter Lease, or before the clock jumped) is
// dropped and claimed again.
func TestQueuedJobNeedsLeaseForItsTimeout(t *testing.T) {
	lease := maxQueueWait + 5*time.Second
	e, err := New(Config{Store: storekit.NewSQLite(t), Lease: lease, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if want := 5 * time.Second / 3; e.startMargin != want {
		t.Fatalf("startMargin = %s, want %s: a third of what the lease leaves beyond the queue wait", e.startMargin, want)
	}
	now := time.Now()
	timeout := herald.MaxTimeoutSeconds * time.Second
	job := func(id string, left time.Duration) *herald.Job {
		return &herald.Job{Delivery: &herald.Delivery{ID: id}, ClaimedAt: now.Add(-time.Second), LeaseUntil: now.Add(left),
			Webhook: &herald.Webhook{ID: "slow", TimeoutSeconds: herald.MaxTimeoutSeconds}}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// short has 121.5s of lease left for a 120s timeout and a 1.67s margin.
	e.enqueue([]*herald.Job{job("short", timeout+1500*time.Millisecond), job("fresh", timeout+lease-time.Second)})
	if j := e.next(now); j == nil || j.Delivery.ID != "fresh" {
		t.Errorf("started %v, want fresh: short's lease cannot cover its timeout", j)
	}
	if !e.orphans.Load() {
		t.Error("the dropped job is not to be released")
	}
	if _, err := New(Config{Store: storekit.NewSQLite(t), Lease: maxQueueWait, Registerer: prometheus.NewRegistry()}); err == nil {
		t.Error("a Lease no longer than the queue wait was accepted")
	}
}

// TestQueueGrowsForFastReceivers: a webhook whose requests take a few
// milliseconds gets a deeper queue, so its senders do not empty it before
// a claim refills it; a slow one keeps 2 x PerWebhookInFlight.
func TestQueueGrowsForFastReceivers(t *testing.T) {
	e, err := New(Config{Store: storekit.NewSQLite(t), Concurrency: 64, PerWebhookInFlight: 4, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		took time.Duration
		want int
	}{
		{0, 8},                       // nothing known yet: 2 x PerWebhookInFlight
		{time.Second, 8},             // slow
		{400 * time.Millisecond, 10}, // 4 senders cover a second with 10 jobs
		{40 * time.Millisecond, 400}, // fast: 16 senders (FastWebhookInFlight) cover a second with 400 jobs
		{time.Millisecond, 2048},     // at most 512 x PerWebhookInFlight
	} {
		if got := e.queueCap(&hookQueue{took: tt.took}); got != tt.want {
			t.Errorf("queue for requests of %s holds %d, want %d", tt.took, got, tt.want)
		}
	}

	now := time.Now()
	fast := func(i int) *herald.Job {
		return &herald.Job{Delivery: &herald.Delivery{ID: fmt.Sprint("f", i)}, ClaimedAt: now, LeaseUntil: now.Add(30*time.Second + e.cfg.Lease),
			Webhook: &herald.Webhook{ID: "fast", TimeoutSeconds: 30}}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if limit, per, _ := e.claimSpace(); limit != 4096 || per != 8 {
		t.Errorf("claimSpace with nothing queued = %d, %d; want 4096 (64 x Concurrency) and 8", limit, per)
	}
	var jobs []*herald.Job
	for i := range 8 {
		jobs = append(jobs, fast(i))
	}
	e.enqueue(jobs)
	var started []*herald.Job
	for j := e.next(now); j != nil; j = e.next(now) {
		started = append(started, j)
	}
	if len(started) != 4 {
		t.Fatalf("started %d, want 4", len(started))
	}
	// Once its requests are seen to take 1ms, its queue may hold 2048:
	// the next claim tops it up from what is left, and it may have 16
	// requests in flight (FastWebhookInFlight) instead of 4.
	next := e.done(started[0], time.Millisecond, now)
	if _, per, _ := e.claimSpace(); per != 2048-e.queued {
		t.Errorf("per webhook after 1ms requests = %d, want %d (2048 less %d queued)", per, 2048-e.queued, e.queued)
	}
	if next == nil || e.hooks["fast"].inFlight != 4 || e.queued != 3 {
		t.Errorf("after the first 1ms request: next %v, in flight %d, queued %d; want the next job started", next, e.hooks["fast"].inFlight, e.queued)
	}
	for i := 8; i < 40; i++ {
		e.enqueue([]*herald.Job{fast(i)})
	}
	for e.next(now) != nil {
	}
	if got := e.hooks["fast"].inFlight; got != 16 {
		t.Errorf("a webhook answering in 1ms has %d requests in flight, want 16 (FastWebhookInFlight, 4 x PerWebhookInFlight)", got)
	}
}

// TestIdleSpeedsAreForgotten: the engine keeps the measured speed of a
// webhook it no longer sends to for about an hour, not for ever (issue 11,
// item 6.2), so a node that has sent to many webhooks over time does not
// carry them all in memory and in every write's handoff.
func TestIdleSpeedsAreForgotten(t *testing.T) {
	e, err := New(Config{Store: storekit.NewSQLite(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t0 := storetest.Epoch
	// send runs one request to hook at now, ending its queue.
	send := func(hook string, now time.Time) {
		t.Helper()
		j := &herald.Job{Delivery: &herald.Delivery{ID: hook + now.String()}, Webhook: &herald.Webhook{ID: hook, TimeoutSeconds: 30},
			ClaimedAt: now, LeaseUntil: now.Add(30*time.Second + e.cfg.Lease)}
		e.enqueue([]*herald.Job{j})
		if got := e.next(now); got != j {
			t.Fatalf("%s at %s: started %v, want its job", hook, now.Sub(t0), got)
		}
		if got := e.done(j, 20*time.Millisecond, now); got != nil {
			t.Fatalf("%s: done started %v, want nothing", hook, got)
		}
	}
	kept := func() []string {
		var ids []string
		for id := range e.took {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	send("old", t0)
	send("mid", t0.Add(30*time.Minute))
	if got, want := kept(), []string{"mid", "old"}; !slices.Equal(got, want) {
		t.Fatalf("speeds kept after two sends = %v, want %v", got, want)
	}
	// A send an hour and a minute later sweeps old out; mid, idle for 31
	// minutes, stays, and so does the speed handed to its next queue.
	send("new", t0.Add(time.Hour+time.Minute))
	if got, want := kept(), []string{"mid", "new"}; !slices.Equal(got, want) {
		t.Fatalf("speeds kept after an hour = %v, want %v", got, want)
	}
	if e.took["mid"].took != 20*time.Millisecond {
		t.Errorf("mid's speed = %s, want 20ms", e.took["mid"].took)
	}
	send("last", t0.Add(2*time.Hour))
	if got, want := kept(), []string{"last", "new"}; !slices.Equal(got, want) {
		t.Fatalf("speeds kept after two hours = %v, want %v", got, want)
	}
}
