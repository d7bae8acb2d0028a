package dispatch

import (
	"testing"
	"time"

	"github.com/heraldhooks/herald/queue"
)

// TestBreaker walks the circuit breaker by hand: BreakerThreshold failed
// attempts in a row put a webhook on one request at a time and a queue of
// one; a 2xx puts it back at once; a failure short of the threshold, or a
// request cut short, does not; other webhooks keep their limits; the
// count of webhooks probing follows, and survives the webhook's queue
// emptying.
func TestBreaker(t *testing.T) {
	type step struct {
		o outcome
		n int // how many requests end so
	}
	for _, tt := range []struct {
		name      string
		steps     []step
		wantCap   int // a's in-flight cap after the steps
		wantQueue int // a's queue size
		probing   int
	}{
		{"fresh", nil, 2, 4, 0},
		{"one short of the threshold", []step{{refused, 2}}, 2, 4, 0},
		{"threshold opens", []step{{refused, 3}}, 1, 1, 1},
		{"410 counts as a failure", []step{{refused, 2}, {gone410, 1}}, 1, 1, 1},
		{"a success in between resets the count", []step{{refused, 2}, {answered, 1}, {refused, 2}}, 2, 4, 0},
		{"a 2xx closes it at once", []step{{refused, 5}, {answered, 1}}, 2, 4, 0},
		{"cut short counts for nothing", []step{{refused, 2}, {cutShort, 4}}, 2, 4, 0},
		{"cut short keeps it open", []step{{refused, 3}, {cutShort, 1}}, 1, 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := testScheduler(Config{Concurrency: 8, PerWebhookInFlight: 2, FastWebhookInFlight: 2, BreakerThreshold: 3})
			now := time.Now()
			// Each request: queue one job of a, start it, end it so.
			i := 0
			for _, st := range tt.steps {
				for range st.n {
					j := testJobs("a", i+1, now, cfg.Lease)[i]
					i++
					s.enqueue([]*queue.Job{j})
					if got := s.next(now); got != j {
						t.Fatalf("request %d did not start", i)
					}
					s.done(j, time.Second, st.o, now)
					if st.o == gone410 {
						s.settle(j.Delivery.ID, "a", true)
					}
				}
			}
			if got := s.probing; got != tt.probing {
				t.Errorf("probing = %d, want %d", got, tt.probing)
			}
			// a is forgotten (nothing queued or in flight): its count is kept.
			if s.hooks["a"] != nil {
				t.Fatalf("a still has a queue")
			}
			if got := s.capOf("a"); got != tt.wantQueue {
				t.Errorf("queue size = %d, want %d", got, tt.wantQueue)
			}
			// A claim may bring a no more than its queue takes.
			g := s.claimGrant()
			if got := g.reserves("a"); got != tt.wantQueue {
				t.Errorf("a claim may bring %d of a, want %d", got, tt.wantQueue)
			}
			s.end(g)
			// Queue six jobs each of a and b: a starts its cap, b its two.
			s.enqueue(append(testJobs("a", 6, now, cfg.Lease), testJobs("b", 6, now, cfg.Lease)...))
			started := map[string]int{}
			for _, h := range startAll(s, now) {
				started[h]++
			}
			if started["a"] != tt.wantCap || started["b"] != 2 {
				t.Errorf("started a %d, b %d; want a %d, b 2", started["a"], started["b"], tt.wantCap)
			}
			if got := s.inFlightCap(s.hooks["a"]); got != tt.wantCap {
				t.Errorf("inFlightCap(a) = %d, want %d", got, tt.wantCap)
			}
		})
	}
}
