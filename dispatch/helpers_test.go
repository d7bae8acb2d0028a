package dispatch_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const (
	tenant   = "acme"
	instance = "sandbox"
)

// hook describes a webhook a test needs: its receiver and settings.
type hook struct {
	name    string
	url     string
	timeout int // seconds; 0 for the default
	headers []herald.NameValue
	query   []herald.NameValue
}

// webhook is a webhook set up in the store, active, with its secret.
type webhook struct {
	*herald.Webhook
	secret string
}

// mustStore returns a real SQLite store on a temp file with tenant acme and
// instance sandbox, and one active webhook per hook, each listening to
// every PATIENT event.
func mustStore(tb testing.TB, hooks ...hook) (*sqlstore.DB, map[string]webhook) {
	tb.Helper()
	db := storekit.NewSQLite(tb)
	return db, mustSetup(tb, db, hooks...)
}

// mustSetup creates tenant acme, instance sandbox and the hooks in db.
func mustSetup(tb testing.TB, db *sqlstore.DB, hooks ...hook) map[string]webhook {
	tb.Helper()
	ctx := context.Background()
	if _, err := db.CreateTenant(ctx, tenant); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.CreateInstance(ctx, tenant, instance); err != nil {
		tb.Fatal(err)
	}
	for _, h := range hooks {
		err := db.CreateDesignerWebhook(ctx, tenant, &herald.DesignerWebhook{
			Name: h.name, Title: "Test " + h.name, Triggers: []herald.Trigger{{EventEntity: "PATIENT"}},
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if len(hooks) > 0 {
		if _, err := db.Publish(ctx, tenant, "test", "test"); err != nil {
			tb.Fatal(err)
		}
	}
	out := map[string]webhook{}
	for _, h := range hooks {
		upd := herald.WebhookUpdate{URL: &h.url}
		if h.timeout != 0 {
			upd.TimeoutSeconds = &h.timeout
		}
		if h.headers != nil {
			upd.Headers = &h.headers
		}
		if h.query != nil {
			upd.QueryParameters = &h.query
		}
		if _, err := db.UpdateWebhook(ctx, tenant, instance, h.name, upd); err != nil {
			tb.Fatal(err)
		}
		w, err := db.ActivateWebhook(ctx, tenant, instance, h.name)
		if err != nil {
			tb.Fatal(err)
		}
		secrets, err := db.WebhookSecrets(ctx, tenant, instance, h.name)
		if err != nil || len(secrets) == 0 {
			tb.Fatalf("secrets of %s: %v, %v", h.name, secrets, err)
		}
		out[h.name] = webhook{w, secrets[0].Secret}
	}
	return out
}

// testConfig returns an engine config for tests: a fresh metrics registry,
// loopback destinations allowed, quick polls and drains.
func testConfig(tb testing.TB, db *sqlstore.DB) dispatch.Config {
	return dispatch.Config{
		Store:        db,
		Logger:       testLogger(tb),
		Destinations: netguard.Policy{AllowPrivate: true},
		PollInterval: 50 * time.Millisecond,
		DrainTimeout: time.Second,
		Registerer:   prometheus.NewRegistry(),
	}
}

func testLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// mustRun creates an engine for cfg and runs it until the test ends, when
// it checks Run stopped cleanly. It returns the engine and a stop function
// that stops it early (and may be called more than once).
func mustRun(tb testing.TB, cfg dispatch.Config) (*dispatch.Engine, func()) {
	tb.Helper()
	if cfg.Wake == nil {
		if db, ok := cfg.Store.(*sqlstore.DB); ok {
			ctx, cancel := context.WithCancel(context.Background())
			tb.Cleanup(cancel)
			cfg.Wake = db.Subscribe(ctx)
		}
	}
	e, err := dispatch.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	// Tests that count on handoff (a write giving new deliveries straight
	// to the senders) must not race Run's start.
	deadline := time.Now().Add(10 * time.Second)
	for !dispatch.Started(e) {
		if time.Now().After(deadline) {
			tb.Fatal("the engine did not start its senders within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run: %v", err)
				}
			case <-time.After(cfg.DrainTimeout + 10*time.Second):
				tb.Errorf("Run did not return after its context was cancelled")
			}
		})
	}
	tb.Cleanup(stop)
	return e, stop
}

