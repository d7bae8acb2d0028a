package dispatch

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/storetest"
)

// TestQueueTakesTurns walks the local queues by hand: webhooks take turns,
// the limits on requests in flight hold, claims top up only queues at most
// half full, a job whose lease is too short is dropped, and a stop keeps
// only what is in flight.
func TestQueueTakesTurns(t *testing.T) {
	cfg := Config{Concurrency: 3, PerWebhookInFlight: 2}.withDefaults()
	e := newScheduler(cfg)
	e.running = true
	now := time.Now()
	const slow = time.Second // requests this slow get the smallest queues
	// job returns a job claimed waited ago, leased for its timeout and the
	// engine's Lease from then.
	job := func(hook string, i int, waited time.Duration) *queue.Job {
		return &queue.Job{Delivery: &herald.Delivery{ID: fmt.Sprintf("%s%d", hook, i)},
			Webhook: &herald.Webhook{ID: hook, TimeoutSeconds: 30}, ClaimedAt: now.Add(-waited),
			LeaseUntil: now.Add(-waited + 30*time.Second + cfg.Lease)}
	}
	var a, b []*queue.Job
	for i := range 5 {
		a = append(a, job("a", i, 0))
	}
	for i := range 2 {
		b = append(b, job("b", i, 0))
	}
	id := func(j *queue.Job) string {
		if j == nil {
			return "none"
		}
		return j.Delivery.ID
	}
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
	if got := id(e.done(a[0], slow, answered, now)); got != "b1" {
		t.Errorf("after a0: started %s, want b1 (b's turn)", got)
	}
	if got := id(e.done(b[0], slow, answered, now)); got != "a2" {
		t.Errorf("after b0: started %s, want a2", got)
	}
	if got := id(e.done(b[1], slow, answered, now)); got != "none" {
		t.Errorf("after b1: started %s, want none: a1 and a2 are in flight, a's limit", got)
	}
	if got := id(e.done(a[1], slow, answered, now)); got != "a3" {
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
	e.enqueue([]*queue.Job{job("a", 5, 0), job("a", 6, 0)})
	if _, _, exclude := e.claimSpace(); !slices.Equal(exclude, []string{"a"}) {
		t.Errorf("with 3 of 4 queued, excluded %v; want a", exclude)
	}

	// A job that waited in the queue for more than maxQueueWait is
	// dropped, not started; the claim loop will release it.
	e.enqueue([]*queue.Job{job("c", 0, maxQueueWait+time.Millisecond), job("c", 1, maxQueueWait)})
	if got := id(e.done(a[2], slow, answered, now)); got != "c1" {
		t.Errorf("after a2: started %s, want c1 (c0 waited too long)", got)
	}
	if !e.orphans || e.held["c0"] != 0 {
		t.Errorf("dropped job: orphans %v, held %d; want it released by the claim loop", e.orphans, e.held["c0"])
	}

	e.stop(now)
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
	if got := id(e.done(a[3], slow, answered, now)); got != "none" || e.queued != 0 {
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
	cfg := Config{Lease: lease}.withDefaults()
	e := newScheduler(cfg)
	e.running = true
	if want := 5 * time.Second / 3; e.startMargin != want {
		t.Fatalf("startMargin = %s, want %s: a third of what the lease leaves beyond the queue wait", e.startMargin, want)
	}
	now := time.Now()
	timeout := herald.MaxTimeoutSeconds * time.Second
	job := func(id string, left time.Duration) *queue.Job {
		return &queue.Job{Delivery: &herald.Delivery{ID: id}, ClaimedAt: now.Add(-time.Second), LeaseUntil: now.Add(left),
			Webhook: &herald.Webhook{ID: "slow", TimeoutSeconds: herald.MaxTimeoutSeconds}}
	}
	// short has 121.5s of lease left for a 120s timeout and a 1.67s margin.
	e.enqueue([]*queue.Job{job("short", timeout+1500*time.Millisecond), job("fresh", timeout+lease-time.Second)})
	if j := e.next(now); j == nil || j.Delivery.ID != "fresh" {
		t.Errorf("started %v, want fresh: short's lease cannot cover its timeout", j)
	}
	if !e.orphans {
		t.Error("the dropped job is not to be released")
	}
	// A Lease no longer than the queue wait is refused by New:
	// TestNewRejectsBadConfig, "lease within the queue wait".
}

// TestQueueGrowsForFastReceivers: a webhook whose requests take a few
// milliseconds gets a deeper queue, so its senders do not empty it before
// a claim refills it; a slow one keeps 2 x PerWebhookInFlight.
func TestQueueGrowsForFastReceivers(t *testing.T) {
	cfg := Config{Concurrency: 64, PerWebhookInFlight: 4}.withDefaults()
	e := newScheduler(cfg)
	e.running = true
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
	fast := func(i int) *queue.Job {
		return &queue.Job{Delivery: &herald.Delivery{ID: fmt.Sprint("f", i)}, ClaimedAt: now, LeaseUntil: now.Add(30*time.Second + cfg.Lease),
			Webhook: &herald.Webhook{ID: "fast", TimeoutSeconds: 30}}
	}
	if limit, per, _ := e.claimSpace(); limit != 4096 || per != 8 {
		t.Errorf("claimSpace with nothing queued = %d, %d; want 4096 (64 x Concurrency) and 8", limit, per)
	}
	var jobs []*queue.Job
	for i := range 8 {
		jobs = append(jobs, fast(i))
	}
	e.enqueue(jobs)
	var started []*queue.Job
	for j := e.next(now); j != nil; j = e.next(now) {
		started = append(started, j)
	}
	if len(started) != 4 {
		t.Fatalf("started %d, want 4", len(started))
	}
	// Once its requests are seen to take 1ms, its queue may hold 2048:
	// the next claim tops it up from what is left, and it may have 16
	// requests in flight (FastWebhookInFlight) instead of 4.
	next := e.done(started[0], time.Millisecond, answered, now)
	if _, per, _ := e.claimSpace(); per != 2048-e.queued {
		t.Errorf("per webhook after 1ms requests = %d, want %d (2048 less %d queued)", per, 2048-e.queued, e.queued)
	}
	if next == nil || e.hooks["fast"].inFlight != 4 || e.queued != 3 {
		t.Errorf("after the first 1ms request: next %v, in flight %d, queued %d; want the next job started", next, e.hooks["fast"].inFlight, e.queued)
	}
	for i := 8; i < 40; i++ {
		e.enqueue([]*queue.Job{fast(i)})
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
	cfg := Config{}.withDefaults()
	e := newScheduler(cfg)
	e.running = true
	t0 := storetest.Epoch
	// send runs one request to hook at now, ending its queue.
	send := func(hook string, now time.Time) {
		t.Helper()
		j := &queue.Job{Delivery: &herald.Delivery{ID: hook + now.String()}, Webhook: &herald.Webhook{ID: hook, TimeoutSeconds: 30},
			ClaimedAt: now, LeaseUntil: now.Add(30*time.Second + cfg.Lease)}
		e.enqueue([]*queue.Job{j})
		if got := e.next(now); got != j {
			t.Fatalf("%s at %s: started %v, want its job", hook, now.Sub(t0), got)
		}
		if got := e.done(j, 20*time.Millisecond, answered, now); got != nil {
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

// The table tests below drive the scheduler alone: no database, no
// network, no clock but the times they pass in.

// testScheduler returns a running scheduler with cfg's limits (defaults
// filled in), and the config.
func testScheduler(cfg Config) (*scheduler, Config) {
	cfg = cfg.withDefaults()
	s := newScheduler(cfg)
	s.running = true
	return s, cfg
}

// testJobs returns n jobs of webhook hook claimed at now, leased for the
// webhook's 30s timeout and lease, with IDs hook0, hook1...
func testJobs(hook string, n int, now time.Time, lease time.Duration) []*queue.Job {
	jobs := make([]*queue.Job, n)
	for i := range jobs {
		jobs[i] = &queue.Job{Delivery: &herald.Delivery{ID: fmt.Sprint(hook, i)}, ClaimedAt: now, LeaseUntil: now.Add(30*time.Second + lease),
			Webhook: &herald.Webhook{ID: hook, TimeoutSeconds: 30}}
	}
	return jobs
}

// startAll takes every job that may start now, and returns their webhooks
// in order.
func startAll(s *scheduler, now time.Time) []string {
	var hooks []string
	for j := s.next(now); j != nil; j = s.next(now) {
		hooks = append(hooks, j.Webhook.ID)
	}
	return hooks
}

// TestSchedulerFairness: webhooks take turns, one job each, whatever the
// depth of their queues and the order they were queued in.
func TestSchedulerFairness(t *testing.T) {
	type queued struct {
		hook string
		n    int
	}
	for _, tt := range []struct {
		name        string
		concurrency int
		perWebhook  int
		queue       []queued
		want        []string
	}{
		{"two webhooks alternate", 4, 4, []queued{{"a", 3}, {"b", 3}}, []string{"a", "b", "a", "b"}},
		{"a deep queue does not hold back a later webhook", 2, 2, []queued{{"a", 10}, {"b", 1}}, []string{"a", "b"}},
		{"a shallow webhook leaves the round when empty", 6, 2, []queued{{"a", 5}, {"b", 1}, {"c", 5}}, []string{"a", "b", "c", "a", "c"}},
		{"many webhooks, one sender each first", 3, 1, []queued{{"a", 4}, {"b", 4}, {"c", 4}, {"d", 4}}, []string{"a", "b", "c"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := testScheduler(Config{Concurrency: tt.concurrency, PerWebhookInFlight: tt.perWebhook})
			now := storetest.Epoch
			for _, q := range tt.queue {
				s.enqueue(testJobs(q.hook, q.n, now, cfg.Lease))
			}
			if got := startAll(s, now); !slices.Equal(got, tt.want) {
				t.Errorf("started %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSchedulerInFlightBounds: a webhook has at most PerWebhookInFlight (8)
// requests in flight, FastWebhookInFlight (32) while its requests take
// under 50ms on average, and the node at most Concurrency (64).
func TestSchedulerInFlightBounds(t *testing.T) {
	for _, tt := range []struct {
		name      string
		hooks     int
		took      time.Duration // measured speed; 0 for none yet
		wantEach  int           // the most any one webhook has in flight
		wantTotal int
	}{
		{"speed unknown", 1, 0, 8, 8},
		{"slow", 1, time.Second, 8, 8},
		{"just under 50ms", 1, 49 * time.Millisecond, 32, 32},
		{"50ms is not fast", 1, 50 * time.Millisecond, 8, 8},
		{"fast", 1, time.Millisecond, 32, 32},
		{"three fast webhooks share the node's 64", 3, time.Millisecond, 22, 64},
		{"ten slow webhooks share the node's 64", 10, time.Second, 7, 64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := testScheduler(Config{})
			now := storetest.Epoch
			for i := range tt.hooks {
				id := fmt.Sprint("h", i)
				if tt.took > 0 {
					s.took[id] = idleSpeed{took: tt.took, at: now}
				}
				s.enqueue(testJobs(id, 100, now, cfg.Lease))
			}
			each := map[string]int{}
			for _, id := range startAll(s, now) {
				each[id]++
			}
			most := 0
			for _, n := range each {
				most = max(most, n)
			}
			if most != tt.wantEach || s.inFlight != tt.wantTotal {
				t.Errorf("in flight: %d for the busiest webhook, %d in all; want %d and %d", most, s.inFlight, tt.wantEach, tt.wantTotal)
			}
		})
	}

	// A fast webhook that slows down goes back to 8 at once: nothing more
	// starts until fewer than 8 are in flight.
	s, cfg := testScheduler(Config{})
	now := storetest.Epoch
	s.took["f"] = idleSpeed{took: time.Millisecond, at: now}
	jobs := testJobs("f", 100, now, cfg.Lease)
	s.enqueue(jobs)
	if n := len(startAll(s, now)); n != 32 {
		t.Fatalf("started %d, want 32", n)
	}
	if next := s.done(jobs[0], time.Second, answered, now); next != nil {
		t.Errorf("after a 1s request, started %s with 31 in flight; want nothing above 8", next.Delivery.ID)
	}
}

// TestSchedulerCapacity: a queue takes what keeps its senders busy for a
// second (between 2 and 512 x PerWebhookInFlight), all queues together at
// most 64 x Concurrency; what a write or claim brings beyond its grant is
// dropped unheld, for the claimer to release, and never queued.
func TestSchedulerCapacity(t *testing.T) {
	for _, tt := range []struct {
		name        string
		concurrency int
		perWebhook  int
		took        time.Duration
		hooks, each int
		wantQueued  int
	}{
		{"speed unknown: 2 x 8", 64, 8, 0, 1, 20, 16},
		{"slow: 2 x 8", 64, 8, time.Second, 1, 20, 16},
		{"200ms: 8 senders cover a second with 40", 64, 8, 200 * time.Millisecond, 1, 50, 40},
		{"fast: at most 512 x 8", 64, 8, time.Millisecond, 1, 5000, 4096},
		{"all queues: at most 64 x Concurrency", 2, 1, 0, 100, 2, 128},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := testScheduler(Config{Concurrency: tt.concurrency, PerWebhookInFlight: tt.perWebhook})
			now := storetest.Epoch
			var jobs []*queue.Job
			for i := range tt.hooks {
				id := fmt.Sprint("h", i)
				if tt.took > 0 {
					s.took[id] = idleSpeed{took: tt.took, at: now}
				}
				jobs = append(jobs, testJobs(id, tt.each, now, cfg.Lease)...)
			}
			// A write of tt.each events: the store would bring no more
			// than the grant; here every job comes, and what is beyond
			// the grant is dropped.
			g := s.handoffGrant(tt.each)
			if room := g.reserves("h0"); room != min(tt.each, s.capOf("h0")) {
				t.Errorf("handoff room %d for a queue of %d", room, s.capOf("h0"))
			}
			s.handedOff(g, jobs, false)
			if s.queued != tt.wantQueued || len(s.held) != tt.wantQueued {
				t.Errorf("queued %d, held %d; want %d", s.queued, len(s.held), tt.wantQueued)
			}
			for id, h := range s.hooks {
				if len(h.jobs) > s.queueCap(h) {
					t.Errorf("%s queued %d for a queue of %d", id, len(h.jobs), s.queueCap(h))
				}
			}
			if dropped := len(jobs) > tt.wantQueued; s.orphans != dropped {
				t.Errorf("orphans = %v with %d of %d jobs dropped", s.orphans, len(jobs)-s.queued, len(jobs))
			}
		})
	}
}

// TestSchedulerSlowWebhookIsolated: a webhook whose receiver hangs holds
// its PerWebhookInFlight senders and no more; the others keep every other
// sender busy, taking turns, while its queue waits.
func TestSchedulerSlowWebhookIsolated(t *testing.T) {
	for _, tt := range []struct {
		concurrency, perWebhook int
	}{{16, 4}, {64, 8}, {12, 3}} {
		t.Run(fmt.Sprintf("concurrency=%d/perWebhook=%d", tt.concurrency, tt.perWebhook), func(t *testing.T) {
			s, cfg := testScheduler(Config{Concurrency: tt.concurrency, PerWebhookInFlight: tt.perWebhook})
			now := storetest.Epoch
			s.took["slow"] = idleSpeed{took: 2 * time.Second, at: now}
			s.enqueue(testJobs("slow", 2*tt.perWebhook, now, cfg.Lease))
			for _, id := range []string{"b", "c"} {
				s.took[id] = idleSpeed{took: time.Millisecond, at: now}
				s.enqueue(testJobs(id, 500, now, cfg.Lease))
			}
			var running []*queue.Job
			for j := s.next(now); j != nil; j = s.next(now) {
				running = append(running, j)
			}
			slowIn := func() int { return s.hooks["slow"].inFlight }
			if len(running) != tt.concurrency || slowIn() != tt.perWebhook {
				t.Fatalf("started %d, %d of them slow; want %d and %d", len(running), slowIn(), tt.concurrency, tt.perWebhook)
			}
			// The fast webhooks' requests end, one after the other, 200
			// times; the slow ones never do.
			done := map[string]int{}
			for range 200 {
				i := slices.IndexFunc(running, func(j *queue.Job) bool { return j.Webhook.ID != "slow" })
				j := running[i]
				running = slices.Delete(running, i, i+1)
				done[j.Webhook.ID]++
				next := s.done(j, time.Millisecond, answered, now)
				if next == nil {
					t.Fatalf("after %v: no job started with fast work queued", done)
				}
				if next.Webhook.ID == "slow" {
					t.Fatalf("a sender freed by %s started a slow job with %d slow in flight", j.Webhook.ID, slowIn())
				}
				running = append(running, next)
			}
			if slowIn() != tt.perWebhook || s.inFlight != tt.concurrency || done["b"] < 50 || done["c"] < 50 {
				t.Errorf("slow in flight %d, all %d, done %v; want %d, %d and both fast webhooks served", slowIn(), s.inFlight, done, tt.perWebhook, tt.concurrency)
			}
		})
	}
}

// TestSchedulerHandoffRoom: a write may claim for this node what the queues
// have room for, no webhook more than the write has events, nothing for a
// webhook with a 410 pending, and nothing at all while Run is not running,
// an orphan release is wanted, or the queues are full.
func TestSchedulerHandoffRoom(t *testing.T) {
	now := storetest.Epoch
	for _, tt := range []struct {
		name     string
		setup    func(s *scheduler, lease time.Duration)
		events   int
		wantNil  bool
		wantRoom map[string]int
		wantDef  int
	}{
		{"nothing known", func(*scheduler, time.Duration) {}, 100, false, map[string]int{}, 16},
		{"few events", func(*scheduler, time.Duration) {}, 3, false, map[string]int{}, 3},
		{"a queue with 10 of 16", func(s *scheduler, lease time.Duration) { s.enqueue(testJobs("a", 10, now, lease)) },
			100, false, map[string]int{"a": 6}, 16},
		{"a fast webhook idle", func(s *scheduler, _ time.Duration) { s.took["f"] = idleSpeed{took: time.Millisecond, at: now} },
			1000, false, map[string]int{"f": 1000}, 16},
		{"410 pending", func(s *scheduler, _ time.Duration) { s.gone["g"] = 1 }, 100, false, map[string]int{"g": 0}, 16},
		{"not running", func(s *scheduler, _ time.Duration) { s.running = false }, 100, true, nil, 0},
		{"release wanted", func(s *scheduler, _ time.Duration) { s.releaseWanted = true }, 100, true, nil, 0},
		{"all queues full", func(s *scheduler, lease time.Duration) {
			for i := range 256 {
				s.enqueue(testJobs(fmt.Sprint("h", i), 16, now, lease))
			}
		}, 100, true, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := testScheduler(Config{})
			tt.setup(s, cfg.Lease)
			g := s.handoffGrant(tt.events)
			if tt.wantNil {
				if g != nil {
					t.Errorf("handoff room %+v, want none", g)
				}
				return
			}
			if g == nil {
				t.Fatal("no handoff room")
			}
			if !maps.Equal(g.room, tt.wantRoom) || g.def != tt.wantDef || g.limit != s.totalQueueCap()-s.queued {
				t.Errorf("room %v, default %d, limit %d; want %v, %d, %d", g.room, g.def, g.limit, tt.wantRoom, tt.wantDef, s.totalQueueCap()-s.queued)
			}
		})
	}
}

// TestSchedulerClaimAndHandoffRace: a claim's space is reserved before it
// runs, and a write's handoff room before it runs, so whichever comes
// first, a handoff or claim running meanwhile gets only what is left and
// the queue ends exactly full, nothing dropped. Before the rebuild the two
// each saw the queue as it was and could put 6 jobs in a queue of 4.
func TestSchedulerClaimAndHandoffRace(t *testing.T) {
	for _, tt := range []struct {
		name       string
		queued     int      // jobs of webhook a queued before (0: a is not known)
		order      []string // claim / handoff begin, claimed / handedOff end
		wantQueued int
	}{
		{"claim first, handoff meanwhile", 2, []string{"claim", "handoff", "claimed", "handedOff"}, 4},
		{"claim first, handoff ends first", 2, []string{"claim", "handoff", "handedOff", "claimed"}, 4},
		{"handoff first, claim meanwhile", 2, []string{"handoff", "claim", "claimed", "handedOff"}, 4},
		{"unknown webhook, claim first", 0, []string{"claim", "handoff", "handedOff", "claimed"}, 4},
		{"unknown webhook, handoff first", 0, []string{"handoff", "claim", "claimed", "handedOff"}, 4},
		{"one after the other", 2, []string{"claim", "claimed", "handoff", "handedOff"}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// As TestClaimsAheadOfSenders: a queue of 4, 2 in flight.
			s, cfg := testScheduler(Config{Concurrency: 4, PerWebhookInFlight: 2, FastWebhookInFlight: 2})
			now := storetest.Epoch
			backlog := testJobs("a", 100, now, cfg.Lease) // what is due for a in the store
			take := func(n int) []*queue.Job {
				n = min(n, len(backlog))
				jobs := backlog[:n:n]
				backlog = backlog[n:]
				return jobs
			}
			if tt.queued > 0 {
				s.enqueue(take(2 + tt.queued))
				if started := startAll(s, now); len(started) != 2 {
					t.Fatalf("started %d, want 2", len(started))
				}
			}
			var claim, handoff *grant
			for _, step := range tt.order {
				switch step {
				case "claim":
					claim = s.claimGrant()
				case "handoff":
					handoff = s.handoffGrant(20)
				case "claimed":
					// The store takes all the claim may: PerWebhook for a
					// webhook not excluded, within Limit.
					var jobs []*queue.Job
					if claim != nil && !slices.Contains(claim.exclude, "a") {
						jobs = take(min(claim.perWebhook, claim.limit))
					}
					if claim != nil {
						s.claimed(claim, jobs)
					}
				case "handedOff":
					// The store hands off all the room allows.
					var jobs []*queue.Job
					if handoff != nil {
						room, ok := handoff.room["a"]
						if !ok {
							room = handoff.def
						}
						jobs = take(min(room, handoff.limit))
						s.handedOff(handoff, jobs, false)
					}
				}
			}
			if got := len(s.hooks["a"].jobs); got != tt.wantQueued || s.orphans {
				t.Errorf("a queued %d (dropped any: %v); want %d, none dropped", got, s.orphans, tt.wantQueued)
			}
			if len(s.grants) != 0 {
				t.Errorf("%d grants left running", len(s.grants))
			}
		})
	}
}

// TestSchedulerExpiry: a queued job starts only if it waited at most 5s
// and its lease still covers its webhook's timeout and the time to write
// the result (10s with the default Lease); otherwise it is dropped, no
// longer held, and the claimer is asked to release it.
func TestSchedulerExpiry(t *testing.T) {
	now := storetest.Epoch
	for _, tt := range []struct {
		name    string
		waited  time.Duration
		left    time.Duration // lease left at now
		timeout int           // seconds; 0 for the default 30
		start   bool
	}{
		{"fresh", 0, 65 * time.Second, 30, true},
		{"waited 5s", maxQueueWait, 60 * time.Second, 30, true},
		{"waited over 5s", maxQueueWait + time.Millisecond, 60 * time.Second, 30, false},
		{"lease covers timeout and margin", time.Second, 40 * time.Second, 30, true},
		{"lease short by 1ms", time.Second, 40*time.Second - time.Millisecond, 30, false},
		{"default timeout, lease short", time.Second, 39 * time.Second, 0, false},
		{"default timeout, lease enough", time.Second, 40 * time.Second, 0, true},
		{"long timeout", time.Second, 125 * time.Second, 120, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := testScheduler(Config{})
			j := &queue.Job{Delivery: &herald.Delivery{ID: "d"}, ClaimedAt: now.Add(-tt.waited), LeaseUntil: now.Add(tt.left),
				Webhook: &herald.Webhook{ID: "a", TimeoutSeconds: tt.timeout}}
			s.enqueue([]*queue.Job{j})
			got := s.next(now)
			if started := got != nil; started != tt.start {
				t.Fatalf("started = %v, want %v", started, tt.start)
			}
			if dropped := !tt.start; s.orphans != dropped || s.dropped != map[bool]int{true: 1}[dropped] ||
				(s.held["d"] == 0) != dropped || s.wantClaim != dropped {
				t.Errorf("orphans %v, dropped %d, held %d, wantClaim %v; want the drop %v said everywhere",
					s.orphans, s.dropped, s.held["d"], s.wantClaim, dropped)
			}
		})
	}
}

// TestSchedulerOrphanRelease: an orphan release waits for the writes that
// hand deliveries off, and no write hands any off until it is over.
func TestSchedulerOrphanRelease(t *testing.T) {
	s, cfg := testScheduler(Config{})
	now := storetest.Epoch
	g := s.handoffGrant(1)
	if _, ok := s.beginRelease(); ok {
		t.Fatal("release began while a write handing deliveries off runs")
	}
	if s.handoffGrant(1) != nil {
		t.Error("a write got handoff room while a release waits")
	}
	s.handedOff(g, testJobs("a", 1, now, cfg.Lease), false)
	held, ok := s.beginRelease()
	if !ok || !slices.Equal(held, []string{"a0"}) {
		t.Errorf("beginRelease = %v, %v; want a0 held", held, ok)
	}
	s.endRelease()
	if s.handoffGrant(1) == nil {
		t.Error("no handoff room after the release")
	}
}

// TestSchedulerClaimKeepsToEachQueue: a claim asks for one figure per
// webhook, set by the queues on this node (here a fast webhook's, 4000);
// a webhook with no queue here keeps only what its own queue takes, and
// the rest is dropped for the claimer to release.
func TestSchedulerClaimKeepsToEachQueue(t *testing.T) {
	s, cfg := testScheduler(Config{})
	now := storetest.Epoch
	s.took["fast"] = idleSpeed{took: time.Millisecond, at: now}
	s.enqueue(testJobs("fast", 96, now, cfg.Lease))
	g := s.claimGrant()
	if g.perWebhook != 4000 || g.reserves("fast") != 4000 || g.reserves("new") != 16 {
		t.Fatalf("claim asks %d per webhook, keeps %d for fast and %d for a new webhook; want 4000, 4000, 16",
			g.perWebhook, g.reserves("fast"), g.reserves("new"))
	}
	s.claimed(g, append(testJobs("new", 100, now, cfg.Lease), testJobs("fast2", 0, now, cfg.Lease)...))
	if got := len(s.hooks["new"].jobs); got != 16 || !s.orphans || len(s.held) != 96+16 {
		t.Errorf("new webhook queued %d, orphans %v, held %d; want 16, the rest dropped", got, s.orphans, len(s.held))
	}
}
