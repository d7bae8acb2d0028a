package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhooks/herald/queue"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// claimEvery is the shortest time between two claims. Under load queues
// that drain to half wake the claimer one after the other; waiting this
// long tops them up in one claim transaction instead of one each.
const claimEvery = time.Millisecond

// claimer takes what the writer's handoff did not bring: retries, the
// overflow of bursts, other nodes' work and leases run out. It claims due
// deliveries whenever the scheduler grants space, and before that releases
// the orphans the scheduler reports (deliveries SENT under this owner that
// the engine does not hold).
//
// Ownership: the claimer runs in Run's goroutine, and its fields other than
// wake are that goroutine's alone. Anyone may send on wake (Engine.Wake,
// the writer after an overflow, the scheduler through queues when a queue
// that may have more due drains to half).
type claimer struct {
	store   Store
	q       *queues
	metrics *metrics
	log     *slog.Logger
	now     func() time.Time
	owner   string
	lease   time.Duration
	poll    time.Duration
	// storeWake delivers the store's wake-ups (Config.Wake); nil once the
	// store closed it.
	storeWake <-chan struct{}
	// wake has capacity 1: one pending wake-up stands for any number.
	wake chan struct{}
	// unclaimable counts claims in a row that found due deliveries they
	// could not take while no queue was full.
	unclaimable int
	// idle is set when the last claim took nothing (and at the start): the
	// next one looks first whether anything is due.
	idle bool
	// tracer makes a span for each claim that took deliveries or failed
	// (not for the many that find nothing); nil when the node does not
	// trace.
	tracer trace.Tracer
}

// wakeUp makes the claimer look now instead of at its next poll. It never
// blocks.
func (c *claimer) wakeUp() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// loop claims due deliveries whenever there is room in the local queues,
// until ctx is done.
func (c *claimer) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	var last time.Time
	for ctx.Err() == nil {
		if gap := time.Since(last); gap < claimEvery {
			timer.Reset(claimEvery - gap)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		wait, err := c.claim(ctx)
		// Counted from the end: the senders a claim started get the gap to
		// finish, so the next claim takes their slots along.
		last = time.Now()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			// The database is down or overloaded: back off, but never
			// further than a few polls, so recovery is noticed soon.
			wait = min(c.poll<<min(failures, 5), 30*time.Second)
			c.log.Warn("could not claim deliveries", "err", err, "retryIn", wait)
		default:
			failures = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case _, ok := <-c.storeWake:
			if !ok {
				c.storeWake = nil // the store closed its wake-ups; polling still works
			}
		case <-timer.C:
		}
	}
}

// claim releases orphans if there are any, then claims what the scheduler
// grants. It returns how long to sleep before the next claim unless woken.
func (c *claimer) claim(ctx context.Context) (time.Duration, error) {
	if c.q.takeOrphans() {
		if err := c.releaseOrphans(ctx); err != nil {
			c.q.setOrphans()
			return 0, err
		}
	}
	if c.idle {
		// The last claim found nothing: look before claiming, so that a
		// claim, and the room it reserves from writes that hand
		// deliveries off, runs only when something is due.
		wait, due, err := c.nextDue(ctx)
		if err != nil || !due {
			return wait, err
		}
	}
	g := c.q.claim()
	if g == nil {
		return c.poll, nil // a draining queue wakes the claimer
	}
	now := c.now()
	started := time.Now()
	jobs, err := c.store.ClaimDeliveries(ctx, queue.ClaimRequest{
		Owner:           c.owner,
		Now:             now,
		LeaseUntil:      now.Add(c.lease),
		Limit:           g.limit,
		PerWebhook:      g.perWebhook,
		ExcludeWebhooks: g.exclude,
	})
	if c.tracer != nil && (err != nil || len(jobs) > 0) {
		c.traceClaim(ctx, started, jobs, err)
	}
	if err != nil {
		// The claim may have committed before the connection broke.
		c.q.failed(g)
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	if len(jobs) > 0 {
		c.idle = false
		c.metrics.claimBatch.Observe(float64(len(jobs)))
		c.unclaimable = 0
		for _, j := range jobs {
			observeLag(c.metrics, j, now)
		}
		if c.q.claimed(g, jobs, c.now()) {
			return claimEvery, nil
		}
		// Whatever more is due waits for a queue that drains to half, which
		// wakes the claimer; a NextDue query per claim would cost more than
		// it saves. The poll bounds the delay of anything else.
		return c.poll, nil
	}
	c.q.unreserve(g)
	c.idle = true
	wait, due, err := c.nextDue(ctx)
	if err != nil || !due {
		return wait, err
	}
	// Due but not claimed. Usually it belongs to a webhook whose queue is
	// full here, and draining it wakes the claimer. With no queue full, it
	// was locked by another node's claim (SKIP LOCKED), which may come to
	// nothing: look again soon, and less often each time.
	if len(g.exclude) == 0 {
		c.unclaimable++
		return min(claimEvery<<min(c.unclaimable+2, 20), wait), nil
	}
	return wait, nil
}

// traceClaim records a claim that began at start as a span of its own,
// linked to the traces the claimed deliveries' events were accepted in.
func (c *claimer) traceClaim(ctx context.Context, start time.Time, jobs []*queue.Job, err error) {
	scs := make([]trace.SpanContext, len(jobs))
	for i, j := range jobs {
		scs[i] = parentOf(j.Event)
	}
	_, span := c.tracer.Start(ctx, "herald.claim", trace.WithNewRoot(), trace.WithTimestamp(start),
		trace.WithLinks(links(scs)...), trace.WithAttributes(attrClaimed.Int(len(jobs))))
	if err != nil {
		span.SetStatus(codes.Error, "claim failed")
	}
	span.End()
}

// nextDue reports whether a delivery is due now, and otherwise how long to
// sleep: until the next one is due, at most a poll.
func (c *claimer) nextDue(ctx context.Context) (wait time.Duration, due bool, err error) {
	next, err := c.store.NextDue(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("next due delivery: %w", err)
	}
	if next == nil {
		return c.poll, false, nil
	}
	if d := next.Sub(c.now()); d > 0 {
		return min(d, c.poll), false, nil
	}
	return c.poll, true, nil
}

// releaseOrphans makes due again every delivery SENT under this owner that
// the engine does not hold: what a claim or a write took when its answer
// was lost, and queued jobs dropped unstarted. No claim runs meanwhile (the
// claimer runs them), and the scheduler lets no write hand deliveries off
// from the moment the release is wanted until it is over, so nothing is
// claimed for this node and not yet held while it runs; deliveries that
// stop being held meanwhile have had their results written and are no
// longer SENT.
func (c *claimer) releaseOrphans(ctx context.Context) error {
	held, ok := c.q.beginRelease()
	defer c.q.endRelease()
	for !ok {
		// Writes handing deliveries off are running; none starts now.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(claimEvery):
		}
		held, ok = c.q.beginRelease()
	}
	n, err := c.store.ReleaseUnheld(ctx, c.owner, held)
	if err != nil {
		return fmt.Errorf("release deliveries this node does not hold: %w", err)
	}
	if n > 0 {
		c.metrics.orphansReleased.Add(float64(n))
		c.log.Info("released deliveries claimed under this node that it does not hold (a claim's answer was lost, or queued jobs waited too long); they are due again now", "count", n)
	}
	return nil
}
