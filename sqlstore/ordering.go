package sqlstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/heraldhooks/herald"
)

// The chains of ordered webhooks (docs/decisions/0020-ordering-per-key.md).
// The rules are herald.Chained, Hold and Unhold; this file keeps the
// chains in the database: order_tails names the last delivery made for
// each (webhook, key), deliveries.waiting_for the one a HELD delivery
// waits for.
//
// Locks on PostgreSQL, so that no HELD delivery is left behind one that
// ended: an ingest takes its keys' order_tails rows (an upsert, which
// waits for another ingest of the same key to commit and then sees its
// tail) and reads each tail delivery's status FOR SHARE; whatever ends a
// delivery (a result, a deactivation, an erasure) holds that delivery's
// row FOR UPDATE first. So either the ingest waits for the end to commit
// and sees the tail final (the new delivery is not held), or the end
// waits for the ingest to commit and its release, a later statement,
// sees the new HELD delivery.

// link is a new delivery of an ordered webhook, placed in its key's chain
// by chain.
type link struct {
	id, webhookID, key string
	// prev is the delivery it waits for, set by chain: "" when it is not
	// held.
	prev string
}

type chainKey struct{ webhookID, key string }

// chain places links, given in acceptance order, at the ends of their
// keys' chains: the first of a key waits for the key's tail while that is
// owed (herald.Chained), each later one for the one before it; and each
// key's tail becomes its last link. A tail that is itself one of links
// (a recovered delivery, RecoverWebhook) counts as none: the chain starts
// again with the oldest link. Keys are locked in sorted order, so two
// ingests of the same keys wait for each other instead of deadlocking.
func (db *DB) chain(ctx context.Context, q q, links []*link) error {
	if len(links) == 0 {
		return nil
	}
	byKey := map[chainKey][]*link{}
	var keys []chainKey
	mine := make(map[string]bool, len(links))
	for _, l := range links {
		mine[l.id] = true
		k := chainKey{l.webhookID, l.key}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], l)
	}
	slices.SortFunc(keys, func(a, b chainKey) int {
		return cmp.Or(cmp.Compare(a.webhookID, b.webhookID), cmp.Compare(a.key, b.key))
	})
	tails := make(map[chainKey]string, len(keys))
	var tailIDs []string
	for _, k := range keys {
		// The no-op update takes the row, new or not, and returns the
		// tail as the last committed ingest left it ('' for a new key).
		var tail string
		if err := q.row(ctx, `INSERT INTO order_tails (webhook_id, key_hash, delivery_id) VALUES (?, ?, '')
			ON CONFLICT (webhook_id, key_hash) DO UPDATE SET delivery_id = order_tails.delivery_id RETURNING delivery_id`,
			k.webhookID, k.key).Scan(&tail); err != nil {
			return err
		}
		tails[k] = tail
		if tail != "" {
			tailIDs = append(tailIDs, tail)
		}
	}
	status := map[string]string{}
	if len(tailIDs) > 0 {
		slices.Sort(tailIDs)
		in, args := inList(db, tailIDs)
		share := ""
		if db.pg {
			share = " FOR SHARE"
		}
		rows, err := q.query(ctx, `SELECT id, status FROM deliveries WHERE id IN (`+in+`) ORDER BY id`+share, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				rows.Close()
				return err
			}
			status[id] = st
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	for _, k := range keys {
		prev := tails[k]
		if mine[prev] || !herald.Chained(prev, status[prev]) {
			prev = "" // ended, erased, or the key's first
		}
		ls := byKey[k]
		for _, l := range ls {
			l.prev, prev = prev, l.id
		}
		if _, err := q.exec(ctx, `UPDATE order_tails SET delivery_id = ? WHERE webhook_id = ? AND key_hash = ?`,
			ls[len(ls)-1].id, k.webhookID, k.key); err != nil {
			return err
		}
	}
	return nil
}

// ended is an ordered delivery that ended (DELIVERED, FAILED, CANCELLED)
// or is being erased, with its row locked FOR UPDATE by the caller.
type ended struct {
	id, webhookID, key string
	// status is how it ended, or "erased".
	status string
	// prev is, for a delivery erased while HELD, the one it waited for:
	// the ones waiting for it then wait for that one instead.
	prev string
}

