package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// MaintainerConfig configures a Maintainer. Zero fields take the defaults
// they name.
type MaintainerConfig struct {
	// Store is the database. Required.
	Store herald.Maintenance
	// Lead reports whether this node is the maintenance leader right now
	// (sqlstore's TryLead: an advisory lock on PostgreSQL). Nil means this
	// node always leads, as a single SQLite node does.
	Lead func(ctx context.Context) (bool, error)
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Interval is the time between runs; the first run is at start.
	// Defaults to 1m.
	Interval time.Duration
	// Retention is how long deliveries in a final state (DELIVERED,
	// FAILED, CANCELLED) are kept after their last change, with their
	// attempts and events, and the attempt counts of the stats. Defaults
	// to 30 days.
	Retention time.Duration
	// FailingFor is how long an active webhook may fail every attempt
	// before it is deactivated. Defaults to 5 days.
	FailingFor time.Duration
	// Audit is the audit trail: maintenance records the webhooks it
	// deactivates there, purges entries past AuditRetention, and logs the
	// chain head. Nil skips all three.
	Audit herald.AuditService
	// AuditRetention is how long audit entries are kept. Defaults to six
	// years (HIPAA's retention of security documentation).
	AuditRetention time.Duration
	// PurgeBatch is how many deliveries, and how many events, one purge
	// call deletes; a run calls again while there are more. Defaults to
	// 500.
	PurgeBatch int
	// Registerer receives the maintainer's metrics. Defaults to
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// OnRun, when set, is called after every run with what it did; tests
	// use it to see a run happened.
	OnRun func(MaintenanceRun)
	// TracerProvider receives a herald.maintenance span for each run that
	// led or failed (not for a follower's). Nil, the default, makes none.
	TracerProvider trace.TracerProvider
}

// MaintenanceRun is what one maintenance run did.
type MaintenanceRun struct {
	At time.Time
	// Leader is false when another node holds the lead; nothing was done.
	Leader bool
	// PurgedDeliveries, PurgedAttempts and PurgedEvents count what went
	// past retention: deliveries in a final state, their attempts, and
	// the events left without a delivery.
	PurgedDeliveries int
	PurgedAttempts   int
	PurgedEvents     int
	// PurgedSecrets counts deleted rotated-out secrets past their grace.
	PurgedSecrets int
	// PurgedAudit counts audit entries deleted past the audit retention.
	PurgedAudit int
	// Deactivated lists the webhooks deactivated for failing too long, as
	// tenant/instance/name.
	Deactivated []string
	// Err is the first error; the steps after it were skipped.
	Err error
}

// Maintainer runs the housekeeping one node of a deployment must do: purge
// finished deliveries and events past retention and expired secrets, and deactivate
// webhooks that have failed for days. Every node runs one; only the leader
// acts.
type Maintainer struct {
	cfg        MaintainerConfig
	log        *slog.Logger
	runs       *prometheus.CounterVec
	purged     prometheus.Counter
	deactivate prometheus.Counter
	tracer     trace.Tracer // nil when the node does not trace
}

// NewMaintainer returns a Maintainer for cfg, or an error when Store is
// missing, a duration is negative, or the metrics could not be registered.
func NewMaintainer(cfg MaintainerConfig) (*Maintainer, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: MaintainerConfig.Store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	cfg.Interval = cmp.Or(cfg.Interval, time.Minute)
	cfg.Retention = cmp.Or(cfg.Retention, 30*24*time.Hour)
	cfg.FailingFor = cmp.Or(cfg.FailingFor, 5*24*time.Hour)
	cfg.PurgeBatch = cmp.Or(cfg.PurgeBatch, 500)
	cfg.AuditRetention = cmp.Or(cfg.AuditRetention, 6*365*24*time.Hour)
	if cfg.Interval < 0 || cfg.Retention < 0 || cfg.FailingFor < 0 || cfg.PurgeBatch < 0 || cfg.AuditRetention < 0 {
		return nil, errors.New("dispatch: MaintainerConfig durations and PurgeBatch must be positive")
	}
	m := &Maintainer{
		cfg:    cfg,
		tracer: newTracer(cfg.TracerProvider),
		log:    cfg.Logger.With("component", "maintenance"),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_maintenance_runs_total",
			Help: "Maintenance runs, by role: leader (did the work), follower (another node leads) or error.",
		}, []string{"role"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_maintenance_purged_deliveries_total",
			Help: "Deliveries in a final state (DELIVERED, FAILED, CANCELLED) deleted after the retention period.",
		}),
		deactivate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_maintenance_deactivated_webhooks_total",
			Help: "Webhooks deactivated because every attempt failed for too long.",
		}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.purged, m.deactivate} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("dispatch: register maintenance metrics: %w", err)
		}
	}
	return m, nil
}