// mustCreateEvents posts n PATIENT_CREATED events through the engine and
// returns their ids.
func mustCreateEvents(tb testing.TB, e *dispatch.Engine, n int) []string {
	tb.Helper()
	events := make([]*herald.Event, n)
	for i := range events {
		events[i] = &herald.Event{TenantName: tenant, InstanceName: instance, Entity: "PATIENT",
			Subtype: "PATIENT_CREATED", SourceID: "pat-1", PatientID: "pat-1", SourceName: "Jane Doe"}
	}
	res, err := e.CreateEvents(context.Background(), events)
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, n)
	for i, r := range res {
		if r.Err != nil {
			tb.Fatalf("event %d: %v", i, r.Err)
		}
		ids[i] = r.EventID
	}
	return ids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliveries returns the deliveries of a webhook, with their attempts.
func deliveries(tb testing.TB, db *sqlstore.DB, webhook string) []*herald.Delivery {
	tb.Helper()
	ctx := context.Background()
	list, _, err := db.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: tenant, Instance: instance, Webhook: webhook, Limit: 500})
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]*herald.Delivery, len(list))
	for i, d := range list {
		if out[i], err = db.GetDelivery(ctx, tenant, instance, d.ID); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// waitStatus waits until every delivery of webhook has one of statuses and
// returns them.
func waitStatus(tb testing.TB, db *sqlstore.DB, webhook string, n int, within time.Duration, statuses ...string) []*herald.Delivery {
	tb.Helper()
	var ds []*herald.Delivery
	waitFor(tb, within, "deliveries of "+webhook+" to be "+statuses[0], func() bool {
		ds = deliveries(tb, db, webhook)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if !slices.Contains(statuses, d.Status) {
				return false
			}
		}
		return true
	})
	return ds
}

// newReceiver is the kit's receiver on 127.0.0.1, answering with respond
// (200 when nil). It verifies nothing until given a secret.
func newReceiver(tb testing.TB, respond heraldtest.RespondFunc) *heraldtest.Receiver {
	tb.Helper()
	return heraldtest.NewReceiver(tb, heraldtest.ReceiverConfig{Respond: respond})
}

// histogram returns the sample count and sum of a histogram in reg.
func histogram(tb testing.TB, reg prometheus.Gatherer, name string) (count uint64, sum float64) {
	tb.Helper()
	m := metric(tb, reg, name, nil)
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// counter returns the value of a counter in reg with the given labels.
func counter(tb testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	tb.Helper()
	return metric(tb, reg, name, labels).GetCounter().GetValue()
}

func metric(tb testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	tb.Fatalf("no metric %s%v", name, labels)
	return nil
}

// lossyStore is the real store, except that one claim can be made to lose
// its answer: the claim commits, then the engine is told it failed, as when
// the connection to PostgreSQL breaks before the claimed rows arrive.
type lossyStore struct {
	*sqlstore.DB
	lose      atomic.Bool   // lose the next claim that takes anything
	loseWrite atomic.Bool   // lose the answer of the next write that hands off anything
	lost      chan []string // the IDs each lost claim or write took
}

func (s *lossyStore) Write(ctx context.Context, w *queue.Write) (*queue.Written, error) {
	out, err := s.DB.Write(ctx, w)
	if err != nil || len(out.Jobs) == 0 || !s.loseWrite.CompareAndSwap(true, false) {
		return out, err
	}
	ids := make([]string, len(out.Jobs))
	for i, j := range out.Jobs {
		ids[i] = j.Delivery.ID
	}
	s.lost <- ids
	return nil, herald.Errorf(herald.EUNAVAILABLE, "database unavailable: connection reset by peer (injected after the write committed).")
}

func (s *lossyStore) ClaimDeliveries(ctx context.Context, r queue.ClaimRequest) ([]*queue.Job, error) {
	jobs, err := s.DB.ClaimDeliveries(ctx, r)
	if err != nil || len(jobs) == 0 || !s.lose.CompareAndSwap(true, false) {
		return jobs, err
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.Delivery.ID
	}
	s.lost <- ids
	return nil, herald.Errorf(herald.EUNAVAILABLE, "database unavailable: connection reset by peer (injected after the claim committed).")
}

// statuses counts deliveries by status.
func statuses(ds []*herald.Delivery) map[string]int {
	out := map[string]int{}
	for _, d := range ds {
		out[d.Status]++
	}
	return out
}

// waitIdle waits until e holds nothing: every claim it made has its result
// written, so no bookkeeping leaks.
func waitIdle(tb testing.TB, e *dispatch.Engine) {
	tb.Helper()
	waitFor(tb, 5*time.Second, "the engine to hold nothing", func() bool {
		held, gone := dispatch.Held(e)
		return held == 0 && gone == 0
	})
}