// erasedStatus is the status unhold names for an erased delivery.
const erasedStatus = "erased"

// unhold releases the HELD deliveries waiting for the ended ones
// (herald.Unhold, for all of them at once): PENDING, due at now, naming
// the one they waited for. The waiters of a delivery erased while HELD
// wait for what it waited for instead, and a key whose tail it was gets
// that one as its tail. It returns how many it released.
func (db *DB) unhold(ctx context.Context, q q, ends []ended, now time.Time) (int, error) {
	n := 0
	nowMS := ms(now)
	for _, e := range ends {
		if e.prev != "" {
			if _, err := q.exec(ctx, `UPDATE deliveries SET waiting_for = ?, wait_reason = ?, updated_at = ? WHERE status = 'HELD' AND waiting_for = ?`,
				e.prev, herald.HeldReason(e.prev), nowMS, e.id); err != nil {
				return n, err
			}
			if _, err := q.exec(ctx, `UPDATE order_tails SET delivery_id = ? WHERE webhook_id = ? AND key_hash = ? AND delivery_id = ?`,
				e.prev, e.webhookID, e.key, e.id); err != nil {
				return n, err
			}
			continue
		}
		res, err := q.exec(ctx, `UPDATE deliveries SET status = 'PENDING', due_at = ?, first_attempt_at = NULL, window_start = attempt_count,
			claimed_by = '', wait_reason = ?, updated_at = ? WHERE status = 'HELD' AND waiting_for = ?`,
			nowMS, herald.UnheldReason(e.id, e.status), nowMS, e.id)
		if err != nil {
			return n, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += int(k)
	}
	return n, nil
}

// orderedEnds returns the ordered ones of the deliveries ids, locked by
// the caller, as ended ones about to be erased. A HELD one's prev is the
// first delivery before it that is not erased with it: when a HELD
// delivery and the one it waits for are erased together, its waiters move
// to the one before both, or go if the head of the key is erased too.
func (db *DB) orderedEnds(ctx context.Context, q q, ids []string) ([]ended, error) {
	in, args := inList(db, ids)
	rows, err := q.query(ctx, `SELECT id, webhook_id, order_key, status, COALESCE(waiting_for, '') FROM deliveries
		WHERE id IN (`+in+`) AND order_key IS NOT NULL ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ended
	prevOf := map[string]string{} // the erased ones: what each waits for, "" if not HELD
	for rows.Next() {
		var e ended
		var st string
		if err := rows.Scan(&e.id, &e.webhookID, &e.key, &st, &e.prev); err != nil {
			return nil, err
		}
		if st != herald.StatusHeld {
			e.prev = ""
		}
		e.status = erasedStatus
		prevOf[e.id] = e.prev
		out = append(out, e)
	}
	for i := range out {
		for p := out[i].prev; p != ""; p = prevOf[p] {
			out[i].prev = p
			if _, erased := prevOf[p]; !erased {
				break
			}
		}
		if _, erased := prevOf[out[i].prev]; erased {
			out[i].prev = "" // the head is erased too
		}
	}
	return out, rows.Err()
}

// unholdAll releases every HELD delivery of w, whose ordering was just set
// to none (herald.Unhold with herald.UnheldByOrdering), with w locked FOR
// UPDATE by the caller: an ingest, which reads w FOR KEY SHARE, then
// either committed its HELD deliveries before or sees w without ordering.
func (db *DB) unholdAll(ctx context.Context, q q, w *herald.Webhook) error {
	now := ms(db.now())
	res, err := q.exec(ctx, `UPDATE deliveries SET status = 'PENDING', due_at = ?, first_attempt_at = NULL, window_start = attempt_count,
		claimed_by = '', wait_reason = ?, updated_at = ? WHERE tenant = ? AND instance = ? AND status = 'HELD' AND webhook_id = ?`,
		now, herald.UnheldByOrdering, now, w.Tenant, w.Instance, w.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	return db.notify(ctx, q)
}
