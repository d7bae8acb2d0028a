// Package dispatch is Herald's delivery engine, in five parts that each
// own their state and pass work one way:
//
//   - the writer (writer.go) stores incoming events and attempt results in
//     group commits, which also claim the new deliveries for this node
//     under a lease (handoff), as far as the scheduler grants room;
//   - the claimer (claimer.go) claims what else is due (retries, overflow,
//     other nodes' work) and releases orphaned claims;
//   - the scheduler (scheduler.go, pure data behind one mutex in
//     queues.go) keeps the per-webhook queues: fairness, capacity,
//     in-flight bounds, expiry, and the room each claim or write may fill;
//   - senders (senders.go) sign and send (send.go), decide retries
//     (schedule.go), and give every result to the writer, the one way back.
//   - the pacer (slots.go) takes request slots from the store for
//     webhooks with a rate limit, and wakes the scheduler at their times.
//
// The Engine (engine.go) wires them. The store is the only source of
// truth. The engine keeps nothing that a crash could lose except attempts
// not yet written, and those deliveries are sent again once their lease
// runs out (at-least-once; receivers dedupe on webhook-id). A Maintainer
// runs the leader-only housekeeping. docs/decisions/0012-engine-parts.md
// says why the parts are cut this way.
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
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/signature"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Store is what the engine needs from the database: the queue contract.
// The engine writes events and results only through its Write, in group
// commits.
type Store = queue.Store

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
	// (and to Concurrency when that is smaller). Within it (and within
	// FastWebhookInFlight) each webhook's adaptive pace allows fewer after
	// timeouts, 429 and 503 answers or slower answers (pace.go).
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
	// BreakerThreshold is how many consecutive failed attempts (no 2xx:
	// any other status, a timeout, a network error) of a webhook open its
	// circuit breaker on this node: from then on it gets one request at a
	// time, whatever is due, until an attempt succeeds. Defaults to
	// herald.DefaultBreakerThreshold (5), which the webhook's health state
	// in the API assumes. The
	// count is this node's: on several nodes each probes one at a time.
	BreakerThreshold int
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

	// Schedule is the wait before each attempt, as docs/architecture.md lists them:
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

	// TracerProvider receives the engine's spans (trace.go): ingest,
	// commit, claim and each attempt, whose traceparent goes with the
	// request. Nil, the default, makes none and costs nothing.
	TracerProvider trace.TracerProvider
}

// Engine delivers webhooks. Create it with New, then call Run once.
// CreateEvents, TestWebhook, Pace and Wake may be called from any
// goroutine, also before Run.
//
// It is the wiring of five parts, each owning its state (see their doc
// comments): the writer (writer.go) stores events and results in group
// commits and hands the new deliveries to the scheduler; the claimer
// (claimer.go) claims what else is due; the scheduler (scheduler.go,
// behind its one mutex in queues.go) keeps the per-webhook queues and
// decides what starts; senders (senders.go) send and give each result to
// the writer; the pacer (slots.go) takes rate-limit slots for the
// scheduler. Work flows one way, store -> scheduler -> senders -> writer
// -> store, and nothing but the scheduler's guard is shared.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	sender  *sender // the HTTP side, shared by senders and TestWebhook
	q       *queues
	w       *writer
	c       *claimer
	p       *pacer
	tracer  trace.Tracer // nil when the node does not trace
	running atomic.Bool  // Run was called
}

