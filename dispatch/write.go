package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
)

// Everything the engine writes, new events and attempt results alike, goes
// through the node's write loops: each runs one transaction at a time,
// holding all the events and results that arrived while the previous one
// ran (group commit). Under load that is one commit, and on SQLite one
// fsync, for hundreds of events and results together. SQLite has one
// writer, so one loop (Config.Writers); PostgreSQL runs several
// transactions at once on its own CPUs, so a node there runs a few.
//
// The new deliveries of an event are claimed in the same transaction, as
// far as this node's queues have room for them (herald.Handoff), and go
// straight to the senders: a delivery stored on a node that is running is
// sent without a claim. What does not fit stays PENDING and due now, for
// the claim loop of any node.
//
// The writer runs in a goroutine of its own while there is something to
// write, so CreateEvents works before Run as after it.

// Writing knobs. Results wait a few milliseconds for others unless a
// transaction is going anyway; at flushMax they go at once.
const (
	flushEvery   = 10 * time.Millisecond
	flushMax     = 1000
	writeTimeout = 30 * time.Second
	flushBackoff = 2 * time.Second // longest wait between retries while the database is down
)

// writer holds what waits to be written. Its fields are guarded by mu.
type writer struct {
	mu      sync.Mutex
	running int           // write loop goroutines active, at most Config.Writers
	kick    chan struct{} // capacity 1: wakes the loop when something arrives
	calls   []*ingestCall // CreateEvents calls waiting, oldest first
	nEvents int           // events in calls
	// firstEvent and firstResult are when the oldest waiting event and
	// result arrived, for IngestMaxWait and flushEvery.
	firstEvent  time.Time
	firstResult time.Time
	results     []pendingResult
	failures    int  // writes in a row that failed with results in them
	draining    bool // Run is stopping: results go without waiting
}

// ingestCall is one CreateEvents call waiting for its write.
type ingestCall struct {
	events  []*herald.Event
	done    chan struct{} // closed once results or err is set
	results []herald.EventResult
	err     error
}

// pendingResult is an attempt result waiting to be written, with the lease
// that makes writing it safe.
type pendingResult struct {
	herald.AttemptResult
	leaseUntil time.Time
	webhookID  string
}

