package dispatch

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/heraldhooks/herald"
)

// ReplayerConfig configures a Replayer. Zero fields take the defaults they
// name.
type ReplayerConfig struct {
	// Store works the batches. Required.
	Store herald.ReplayWorker
	// Batch is how many events one batch reads, in one transaction.
	// Defaults to herald.ReplayBatchSize (250).
	Batch int
	// Backlog is how many open deliveries a webhook may have before its
	// replay waits for them to drain. Defaults to herald.ReplayBacklog.
	Backlog int
	// Pause is the shortest rest between two batches; a batch that took
	// longer than a quarter of it is followed by a rest of four times
	// its time, so replays hold the database (on SQLite, its single
	// writer) at most a fifth of the time and leave the rest to live
	// traffic. Defaults to 50ms.
	Pause time.Duration
	// Interval is how often an idle replayer looks for work. Defaults to
	// 1s.
	Interval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Replayer works the running replays through, one batch at a time with a
// rest between batches of at least four times the batch's time. Every node runs one: a batch locks its replay's
// row (on PostgreSQL, skipping one locked by another node), so nodes share
// the work and never do a batch twice, and a replay whose node dies is
// taken up where its last committed batch left it. It owns nothing but
// its loop: the state of every replay is its row.
type Replayer struct {
	cfg ReplayerConfig
	log *slog.Logger
}

// NewReplayer returns a Replayer for cfg, or an error when Store is
// missing or a setting is negative.
func NewReplayer(cfg ReplayerConfig) (*Replayer, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: ReplayerConfig.Store is required")
	}
	if cfg.Batch < 0 || cfg.Backlog < 0 || cfg.Pause < 0 || cfg.Interval < 0 {
		return nil, errors.New("dispatch: ReplayerConfig settings must not be negative")
	}
	cfg.Batch = cmp.Or(cfg.Batch, herald.ReplayBatchSize)
	cfg.Backlog = cmp.Or(cfg.Backlog, herald.ReplayBacklog)
	cfg.Pause = cmp.Or(cfg.Pause, 50*time.Millisecond)
	cfg.Interval = cmp.Or(cfg.Interval, time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Replayer{cfg: cfg, log: cfg.Logger.With("component", "replay")}, nil
}

// Run works batches until ctx is done, and returns nil then. A failed
// batch is logged and tried again after Interval.
func (r *Replayer) Run(ctx context.Context) error {
	for {
		wait := r.cfg.Interval
		began := time.Now()
		rp, err := r.cfg.Store.ReplayBatch(ctx, r.cfg.Batch, r.cfg.Backlog)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				r.log.Error("replay batch failed", "err", err)
			}
		case rp != nil:
			wait = max(r.cfg.Pause, 4*time.Since(began))
			if rp.Status != herald.ReplayRunning {
				r.log.Info("replay finished", "replay", rp.ID, "tenant", rp.Tenant, "instance", rp.Instance, "webhook", rp.Webhook,
					"status", rp.Status, "events", rp.Events, "scanned", rp.Scanned, "created", rp.Created, "skipped", rp.Skipped)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
