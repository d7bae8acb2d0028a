// Package dispatch is Herald's delivery engine: it gathers incoming events
// into group commits, claims due deliveries from the store under a lease,
// signs and sends them to receivers with bounded concurrency per webhook,
// and writes the attempts back in batches, scheduling retries.
//
// The store is the only source of truth. The engine keeps nothing that a
// crash could lose except attempts not yet written, and those deliveries
// are sent again once their lease runs out (at-least-once; receivers dedupe
// on webhook-id). A Maintainer runs the leader-only housekeeping.
package dispatch

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is what the engine needs from the database: the delivery queue,
// including the EventIngester that group commits end up in.
type Store interface {
	herald.DeliveryQueue
}

// Config configures an Engine. Zero fields take the defaults they name.
type Config struct {
	// Store is the database. Required.
	Store Store
	// Owner is this node's id, recorded on the deliveries it claims.
	// Defaults to hostname-pid-random, unique per process.
	Owner string
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// AllowPrivateDestinations lets requests go to loopback, private,
	// link-local and other non-public addresses. Off by default: webhook
	// URLs are written by tenants, and Herald must not reach its own network.
	AllowPrivateDestinations bool

	// Concurrency is how many requests this node sends at once. Defaults to 64.
	Concurrency int
	// PerWebhookInFlight bounds the requests in flight for any one webhook,
	// so a slow receiver holds at most this many senders. Defaults to 8
	// (and to Concurrency when that is smaller).
	PerWebhookInFlight int
	// Lease is how long a claim lasts: if this node has not recorded the
	// attempt by then, another node may send the delivery again. It must
	// exceed herald.MaxTimeoutSeconds, so no request outlives its claim;
	// the margin above it is the time to write the result. Defaults to
	// herald.MaxTimeoutSeconds + 30s (150s).
	Lease time.Duration
	// PollInterval is the longest the engine sleeps without looking for due
	// deliveries, for retries and work committed by other nodes when no
	// wake-up comes. Defaults to 1s.
	PollInterval time.Duration
	// Wake delivers the store's wake-ups (LISTEN/NOTIFY on PostgreSQL):
	// another node committed deliveries. Optional.
	Wake <-chan struct{}

	// Schedule is the wait before each attempt, as DESIGN.md lists them:
	// Schedule[n] is the wait after attempt n failed, the last value
	// repeating. Schedule[0] stands for the first attempt, which is always
	// made as soon as the delivery is stored. Defaults to DefaultSchedule.
	// The last value must be positive.
	Schedule []time.Duration
	// RetryWindow is how long after the first attempt retries go on; a
	// delivery whose next attempt would fall later is FAILED. Defaults to 24h.
	RetryWindow time.Duration
	// Jitter scales each scheduled wait by a random factor in 1±Jitter.
	// Defaults to 0.2; a negative value means none.
	Jitter float64

	// Registerer receives the engine's metrics. Defaults to
	// prometheus.DefaultRegisterer; give each engine in a process its own.
	Registerer prometheus.Registerer

	// IngestMaxBatch is the most events stored in one group commit.
	// Defaults to 500.
	IngestMaxBatch int
	// IngestMaxWait is how long the first event of a group commit waits for
	// others to join it. Defaults to 2ms.
	IngestMaxWait time.Duration

	// DrainTimeout is how long Run lets requests in flight finish once its
	// context is done. Defaults to 10s.
	DrainTimeout time.Duration
}

// Engine delivers webhooks. Create it with New, then call Run once.
// CreateEvents, TestWebhook and Wake may be called from any goroutine,
// also before Run.
type Engine struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	policy  retryPolicy
	sender  *sender
	metrics *metrics
	wake    chan struct{} // capacity 1: one pending wake-up stands for any number
	ing     ingester
	running atomic.Bool

	// unclaimable counts claims in a row that found due deliveries they
	// could not take while nothing was in flight; only the claim loop uses it.
	unclaimable int
	// unsure is set when a claim failed: it may have committed in the
	// database and lost its answer, leaving deliveries SENT under this
	// owner that the engine never received. Only the claim loop uses it.
	unsure bool

	mu         sync.Mutex
	inFlight   int
	perWebhook map[string]int // webhook ID -> requests in flight
	// held counts, by delivery ID, the claims the engine is working on:
	// from the claim until the result is written (or given up). Anything
	// else SENT under this owner is an orphan after an unsure claim.
	held map[string]int
}