// CreateEvents stores events, each with its deliveries, and returns their
// results in order; it implements herald.EventIngester. Concurrent calls
// are stored together in one transaction (group commit): a write goes
// when IngestMaxBatch events wait or the oldest has waited IngestMaxWait,
// and one write runs at a time. Every call of a write gets the store's
// error when it fails. When ctx ends first, CreateEvents returns ctx.Err()
// while the events may still be stored. While Run runs, the new
// deliveries are handed to this node's senders as far as its queues have
// room, and the rest are left for the claim loop.
func (e *Engine) CreateEvents(ctx context.Context, events []*herald.Event) ([]herald.EventResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	c := &ingestCall{events: events, done: make(chan struct{})}
	w := &e.w
	w.mu.Lock()
	if len(w.calls) == 0 {
		w.firstEvent = time.Now()
	}
	w.calls = append(w.calls, c)
	w.nEvents += len(events)
	e.kickLocked()
	w.mu.Unlock()

	select {
	case <-c.done:
		return c.results, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// record queues an attempt result for writing.
func (e *Engine) record(r pendingResult) {
	w := &e.w
	w.mu.Lock()
	if len(w.results) == 0 {
		w.firstResult = time.Now()
	}
	w.results = append(w.results, r)
	e.kickLocked()
	w.mu.Unlock()
}

// kickLocked wakes a write loop, starting one if fewer than Writers run.
// Called with w.mu held.
func (e *Engine) kickLocked() {
	w := &e.w
	if w.running < e.cfg.Writers {
		w.running++
		go e.writeLoop()
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// writeLoop writes what waits, one transaction at a time, until nothing
// does.
func (e *Engine) writeLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		calls, results, wait, ok := e.takeWrite()
		switch {
		case ok:
			e.write(calls, results)
		case wait < 0:
			return // nothing waits; the loop stopped itself under w.mu
		default:
			timer.Reset(wait)
			select {
			case <-e.w.kick:
			case <-timer.C:
			}
		}
	}
}

// takeWrite returns the calls and results to write now (ok), or how long to
// wait for more (negative: nothing waits, and the loop is marked stopped).
func (e *Engine) takeWrite() (calls []*ingestCall, results []pendingResult, wait time.Duration, ok bool) {
	w := &e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.calls) == 0 && len(w.results) == 0 {
		w.running--
		return nil, nil, -1, false
	}
	now := time.Now()
	wait = -1
	soonest := func(d time.Duration) {
		if wait < 0 || d < wait {
			wait = max(d, 0)
		}
	}
	eventsDue, resultsDue := false, false
	if len(w.calls) > 0 {
		left := e.cfg.IngestMaxWait - now.Sub(w.firstEvent)
		eventsDue = w.nEvents >= e.cfg.IngestMaxBatch || left <= 0
		soonest(left)
	}
	if len(w.results) > 0 {
		hold := flushEvery
		if w.failures > 0 {
			hold = min(flushEvery<<min(w.failures, 10), flushBackoff)
		}
		left := hold - now.Sub(w.firstResult)
		resultsDue = left <= 0 || (w.failures == 0 && (w.draining || len(w.results) >= flushMax))
		soonest(left)
	}
	if !eventsDue && !resultsDue {
		return nil, nil, wait, false
	}
	// Whatever goes, everything waiting goes with it (results up to
	// flushMax): the commit is paid for anyway.
	n := 0
	for len(w.calls) > 0 && (n == 0 || n+len(w.calls[0].events) <= e.cfg.IngestMaxBatch) {
		c := w.calls[0]
		w.calls[0] = nil
		w.calls = w.calls[1:]
		calls = append(calls, c)
		n += len(c.events)
	}
	w.nEvents -= n
	if len(w.calls) > 0 {
		w.firstEvent = now // the rest is the next write's, which follows at once if full
	}
	k := min(len(w.results), flushMax)
	results = w.results[:k:k]
	w.results = w.results[k:]
	if len(w.results) > 0 {
		w.firstResult = now
	} else {
		w.results = nil
	}
	return calls, results, 0, true
}

// write stores calls and results in one transaction, answers the calls,
// hands the new deliveries to the senders, and settles the results; results
// that could not be written go back to wait, as long as their lease holds.
func (e *Engine) write(calls []*ingestCall, results []pendingResult) {
	results = e.dropExpired(results)
	var events []*herald.Event
	for _, c := range calls {
		events = append(events, c.events...)
	}
	if len(events) == 0 && len(results) == 0 {
		return
	}
	ars := make([]herald.AttemptResult, len(results))
	for i, r := range results {
		ars[i] = r.AttemptResult
	}

	// No orphan release may run between the commit of handed-off
	// deliveries and their enqueueing: it would take them for lost.
	e.handoffMu.RLock()
	defer e.handoffMu.RUnlock()
	var handoff *herald.Handoff
	if len(events) > 0 {
		e.mu.Lock()
		handoff = e.handoffRoom()
		e.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	start := time.Now()
	out, err := e.store.Write(ctx, &herald.Write{Events: events, Handoff: handoff, Results: ars})
	cancel()
	if len(events) > 0 {
		e.metrics.ingestCommit.Observe(time.Since(start).Seconds())
		e.metrics.ingestBatch.Observe(float64(len(events)))
	}
	if err == nil && len(out.Events) != len(events) {
		err = fmt.Errorf("the store returned %d results for %d events", len(out.Events), len(events))
	}

	if err != nil {
		if handoff != nil {
			// The write may have committed and lost its answer, with
			// deliveries claimed for us that we do not hold.
			e.orphans.Store(true)
		}
		if len(events) > 0 {
			e.log.Error("could not store events", "events", len(events), "err", err)
		}
		for _, c := range calls {
			c.err = fmt.Errorf("create events: %w", err)
			close(c.done)
		}
		if len(results) > 0 {
			e.metrics.flushErrors.Inc()
			e.log.Warn("could not write attempt results; retrying", "results", len(results), "err", err)
			w := &e.w
			w.mu.Lock()
			w.failures++
			w.results = append(results, w.results...)
			w.firstResult = time.Now()
			w.mu.Unlock()
		}
		return
	}

	off := 0
	for _, c := range calls {
		end := off + len(c.events)
		c.results = out.Events[off:end:end]
		off = end
		close(c.done)
	}
	created := 0
	for _, r := range out.Events {
		if r.Err == nil && !r.Duplicate {
			created += r.Deliveries
		}
	}
	overflow := created > len(out.Jobs)
	if len(out.Jobs) > 0 {
		e.handOff(out.Jobs, overflow)
	}
	if overflow {
		// Some new deliveries did not fit the queues and wait PENDING:
		// the claim loop takes them as the queues drain, and is told now
		// rather than at its next poll (the store's wake-ups may be off).
		e.Wake()
	}
	if len(results) > 0 {
		e.w.mu.Lock()
		e.w.failures = 0
		e.w.mu.Unlock()
		for _, r := range results {
			e.settle(r)
		}
	}
}

// dropExpired settles and counts as lost the results whose lease ran out
// before they could be written: another node may have sent the delivery
// again by now, and it will be sent again anyway (at-least-once).
func (e *Engine) dropExpired(results []pendingResult) []pendingResult {
	now := e.cfg.Now()
	kept := results[:0]
	for _, r := range results {
		if r.leaseUntil.After(now) {
			kept = append(kept, r)
		} else {
			e.settle(r)
		}
	}
	if lost := len(results) - len(kept); lost > 0 {
		e.metrics.resultsLost.Add(float64(lost))
		e.log.Error("attempt results outlived their lease before they could be written; those deliveries will be sent again", "results", lost)
	}
	return kept
}

// handoffRoom says how many new deliveries the next write may claim for
// this node: as many as its queues have room for. Nil when Run is not
// running or is stopping. Called with e.mu held.
func (e *Engine) handoffRoom() *herald.Handoff {
	if e.start == nil || e.stopping {
		return nil
	}
	limit := e.totalQueueCap() - e.queued
	if limit <= 0 {
		return nil
	}
	room := make(map[string]int, len(e.hooks)+len(e.took)+len(e.gone))
	for id, s := range e.took {
		room[id] = e.queueCap(&hookQueue{took: s.took})
	}
	for id, h := range e.hooks {
		room[id] = max(e.queueCap(h)-len(h.jobs), 0)
	}
	for id := range e.gone {
		room[id] = 0
	}
	return &herald.Handoff{
		Owner:      e.cfg.Owner,
		LeaseUntil: e.cfg.Now().Add(e.cfg.Lease),
		Room:       room,
		Default:    e.queueCap(nil),
		Limit:      limit,
	}
}

// handOff queues the deliveries a write claimed for this node and starts
// what the senders can take. overflow says the write left others PENDING
// for want of room: the webhooks handed jobs then probably have more due,
// and their queues wake the claim loop when they drain to half.
func (e *Engine) handOff(jobs []*herald.Job, overflow bool) {
	e.metrics.handedOff.Add(float64(len(jobs)))
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.start == nil || e.stopping {
		// Run stopped meanwhile: these stay SENT under this owner, and
		// its release at the end of Run makes them due again.
		return
	}
	for _, j := range jobs {
		e.observeLag(j, now)
	}
	e.enqueue(jobs)
	if overflow {
		for _, j := range jobs {
			if h := e.hooks[j.Webhook.ID]; h != nil {
				h.more = true
			}
		}
	}
	// Started under e.mu, so that Run cannot begin its drain between
	// taking a job and starting its sender.
	for j := e.next(now); j != nil; j = e.next(now) {
		e.start(j)
	}
}

// drainResults writes the results still waiting once the senders are done,
// retrying until deadline (at least once). What it cannot write is lost,
// and those deliveries are due again when released or when their lease
// runs out.
func (e *Engine) drainResults(deadline time.Time) {
	w := &e.w
	w.mu.Lock()
	w.draining = true
	if len(w.results) > 0 {
		e.kickLocked()
	}
	w.mu.Unlock()
	for {
		w.mu.Lock()
		n, busy := len(w.results), w.running > 0
		w.mu.Unlock()
		if n == 0 && !busy {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.mu.Lock()
	lost := w.results
	w.results = nil
	w.mu.Unlock()
	for _, r := range lost {
		e.settle(r)
	}
	if n := len(lost); n > 0 {
		e.metrics.resultsLost.Add(float64(n))
		e.log.Error("could not write attempt results before stopping; those deliveries will be sent again", "results", n)
	}
}
