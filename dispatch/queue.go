package dispatch

import (
	"cmp"
	"slices"
	"time"

	"github.com/heraldhooks/herald"
)

// The engine claims ahead of its senders: each webhook with work has a small
// local queue of claimed jobs that have not started, so a claim's size is
// not tied to the senders that happen to be free, and a sender that
// finishes starts the next job at once instead of waiting for a claim.
//
// A queue holds 2 x PerWebhookInFlight jobs, more (up to 512 x) for a
// receiver that answers within milliseconds, whose senders would otherwise
// empty the queue faster than a claim or a write can refill it. All queues
// together hold at most 64 x Concurrency.
//
// Everything here runs with Engine.mu held.

// maxQueueWait is the longest a claimed job waits in its queue. The job
// carries the webhook as it was at the claim (URL, headers, secrets,
// whether it is active), so one that waited longer is not started but
// released and claimed again afresh: a deactivation, a new URL or a
// revoked secret takes effect within seconds for queued jobs too. Under
// load a queue drains in milliseconds; only webhooks whose receivers take
// seconds per request see their queued jobs claimed again.
const maxQueueWait = 5 * time.Second

// queueCover is how long a webhook's queue should keep its senders busy:
// long enough that the deliveries of new events are handed over whole
// while their webhook keeps up, rather than left for a claim. A queue is
// sized for it from how long the webhook's requests take, within 2 and
// 512 x PerWebhookInFlight.
const queueCover = time.Second

// fastRequest is the average request time under which a webhook may have
// FastWebhookInFlight requests in flight instead of PerWebhookInFlight.
const fastRequest = 50 * time.Millisecond

// hookQueue is one webhook's work on this node.
type hookQueue struct {
	id       string
	jobs     []*herald.Job // claimed, not started, oldest claim first
	inFlight int
	ready    bool          // in Engine.ready
	took     time.Duration // how long its requests take, a moving average
	// more is set when the last claim that asked for this webhook got all
	// it asked for: more is probably due.
	more bool
}

// queueCap is how many jobs webhook h may have queued (claimed, not
// started); h is nil for a webhook with nothing queued or in flight. A
// claim tops up only queues at most half full, so each claim brings at
// least half a queue.
func (e *Engine) queueCap(h *hookQueue) int {
	lo, hi := 2*e.cfg.PerWebhookInFlight, 512*e.cfg.PerWebhookInFlight
	if h == nil || h.took <= 0 {
		return lo
	}
	return max(lo, min(hi, int(int64(e.inFlightCap(h))*int64(queueCover)/int64(h.took))))
}

// inFlightCap is how many requests webhook h may have in flight: more for
// a receiver that answers fast, so one webhook's throughput is not capped
// by PerWebhookInFlight round trips, and back to PerWebhookInFlight as soon
// as its answers slow down.
func (e *Engine) inFlightCap(h *hookQueue) int {
	if h.took > 0 && h.took < fastRequest {
		return e.cfg.FastWebhookInFlight
	}
	return e.cfg.PerWebhookInFlight
}

// totalQueueCap is how many jobs all webhooks together may have queued.
func (e *Engine) totalQueueCap() int { return 64 * e.cfg.Concurrency }

// claimSpace returns how many deliveries the next claim may take in all and
// per webhook, and the webhooks not to claim for: those whose queue is more
// than half full, and those that answered 410 Gone. The per-webhook figure
// is one for all webhooks, so the least room among the queues claimed for
// sets it (never less than half a queue); with no queue on this node it is
// the smallest queue's size.
func (e *Engine) claimSpace() (limit, perWebhook int, exclude []string) {
	perWebhook = -1
	for id, h := range e.hooks {
		qcap, n := e.queueCap(h), len(h.jobs)
		if n > qcap/2 || e.gone[id] > 0 {
			exclude = append(exclude, id)
		} else if perWebhook < 0 || qcap-n < perWebhook {
			perWebhook = qcap - n
		}
	}
	if perWebhook < 0 {
		perWebhook = e.queueCap(nil)
	}
	for id := range e.gone {
		if e.hooks[id] == nil {
			exclude = append(exclude, id)
		}
	}
	return e.totalQueueCap() - e.queued, perWebhook, exclude
}

// claimed notes what a claim that asked for at most limit and perWebhook,
// excluding exclude, returned: a webhook that got all it asked for probably
// has more due, one that got less has none; a claim that hit its limit may
// have left any webhook's behind. It reports whether the queues have room
// for that now. Otherwise a queue that drains to half wakes the claim loop
// when more is due for it.
func (e *Engine) claimed(jobs []*herald.Job, limit, perWebhook int, exclude []string) bool {
	got := map[string]int{}
	for _, j := range jobs {
		got[j.Webhook.ID]++
	}
	for id, h := range e.hooks {
		if n, ok := got[id]; ok {
			h.more = n >= perWebhook
		} else if !slices.Contains(exclude, id) {
			h.more = false
		}
	}
	e.limitHit = len(jobs) >= limit
	for _, h := range e.hooks {
		if e.wantsClaim(h) {
			return true
		}
	}
	return false
}

// wantsClaim reports whether a claim should top up h's queue, or all
// queues: more is due and the queue is no more than half full.
func (e *Engine) wantsClaim(h *hookQueue) bool {
	return (h.more && len(h.jobs) <= e.queueCap(h)/2) || (e.limitHit && e.queued <= e.totalQueueCap()/2)
}

