package dispatch

import (
	"sync"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

// queues is the scheduler behind the one mutex that guards it: the
// claimer, the writer and the senders reach the scheduler only through
// these methods, each of which holds mu for one call of the scheduler and
// then acts on what it says (gauges, the claimer's wake-up, starting
// senders). mu is never held across I/O or while taking another lock, and
// the scheduler calls nothing back.
type queues struct {
	mu sync.Mutex
	s  *scheduler // guarded by mu

	metrics *metrics
	// wake asks the claimer to look now; it never blocks.
	wake func()
	// start starts a sender with a job; set by open, while Run runs.
	// Called with mu held, so that Run cannot begin its drain between a job
	// leaving the scheduler and its sender starting.
	start func(*queue.Job)
	// kickSlots wakes the pacer (slots.go); it never blocks.
	kickSlots func()
	// slotAsks and slotWake are the pacer's work, handed over by publish
	// and taken by takeSlotWork: the takes of slots to make, and the
	// earliest time a webhook waiting for a slot may start. Guarded by mu.
	slotAsks []slotAsk
	slotWake time.Time
}

// open lets the scheduler start jobs with start, and writes hand off.
func (q *queues) open(start func(*queue.Job)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.start = start
	q.s.running = true
}

// started reports whether open was called.
func (q *queues) started() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.start != nil
}

// stop empties the queues and starts nothing more (scheduler.stop).
func (q *queues) stop(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.stop(now)
	q.publish()
}

// claim reserves the next claim's space, nil when there is none.
func (q *queues) claim() *grant {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.s.claimGrant()
}

// claimed queues what claim g took and starts what the senders can; it
// reports whether the queues have room for another claim now.
func (q *queues) claimed(g *grant, jobs []*queue.Job, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	more := q.s.claimed(g, jobs)
	q.startReady(now)
	q.publish()
	return more
}

// handoff reserves the handoff room of a write of events new events, nil
// when it may hand nothing off.
func (q *queues) handoff(events int) *grant {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.s.handoffGrant(events)
}

// handedOff queues what write g claimed for this node and starts what the
// senders can.
func (q *queues) handedOff(g *grant, jobs []*queue.Job, overflow bool, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.handedOff(g, jobs, overflow)
	q.startReady(now)
	q.publish()
}

// unreserve ends grant g, which brought nothing.
func (q *queues) unreserve(g *grant) {
	if g == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.end(g)
}

// failed ends grant g, whose claim or write failed and may have committed.
func (q *queues) failed(g *grant) {
	if g == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.failed(g)
}

// done records that j's request is over and returns the sender's next job.
func (q *queues) done(j *queue.Job, took time.Duration, o outcome, now time.Time) *queue.Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	next := q.s.done(j, took, o, now)
	q.publish()
	return next
}

// settle records that results are written or given up.
func (q *queues) settle(results []pendingResult) {
	if len(results) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range results {
		q.s.settle(r.DeliveryID, r.webhookID, r.DeactivateReason != "")
	}
}

// takeOrphans reports whether orphans are to be released, and clears it.
func (q *queues) takeOrphans() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	o := q.s.orphans
	q.s.orphans = false
	return o
}

// setOrphans says orphans are (still) to be released.
func (q *queues) setOrphans() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.orphans = true
}

// beginRelease and endRelease bracket an orphan release
// (scheduler.beginRelease).
func (q *queues) beginRelease() ([]string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.s.beginRelease()
}

func (q *queues) endRelease() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.endRelease()
}

// held returns how many deliveries are held and webhooks wait on a 410.
func (q *queues) held() (deliveries, gone int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.s.held), len(q.s.gone)
}

// takeSlotWork returns the pacer's work and clears it.
func (q *queues) takeSlotWork() ([]slotAsk, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	asks, wake := q.slotAsks, q.slotWake
	q.slotAsks, q.slotWake = nil, time.Time{}
	return asks, wake
}

// gotSlots records the answer to a take of slots and starts what may.
func (q *queues) gotSlots(a slotAsk, first, n int, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.gotSlots(a, first, n)
	q.startReady(now)
	q.publish()
}

// tick lets the webhooks waiting for a slot look again, and starts what
// may.
func (q *queues) tick(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.tick()
	q.startReady(now)
	q.publish()
}

// startReady starts a sender for every job that may start. Called with mu
// held.
func (q *queues) startReady(now time.Time) {
	if q.start == nil {
		return
	}
	for j := q.s.next(now); j != nil; j = q.s.next(now) {
		q.start(j)
	}
}

// publish acts on what the scheduler asks for after a call: the gauges,
// the dropped jobs' count, and a wake-up of the claimer. Called with mu
// held.
func (q *queues) publish() {
	q.metrics.inFlight.Set(float64(q.s.inFlight))
	q.metrics.queued.Set(float64(q.s.queued))
	q.metrics.probing.Set(float64(q.s.probing))
	q.metrics.paced.Set(float64(q.s.paced))
	if q.s.rateWaits > 0 {
		q.metrics.rateWaits.Add(float64(q.s.rateWaits))
		q.s.rateWaits = 0
	}
	if len(q.s.slotAsks) > 0 || !q.s.slotWake.IsZero() {
		q.slotAsks = append(q.slotAsks, q.s.slotAsks...)
		if w := q.s.slotWake; !w.IsZero() && (q.slotWake.IsZero() || w.Before(q.slotWake)) {
			q.slotWake = w
		}
		q.s.slotAsks, q.s.slotWake = nil, time.Time{}
		q.kickSlots()
	}
	if q.s.dropped > 0 {
		q.metrics.queueDropped.Add(float64(q.s.dropped))
		q.s.dropped = 0
	}
	if q.s.wantClaim {
		q.s.wantClaim = false
		q.wake()
	}
}

// pace returns how webhook id is paced on this node now.
func (q *queues) pace(id string) herald.WebhookPace {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.s.paceOf(id)
}