// New returns an engine for cfg, or an error naming the first invalid
// setting or saying the metrics could not be registered.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: Config.Store is required")
	}
	cfg = cfg.withDefaults()

	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"Concurrency", cfg.Concurrency > 0},
		{"PerWebhookInFlight", cfg.PerWebhookInFlight > 0},
		{"BreakerThreshold", cfg.BreakerThreshold > 0},
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
	log := cfg.Logger.With("owner", cfg.Owner)
	tracer := newTracer(cfg.TracerProvider)
	e := &Engine{
		tracer:  tracer,
		cfg:     cfg,
		log:     log,
		metrics: m,
		sender:  newSender(cfg.Destinations, cfg.RootCAs, cfg.RequireHTTPS, cfg.Concurrency, cfg.FastWebhookInFlight, cfg.Now),
	}
	e.c = &claimer{store: cfg.Store, metrics: m, log: log, now: cfg.Now, owner: cfg.Owner, lease: cfg.Lease,
		poll: cfg.PollInterval, storeWake: cfg.Wake, wake: make(chan struct{}, 1), idle: true, tracer: tracer}
	e.p = &pacer{store: cfg.Store, log: log, now: cfg.Now, kick: make(chan struct{}, 1)}
	e.q = &queues{s: newScheduler(cfg), metrics: m, wake: e.c.wakeUp, kickSlots: e.p.wakeUp}
	e.p.q = e.q
	e.c.q = e.q
	e.w = &writer{store: cfg.Store, q: e.q, wake: e.c.wakeUp, metrics: m, log: log, now: cfg.Now, owner: cfg.Owner,
		lease: cfg.Lease, loops: cfg.Writers, maxBatch: cfg.IngestMaxBatch, maxWait: cfg.IngestMaxWait, kick: make(chan struct{}, 1), tracer: tracer}
	return e, nil
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	cfg.Owner = cmp.Or(cfg.Owner, DefaultOwner())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 64)
	cfg.PerWebhookInFlight = min(cmp.Or(cfg.PerWebhookInFlight, 8), cfg.Concurrency)
	cfg.FastWebhookInFlight = min(max(cmp.Or(cfg.FastWebhookInFlight, 4*cfg.PerWebhookInFlight), cfg.PerWebhookInFlight), cfg.Concurrency)
	cfg.BreakerThreshold = cmp.Or(cfg.BreakerThreshold, herald.DefaultBreakerThreshold)
	cfg.Lease = cmp.Or(cfg.Lease, herald.LeaseMargin)
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
	return cfg
}

// DefaultOwner returns a node id unique to this process:
// hostname-pid-random, Config.Owner's default.
func DefaultOwner() string {
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
func (e *Engine) Wake() { e.c.wakeUp() }

// CreateEvents stores events, each with its deliveries, and returns their
// results in order; it implements herald.EventIngester. Concurrent calls
// are stored together in one transaction (group commit): a write goes
// when IngestMaxBatch events wait or the oldest has waited IngestMaxWait,
// and one write runs at a time per Writers. Every call of a write gets the
// store's error when it fails. When ctx ends first, CreateEvents returns
// ctx.Err() while the events may still be stored. While Run runs, the new
// deliveries are handed to this node's senders as far as its queues have
// room, and the rest are left for the claimer.
func (e *Engine) CreateEvents(ctx context.Context, events []*herald.Event) ([]herald.EventResult, error) {
	return e.w.createEvents(ctx, events)
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
	s := &senders{ctx: sendCtx, http: e.sender, q: e.q, w: e.w, metrics: e.metrics, log: e.log, now: e.cfg.Now, tracer: e.tracer,
		policy: retryPolicy{schedule: e.cfg.Schedule, window: e.cfg.RetryWindow, jitter: e.cfg.Jitter}}
	e.q.open(s.start)
	pacerDone := make(chan struct{})
	go func() { defer close(pacerDone); e.p.loop(ctx) }()
	e.c.loop(ctx)
	<-pacerDone

	// Drain.
	e.q.stop(e.cfg.Now())
	deadline := time.Now().Add(e.cfg.DrainTimeout)
	idle := make(chan struct{})
	go func() { s.wg.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(e.cfg.DrainTimeout):
		e.log.Warn("requests still in flight after the drain timeout; cancelling them", "drainTimeout", e.cfg.DrainTimeout)
		cancelSends()
		<-idle
	}
	e.w.drain(deadline)

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n, err := e.cfg.Store.ReleaseDeliveries(rctx, e.cfg.Owner)
	if err != nil {
		e.log.Error("could not release claimed deliveries; they are due again when their lease runs out", "err", err)
		return fmt.Errorf("release deliveries: %w", err)
	}
	e.log.Info("delivery engine stopped", "released", n)
	return nil
}

// Pace returns how this node paces webhook webhookID's requests now
// (herald.Pacer): its adaptive in-flight window within its maximum, 1
// while its breaker is open, and its requests in flight.
func (e *Engine) Pace(webhookID string) herald.WebhookPace { return e.q.pace(webhookID) }

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
	a, _, _ := e.sender.send(ctx, w, ev, signature.NewSigner(secrets), 1)
	return &a, nil
}