// New returns an engine for cfg, or an error naming the first invalid
// setting or saying the metrics could not be registered.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: Config.Store is required")
	}
	cfg.Owner = cmp.Or(cfg.Owner, defaultOwner())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 64)
	cfg.PerWebhookInFlight = min(cmp.Or(cfg.PerWebhookInFlight, 8), cfg.Concurrency)
	cfg.Lease = cmp.Or(cfg.Lease, herald.MaxTimeoutSeconds*time.Second+30*time.Second)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, time.Second)
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultSchedule
	}
	cfg.Schedule = slices.Clone(cfg.Schedule)
	cfg.RetryWindow = cmp.Or(cfg.RetryWindow, 24*time.Hour)
	switch {
	case cfg.Jitter == 0:
		cfg.Jitter = 0.2
	case cfg.Jitter < 0:
		cfg.Jitter = 0
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	cfg.IngestMaxBatch = cmp.Or(cfg.IngestMaxBatch, 500)
	cfg.IngestMaxWait = cmp.Or(cfg.IngestMaxWait, 2*time.Millisecond)
	cfg.DrainTimeout = cmp.Or(cfg.DrainTimeout, 10*time.Second)

	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"Concurrency", cfg.Concurrency > 0},
		{"PerWebhookInFlight", cfg.PerWebhookInFlight > 0},
		{"Lease", cfg.Lease > 0},
		{"PollInterval", cfg.PollInterval > 0},
		{"RetryWindow", cfg.RetryWindow > 0},
		{"IngestMaxBatch", cfg.IngestMaxBatch > 0},
		{"IngestMaxWait", cfg.IngestMaxWait > 0},
		{"DrainTimeout", cfg.DrainTimeout > 0},
	} {
		if !c.ok {
			return nil, fmt.Errorf("dispatch: Config.%s must be positive", c.name)
		}
	}
	if cfg.Lease <= herald.MaxTimeoutSeconds*time.Second {
		return nil, fmt.Errorf("dispatch: Config.Lease is %s; it must exceed the longest webhook timeout, %ds, or a slow request would be sent again by another node while it is still running", cfg.Lease, herald.MaxTimeoutSeconds)
	}
	if slices.Min(cfg.Schedule) < 0 || cfg.Schedule[len(cfg.Schedule)-1] <= 0 {
		return nil, errors.New("dispatch: Config.Schedule must have no negative wait and end with a positive one (it repeats)")
	}
	if cfg.Jitter >= 1 {
		return nil, fmt.Errorf("dispatch: Config.Jitter must be below 1; it is %g", cfg.Jitter)
	}

	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Engine{
		cfg:        cfg,
		store:      cfg.Store,
		log:        cfg.Logger.With("owner", cfg.Owner),
		policy:     retryPolicy{schedule: cfg.Schedule, window: cfg.RetryWindow, jitter: cfg.Jitter},
		sender:     &sender{client: newClient(cfg.AllowPrivateDestinations, cfg.Concurrency), now: cfg.Now},
		metrics:    m,
		wake:       make(chan struct{}, 1),
		ing:        ingester{commit: make(chan struct{}, 1)},
		perWebhook: map[string]int{},
		held:       map[string]int{},
	}, nil
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "herald"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Owner returns the id this engine records on its claims.
func (e *Engine) Owner() string { return e.cfg.Owner }

// Wake makes the engine look for due deliveries now instead of at its next
// poll. It never blocks; wake-ups that come while one is pending merge.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run claims and sends deliveries until ctx is done, then drains: it stops
// claiming, lets requests in flight finish for up to DrainTimeout (then
// cancels them), writes the results it has, and releases this owner's
// remaining claims so they are due again at once. It returns nil after a
// clean stop, or the error of releasing the claims (their leases then run
// out on their own). Run may be called only once.
func (e *Engine) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("dispatch: Engine.Run called twice")
	}
	e.log.Info("delivery engine started", "concurrency", e.cfg.Concurrency,
		"perWebhookInFlight", e.cfg.PerWebhookInFlight, "lease", e.cfg.Lease,
		"allowPrivateDestinations", e.cfg.AllowPrivateDestinations)

	// Requests outlive ctx during the drain; they get their own context,
	// cancelled when the drain times out.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	results := make(chan pendingResult, e.cfg.Concurrency)
	f := &flusher{e: e, in: results, done: make(chan struct{})}
	go f.run()

	var senders sync.WaitGroup
	e.claimLoop(ctx, func(j *herald.Job) {
		senders.Go(func() { e.deliver(sendCtx, j, results) })
	})

	// Drain.
	deadline := time.Now().Add(e.cfg.DrainTimeout)
	idle := make(chan struct{})
	go func() { senders.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(e.cfg.DrainTimeout):
		e.log.Warn("requests still in flight after the drain timeout; cancelling them", "drainTimeout", e.cfg.DrainTimeout)
		cancelSends()
		<-idle
	}
	f.deadline = deadline
	close(results) // every sender is done: nothing else writes to it
	<-f.done

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n, err := e.store.ReleaseDeliveries(rctx, e.cfg.Owner)
	if err != nil {
		e.log.Error("could not release claimed deliveries; they are due again when their lease runs out", "err", err)
		return fmt.Errorf("release deliveries: %w", err)
	}
	e.log.Info("delivery engine stopped", "released", n)
	return nil
}

