// Package dispatch is Herald's delivery engine: it gathers incoming events
// and attempt results into group commits (write.go), which also claim the
// new deliveries for this node under a lease (handoff); it claims what
// else is due (retries, overflow, other nodes' work), signs and sends
// deliveries to receivers with bounded concurrency per webhook (queue.go,
// send.go), and schedules retries (schedule.go).
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
	"crypto/x509"
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
	"github.com/heraldhooks/herald/netguard"
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
	// Destinations says which addresses requests may go to. The zero
	// Policy allows public addresses only: webhook URLs are written by
	// tenants, and Herald must not reach its own network.
	Destinations netguard.Policy
	// RequireHTTPS refuses to send to a URL that is not https://: such a
	// delivery's attempt fails with an error that says so, also for a URL
	// stored before it was set. Off by default.
	RequireHTTPS bool
	// RootCAs are the certificate authorities receivers' certificates are
	// checked against. Defaults to the system's roots.
	RootCAs *x509.CertPool

	// Concurrency is how many requests this node sends at once. Defaults to 64.
	// The engine claims ahead of its senders: it keeps up to 64 times as
	// many claimed deliveries queued, so senders need not wait for a claim.
	Concurrency int
	// PerWebhookInFlight bounds the requests in flight for any one webhook,
	// so a slow receiver holds at most this many senders. Defaults to 8
	// (and to Concurrency when that is smaller).
	PerWebhookInFlight int
	// FastWebhookInFlight bounds the requests in flight for a webhook whose
	// requests take less than fastRequest (50ms) on average: a receiver
	// that keeps answering that fast takes more at once, and one that slows
	// down under it goes back to PerWebhookInFlight. Defaults to 4 x
	// PerWebhookInFlight (within Concurrency); never below
	// PerWebhookInFlight. Claimed deliveries wait in a local queue per
	// webhook, enough to keep its senders busy for a second, within 2 and
	// 512 x PerWebhookInFlight.
	FastWebhookInFlight int
	// Lease is how long a claim lasts beyond its webhook's timeout: if this
	// node has not recorded the attempt by then, another node may send the
	// delivery again. It covers the wait in the local queue (at most 5s) and
	// the time to write the result. Defaults to 35s: a delivery to a webhook
	// with the default 30s timeout is leased for 65s, and a node killed
	// with it claimed holds it back that long.
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

	// Writers is how many write transactions the engine runs at once.
	// Defaults to 1, what SQLite's single writer can take; a node on
	// PostgreSQL does better with a few.
	Writers int

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
	w       writer
	running atomic.Bool
	// handoffMu keeps orphan releases (write-locked) out of the window
	// between a write that claims new deliveries for this node
	// (read-locked) and their enqueueing.
	handoffMu sync.RWMutex

	// unclaimable counts claims in a row that found due deliveries they
	// could not take while no queue was full; only the claim loop uses it.
	unclaimable int
	// orphans is set when there may be deliveries SENT under this owner
	// that the engine does not hold: a claim failed, and may have committed
	// in the database and lost its answer; or a queued job was dropped
	// unstarted. The claim loop then releases them before it claims again.
	orphans atomic.Bool
	// startMargin is the least time a job's lease must have left beyond
	// its webhook's timeout for the job to start: the time to write the
	// result.
	startMargin time.Duration

	mu       sync.Mutex
	stopping bool
	start    func(*herald.Job)     // starts a sender; set while Run runs
	inFlight int                   // requests being sent
	queued   int                   // jobs claimed and not started
	hooks    map[string]*hookQueue // by webhook ID, those with jobs queued or in flight
	ready    []*hookQueue          // webhooks with a queued job and a free slot, in turn
	limitHit bool                  // the last claim took all it was allowed: more may be due
	// held counts, by delivery ID, the claims the engine is working on:
	// from the claim until the result is written (or given up). Anything
	// else SENT under this owner is an orphan.
	held map[string]int
	// took keeps, by webhook ID, how long the requests of webhooks with
	// nothing queued or in flight took (hookQueue.took), so that their
	// next deliveries get a queue of the right size at once. A webhook not
	// sent to for tookKept is forgotten (see forget), so the map holds the
	// webhooks of the last hour or so, not every webhook ever sent to.
	took map[string]idleSpeed
	// tookSwept is when took was last swept of old entries.
	tookSwept time.Time
	// gone counts, by webhook ID, 410 Gone answers whose results are not
	// written yet: until the write deactivates the webhook and cancels its
	// deliveries, the engine claims none of them.
	gone map[string]int
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
	cfg.FastWebhookInFlight = min(max(cmp.Or(cfg.FastWebhookInFlight, 4*cfg.PerWebhookInFlight), cfg.PerWebhookInFlight), cfg.Concurrency)
	cfg.Lease = cmp.Or(cfg.Lease, maxQueueWait+30*time.Second)
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
	cfg.Writers = cmp.Or(cfg.Writers, 1)
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
		{"Writers", cfg.Writers > 0},
		{"IngestMaxWait", cfg.IngestMaxWait > 0},
		{"DrainTimeout", cfg.DrainTimeout > 0},
	} {
		if !c.ok {
			return nil, fmt.Errorf("dispatch: Config.%s must be positive", c.name)
		}
	}
	if cfg.Lease < maxQueueWait+3*time.Second {
		return nil, fmt.Errorf("dispatch: Config.Lease is %s; it must leave time beyond the %s a claimed delivery may wait in its queue to write the result (at least %s)", cfg.Lease, maxQueueWait, maxQueueWait+3*time.Second)
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
		cfg:     cfg,
		store:   cfg.Store,
		log:     cfg.Logger.With("owner", cfg.Owner),
		policy:  retryPolicy{schedule: cfg.Schedule, window: cfg.RetryWindow, jitter: cfg.Jitter},
		sender:  newSender(cfg.Destinations, cfg.RootCAs, cfg.RequireHTTPS, cfg.Concurrency, cfg.FastWebhookInFlight, cfg.Now),
		metrics: m,
		wake:    make(chan struct{}, 1),
		w:       writer{kick: make(chan struct{}, 1)},
		hooks:   map[string]*hookQueue{},
		held:    map[string]int{},
		gone:    map[string]int{},
		took:    map[string]idleSpeed{},
		// The lease exceeds the webhook's timeout by the queue wait and the
		// time to write a result (30s by default): a third of the latter,
		// at most 10s, is kept for the write.
		startMargin: min(10*time.Second, (cfg.Lease-maxQueueWait)/3),
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
// claiming and starting queued jobs, lets requests in flight finish for up
// to DrainTimeout (then cancels them), writes the results it has, and
// releases this owner's remaining claims, queued jobs included, so they are
// due again at once. It returns nil after a clean stop, or the error of
// releasing the claims (their leases then run out on their own). Run may be
// called only once.
func (e *Engine) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("dispatch: Engine.Run called twice")
	}
	e.log.Info("delivery engine started", "concurrency", e.cfg.Concurrency,
		"perWebhookInFlight", e.cfg.PerWebhookInFlight, "fastWebhookInFlight", e.cfg.FastWebhookInFlight, "leaseBeyondTimeout", e.cfg.Lease,
		"allowPrivateDestinations", e.cfg.Destinations.AllowPrivate, "allowDestinations", e.cfg.Destinations.Allow,
		"requireHTTPS", e.cfg.RequireHTTPS)

	// Requests outlive ctx during the drain; they get their own context,
	// cancelled when the drain times out.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	var senders sync.WaitGroup
	start := func(j *herald.Job) {
		senders.Go(func() { e.sendLoop(sendCtx, j) })
	}
	e.mu.Lock()
	e.start = start
	e.mu.Unlock()
	e.claimLoop(ctx, start)

	// Drain.
	e.mu.Lock()
	e.stop()
	e.mu.Unlock()
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
	e.drainResults(deadline)

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

