package dispatch

import (
	"testing"
	"time"

	"github.com/heraldhooks/herald/queue"
)

// TestSchedulerRateLimit drives a webhook with a rate limit of 4 a second
// through the scheduler by hand, answering its takes of slots as one
// window shared with another node would: it starts a job only on a slot,
// at the slot's time (0, 250, 500, 750ms into the second), asks for the
// next slots when it has none, waits for the next second when the window
// is used up, and its queue holds about a second's worth. A webhook
// without a limit starts all it may at once and asks for nothing.
func TestSchedulerRateLimit(t *testing.T) {
	const limit = 4
	s, cfg := testScheduler(Config{Concurrency: 64, PerWebhookInFlight: 8, FastWebhookInFlight: 8})
	w := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	jobs := testJobs("a", 4, w, cfg.Lease)
	for _, j := range jobs {
		l := limit
		j.Webhook.RateLimitPerSecond = &l
	}
	s.enqueue(append(jobs, testJobs("b", 10, w, cfg.Lease)...))
	if got := s.queueCap(s.hooks["a"]); got != limit {
		t.Errorf("a's queue holds %d, want its limit, %d", got, limit)
	}

	used := map[time.Time]int{}      // the shared window's slots taken
	otherNode := map[time.Time]int{} // slots another node takes first
	// step starts what may at now, answering every take, and returns how
	// many of a started.
	step := func(now time.Time) int {
		s.tick()
		a := 0
		for {
			for _, h := range startAll(s, now) {
				if h == "a" {
					a++
				}
			}
			asks := s.slotAsks
			s.slotAsks = nil
			if len(asks) == 0 {
				return a
			}
			for _, ask := range asks {
				used[ask.window] += otherNode[ask.window]
				otherNode[ask.window] = 0
				first := max(used[ask.window], ask.from)
				n := min(ask.want, ask.limit-first)
				if n < 0 {
					n = 0
				}
				used[ask.window] = first + n
				s.gotSlots(ask, first, n)
			}
		}
	}
	otherNode[w] = 1 // slot 0 goes to the other node
	ms := func(d int) time.Time { return w.Add(time.Duration(d) * time.Millisecond) }
	for _, tt := range []struct {
		at    time.Time
		wantA int
	}{
		{ms(0), 0},   // slot 0 is the other node's; slot 1 is at 250ms
		{ms(100), 0}, // not yet
		{ms(250), 1}, // slot 1
		{ms(400), 0},
		{ms(500), 1},  // slot 2
		{ms(750), 1},  // slot 3
		{ms(900), 0},  // the window is used up
		{ms(1000), 1}, // a new window, slot 0
		{ms(1100), 0}, // its queue is empty
	} {
		if got := step(tt.at); got != tt.wantA {
			t.Errorf("at %s: a started %d, want %d", tt.at.Sub(w), got, tt.wantA)
		}
	}
	if got := s.hooks["b"].inFlight; got != 8 {
		t.Errorf("b has %d in flight, want its 8 (no limit)", got)
	}
	if s.rateWaits == 0 {
		t.Error("rateWaits stayed 0; a waited for its slots")
	}

	// A webhook with nothing queued or in flight keeps its limit, so its
	// next burst gets a queue of a second's worth, not the default.
	c := testJobs("c", 1, w, cfg.Lease)[0]
	l := limit
	c.Webhook.RateLimitPerSecond = &l
	s.enqueue([]*queue.Job{c})
	h := s.hooks["c"]
	s.drop(h)
	s.forget(h, w)
	if s.hooks["c"] != nil {
		t.Fatal("c still has a queue")
	}
	if got, def := s.capOf("c"), s.queueCap(nil); got != limit {
		t.Errorf("idle, c's queue holds %d, want its limit %d (the default is %d)", got, limit, def)
	}
}
