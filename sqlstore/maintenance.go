package sqlstore

import (
	"context"
	"slices"
	"time"

	"github.com/heraldhooks/herald"
)

// purgeBatch is how many deliveries one purge transaction deletes, so that
// retention never holds the write lock for long.
const purgeBatch = 500

// PurgeDelivered deletes up to limit DELIVERED deliveries last updated before
// before, with their attempts, in transactions of a few hundred, then up to
// limit events created before before that have no delivery left. Returns how
// many deliveries went.
func (db *DB) PurgeDelivered(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 10 * purgeBatch
	}
	w := q{db, db.write}
	// Deliveries updated before the cut were created before it too, so the
	// primary key bounds the scan to old rows.
	ids, err := queryStrings(ctx, w, `SELECT id FROM deliveries WHERE id < ? AND status = 'DELIVERED' AND updated_at < ? ORDER BY id LIMIT ?`,
		idFloor("dlv", before), ms(before), limit)
	if err != nil {
		return 0, db.wrap("purge delivered", err)
	}
	purged := 0
	for chunk := range slices.Chunk(ids, purgeBatch) {
		err := db.tx(ctx, func(q q) error {
			in := `(` + placeholders(len(chunk)) + `)`
			if _, err := q.exec(ctx, `DELETE FROM attempts WHERE delivery_id IN `+in, anys(chunk)...); err != nil {
				return err
			}
			// Re-check the status: a resend may have revived a row since.
			res, err := q.exec(ctx, `DELETE FROM deliveries WHERE status = 'DELIVERED' AND id IN `+in, anys(chunk)...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			purged += int(n)
			return err
		})
		if err != nil {
			return purged, db.wrap("purge delivered", err)
		}
	}
	_, err = w.exec(ctx, `DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.id < ?
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) ORDER BY e.id LIMIT ?)`, idFloor("evt", before), limit)
	if err != nil {
		return purged, db.wrap("purge events", err)
	}
	// The attempt counts of the stats and the timeline go with the same
	// retention; after the first run each run deletes about an interval's.
	if _, err := w.exec(ctx, `DELETE FROM attempt_counts WHERE minute < ?`, ms(before)/60000); err != nil {
		return purged, db.wrap("purge attempt counts", err)
	}
	return purged, nil
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
	return out, nil
}
