package sqlstore

import (
	"context"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

// Write stores w's events with their deliveries, handing some to the
// caller when w.Handoff is set, and records w's attempt results, in one
// transaction: under load the engine pays one commit, and on SQLite one
// fsync, for both.
func (db *DB) Write(ctx context.Context, w *queue.Write) (*queue.Written, error) {
	return db.writeTx(ctx, w, "write")
}

func (db *DB) writeTx(ctx context.Context, w *queue.Write, op string) (*queue.Written, error) {
	out := &queue.Written{Events: []herald.EventResult{}}
	if len(w.Events) == 0 && len(w.Results) == 0 {
		return out, nil
	}
	pending := 0
	err := db.tx(ctx, func(q q) error {
		now := db.now()
		var err error
		if out.Events, out.Jobs, pending, err = db.createEvents(ctx, q, w.Events, w.Handoff, now); err != nil {
			return err
		}
		ops, err := db.recordAttempts(ctx, q, w.Results, ms(now))
		if err != nil {
			return err
		}
		pending += ops
		if pending > 0 {
			return db.notify(ctx, q)
		}
		return nil
	})
	if err != nil {
		return nil, db.wrap(op, err)
	}
	if pending > 0 {
		db.wake()
	}
	return out, nil
}
