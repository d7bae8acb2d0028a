package storetest

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

func init() {
	// A webhook's rate limit: set, read back (also by a claim, which
	// carries it to the engine in the job), cleared with null, refused
	// outside 1..MaxRateLimitPerSecond with the field named.
	register("RateLimit", func(e *env) {
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{subtype("PATIENT_CREATED")}})
		w, err := e.S.GetWebhook(e.Ctx, "acme", "live", "wh")
		e.must(err)
		if w.RateLimitPerSecond != nil {
			e.Errorf("a new webhook has rateLimitPerSecond %d, want none", *w.RateLimitPerSecond)
		}
		_, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{RateLimitPerSecond: herald.RateLimitUpdate{Set: true, Value: ptr(20)}})
		e.must(err)
		// Left out of a PATCH, it is kept.
		w, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{TimeoutSeconds: ptr(10)})
		e.must(err)
		if w.RateLimitPerSecond == nil || *w.RateLimitPerSecond != 20 {
			e.Errorf("after a PATCH without it, rateLimitPerSecond = %v, want 20", w.RateLimitPerSecond)
		}
		e.create(event("acme", "live", "PATIENT_CREATED"))
		jobs := e.claim("node-1", 10, 10)
		if len(jobs) != 1 || jobs[0].Webhook.RateLimitPerSecond == nil || *jobs[0].Webhook.RateLimitPerSecond != 20 {
			e.Errorf("a claimed job does not carry the webhook's rate limit of 20")
		}
		for _, bad := range []int{0, -1, herald.MaxRateLimitPerSecond + 1} {
			_, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{RateLimitPerSecond: herald.RateLimitUpdate{Set: true, Value: ptr(bad)}})
			e.wantCode(err, herald.EINVALID, "rateLimitPerSecond must be between 1 and 10000")
			if he, ok := errors.AsType[*herald.Error](err); !ok || he.Field != "rateLimitPerSecond" {
				e.Errorf("the error for %d does not name field rateLimitPerSecond: %v", bad, err)
			}
		}
		w, err = e.S.UpdateWebhook(e.Ctx, "acme", "live", "wh", herald.WebhookUpdate{RateLimitPerSecond: herald.RateLimitUpdate{Set: true}})
		e.must(err)
		if got, _ := e.S.GetWebhook(e.Ctx, "acme", "live", "wh"); w.RateLimitPerSecond != nil || got.RateLimitPerSecond != nil {
			e.Errorf("null did not clear rateLimitPerSecond")
		}
	})

	// TakeSlots hands out each slot of a window once, from the first not
	// passed, never beyond the limit; a later window starts afresh; an
	// earlier one (a node whose clock is behind) gets nothing; takes at
	// once get disjoint slots that add up to the limit.
	register("TakeSlots", func(e *env) {
		w := Epoch.Truncate(time.Second)
		take := func(window time.Time, from, want int) [2]int {
			e.Helper()
			first, n, err := e.S.TakeSlots(e.Ctx, queue.SlotRequest{Webhook: "wh_a", Limit: 20, Window: window, From: from, Want: want})
			e.must(err)
			return [2]int{first, n}
		}
		for i, tt := range []struct {
			window     time.Time
			from, want int
			got        [2]int
		}{
			{w, 0, 5, [2]int{0, 5}},
			{w, 0, 5, [2]int{5, 5}},
			{w, 12, 5, [2]int{12, 5}}, // slots 10 and 11 passed unused
			{w, 12, 10, [2]int{17, 3}},
			{w, 0, 5, [2]int{0, 0}},
			{w.Add(-time.Second), 0, 5, [2]int{0, 0}},
			{w.Add(time.Second), 0, 5, [2]int{0, 5}},
			{w, 0, 5, [2]int{0, 0}},
			{w.Add(time.Second), 19, 5, [2]int{19, 1}},
		} {
			if got := take(tt.window, tt.from, tt.want); got != tt.got {
				e.Errorf("take %d (window %+ds, from %d, want %d) = first %d, n %d; want %v", i, int(tt.window.Sub(w).Seconds()), tt.from, tt.want, got[0], got[1], tt.got)
			}
		}
		// Eight takes at once in a new window, for a webhook of its own.
		next := w.Add(2 * time.Second)
		var mu sync.Mutex
		var taken []int
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				first, n, err := e.S.TakeSlots(e.Ctx, queue.SlotRequest{Webhook: "wh_b", Limit: 20, Window: next, Want: 5})
				if err != nil {
					e.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for i := first; i < first+n; i++ {
					taken = append(taken, i)
				}
			})
		}
		wg.Wait()
		slices.Sort(taken)
		want := make([]int, 20)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(taken, want) {
			e.Errorf("eight takes of 5 at once took slots %v; want each of 0..19 once", taken)
		}
	})
}