// claimEvery is the shortest time between two claims. Under load queues
// that drain to half wake the claim loop one after the other; waiting this
// long tops them up in one claim transaction instead of one each.
const claimEvery = time.Millisecond

// claimLoop claims due deliveries whenever there is room in the local
// queues, and hands each job that can start to start, until ctx is done.
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

// claim claims what the queues can take and starts what the senders can.
// It returns how long to sleep before the next claim unless woken.
func (e *Engine) claim(ctx context.Context, start func(*herald.Job)) (time.Duration, error) {
	if e.orphans.CompareAndSwap(true, false) {
		if err := e.releaseOrphans(ctx); err != nil {
			e.orphans.Store(true)
			return 0, err
		}
	}
	e.mu.Lock()
	limit, perWebhook, exclude := e.claimSpace()
	e.mu.Unlock()
	if limit <= 0 {
		return e.cfg.PollInterval, nil // a draining queue wakes the loop
	}
	now := e.cfg.Now()
	jobs, err := e.store.ClaimDeliveries(ctx, herald.ClaimRequest{
		Owner:           e.cfg.Owner,
		Now:             now,
		LeaseUntil:      now.Add(e.cfg.Lease),
		Limit:           limit,
		PerWebhook:      perWebhook,
		ExcludeWebhooks: exclude,
	})
	if err != nil {
		// The claim may have committed before the connection broke.
		e.orphans.Store(true)
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	if len(jobs) > 0 {
		e.metrics.claimBatch.Observe(float64(len(jobs)))
		e.unclaimable = 0
		for _, j := range jobs {
			e.observeLag(j, now)
		}
		var starts []*herald.Job
		now = e.cfg.Now()
		e.mu.Lock()
		e.enqueue(jobs)
		for j := e.next(now); j != nil; j = e.next(now) {
			starts = append(starts, j)
		}
		more := e.claimed(jobs, limit, perWebhook, exclude)
		e.mu.Unlock()
		for _, j := range starts {
			start(j)
		}
		if more {
			return claimEvery, nil
		}
		// Whatever more is due waits for a queue that drains to half, which
		// wakes the loop; a NextDue query per claim would cost more than it
		// saves. The poll bounds the delay of anything else.
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
	// Due but not claimed. Usually it belongs to a webhook whose queue is
	// full here, and draining it wakes the loop. With no queue full, it was
	// locked by another node's claim (SKIP LOCKED), which may come to
	// nothing: look again soon, and less often each time.
	if len(exclude) == 0 {
		e.unclaimable++
		return min(claimEvery<<min(e.unclaimable+2, 20), wait), nil
	}
	return wait, nil
}

// releaseOrphans makes due again every delivery SENT under this owner that
// the engine does not hold: what a claim took when its answer was lost,
// and queued jobs dropped unstarted. It runs in the claim loop, so no
// claim adds to what the engine holds while the release runs; deliveries
// that stop being held meanwhile have had their results written and are
// no longer SENT.
func (e *Engine) releaseOrphans(ctx context.Context) error {
	e.handoffMu.Lock()
	defer e.handoffMu.Unlock()
	e.mu.Lock()
	held := make([]string, 0, len(e.held))
	for id := range e.held {
		held = append(held, id)
	}
	e.mu.Unlock()
	n, err := e.store.ReleaseUnheld(ctx, e.cfg.Owner, held)
	if err != nil {
		return fmt.Errorf("release deliveries this node does not hold: %w", err)
	}
	if n > 0 {
		e.metrics.orphansReleased.Add(float64(n))
		e.log.Info("released deliveries claimed under this node that it does not hold (a claim's answer was lost, or queued jobs waited too long); they are due again now", "count", n)
	}
	return nil
}

// unhold records that the engine is done with a delivery: its request was
// cut short by the shutdown.
func (e *Engine) unhold(id string) {
	e.mu.Lock()
	e.unholdLocked(id)
	e.mu.Unlock()
}

// settle records that a result is written or given up.
func (e *Engine) settle(r pendingResult) {
	e.mu.Lock()
	e.unholdLocked(r.DeliveryID)
	if r.DeactivateReason != "" {
		if e.gone[r.webhookID]--; e.gone[r.webhookID] <= 0 {
			delete(e.gone, r.webhookID)
		}
	}
	e.mu.Unlock()
}

func (e *Engine) unholdLocked(id string) {
	if e.held[id]--; e.held[id] <= 0 {
		delete(e.held, id)
	}
}

// sendLoop sends j and then, as long as there is one, the next job the
// queues offer, so a sender that finishes starts the next job at once.
func (e *Engine) sendLoop(ctx context.Context, j *herald.Job) {
	for j != nil {
		start := time.Now()
		e.deliver(ctx, j)
		took := time.Since(start)
		now := e.cfg.Now()
		e.mu.Lock()
		j = e.done(j, took, now)
		e.mu.Unlock()
	}
}

// observeLag records how long a new delivery waited to be claimed: claim
// (or handoff) time minus creation. Only first attempts count: a claimed
// delivery's due time has already become its lease, and a retry's wait is
// the schedule's.
func (e *Engine) observeLag(j *herald.Job, now time.Time) {
	if j.Delivery.AttemptCount == 0 && !j.Delivery.CreatedAt.IsZero() {
		e.metrics.queueLag.Observe(max(now.Sub(j.Delivery.CreatedAt), 0).Seconds())
	}
}

// deliver sends one claimed delivery and queues its result.
func (e *Engine) deliver(ctx context.Context, j *herald.Job) {
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
	log := func() *slog.Logger {
		return e.log.With("delivery", j.Delivery.ID, "tenant", j.Delivery.Tenant, "instance", j.Delivery.Instance,
			"webhook", j.Webhook.Name, "attempt", a.N)
	}
	switch {
	case r.DeactivateReason != "":
		log().Warn("receiver answered 410 Gone; deactivating the webhook", "reason", r.DeactivateReason)
		e.mu.Lock()
		e.drop(j.Webhook.ID)
		e.gone[j.Webhook.ID]++
		e.mu.Unlock()
	case r.Status == herald.StatusFailed:
		log().Warn("delivery failed for good", "reason", r.WaitReason)
	case !e.log.Enabled(ctx, slog.LevelDebug):
	case r.Status == herald.StatusRetrying:
		log().Debug("delivery attempt failed", "reason", r.WaitReason)
	default:
		log().Debug("delivered", "status", a.StatusCode, "durationMs", a.DurationMs)
	}
	e.record(pendingResult{AttemptResult: r, leaseUntil: j.LeaseUntil, webhookID: j.Webhook.ID})
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