// Run runs maintenance at once and then every Interval until ctx is done,
// and returns nil then. Errors of a run are logged and retried next time.
func (m *Maintainer) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce runs maintenance once if this node leads, and returns what it did.
func (m *Maintainer) RunOnce(ctx context.Context) MaintenanceRun {
	start := time.Now()
	run := m.runOnce(ctx)
	if m.tracer != nil && (run.Leader || run.Err != nil) {
		_, span := m.tracer.Start(ctx, "herald.maintenance", trace.WithNewRoot(), trace.WithTimestamp(start),
			trace.WithAttributes(
				attribute.Int("herald.purged_deliveries", run.PurgedDeliveries),
				attribute.Int("herald.purged_attempts", run.PurgedAttempts),
				attribute.Int("herald.purged_events", run.PurgedEvents),
				attribute.Int("herald.purged_secrets", run.PurgedSecrets),
				attribute.Int("herald.purged_audit", run.PurgedAudit),
				attribute.Int("herald.deactivated_webhooks", len(run.Deactivated))))
		if run.Err != nil {
			span.SetStatus(codes.Error, "maintenance failed")
		}
		span.End()
	}
	role := "leader"
	switch {
	case run.Err != nil:
		role = "error"
		if ctx.Err() == nil {
			m.log.Error("maintenance failed", "err", run.Err)
		}
	case !run.Leader:
		role = "follower"
	default:
		m.log.Info("maintenance done", "purgedDeliveries", run.PurgedDeliveries, "purgedAttempts", run.PurgedAttempts,
			"purgedEvents", run.PurgedEvents, "purgedSecrets", run.PurgedSecrets, "deactivatedWebhooks", run.Deactivated)
	}
	m.runs.WithLabelValues(role).Inc()
	if m.cfg.OnRun != nil {
		m.cfg.OnRun(run)
	}
	return run
}

func (m *Maintainer) runOnce(ctx context.Context) MaintenanceRun {
	now := m.cfg.Now()
	run := MaintenanceRun{At: now, Leader: true}
	if m.cfg.Lead != nil {
		lead, err := m.cfg.Lead(ctx)
		if err != nil {
			run.Leader, run.Err = false, fmt.Errorf("try to lead: %w", err)
			return run
		}
		if run.Leader = lead; !lead {
			return run
		}
	}

	before := now.Add(-m.cfg.Retention)
	for {
		c, err := m.cfg.Store.PurgeFinished(ctx, before, m.cfg.PurgeBatch)
		run.PurgedDeliveries += c.Deliveries
		run.PurgedAttempts += c.Attempts
		run.PurgedEvents += c.Events
		m.purged.Add(float64(c.Deliveries))
		if err != nil {
			run.Err = fmt.Errorf("purge finished deliveries: %w", err)
			return run
		}
		if c.Deliveries < m.cfg.PurgeBatch && c.Events < m.cfg.PurgeBatch {
			break
		}
	}

	n, err := m.cfg.Store.PurgeExpiredSecrets(ctx, now)
	run.PurgedSecrets = n
	if err != nil {
		run.Err = fmt.Errorf("purge expired secrets: %w", err)
		return run
	}

	since := now.Add(-m.cfg.FailingFor)
	reason := fmt.Sprintf("failing since %s with no successful delivery; deactivated automatically", formatTime(since))
	ws, err := m.cfg.Store.DeactivateFailing(ctx, since, reason)
	for _, w := range ws {
		run.Deactivated = append(run.Deactivated, w.Tenant+"/"+w.Instance+"/"+w.Name)
		m.log.Warn("webhook deactivated: every attempt failed", "tenant", w.Tenant, "instance", w.Instance,
			"webhook", w.Name, "reason", reason)
		if m.cfg.Audit != nil {
			diff, _ := json.Marshal(map[string]string{"reason": reason})
			if err := m.cfg.Audit.AppendAudit(ctx, &herald.AuditEntry{ActorType: herald.ActorSystem, Actor: "maintenance",
				Tenant: w.Tenant, Instance: w.Instance, Action: "webhook.deactivate", Target: "webhook " + w.Name, Diff: diff}); err != nil && run.Err == nil {
				run.Err = fmt.Errorf("audit a deactivation: %w", err)
			}
		}
	}
	m.deactivate.Add(float64(len(ws)))
	if err != nil {
		run.Err = fmt.Errorf("deactivate failing webhooks: %w", err)
		return run
	}
	if run.Err != nil {
		return run
	}
	if _, err := m.cfg.Store.ReportFailing(ctx, now.Add(-herald.OperationsFailingAfter)); err != nil {
		run.Err = fmt.Errorf("report failing webhooks: %w", err)
		return run
	}
	if m.cfg.Audit != nil {
		n, err := m.cfg.Audit.PurgeAudit(ctx, now.Add(-m.cfg.AuditRetention))
		run.PurgedAudit = n
		if err != nil {
			run.Err = fmt.Errorf("purge audit entries: %w", err)
			return run
		}
		head, err := m.cfg.Audit.AuditHead(ctx)
		if err != nil {
			run.Err = fmt.Errorf("read the audit chain head: %w", err)
			return run
		}
		// Kept in a log elsewhere, the head pins the chain: herald audit
		// verify --expect-head SEQ:HASH finds a rewrite before it.
		m.log.Info("audit chain head", "head", fmt.Sprintf("%d:%s", head.Seq, head.Hash), "purged", n)
	}
	return run
}
