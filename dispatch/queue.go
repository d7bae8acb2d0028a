package dispatch

import (
	"cmp"
	"time"

	"github.com/heraldhooks/herald"
)

// The engine claims ahead of its senders: each webhook with work has a small
// local queue of claimed jobs that have not started, so a claim's size is
// not tied to the senders that happen to be free, and a sender that
// finishes starts the next job at once instead of waiting for a claim.
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

// hookQueue is one webhook's work on this node.
type hookQueue struct {
	id       string
	jobs     []*herald.Job // claimed, not started, oldest claim first
	inFlight int
	ready    bool // in Engine.ready
}

// queueCap is how many jobs one webhook may have queued (claimed, not
// started); a claim tops up only webhooks whose queue is at most half full,
// so each claim brings at least queueCap/2 for them.
func (e *Engine) queueCap() int { return 2 * e.cfg.PerWebhookInFlight }

// totalQueueCap is how many jobs all webhooks together may have queued.
func (e *Engine) totalQueueCap() int { return 2 * e.cfg.Concurrency }

// claimSpace returns how many deliveries the next claim may take in all and
// per webhook, and the webhooks not to claim for: those whose queue is more
// than half full, and those that answered 410 Gone. The per-webhook figure
// is one for all webhooks, so the fullest queue among those claimed for
// sets it; it is never below half a queue.
func (e *Engine) claimSpace() (limit, perWebhook int, exclude []string) {
	qcap := e.queueCap()
	perWebhook = qcap
	for id, h := range e.hooks {
		switch n := len(h.jobs); {
		case n > qcap/2 || e.gone[id] > 0:
			exclude = append(exclude, id)
		case n > 0:
			perWebhook = min(perWebhook, qcap-n)
		}
	}
	for id := range e.gone {
		if e.hooks[id] == nil {
			exclude = append(exclude, id)
		}
	}
	return e.totalQueueCap() - e.queued, perWebhook, exclude
}

// roomForMore reports whether the claim that returned jobs, asked for at
// most limit and perWebhook, probably left due deliveries behind that the
// queues have room for now: a webhook got all it asked for and its queue is
// no more than half full, or the claim hit its limit and all queues
// together are no more than half full. A fuller queue wakes the claim loop
// when it drains to half.
func (e *Engine) roomForMore(jobs []*herald.Job, limit, perWebhook int) bool {
	if len(jobs) >= limit && e.queued <= e.totalQueueCap()/2 {
		return true
	}
	got := map[string]int{}
	for _, j := range jobs {
		got[j.Webhook.ID]++
	}
	for id, n := range got {
		if h := e.hooks[id]; n >= perWebhook && (h == nil || len(h.jobs) <= e.queueCap()/2) {
			return true
		}
	}
	return false
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
			h = &hookQueue{id: j.Webhook.ID}
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
	if !h.ready && len(h.jobs) > 0 && h.inFlight < e.cfg.PerWebhookInFlight {
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
		if h.inFlight >= e.cfg.PerWebhookInFlight {
			continue
		}
		j := e.dequeue(h, now)
		if j == nil {
			e.forget(h)
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
		// A queue that drops to half full, or all queues together, can
		// take a claim again.
		if len(h.jobs) == e.queueCap()/2 || e.queued == e.totalQueueCap()/2 {
			e.Wake()
		}
		timeout := time.Duration(cmp.Or(j.Webhook.TimeoutSeconds, herald.DefaultTimeoutSeconds)) * time.Second
		left := j.LeaseUntil.Sub(now)
		if e.cfg.Lease-left <= maxQueueWait && left >= timeout+e.startMargin {
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
	h.jobs = nil
}

// done records that a started job's request is over and returns the next
// job to start, if any, for the same sender.
func (e *Engine) done(j *herald.Job, now time.Time) *herald.Job {
	h := e.hooks[j.Webhook.ID]
	h.inFlight--
	e.inFlight--
	e.metrics.inFlight.Set(float64(e.inFlight))
	e.markReady(h)
	e.forget(h)
	if e.inFlight == 0 && e.queued == 0 {
		// Idle: the claim loop looks for what is due next, a retry
		// included, instead of waiting for its poll.
		e.Wake()
	}
	return e.next(now)
}

// forget drops h once it has nothing queued or in flight. An h emptied by
// drop may come out of ready after a new queue took its place.
func (e *Engine) forget(h *hookQueue) {
	if len(h.jobs) == 0 && h.inFlight == 0 && e.hooks[h.id] == h {
		delete(e.hooks, h.id)
	}
}

// stop empties the queues and starts nothing more; the jobs that were
// queued stay SENT until Run releases this owner's claims.
func (e *Engine) stop() {
	e.stopping = true
	for _, h := range e.hooks {
		for _, j := range h.jobs {
			e.unholdLocked(j.Delivery.ID)
		}
		h.jobs = nil
		e.forget(h)
	}
	e.ready = nil
	e.queued = 0
	e.metrics.queued.Set(0)
}
