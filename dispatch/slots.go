package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/heraldhooks/herald/queue"
)

// pacer makes the I/O of rate limits (ratelimit.go): it takes request
// slots from the store for the webhooks the scheduler asks for, and calls
// the scheduler back (tick) when the earliest waiting webhook's slot time
// comes. One goroutine, run by Run while it claims; it does nothing for
// webhooks without a rate limit.
//
// Ownership: the loop owns its timer; what it is to do comes from the
// scheduler through queues (takeSlotWork), and kick only wakes it.
type pacer struct {
	store Store
	q     *queues
	log   *slog.Logger
	now   func() time.Time
	kick  chan struct{}
}

// wakeUp makes the loop look for work now; it never blocks.
func (p *pacer) wakeUp() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// loop runs until ctx is done.
func (p *pacer) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var armed time.Time // when timer fires; zero when it is stopped
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-timer.C:
			// Every webhook waiting for a time looks again, and those
			// whose time is later wait again, with their times.
			armed = time.Time{}
			p.q.tick(p.now())
		}
		asks, wake := p.q.takeSlotWork()
		for _, a := range asks {
			tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			first, n, err := p.store.TakeSlots(tctx, queue.SlotRequest{Webhook: a.webhook, Limit: a.limit, Window: a.window, From: a.from, Want: a.want})
			cancel()
			if err != nil && ctx.Err() == nil {
				p.log.Warn("could not take rate-limit slots; the webhook waits for the next second", "webhookId", a.webhook, "err", err)
			}
			if err != nil {
				n = 0
			}
			p.q.gotSlots(a, first, n, p.now())
		}
		if !wake.IsZero() && (armed.IsZero() || wake.Before(armed)) {
			armed = wake
			timer.Reset(max(wake.Sub(p.now()), 0))
		}
	}
}