// enqueue queues claimed jobs, each under its webhook. Jobs of a webhook
// that answered 410 Gone since the claim began are left out, as drop does.
func (e *Engine) enqueue(jobs []*herald.Job) {
	for _, j := range jobs {
		if e.gone[j.Webhook.ID] > 0 {
			continue
		}
		e.held[j.Delivery.ID]++
		h := e.hooks[j.Webhook.ID]
		if h == nil {
			h = &hookQueue{id: j.Webhook.ID, took: e.took[j.Webhook.ID].took}
			e.hooks[h.id] = h
		}
		h.jobs = append(h.jobs, j)
		e.queued++
		e.markReady(h)
	}
	e.metrics.queued.Set(float64(e.queued))
}

// markReady puts h at the end of the round if it has a job to start and a
// free slot.
func (e *Engine) markReady(h *hookQueue) {
	if !h.ready && len(h.jobs) > 0 && h.inFlight < e.inFlightCap(h) {
		h.ready = true
		e.ready = append(e.ready, h)
	}
}

// next takes the job to start now, or nil when none may start: no free
// sender, no webhook with both a queued job and a free slot, or stopping.
// Webhooks take turns, one job each, so a webhook with a deep queue does
// not hold back the others.
func (e *Engine) next(now time.Time) *herald.Job {
	for !e.stopping && e.inFlight < e.cfg.Concurrency && len(e.ready) > 0 {
		h := e.ready[0]
		e.ready[0] = nil
		e.ready = e.ready[1:]
		h.ready = false
		if h.inFlight >= e.inFlightCap(h) {
			continue
		}
		j := e.dequeue(h, now)
		if j == nil {
			e.forget(h, now)
			continue
		}
		h.inFlight++
		e.inFlight++
		e.metrics.inFlight.Set(float64(e.inFlight))
		e.markReady(h)
		return j
	}
	return nil
}

// dequeue takes h's first job that may start. A job that has waited in the
// queue longer than maxQueueWait, or whose lease has too little time left
// for its webhook's timeout and the result's write, is not started: it is
// dropped, and the claim loop releases it to be claimed again afresh.
func (e *Engine) dequeue(h *hookQueue, now time.Time) *herald.Job {
	for len(h.jobs) > 0 {
		j := h.jobs[0]
		h.jobs[0] = nil
		h.jobs = h.jobs[1:]
		e.queued--
		e.metrics.queued.Set(float64(e.queued))
		if e.wantsClaim(h) {
			e.Wake()
		}
		timeout := time.Duration(cmp.Or(j.Webhook.TimeoutSeconds, herald.DefaultTimeoutSeconds)) * time.Second
		left := j.LeaseUntil.Sub(now)
		if now.Sub(j.ClaimedAt) <= maxQueueWait && left >= timeout+e.startMargin {
			return j
		}
		e.unholdLocked(j.Delivery.ID)
		e.metrics.queueDropped.Inc()
		e.orphans.Store(true)
		e.Wake()
	}
	return nil
}

// drop empties the queue of webhook id, whose receiver answered 410 Gone:
// the result's write deactivates the webhook and cancels its deliveries,
// these included, so nothing more is sent to it.
func (e *Engine) drop(id string) {
	h := e.hooks[id]
	if h == nil {
		return
	}
	for _, j := range h.jobs {
		e.unholdLocked(j.Delivery.ID)
	}
	e.queued -= len(h.jobs)
	e.metrics.queued.Set(float64(e.queued))
	h.jobs, h.more = nil, false
}

// done records that a started job's request is over, after took, and
// returns the next job to start, if any, for the same sender.
func (e *Engine) done(j *herald.Job, took time.Duration, now time.Time) *herald.Job {
	h := e.hooks[j.Webhook.ID]
	if h.took == 0 {
		h.took = max(took, 1)
	} else {
		h.took += (took - h.took) / 8
	}
	h.inFlight--
	e.inFlight--
	e.metrics.inFlight.Set(float64(e.inFlight))
	e.markReady(h)
	e.forget(h, now)
	return e.next(now)
}

// tookKept is how long the engine keeps the measured speed of a webhook it
// no longer sends to; tookSweep is how often it looks for such webhooks.
const (
	tookKept  = time.Hour
	tookSweep = time.Minute
)

// idleSpeed is what took keeps of a webhook with nothing queued or in
// flight: how long its requests took, and when its last one ended.
type idleSpeed struct {
	took time.Duration
	at   time.Time
}

// forget drops h once it has nothing queued or in flight, keeping its
// speed in took. An h emptied by drop may come out of ready after a new
// queue took its place. At most once per tookSweep it also drops from took
// the webhooks whose last request ended more than tookKept before now: a
// pass over a map the size of the last hour's webhooks, once a minute.
func (e *Engine) forget(h *hookQueue, now time.Time) {
	if len(h.jobs) == 0 && h.inFlight == 0 && e.hooks[h.id] == h {
		delete(e.hooks, h.id)
		if h.took > 0 {
			e.took[h.id] = idleSpeed{h.took, now}
		}
	}
	if now.Sub(e.tookSwept) < tookSweep {
		return
	}
	e.tookSwept = now
	for id, s := range e.took {
		if now.Sub(s.at) > tookKept {
			delete(e.took, id)
		}
	}
}

// stop empties the queues and starts nothing more; the jobs that were
// queued stay SENT until Run releases this owner's claims.
func (e *Engine) stop() {
	e.stopping = true
	now := e.cfg.Now()
	for _, h := range e.hooks {
		for _, j := range h.jobs {
			e.unholdLocked(j.Delivery.ID)
		}
		h.jobs = nil
		e.forget(h, now)
	}
	e.ready = nil
	e.queued = 0
	e.metrics.queued.Set(0)
}
