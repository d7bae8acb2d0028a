package dispatch

import (
	"testing"
	"time"

	"github.com/heraldhooks/herald/queue"
)

// TestPace walks the AIMD window by hand: it starts at the maximum, a sign
// of overload halves it once per round (the requests in flight when it
// was cut do not cut it again) down to 1, answers grow it by 1/window each
// back to the maximum, other failures do neither, and slowness (an average
// over twice the best, by slowerBy or more) counts as overload while mere
// jitter does not.
func TestPace(t *testing.T) {
	const ms = time.Millisecond
	// ev is n requests that were in flight together and end one after
	// another so.
	type ev struct {
		ok, over bool
		avg      time.Duration
		n        int
	}
	okAt := func(avg time.Duration, n int) []ev { // one at a time
		out := make([]ev, n)
		for i := range out {
			out[i] = ev{ok: true, avg: avg, n: 1}
		}
		return out
	}
	burst := func(n int) []ev { return []ev{{over: true, n: n}} }
	fail := func(n int) []ev { return []ev{{n: n}} }
	evs := func(lists ...[]ev) []ev {
		var out []ev
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		max  int
		evs  []ev
		want int
	}{
		{"starts at the maximum", 8, nil, 8},
		{"answers keep it there", 8, okAt(10*ms, 100), 8},
		{"one 429 halves it", 8, burst(1), 4},
		{"a burst of 429s in flight together counts once", 8, burst(8), 4},
		{"the next round halves it again", 8, evs(burst(8), burst(4)), 2},
		{"never below 1", 8, evs(burst(8), burst(4), burst(2), burst(1), burst(1)), 1},
		{"other failures neither cut nor grow it", 8, evs(burst(1), fail(50)), 4},
		{"grows by about one per round trip", 8, evs(burst(1), okAt(10*ms, 5)), 5},
		{"back to the maximum", 8, evs(burst(1), okAt(10*ms, 30)), 8},
		{"the maximum may rise again once back", 32, okAt(10*ms, 10), 32},
		{"twice as slow, by 50ms or more, cuts", 8, evs(okAt(20*ms, 10), okAt(100*ms, 1)), 4},
		{"jitter below 50ms does not", 8, evs(okAt(2*ms, 10), okAt(40*ms, 10)), 8},
		{"lasting slowness cuts once, then is the new normal", 8, evs(okAt(20*ms, 10), okAt(100*ms, 20)), 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p pace
			for _, e := range tt.evs {
				for i := range e.n {
					p.ended(e.ok, e.over, e.avg, tt.max, e.n-1-i)
				}
			}
			if got := p.limit(tt.max); got != tt.want {
				t.Errorf("limit = %d, want %d (window %.2f)", got, tt.want, p.window)
			}
			if got := p.paced(tt.max); got != (tt.want < tt.max) {
				t.Errorf("paced = %v with limit %d of %d", got, tt.want, tt.max)
			}
		})
	}
}

// TestSchedulerPace: the scheduler starts no more of a webhook's jobs than
// its pace window allows. Four in flight, one answered 429: the webhook
// gets two in flight until answers grow the window back to four, and the
// count of paced webhooks follows; another webhook keeps its four
// throughout, and a 500 does not pace.
func TestSchedulerPace(t *testing.T) {
	for _, tt := range []struct {
		name      string
		first     outcome // how a's first request ends
		answers   int     // then this many of a's requests end 2xx
		wantA     int     // a's requests in flight once all that may start have
		wantPaced int
	}{
		{"a 429 halves the window", throttled, 0, 2, 1},
		{"a 500 does not", refused, 0, 4, 0},
		{"two answers grow it by less than one", throttled, 2, 2, 1},
		{"three answers grow it by one", throttled, 3, 3, 1},
		{"enough answers bring it back", throttled, 2 + 3 + 4, 4, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := testScheduler(Config{Concurrency: 16, PerWebhookInFlight: 4, FastWebhookInFlight: 4})
			now := time.Now()
			s.enqueue(append(testJobs("a", 40, now, cfg.Lease), testJobs("b", 40, now, cfg.Lease)...))
			inFlight := map[string][]*queue.Job{}
			startNow := func() {
				for j := s.next(now); j != nil; j = s.next(now) {
					inFlight[j.Webhook.ID] = append(inFlight[j.Webhook.ID], j)
				}
			}
			end := func(hook string, o outcome) {
				j := inFlight[hook][0]
				inFlight[hook] = inFlight[hook][1:]
				if next := s.done(j, time.Second, o, now); next != nil {
					inFlight[next.Webhook.ID] = append(inFlight[next.Webhook.ID], next)
				}
				startNow()
			}
			startNow()
			if len(inFlight["a"]) != 4 || len(inFlight["b"]) != 4 {
				t.Fatalf("started a %d, b %d; want 4 each", len(inFlight["a"]), len(inFlight["b"]))
			}
			end("a", tt.first)
			for range tt.answers {
				end("a", answered)
			}
			// End a's requests beyond its window without a verdict on its
			// pace (cut short), so that what starts next shows the window.
			for len(inFlight["a"]) > s.inFlightCap(s.hooks["a"]) {
				j := inFlight["a"][0]
				inFlight["a"] = inFlight["a"][1:]
				if next := s.done(j, time.Second, cutShort, now); next != nil {
					inFlight[next.Webhook.ID] = append(inFlight[next.Webhook.ID], next)
				}
			}
			startNow()
			if got := len(inFlight["a"]); got != tt.wantA {
				t.Errorf("a has %d in flight, want %d", got, tt.wantA)
			}
			if got := len(inFlight["b"]); got != 4 {
				t.Errorf("b has %d in flight, want 4", got)
			}
			if s.paced != tt.wantPaced {
				t.Errorf("paced = %d, want %d", s.paced, tt.wantPaced)
			}
		})
	}
}
