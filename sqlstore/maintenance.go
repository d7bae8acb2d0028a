package sqlstore

import (
	"context"
	"slices"
	"time"

	"github.com/heraldhooks/herald"
)

// purgeBatch is how many deliveries, or a patient's events, one purge
// transaction deletes, so that a purge never holds the write lock for long.
const purgeBatch = 500

// finalStatuses is the SQL list of the statuses a delivery ends in; only
// those are purged after retention.
const finalStatuses = `('DELIVERED', 'FAILED', 'CANCELLED')`

// PurgeFinished deletes up to limit deliveries in a final state last
// updated before before, with their attempts, in transactions of a few
// hundred; then up to limit events created before before that have no
// delivery left, and the attempt counts of the minutes before before;
// then it folds the attempt counts of each minute that is over into one
// row per webhook (see foldAttemptCounts).
func (db *DB) PurgeFinished(ctx context.Context, before time.Time, limit int) (herald.PurgeCounts, error) {
	var out herald.PurgeCounts
	if limit <= 0 {
		limit = 10 * purgeBatch
	}
	w := q{db, db.write}
	// Deliveries updated before the cut were created before it too, so the
	// primary key bounds the scan to old rows.
	ids, err := queryStrings(ctx, w, `SELECT id FROM deliveries WHERE id < ? AND status IN `+finalStatuses+` AND updated_at < ? ORDER BY id LIMIT ?`,
		idFloor("dlv", before), ms(before), limit)
	if err != nil {
		return out, db.wrap("purge finished deliveries", err)
	}
	for chunk := range slices.Chunk(ids, purgeBatch) {
		var c herald.PurgeCounts
		err := db.tx(ctx, func(q q) error {
			in, args := inList(db, chunk)
			// Take again only those still final and old, and lock them: a
			// resend may have revived one since, and a result being
			// recorded for one cancelled in flight adds its attempt before
			// it lets go of the row.
			keep, err := queryStrings(ctx, q, `SELECT id FROM deliveries WHERE id IN (`+in+`) AND status IN `+finalStatuses+
				` AND updated_at < ? ORDER BY id`+db.forUpdate(), append(args, ms(before))...)
			if err != nil {
				return err
			}
			c, err = db.deleteDeliveries(ctx, q, keep)
			return err
		})
		out.Add(c)
		if err != nil {
			return out, db.wrap("purge finished deliveries", err)
		}
	}
	n, err := db.purgeEvents(ctx, before, limit)
	out.Events = n
	if err != nil {
		return out, db.wrap("purge events", err)
	}
	// A rate-limit window an hour old is of no use to any node: the next
	// take starts a new one (TakeSlots).
	if _, err := w.exec(ctx, `DELETE FROM webhook_rate_windows WHERE window_ms < ?`, ms(db.now().Add(-time.Hour))); err != nil {
		return out, db.wrap("purge rate-limit windows", err)
	}
	db.slots.prune(ms(db.now().Add(-time.Hour)))
	// The attempt counts of the stats and the timeline go with the same
	// retention; after the first run each run deletes about an interval's.
	if _, err := w.exec(ctx, `DELETE FROM attempt_counts WHERE minute < ?`, ms(before)/60000); err != nil {
		return out, db.wrap("purge attempt counts", err)
	}
	if err := db.foldAttemptCounts(ctx, ms(before)/60000); err != nil {
		return out, db.wrap("fold attempt counts", err)
	}
	return out, nil
}

