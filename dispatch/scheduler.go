package dispatch

import (
	"cmp"
	"slices"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

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

// tookKept is how long the scheduler keeps the measured speed of a webhook
// it no longer sends to; tookSweep is how often it looks for such webhooks.
const (
	tookKept  = time.Hour
	tookSweep = time.Minute
)

// scheduler decides which claimed job starts next, and how many more this
// node may claim or have handed off. It is pure data: no locks, no
// goroutines, no I/O, no clock (every method that needs the time is given
// it). Its answers are all the engine acts on: the claimer asks it for a
// claim's space, the writer for a write's handoff room, and both give it
// what came back; senders take jobs from it and tell it when a request is
// over.
//
// Ownership: the scheduler is owned by Engine.sched, and every access goes
// through queues (queues.go), under its one mutex. Nothing else reads or
// writes these fields.
//
// The engine claims ahead of its senders: each webhook with work has a
// small local queue of claimed jobs that have not started, so a claim's
// size is not tied to the senders that happen to be free, and a sender
// that finishes starts the next job at once instead of waiting for a
// claim. A queue holds enough to keep its webhook's senders busy for
// queueCover, within 2 and 512 x PerWebhookInFlight; all queues together
// at most 64 x Concurrency. A queue never takes a job beyond its size:
// claims and writes reserve the room they may fill before they run
// (grants), so that a claim and a write running at once do not both fill
// the same room, and what comes back beyond its grant is dropped and
// released to be claimed again. (The total is checked per grant: grants
// running at once may together bring a little more than 64 x Concurrency.)
//
// The circuit breaker lives here too: a webhook whose last BreakerThreshold
// requests from this node all failed gets one request in flight and a
// queue of one (probes) until a request succeeds. It is node-local: on
// several nodes each probes one at a time.
//
// So do a webhook's adaptive pace (pace.go: an AIMD window within its
// in-flight maximum, cut by timeouts, 429 and 503 answers and slowness)
// and the bookkeeping of its rate limit (ratelimit.go: a job starts only
// on a request slot of its own; the pacer in slots.go takes the slots from
// the store and wakes the scheduler at their times).
type scheduler struct {
	// Limits, fixed at creation.
	concurrency int // requests in flight on this node
	perWebhook  int // requests in flight for a webhook (PerWebhookInFlight)
	fast        int // the same for a webhook answering under fastRequest
	// breaker is how many consecutive failed attempts put a webhook on
	// probation (BreakerThreshold): one request at a time until one
	// succeeds.
	breaker int
	// startMargin is the least time a job's lease must have left beyond
	// its webhook's timeout for the job to start: the time to write the
	// result.
	startMargin time.Duration

	// running is set while Run's senders take jobs and cleared for good
	// when Run stops: writes hand off nothing and nothing starts unless it
	// is set.
	running bool

	inFlight int                   // requests being sent
	queued   int                   // jobs claimed and not started
	hooks    map[string]*hookQueue // by webhook ID, those with jobs queued or in flight
	ready    []*hookQueue          // webhooks with a queued job and a free slot, in turn
	limitHit bool                  // the last claim took all it was allowed: more may be due

	// held counts, by delivery ID, the claims the engine is working on:
	// from the claim (or handoff) until the result is written or given
	// up. Anything else SENT under this owner is an orphan.
	held map[string]int
	// gone counts, by webhook ID, 410 Gone answers whose results are not
	// written yet: until the write deactivates the webhook and cancels its
	// deliveries, nothing more is claimed or handed off for it.
	gone map[string]int
	// took keeps, by webhook ID, how long the requests of webhooks with
	// nothing queued or in flight took, so that their next deliveries get
	// a queue of the right size at once. A webhook not sent to for
	// tookKept is forgotten, so the map holds the webhooks of the last
	// hour or so, not every webhook ever sent to.
	took map[string]idleSpeed
	// tookSwept is when took was last swept of old entries.
	tookSwept time.Time
	// probing counts the webhooks known here (in hooks or took) whose
	// breaker is open, for herald_webhooks_probing.
	probing int
	// paced counts the webhooks known here whose pace window is below
	// their maximum, for herald_webhooks_paced.
	paced int
	// slotWait holds, by ID, the webhooks with a rate limit that have a
	// job to start and wait for a request slot (ratelimit.go): for the
	// next slot's time, a take of slots, or the next window.
	slotWait map[string]*hookQueue

	// grants are the claims and writes running now, with the room each
	// may fill; a new grant gets only what they leave.
	grants []*grant
	// releaseWanted is set while the claimer waits to release orphans, or
	// releases them: no write may hand deliveries off meanwhile, since a
	// release would take them for orphans between their commit and their
	// enqueueing.
	releaseWanted bool

	// What the caller acts on after each call, and clears:
	// orphans is set when there may be deliveries SENT under this owner
	// that the engine does not hold (a claim or a write failed, and may
	// have committed and lost its answer; a queued job was dropped
	// unstarted): the claimer releases them before it claims again.
	orphans bool
	// wantClaim is set when the claimer should look now: a queue that may
	// have more due drained to half, or a job was dropped.
	wantClaim bool
	// dropped counts jobs dropped unstarted since the caller last looked,
	// for herald_queue_dropped_total.
	dropped int
	// slotAsks are the takes of request slots the caller is to make
	// (queue.Store.TakeSlots), each answered with gotSlots.
	slotAsks []slotAsk
	// slotWake is the earliest time a webhook in slotWait may start (zero
	// for none): the caller calls tick then.
	slotWake time.Time
	// rateWaits counts the times a webhook with a rate limit had a job to
	// start and no slot for it, for herald_rate_limit_waits_total.
	rateWaits int
}

// hookQueue is one webhook's work on this node.
type hookQueue struct {
	id       string
	jobs     []*queue.Job // claimed, not started, oldest claim first
	inFlight int
	ready    bool          // in scheduler.ready
	took     time.Duration // how long its requests take, a moving average
	// fails counts its attempts that failed (no 2xx) since the last that
	// succeeded, as this node sent them: at the scheduler's breaker it is
	// probing, one request at a time.
	fails int
	// more is set when the last claim that asked for this webhook got all
	// it asked for, or a write left some of its deliveries PENDING: more
	// is probably due.
	more bool
	// pace is its adaptive in-flight window (pace.go).
	pace pace
	// limit is its rateLimitPerSecond as its newest job has it, 0 for none;
	// the rest are its request slots (ratelimit.go).
	limit int
	slots slots
}

// idleSpeed is what took keeps of a webhook with nothing queued or in
// flight: how long its requests took, and when its last one ended; its
// breaker count, pace window and rate limit, so that its next jobs get the
// right queue and in-flight cap at once.
type idleSpeed struct {
	took  time.Duration
	at    time.Time
	fails int // its consecutive failed attempts, as hookQueue.fails
	pace  pace
	limit int // its rate limit, as hookQueue.limit
}

// grant is the room a claim or a write that hands deliveries off may fill,
// reserved from its start until what it brought is queued (or it failed):
// no other grant gets the same room of a webhook's queue.
type grant struct {
	// room is the most each listed webhook may get; a webhook not listed
	// may get def. A write hands them to the store (queue.Handoff.Room
	// and Default); a claim asks for perWebhook, and admit keeps no more.
	room map[string]int
	def  int
	// limit is the most jobs in all.
	limit int
	// handoff is set for a write's grant.
	handoff bool
	// perWebhook and exclude are a claim's request.
	perWebhook int
	exclude    []string
}

// reserves returns how many jobs g may bring for webhook id.
func (g *grant) reserves(id string) int {
	if n, ok := g.room[id]; ok {
		return n
	}
	return g.def
}

// newScheduler returns a scheduler for cfg, whose defaults are set.
func newScheduler(cfg Config) *scheduler {
	return &scheduler{
		concurrency: cfg.Concurrency,
		perWebhook:  cfg.PerWebhookInFlight,
		fast:        cfg.FastWebhookInFlight,
		breaker:     cfg.BreakerThreshold,
		// The lease exceeds the webhook's timeout by the queue wait and the
		// time to write a result (30s by default): a third of the latter,
		// at most 10s, is kept for the write.
		startMargin: min(10*time.Second, (cfg.Lease-maxQueueWait)/3),
		hooks:       map[string]*hookQueue{},
		held:        map[string]int{},
		gone:        map[string]int{},
		took:        map[string]idleSpeed{},
		slotWait:    map[string]*hookQueue{},
	}
}

// queueCap is how many jobs webhook h may have queued (claimed, not
// started); h is nil for a webhook with nothing queued or in flight whose
// speed is not known. A claim tops up only queues at most half full, so
// each claim brings at least half a queue.
func (s *scheduler) queueCap(h *hookQueue) int {
	lo, hi := 2*s.perWebhook, 512*s.perWebhook
	if h != nil && s.probes(h.fails) {
		// One job at a time is sent; one more waits for its turn.
		return 1
	}
	n := lo
	if h != nil && h.took > 0 {
		n = max(lo, min(hi, int(int64(s.inFlightCap(h))*int64(queueCover)/int64(h.took))))
	}
	if h != nil && h.limit > 0 {
		// No more than its rate limit sends in queueCover, so that its jobs
		// do not wait out maxQueueWait for slots.
		n = min(n, max(2, h.limit))
	}
	return n
}

// inFlightCap is how many requests webhook h may have in flight: one
// while its breaker is open, else its pace window (pace.go) within its
// maximum (maxInFlight).
func (s *scheduler) inFlightCap(h *hookQueue) int {
	if s.probes(h.fails) {
		return 1
	}
	return h.pace.limit(s.maxInFlight(h))
}

// maxInFlight is the most requests webhook h may ever have in flight:
// more for a receiver that answers fast, so one webhook's throughput is
// not capped by PerWebhookInFlight round trips, and back to
// PerWebhookInFlight as soon as its answers slow down.
func (s *scheduler) maxInFlight(h *hookQueue) int {
	if h.took > 0 && h.took < fastRequest {
		return s.fast
	}
	return s.perWebhook
}

// probes reports whether a webhook with fails consecutive failed attempts
// is probing: its breaker is open, and it gets one request at a time
// (inFlightCap) and a queue of one (queueCap) until an attempt succeeds.
// A failing receiver then gets one probe at a time instead of every retry
// that falls due; the first 2xx closes the breaker at once.
func (s *scheduler) probes(fails int) bool { return fails >= s.breaker }

// totalQueueCap is how many jobs all webhooks together may have queued.
func (s *scheduler) totalQueueCap() int { return 64 * s.concurrency }

// capOf is the queue size of webhook id, known or not.
func (s *scheduler) capOf(id string) int {
	if h := s.hooks[id]; h != nil {
		return s.queueCap(h)
	}
	if t, ok := s.took[id]; ok {
		return s.queueCap(&hookQueue{took: t.took, fails: t.fails, pace: t.pace, limit: t.limit})
	}
	return s.queueCap(nil)
}

// queuedFor is how many jobs webhook id has queued.
func (s *scheduler) queuedFor(id string) int {
	if h := s.hooks[id]; h != nil {
		return len(h.jobs)
	}
	return 0
}

// reserved is how many jobs the running grants may still bring for
// webhook id; reservedDefault the same for a webhook none of them lists.
func (s *scheduler) reserved(id string) int {
	n := 0
	for _, g := range s.grants {
		n += g.reserves(id)
	}
	return n
}

func (s *scheduler) reservedDefault() int {
	n := 0
	for _, g := range s.grants {
		n += g.def
	}
	return n
}

// known returns the IDs of every webhook the scheduler has a figure for:
// queued or in flight, speed kept, 410 pending, or listed by a running
// grant. Any other webhook is judged by the default.
func (s *scheduler) known() []string {
	ids := make([]string, 0, len(s.hooks)+len(s.took)+len(s.gone))
	for id := range s.hooks {
		ids = append(ids, id)
	}
	for id := range s.took {
		if s.hooks[id] == nil {
			ids = append(ids, id)
		}
	}
	for id := range s.gone {
		if _, ok := s.took[id]; !ok && s.hooks[id] == nil {
			ids = append(ids, id)
		}
	}
	for _, g := range s.grants {
		for id := range g.room {
			if _, ok := s.took[id]; !ok && s.hooks[id] == nil && s.gone[id] == 0 && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// claimSpace returns how many deliveries the next claim may take in all and
// per webhook, and the webhooks not to claim for: those whose queue, with
// what running grants may bring, is more than half full, and those that
// answered 410 Gone. The per-webhook figure is one for all webhooks, so
// the least room among the queues claimed for sets it (never less than
// half a queue); with no queue on this node it is what the smallest queue
// has left. A webhook with no queue here may then get more than its queue
// takes: the excess is dropped when the claim comes back (see admit).
func (s *scheduler) claimSpace() (limit, perWebhook int, exclude []string) {
	perWebhook = -1
	for _, id := range s.known() {
		qcap, n := s.capOf(id), s.queuedFor(id)+s.reserved(id)
		if n > qcap/2 || s.gone[id] > 0 {
			exclude = append(exclude, id)
		} else if s.hooks[id] != nil && (perWebhook < 0 || qcap-n < perWebhook) {
			perWebhook = qcap - n
		}
	}
	if perWebhook < 0 {
		perWebhook = s.queueCap(nil) - s.reservedDefault()
	}
	slices.Sort(exclude)
	return s.totalQueueCap() - s.queued, perWebhook, exclude
}

// claimGrant reserves the space of the next claim (claimSpace), or returns
// nil when there is none: the claimer then waits for a queue to drain. The
// claim asks the store for perWebhook of every webhook not excluded; the
// grant keeps for each only what its queue has room for, and the rest of
// what the claim brings is dropped (admit).
func (s *scheduler) claimGrant() *grant {
	limit, per, exclude := s.claimSpace()
	if limit <= 0 || per <= 0 {
		return nil
	}
	ids := s.known()
	g := &grant{room: make(map[string]int, len(ids)), limit: limit, perWebhook: per, exclude: exclude}
	for _, id := range ids {
		if slices.Contains(exclude, id) {
			g.room[id] = 0
		} else {
			g.room[id] = min(per, s.avail(id))
		}
	}
	g.def = min(per, max(s.queueCap(nil)-s.reservedDefault(), 0))
	s.grants = append(s.grants, g)
	return g
}

// avail is the room webhook id's queue has left: its size, less what is
// queued and what running grants may bring.
func (s *scheduler) avail(id string) int {
	return max(s.capOf(id)-s.queuedFor(id)-s.reserved(id), 0)
}

// handoffGrant reserves the room of a write of events new events: how many
// of their deliveries it may claim for this node, per webhook and in all.
// An event makes at most one delivery per webhook, so no webhook is given
// more than events. It returns nil when the write may hand nothing off:
// Run is not running, the claimer is releasing orphans, or the queues are
// full.
func (s *scheduler) handoffGrant(events int) *grant {
	if !s.running || s.releaseWanted {
		return nil
	}
	limit := s.totalQueueCap() - s.queued
	if limit <= 0 {
		return nil
	}
	ids := s.known()
	g := &grant{room: make(map[string]int, len(ids)), limit: limit, handoff: true}
	for _, id := range ids {
		if s.gone[id] > 0 {
			g.room[id] = 0
			continue
		}
		g.room[id] = min(events, s.avail(id))
	}
	g.def = min(events, max(s.queueCap(nil)-s.reservedDefault(), 0))
	s.grants = append(s.grants, g)
	return g
}

// end takes g off the running grants.
func (s *scheduler) end(g *grant) {
	if i := slices.Index(s.grants, g); i >= 0 {
		s.grants = slices.Delete(s.grants, i, i+1)
	}
}

// failed ends g, whose claim or write failed: it may have committed and
// lost its answer, leaving orphans.
func (s *scheduler) failed(g *grant) {
	if g == nil {
		return
	}
	s.end(g)
	s.orphans = true
}

// claimed ends claim g and queues the jobs it took. A webhook that got all
// it asked for probably has more due, one that got less has none; a claim
// that hit its limit may have left any webhook's behind. It reports
// whether the queues have room for more now. Otherwise a queue that drains
// to half asks for a claim when more is due for it (wantClaim).
func (s *scheduler) claimed(g *grant, jobs []*queue.Job) bool {
	s.end(g)
	s.admit(g, jobs)
	got := map[string]int{}
	for _, j := range jobs {
		got[j.Webhook.ID]++
	}
	for id, h := range s.hooks {
		if n, ok := got[id]; ok {
			h.more = n >= g.perWebhook
		} else if !slices.Contains(g.exclude, id) {
			h.more = false
		}
	}
	s.limitHit = len(jobs) >= g.limit
	for _, h := range s.hooks {
		if s.wantsClaim(h) {
			return true
		}
	}
	return false
}

// handedOff ends write grant g and queues the deliveries the write claimed
// for this node. overflow says the write left others PENDING for want of
// room: the webhooks handed jobs then probably have more due, and their
// queues ask for a claim when they drain to half. When Run stopped
// meanwhile, nothing is queued: the jobs stay SENT under this owner, and
// Run's release at its end makes them due again.
func (s *scheduler) handedOff(g *grant, jobs []*queue.Job, overflow bool) {
	s.end(g)
	if !s.running {
		return
	}
	s.admit(g, jobs)
	if overflow {
		for _, j := range jobs {
			if h := s.hooks[j.Webhook.ID]; h != nil {
				h.more = true
			}
		}
	}
}

// admit queues the jobs grant g brought, as far as g allows for each
// webhook and in all: a job beyond is dropped unstarted, not held, and the
// claimer releases it (orphans). A write's handoff brings no more than its
// grant; a claim can, for a webhook whose queue has less room than the one
// figure per webhook the claim asked for.
func (s *scheduler) admit(g *grant, jobs []*queue.Job) {
	got := map[string]int{}
	total := 0
	for _, j := range jobs {
		id := j.Webhook.ID
		if got[id] >= g.reserves(id) || total >= g.limit {
			s.orphans, s.wantClaim = true, true
			continue
		}
		got[id]++
		total++
		s.enqueue([]*queue.Job{j})
	}
}

// wantsClaim reports whether a claim should top up h's queue, or all
// queues: more is due and the queue is no more than half full.
func (s *scheduler) wantsClaim(h *hookQueue) bool {
	return (h.more && len(h.jobs) <= s.queueCap(h)/2) || (s.limitHit && s.queued <= s.totalQueueCap()/2)
}

// enqueue queues claimed jobs, each under its webhook, whatever room it
// has (admit checks that). Jobs of a webhook that answered 410 Gone since
// the claim began are left out, as drop does: the 410's write cancels
// them.
func (s *scheduler) enqueue(jobs []*queue.Job) {
	for _, j := range jobs {
		if s.gone[j.Webhook.ID] > 0 {
			continue
		}
		s.held[j.Delivery.ID]++
		h := s.hooks[j.Webhook.ID]
		if h == nil {
			t := s.took[j.Webhook.ID]
			h = &hookQueue{id: j.Webhook.ID, took: t.took, fails: t.fails, pace: t.pace}
			s.hooks[h.id] = h
		}
		h.limit = 0
		if l := j.Webhook.RateLimitPerSecond; l != nil {
			h.limit = *l
		}
		h.jobs = append(h.jobs, j)
		s.queued++
		s.markReady(h)
	}
}

// markReady puts h at the end of the round if it has a job to start and a
// free slot.
func (s *scheduler) markReady(h *hookQueue) {
	if !h.ready && len(h.jobs) > 0 && h.inFlight < s.inFlightCap(h) {
		h.ready = true
		s.ready = append(s.ready, h)
	}
}

// next takes the job to start now, or nil when none may start: no free
// sender, no webhook with both a queued job and a free slot, or not
// running. Webhooks take turns, one job each, so a webhook with a deep
// queue does not hold back the others.
func (s *scheduler) next(now time.Time) *queue.Job {
	for s.running && s.inFlight < s.concurrency && len(s.ready) > 0 {
		h := s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		h.ready = false
		if h.inFlight >= s.inFlightCap(h) {
			continue
		}
		if h.limit > 0 && !s.takeSlot(h, now) {
			continue
		}
		j := s.dequeue(h, now)
		if j == nil {
			s.forget(h, now)
			continue
		}
		h.inFlight++
		s.inFlight++
		s.markReady(h)
		return j
	}
	return nil
}

// dequeue takes h's first job that may start. A job that has waited in the
// queue longer than maxQueueWait, or whose lease has too little time left
// for its webhook's timeout and the result's write, is not started: it is
// dropped, and the claimer releases it to be claimed again afresh.
func (s *scheduler) dequeue(h *hookQueue, now time.Time) *queue.Job {
	for len(h.jobs) > 0 {
		j := h.jobs[0]
		h.jobs[0] = nil
		h.jobs = h.jobs[1:]
		s.queued--
		if s.wantsClaim(h) {
			s.wantClaim = true
		}
		timeout := time.Duration(cmp.Or(j.Webhook.TimeoutSeconds, herald.DefaultTimeoutSeconds)) * time.Second
		if now.Sub(j.ClaimedAt) <= maxQueueWait && herald.LeaseCovers(j.LeaseUntil, now, timeout, s.startMargin) {
			return j
		}
		s.unhold(j.Delivery.ID)
		s.dropped++
		s.orphans, s.wantClaim = true, true
	}
	return nil
}

// outcome is what a sender tells the scheduler of a request that is over.
type outcome int

const (
	answered  outcome = iota // a 2xx answer: a result is on its way to the writer
	refused                  // any other answer, or none (network error): a result is on its way
	throttled                // a 429 or 503 answer, or a timeout: a failure, and a sign of overload (pace.go)
	gone410                  // the receiver answered 410 Gone: the webhook is being deactivated
	cutShort                 // cut short by the shutdown: no result, the release makes it due again
)

// done records that a started job's request is over after took, and
// returns the next job to start, if any, for the same sender. A 410 Gone
// empties the webhook's queue (the result's write deactivates the webhook
// and cancels its deliveries, these included) and keeps it from claims and
// handoff until that write is settled.
func (s *scheduler) done(j *queue.Job, took time.Duration, o outcome, now time.Time) *queue.Job {
	h := s.hooks[j.Webhook.ID]
	switch o {
	case gone410:
		s.drop(h)
		s.gone[h.id]++
	case cutShort:
		s.unhold(j.Delivery.ID)
	}
	s.count(h, o)
	if h.took == 0 {
		h.took = max(took, 1)
	} else {
		h.took += (took - h.took) / 8
	}
	s.ended(h, o)
	h.inFlight--
	s.inFlight--
	s.markReady(h)
	s.forget(h, now)
	return s.next(now)
}

// count keeps h's consecutive failed attempts after one that ended with
// o, and the count of webhooks probing: a failure adds one, a 2xx closes
// the breaker. A request cut short by the shutdown counts for neither.
func (s *scheduler) count(h *hookQueue, o outcome) {
	was := s.probes(h.fails)
	switch o {
	case answered:
		h.fails = 0
	case refused, throttled, gone410:
		h.fails++
	}
	if is := s.probes(h.fails); is != was {
		if is {
			s.probing++
		} else {
			s.probing--
		}
	}
}

// ended keeps h's pace window after a request that ended with o, and the
// count of webhooks paced. A request cut short by the shutdown counts for
// nothing.
func (s *scheduler) ended(h *hookQueue, o outcome) {
	if o == cutShort {
		return
	}
	m := s.maxInFlight(h)
	h.pace.ended(o == answered, o == throttled, h.took, m, h.inFlight-1)
	if is := h.pace.paced(m); is != h.pace.counted {
		h.pace.counted = is
		if is {
			s.paced++
		} else {
			s.paced--
		}
	}
}

// drop empties h's queue, whose receiver answered 410 Gone.
func (s *scheduler) drop(h *hookQueue) {
	for _, j := range h.jobs {
		s.unhold(j.Delivery.ID)
	}
	s.queued -= len(h.jobs)
	h.jobs, h.more = nil, false
}

// settle records that the result of a delivery of webhook is written or
// given up; deactivated says it was a 410 Gone.
func (s *scheduler) settle(delivery, webhook string, deactivated bool) {
	s.unhold(delivery)
	if deactivated {
		if s.gone[webhook]--; s.gone[webhook] <= 0 {
			delete(s.gone, webhook)
		}
	}
}

func (s *scheduler) unhold(id string) {
	if s.held[id]--; s.held[id] <= 0 {
		delete(s.held, id)
	}
}

// beginRelease starts an orphan release: it returns the deliveries held,
// or false while a write that hands deliveries off is running (from then
// on no write hands any off until endRelease, so the wait is short).
func (s *scheduler) beginRelease() ([]string, bool) {
	s.releaseWanted = true
	for _, g := range s.grants {
		if g.handoff {
			return nil, false
		}
	}
	held := make([]string, 0, len(s.held))
	for id := range s.held {
		held = append(held, id)
	}
	return held, true
}

// endRelease lets writes hand deliveries off again.
func (s *scheduler) endRelease() { s.releaseWanted = false }

// forget drops h once it has nothing queued or in flight, keeping its
// speed in took. An h emptied by drop may come out of ready after a new
// queue took its place. At most once per tookSweep it also drops from took
// the webhooks whose last request ended more than tookKept before now: a
// pass over a map the size of the last hour's webhooks, once a minute.
func (s *scheduler) forget(h *hookQueue, now time.Time) {
	if len(h.jobs) == 0 && h.inFlight == 0 && s.hooks[h.id] == h {
		delete(s.hooks, h.id)
		delete(s.slotWait, h.id)
		if h.took > 0 || h.fails > 0 || h.pace.window != 0 || h.limit > 0 {
			s.took[h.id] = idleSpeed{took: h.took, at: now, fails: h.fails, pace: h.pace, limit: h.limit}
		}
	}
	if now.Sub(s.tookSwept) < tookSweep {
		return
	}
	s.tookSwept = now
	for id, t := range s.took {
		if now.Sub(t.at) > tookKept {
			if s.probes(t.fails) && s.hooks[id] == nil {
				s.probing--
			}
			if t.pace.counted && s.hooks[id] == nil {
				s.paced--
			}
			delete(s.took, id)
		}
	}
}

// stop empties the queues and starts nothing more; the jobs that were
// queued stay SENT until Run releases this owner's claims.
func (s *scheduler) stop(now time.Time) {
	s.running = false
	for _, h := range s.hooks {
		for _, j := range h.jobs {
			s.unhold(j.Delivery.ID)
		}
		h.jobs = nil
		s.forget(h, now)
	}
	s.ready = nil
	s.queued = 0
	clear(s.slotWait)
	s.slotAsks, s.slotWake = nil, time.Time{}
}