// claimEvery is the shortest time between two claims. Under load every
// finishing sender wakes the claim loop; waiting this long gathers the slots
// they free into one claim transaction instead of one each.
const claimEvery = time.Millisecond

// claimLoop claims due deliveries whenever there are free senders, and
// hands each to start, until ctx is done.
func (e *Engine) claimLoop(ctx context.Context, start func(*herald.Job)) {
	storeWake := e.cfg.Wake
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
		wait, err := e.claim(ctx, start)
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
			wait = min(e.cfg.PollInterval<<min(failures, 5), 30*time.Second)
			e.log.Warn("could not claim deliveries", "err", err, "retryIn", wait)
		default:
			failures = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case _, ok := <-storeWake:
			if !ok {
				storeWake = nil // the store closed its wake-ups; polling still works
			}
		case <-timer.C:
		}
	}
}

// claim claims what the free senders can take and starts it. It returns
// how long to sleep before the next claim unless woken.
func (e *Engine) claim(ctx context.Context, start func(*herald.Job)) (time.Duration, error) {
	if e.unsure {
		if err := e.releaseOrphans(ctx); err != nil {
			return 0, err
		}
	}
	free, perWebhook, exclude := e.capacity()
	if free == 0 {
		return e.cfg.PollInterval, nil // a finishing sender wakes the loop
	}
	now := e.cfg.Now()
	jobs, err := e.store.ClaimDeliveries(ctx, herald.ClaimRequest{
		Owner:           e.cfg.Owner,
		Now:             now,
		LeaseUntil:      now.Add(e.cfg.Lease),
		Limit:           free,
		PerWebhook:      perWebhook,
		ExcludeWebhooks: exclude,
	})
	if err != nil {
		// The claim may have committed before the connection broke.
		e.unsure = true
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	if len(jobs) > 0 {
		e.metrics.claimBatch.Observe(float64(len(jobs)))
		e.unclaimable = 0
	}
	e.hold(jobs)
	for _, j := range jobs {
		e.observeLag(j, now)
		e.acquire(j.Webhook.ID)
		start(j)
	}
	if len(jobs) > 0 {
		// More may be due, but the senders just started will wake the loop
		// when they finish; a NextDue query per claim would cost more than
		// it saves. The poll bounds the delay of anything else.
		return e.cfg.PollInterval, nil
	}
	next, err := e.store.NextDue(ctx)
	if err != nil {
		return 0, fmt.Errorf("next due delivery: %w", err)
	}
	wait := e.cfg.PollInterval
	if next == nil {
		return wait, nil
	}
	if d := next.Sub(e.cfg.Now()); d > 0 {
		return min(d, wait), nil
	}
	// Due but not claimed. Usually it belongs to a webhook saturated here,
	// and one of its finishing senders wakes the loop. With nothing in
	// flight, it was locked by another node's claim (SKIP LOCKED), which
	// may come to nothing: look again soon, and less often each time.
	e.mu.Lock()
	idle := e.inFlight == 0
	e.mu.Unlock()
	if idle {
		e.unclaimable++
		return min(claimEvery<<min(e.unclaimable+2, 20), wait), nil
	}
	return wait, nil
}

// releaseOrphans makes due again every delivery SENT under this owner that
// the engine does not hold: what a claim took when its answer was lost. It
// runs in the claim loop, so no claim adds to what the engine holds while
// the release runs; deliveries that stop being held meanwhile have had
// their results written and are no longer SENT.
func (e *Engine) releaseOrphans(ctx context.Context) error {
	e.mu.Lock()
	held := make([]string, 0, len(e.held))
	for id := range e.held {
		held = append(held, id)
	}
	e.mu.Unlock()
	n, err := e.store.ReleaseUnheld(ctx, e.cfg.Owner, held)
	if err != nil {
		return fmt.Errorf("release deliveries of a lost claim: %w", err)
	}
	e.unsure = false
	if n > 0 {
		e.metrics.orphansReleased.Add(float64(n))
		e.log.Warn("released deliveries claimed by a claim whose answer was lost; they are due again now", "count", n)
	}
	return nil
}

// hold records that the engine is working on jobs.
func (e *Engine) hold(jobs []*herald.Job) {
	e.mu.Lock()
	for _, j := range jobs {
		e.held[j.Delivery.ID]++
	}
	e.mu.Unlock()
}

// unhold records that the engine is done with a delivery: its result is
// written or given up.
func (e *Engine) unhold(id string) {
	e.mu.Lock()
	if e.held[id]--; e.held[id] <= 0 {
		delete(e.held, id)
	}
	e.mu.Unlock()
}

// capacity returns the free sender slots, the most deliveries to claim for
// any one webhook, and the webhooks with no free slot.
func (e *Engine) capacity() (free, perWebhook int, exclude []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	limit := e.cfg.PerWebhookInFlight
	perWebhook = limit
	for id, n := range e.perWebhook {
		if n >= limit {
			exclude = append(exclude, id)
		} else {
			// The claim takes one per-webhook cap for all webhooks; the
			// tightest partly busy webhook sets it, so none goes over.
			perWebhook = min(perWebhook, limit-n)
		}
	}
	return e.cfg.Concurrency - e.inFlight, perWebhook, exclude
}

func (e *Engine) acquire(webhookID string) {
	e.mu.Lock()
	e.inFlight++
	e.perWebhook[webhookID]++
	e.mu.Unlock()
	e.metrics.inFlight.Inc()
}

func (e *Engine) releaseSlot(webhookID string) {
	e.mu.Lock()
	e.inFlight--
	if e.perWebhook[webhookID]--; e.perWebhook[webhookID] <= 0 {
		delete(e.perWebhook, webhookID)
	}
	e.mu.Unlock()
	e.metrics.inFlight.Dec()
	e.Wake()
}

// observeLag records how long a new delivery waited to be claimed: claim
// time minus creation. Only first attempts count: a claimed delivery's due
// time has already become its lease, and a retry's wait is the schedule's.
func (e *Engine) observeLag(j *herald.Job, now time.Time) {
	if j.Delivery.AttemptCount == 0 && !j.Delivery.CreatedAt.IsZero() {
		e.metrics.queueLag.Observe(max(now.Sub(j.Delivery.CreatedAt), 0).Seconds())
	}
}

// deliver sends one claimed delivery and queues its result.
func (e *Engine) deliver(ctx context.Context, j *herald.Job, results chan<- pendingResult) {
	defer e.releaseSlot(j.Webhook.ID)
	a, retryAfter := e.sender.send(ctx, j.Webhook, j.Event, j.Secrets, j.Delivery.AttemptCount+1)
	if ctx.Err() != nil && a.StatusCode == 0 {
		// Cut short by our own shutdown: not the receiver's fault, so no
		// attempt goes on record; the release at the end of Run makes the
		// delivery due again.
		e.unhold(j.Delivery.ID)
		return
	}
	e.metrics.attemptDuration.Observe(float64(a.DurationMs) / 1000)
	r := e.policy.decide(j.Delivery, a, retryAfter, e.cfg.Now(), mathrand.Float64())
	switch r.Status {
	case herald.StatusDelivered:
		e.metrics.attempts.WithLabelValues(outcomeDelivered).Inc()
	case herald.StatusRetrying:
		e.metrics.attempts.WithLabelValues(outcomeRetrying).Inc()
	default:
		e.metrics.attempts.WithLabelValues(outcomeFailed).Inc()
	}
	log := e.log.With("delivery", j.Delivery.ID, "tenant", j.Delivery.Tenant, "instance", j.Delivery.Instance,
		"webhook", j.Webhook.Name, "attempt", a.N)
	switch {
	case r.DeactivateReason != "":
		log.Warn("receiver answered 410 Gone; deactivating the webhook", "reason", r.DeactivateReason)
	case r.Status == herald.StatusFailed:
		log.Warn("delivery failed for good", "reason", r.WaitReason)
	case r.Status == herald.StatusRetrying:
		log.Debug("delivery attempt failed", "reason", r.WaitReason)
	default:
		log.Debug("delivered", "status", a.StatusCode, "durationMs", a.DurationMs)
	}
	results <- pendingResult{AttemptResult: r, leaseUntil: j.LeaseUntil}
}

// TestWebhook sends w's test request now: the placeholder event, rendered
// with w's payload settings and signed with secrets, through the same
// guarded client as deliveries. Nothing is stored. It returns the attempt,
// whose Error says what went wrong if the receiver did not answer 2xx, or
// an EUNPROCESSABLE error when w has no URL.
func (e *Engine) TestWebhook(ctx context.Context, w *herald.Webhook, secrets []string) (*herald.Attempt, error) {
	if w.URL == "" {
		return nil, herald.Errorf(herald.EUNPROCESSABLE, "Webhook %s has no URL; set one before sending a test.", w.Name)
	}
	ev := herald.PlaceholderEvent(w.Tenant, w.Instance, e.cfg.Now())
	a, _ := e.sender.send(ctx, w, ev, secrets, 1)
	return &a, nil
}