// purgeEvents deletes up to limit events created before before that have
// no delivery left, in one transaction of two statements. The first
// locks them; on PostgreSQL it skips the events a replay batch holds (FOR
// KEY SHARE) while it gives them deliveries. The second deletes those
// still without a delivery, looking again with a snapshot taken after
// the locks: a replay batch that committed a delivery for one of them
// after the first statement began is seen, and one that has not started
// waits for this transaction. (One statement would decide on a snapshot
// taken before such a commit and delete the event under its new
// delivery.)
func (db *DB) purgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	err := db.tx(ctx, func(q q) error {
		skipLocked := ""
		if db.pg {
			skipLocked = " FOR UPDATE SKIP LOCKED"
		}
		ids, err := queryStrings(ctx, q, `SELECT e.id FROM events e WHERE e.id < ?
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) ORDER BY e.id LIMIT ?`+skipLocked, idFloor("evt", before), limit)
		if err != nil || len(ids) == 0 {
			return err
		}
		n = 0
		for chunk := range slices.Chunk(ids, purgeBatch) {
			in, args := inList(db, chunk)
			res, err := q.exec(ctx, `DELETE FROM events WHERE id IN (`+in+`)
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)`, args...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	return n, err
}

// foldLate is how far back, before the minutes folded last time, a fold
// looks again: a result is written up to its lease after its attempt
// started, so a minute gets rows for a few minutes after it is over.
const foldLate = 30 // minutes

// foldAttemptCounts folds, for each webhook, the rows attempt_counts has
// for a minute that is over into one row with their sums. Each write adds
// rows of its own (migration 0004: writers never wait on one another's
// counts), so without folding the table would grow by a row per write,
// webhook and minute. The sums are unchanged: a row is summed exactly
// when it is deleted, in one transaction, and a row a write adds
// meanwhile stays and is folded next time.
//
// The first fold of a process looks at every minute from retain on; later
// ones only at the minutes since the last fold, and foldLate before.
func (db *DB) foldAttemptCounts(ctx context.Context, retain int64) error {
	to := ms(db.now()) / 60000 // the current minute is not over
	from := retain
	if last := db.countsFolded.Load(); last > 0 {
		from = max(from, last-foldLate)
	}
	if from >= to {
		return nil
	}
	type minutes struct {
		webhookID string
		minutes   []int64
	}
	var todo []*minutes
	rows, err := q{db, db.write}.query(ctx, `SELECT webhook_id, minute FROM attempt_counts WHERE minute >= ? AND minute < ?
		GROUP BY webhook_id, minute HAVING COUNT(*) > 1 ORDER BY webhook_id, minute`, from, to)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var m int64
		if err := rows.Scan(&id, &m); err != nil {
			rows.Close()
			return err
		}
		if len(todo) == 0 || todo[len(todo)-1].webhookID != id {
			todo = append(todo, &minutes{webhookID: id})
		}
		todo[len(todo)-1].minutes = append(todo[len(todo)-1].minutes, m)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, t := range todo {
		for chunk := range slices.Chunk(t.minutes, purgeBatch) {
			err := db.tx(ctx, func(q q) error {
				in, args := inList(db, chunk)
				rows, err := q.query(ctx, `DELETE FROM attempt_counts WHERE webhook_id = ? AND minute IN (`+in+`)
					RETURNING minute, delivered, rejected, unreachable`, append([]any{t.webhookID}, args...)...)
				if err != nil {
					return err
				}
				sums := attemptCounts{}
				for rows.Next() {
					var m int64
					var d, r, u int
					if err := rows.Scan(&m, &d, &r, &u); err != nil {
						rows.Close()
						return err
					}
					n := sums.row(t.webhookID, m)
					n.delivered += d
					n.rejected += r
					n.unreachable += u
				}
				if err := rows.Close(); err != nil {
					return err
				}
				return db.batchRows(ctx, q, attemptCountBatch, sums.args(), nil)
			})
			if err != nil {
				return err
			}
		}
	}
	db.countsFolded.Store(to)
	return nil
}

// PurgePatient deletes the instance's events about patientID with their
// deliveries and attempts, a few hundred events per transaction.
func (db *DB) PurgePatient(ctx context.Context, tenant, instance, patientID string) (herald.PurgeCounts, error) {
	var out herald.PurgeCounts
	if err := db.missing(ctx, db.reader(), tenant, instance); err != nil {
		return out, db.wrap("purge patient", err)
	}
	for {
		var c herald.PurgeCounts
		err := db.tx(ctx, func(q q) error {
			c = herald.PurgeCounts{}
			events, err := queryStrings(ctx, q, `SELECT id FROM events WHERE tenant = ? AND instance = ? AND patient_id = ?
				ORDER BY id LIMIT ?`+db.forUpdate(), tenant, instance, patientID, purgeBatch)
			if err != nil || len(events) == 0 {
				return err
			}
			in, args := inList(db, events)
			// Lock the deliveries before deleting their attempts: on
			// PostgreSQL a result being recorded holds its delivery's row
			// until its attempt is in, and this then sees that attempt.
			// What was owed is deleted with the rest; a result arriving
			// later finds no delivery and is dropped.
			dels, err := queryStrings(ctx, q, `SELECT id FROM deliveries WHERE event_id IN (`+in+`) ORDER BY id`+db.forUpdate(), args...)
			if err != nil {
				return err
			}
			if c, err = db.deleteDeliveries(ctx, q, dels); err != nil {
				return err
			}
			res, err := q.exec(ctx, `DELETE FROM events WHERE id IN (`+in+`)`, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			c.Events = int(n)
			return err
		})
		out.Add(c)
		if err != nil {
			return out, db.wrap("purge patient", err)
		}
		if c.Deliveries > 0 {
			db.wake() // for the deliveries that waited for erased ones
		}
		if c.Events < purgeBatch {
			return out, nil
		}
	}
}

// deleteDeliveries deletes the deliveries ids, locked by the caller's
// transaction, with their attempts, and counts both (a delivery's first
// attempt, kept in its row, included). The HELD deliveries waiting for an
// erased one go on (unhold), and keys' tails that name one go.
func (db *DB) deleteDeliveries(ctx context.Context, q q, ids []string) (herald.PurgeCounts, error) {
	var c herald.PurgeCounts
	for chunk := range slices.Chunk(ids, purgeBatch) {
		ends, err := db.orderedEnds(ctx, q, chunk)
		if err != nil {
			return c, err
		}
		if n, err := db.unhold(ctx, q, ends, db.now()); err != nil {
			return c, err
		} else if n > 0 {
			if err := db.notify(ctx, q); err != nil {
				return c, err
			}
		}
		in, args := inList(db, chunk)
		if _, err := q.exec(ctx, `DELETE FROM order_tails WHERE delivery_id IN (`+in+`)`, args...); err != nil {
			return c, err
		}
		res, err := q.exec(ctx, `DELETE FROM attempts WHERE delivery_id IN (`+in+`)`, args...)
		if err != nil {
			return c, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return c, err
		}
		c.Attempts += int(n)
		// The first attempt of each is in its row (migration 0011).
		var firsts int
		if err := q.row(ctx, `SELECT COUNT(*) FROM deliveries WHERE id IN (`+in+`) AND attempt1_started_at IS NOT NULL`, args...).Scan(&firsts); err != nil {
			return c, err
		}
		c.Attempts += firsts
		if res, err = q.exec(ctx, `DELETE FROM deliveries WHERE id IN (`+in+`)`, args...); err != nil {
			return c, err
		}
		if n, err = res.RowsAffected(); err != nil {
			return c, err
		}
		c.Deliveries += int(n)
	}
	return c, nil
}

// PurgeExpiredSecrets deletes rotated-out secrets whose grace ended at or
// before now.
func (db *DB) PurgeExpiredSecrets(ctx context.Context, now time.Time) (int, error) {
	res, err := q{db, db.write}.exec(ctx, `DELETE FROM webhook_secrets WHERE expires_at IS NOT NULL AND expires_at <= ?`, ms(now))
	if err != nil {
		return 0, db.wrap("purge expired secrets", err)
	}
	n, err := res.RowsAffected()
	return int(n), db.wrap("purge expired secrets", err)
}

// DeactivateFailing deactivates active webhooks whose attempts have all failed
// since before failingSince and that were still attempted since then, and
// cancels their open deliveries. Returns the webhooks, as deactivated.
func (db *DB) DeactivateFailing(ctx context.Context, failingSince time.Time, reason string) ([]*herald.Webhook, error) {
	if reason == "" {
		reason = "every attempt failed since " + failingSince.UTC().Format(time.RFC3339)
	}
	var out []*herald.Webhook
	err := db.tx(ctx, func(q q) error {
		out = nil
		cut := ms(failingSince)
		ids, err := queryStrings(ctx, q, `SELECT id FROM webhooks WHERE active = 1 AND failing_since IS NOT NULL
			AND failing_since < ? AND last_failed_at >= ? ORDER BY id`+db.forUpdate(), cut, cut)
		if err != nil || len(ids) == 0 {
			return err
		}
		now := db.now()
		for _, id := range ids {
			if err := db.deactivate(ctx, q, id, reason, now); err != nil {
				return err
			}
		}
		byID, err := db.webhooksByID(ctx, q, ids)
		if err != nil {
			return err
		}
		for _, id := range ids {
			out = append(out, byID[id])
		}
		return nil
	})
	if err != nil {
		return nil, db.wrap("deactivate failing", err)
	}
	if len(out) > 0 {
		db.wake() // their operations events
	}
	return out, nil
}
