package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Writing knobs. Results wait a few milliseconds for others unless a
// transaction is going anyway; at flushMax they go at once.
const (
	flushEvery   = 10 * time.Millisecond
	flushMax     = 1000
	writeTimeout = 30 * time.Second
	flushBackoff = 2 * time.Second // longest wait between retries while the database is down
)

// writer is the engine's one way into the database for events and attempt
// results: everything it is given waits in its lists until a write loop
// takes all of it into one transaction (group commit). Under load that is
// one commit, and on SQLite one fsync, for hundreds of events and results
// together. SQLite has one writer, so one loop (Config.Writers);
// PostgreSQL runs several transactions at once on its own CPUs, so a node
// there runs a few.
//
// The new deliveries of an event are claimed in the same transaction, as
// far as the scheduler grants room for them (queue.Handoff), and go
// straight to the senders: a delivery stored on a node that is running is
// sent without a claim. What does not fit stays PENDING and due now, for
// the claimer of any node, which is woken.
//
// Results come from the senders (record), and are settled in the
// scheduler once written or given up. While the database is down they
// wait and are retried with backoff, as long as their lease holds.
//
// Ownership: the lists below are guarded by mu, taken only for moments
// (never across a write, never with the scheduler's mutex). Write loops
// are goroutines of their own, started by kick while there is something to
// write and ending when nothing is, so CreateEvents works before Run as
// after it.
type writer struct {
	store   Store
	q       *queues
	wake    func() // wakes the claimer
	metrics *metrics
	log     *slog.Logger
	now     func() time.Time
	owner   string
	lease   time.Duration
	loops   int // Config.Writers
	// maxBatch and maxWait are Config.IngestMaxBatch and IngestMaxWait.
	maxBatch int
	maxWait  time.Duration
	// tracer makes the ingest and commit spans; nil when the node does
	// not trace.
	tracer trace.Tracer

	mu      sync.Mutex
	running int           // write loops active, at most loops
	kick    chan struct{} // capacity 1: wakes a waiting loop when something arrives
	calls   []*ingestCall // CreateEvents calls waiting, oldest first
	nEvents int           // events in calls
	// firstEvent and firstResult are when the oldest waiting event and
	// result arrived, for maxWait and flushEvery.
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
	// span is the call's herald.ingest span, which the commit links to;
	// zero when the node does not trace.
	span trace.SpanContext
}

// pendingResult is an attempt result waiting to be written, with the lease
// that makes writing it safe.
type pendingResult struct {
	herald.AttemptResult
	leaseUntil time.Time
	webhookID  string
}

// createEvents queues events for the next write and waits for it
// (Engine.CreateEvents).
func (w *writer) createEvents(ctx context.Context, events []*herald.Event) (results []herald.EventResult, err error) {
	if len(events) == 0 {
		return nil, nil
	}
	c := &ingestCall{events: events, done: make(chan struct{})}
	if w.tracer != nil {
		var span trace.Span
		_, span = w.tracer.Start(ctx, "herald.ingest", trace.WithAttributes(attrEvents.Int(len(events))))
		c.span = span.SpanContext()
		// The event keeps this span's traceparent, so that its deliveries'
		// attempts, sent later and maybe by another node, are its children.
		tp := traceParent(c.span)
		for _, ev := range events {
			ev.TraceParent = tp
		}
		defer func() { endIngest(span, results, err) }()
	}
	w.mu.Lock()
	if len(w.calls) == 0 {
		w.firstEvent = time.Now()
	}
	w.calls = append(w.calls, c)
	w.nEvents += len(events)
	w.kickLocked()
	w.mu.Unlock()

	select {
	case <-c.done:
		return c.results, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// endIngest records a CreateEvents call's results on its span and ends it.
func endIngest(span trace.Span, results []herald.EventResult, err error) {
	defer span.End()
	if err != nil {
		span.SetStatus(codes.Error, "events not stored")
		return
	}
	n := 0
	for _, r := range results {
		n += r.Deliveries
	}
	span.SetAttributes(attrDeliveries.Int(n))
	if len(results) == 1 {
		span.SetAttributes(attrEvent.String(results[0].EventID))
	}
}

// record queues an attempt result for writing: the one way results go
// back.
func (w *writer) record(r pendingResult) {
	w.mu.Lock()
	if len(w.results) == 0 {
		w.firstResult = time.Now()
	}
	w.results = append(w.results, r)
	w.kickLocked()
	w.mu.Unlock()
}

// kickLocked wakes a write loop, starting one if fewer than loops run.
// Called with mu held.
func (w *writer) kickLocked() {
	if w.running < w.loops {
		w.running++
		go w.loop()
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// loop writes what waits, one transaction at a time, until nothing does.
func (w *writer) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		calls, results, wait, ok := w.take()
		switch {
		case ok:
			w.write(calls, results)
		case wait < 0:
			return // nothing waits; the loop stopped itself under mu
		default:
			timer.Reset(wait)
			select {
			case <-w.kick:
			case <-timer.C:
			}
		}
	}
}

// take returns the calls and results to write now (ok), or how long to
// wait for more (negative: nothing waits, and the loop is marked stopped).
func (w *writer) take() (calls []*ingestCall, results []pendingResult, wait time.Duration, ok bool) {
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
		left := w.maxWait - now.Sub(w.firstEvent)
		eventsDue = w.nEvents >= w.maxBatch || left <= 0
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
	for len(w.calls) > 0 && (n == 0 || n+len(w.calls[0].events) <= w.maxBatch) {
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
// hands the new deliveries to the scheduler, and settles the results;
// results that could not be written go back to wait, as long as their
// lease holds.
func (w *writer) write(calls []*ingestCall, results []pendingResult) {
	results = w.dropExpired(results)
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

	// The room this write may fill is reserved in the scheduler until its
	// jobs are queued, so no claim or other write fills it meanwhile, and
	// no orphan release runs before they are held.
	var g *grant
	var handoff *queue.Handoff
	if len(events) > 0 {
		if g = w.q.handoff(len(events)); g != nil {
			handoff = &queue.Handoff{Owner: w.owner, LeaseUntil: w.now().Add(w.lease), Room: g.room, Default: g.def, Limit: g.limit}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	start := time.Now()
	var span trace.Span
	if w.tracer != nil && len(events) > 0 {
		// One commit serves many requests, each in its own trace: a span
		// of its own, linked to each request's herald.ingest.
		scs := make([]trace.SpanContext, len(calls))
		for i, c := range calls {
			scs[i] = c.span
		}
		ctx, span = w.tracer.Start(ctx, "herald.commit", trace.WithNewRoot(), trace.WithLinks(links(scs)...),
			trace.WithAttributes(attrEvents.Int(len(events)), attrResults.Int(len(results))))
	}
	out, err := w.store.Write(ctx, &queue.Write{Events: events, Handoff: handoff, Results: ars})
	cancel()
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, "write failed")
		} else {
			span.SetAttributes(attrHandedOff.Int(len(out.Jobs)))
		}
		span.End()
	}
	if len(events) > 0 {
		w.metrics.ingestCommit.Observe(time.Since(start).Seconds())
		w.metrics.ingestBatch.Observe(float64(len(events)))
	}
	if err == nil && len(out.Events) != len(events) {
		err = fmt.Errorf("the store returned %d results for %d events", len(out.Events), len(events))
	}

	if err != nil {
		// The write may have committed and lost its answer, with
		// deliveries claimed for us that we do not hold.
		w.q.failed(g)
		if len(events) > 0 {
			w.log.Error("could not store events", "events", len(events), "err", err)
		}
		for _, c := range calls {
			c.err = fmt.Errorf("create events: %w", err)
			close(c.done)
		}
		if len(results) > 0 {
			w.metrics.flushErrors.Inc()
			w.log.Warn("could not write attempt results; retrying", "results", len(results), "err", err)
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
	if g != nil {
		now := w.now()
		for _, j := range out.Jobs {
			observeLag(w.metrics, j, now)
		}
		w.metrics.handedOff.Add(float64(len(out.Jobs)))
		w.q.handedOff(g, out.Jobs, overflow, now)
	}
	if overflow {
		// Some new deliveries did not fit the queues and wait PENDING:
		// the claimer takes them as the queues drain, and is told now
		// rather than at its next poll (the store's wake-ups may be off).
		w.wake()
	}
	if len(results) > 0 {
		w.mu.Lock()
		w.failures = 0
		w.mu.Unlock()
		w.q.settle(results)
	}
}

// dropExpired settles and counts as lost the results whose lease ran out
// before they could be written: another node may have sent the delivery
// again by now, and it will be sent again anyway (at-least-once).
func (w *writer) dropExpired(results []pendingResult) []pendingResult {
	now := w.now()
	var lost []pendingResult
	kept := results[:0]
	for _, r := range results {
		if r.leaseUntil.After(now) {
			kept = append(kept, r)
		} else {
			lost = append(lost, r)
		}
	}
	if len(lost) > 0 {
		w.q.settle(lost)
		w.metrics.resultsLost.Add(float64(len(lost)))
		w.log.Error("attempt results outlived their lease before they could be written; those deliveries will be sent again", "results", len(lost))
	}
	return kept
}

// drain writes the results still waiting once the senders are done,
// retrying until deadline (at least once). What it cannot write is lost,
// and those deliveries are due again when released or when their lease
// runs out.
func (w *writer) drain(deadline time.Time) {
	w.mu.Lock()
	w.draining = true
	if len(w.results) > 0 {
		w.kickLocked()
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
	w.q.settle(lost)
	if n := len(lost); n > 0 {
		w.metrics.resultsLost.Add(float64(n))
		w.log.Error("could not write attempt results before stopping; those deliveries will be sent again", "results", n)
	}
}

// observeLag records how long a new delivery waited to be claimed: claim
// (or handoff) time minus creation. Only first attempts count: a claimed
// delivery's due time has already become its lease, and a retry's wait is
// the schedule's.
func observeLag(m *metrics, j *queue.Job, now time.Time) {
	if j.Delivery.AttemptCount == 0 && !j.Delivery.CreatedAt.IsZero() {
		m.queueLag.Observe(max(now.Sub(j.Delivery.CreatedAt), 0).Seconds())
	}
}
