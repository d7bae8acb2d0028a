package sqlstore

import (
	"context"
	"database/sql"

	"github.com/heraldhooks/herald"
)

// AttemptCountRows returns how many rows attempt_counts has, and for how
// many webhooks and minutes: storetest checks that folding leaves one row
// per webhook and minute.
func (db *DB) AttemptCountRows(ctx context.Context) (rows, minutes int, err error) {
	err = db.reader().row(ctx, `SELECT COUNT(*), (SELECT COUNT(*) FROM (SELECT DISTINCT webhook_id, minute FROM attempt_counts) AS m)
		FROM attempt_counts`).Scan(&rows, &minutes)
	return rows, minutes, err
}

// DialectSQL is dialectSQL, for tests that build an older schema from the
// migration files as Open would.
func DialectSQL(text string, pg bool) string { return dialectSQL(text, pg) }

// SetDeliveryState writes s over the state of delivery id, as no transition
// would: a test starts a delivery in any state.
func (db *DB) SetDeliveryState(ctx context.Context, id string, s herald.DeliveryState) error {
	return db.tx(ctx, func(q q) error {
		var first, due any
		if s.FirstAttemptAt != nil {
			first = ms(*s.FirstAttemptAt)
		}
		if s.DueAt != nil {
			due = ms(*s.DueAt)
		}
		_, err := q.exec(ctx, `UPDATE deliveries SET status = ?, attempt_count = ?, window_start = ?, first_attempt_at = ?, due_at = ?,
			claimed_by = ?, wait_reason = ?, last_status_code = ? WHERE id = ?`,
			s.Status, s.Attempts, s.WindowStart, first, due, s.Owner, s.WaitReason, s.LastStatusCode, id)
		return err
	})
}

// DeliveryState reads the state of delivery id as the store keeps it.
func (db *DB) DeliveryState(ctx context.Context, id string) (herald.DeliveryState, error) {
	var s herald.DeliveryState
	var first, due sql.NullInt64
	err := db.reader().row(ctx, `SELECT status, attempt_count, window_start, first_attempt_at, due_at, claimed_by, wait_reason, last_status_code
		FROM deliveries WHERE id = ?`, id).Scan(&s.Status, &s.Attempts, &s.WindowStart, &first, &due, &s.Owner, &s.WaitReason, &s.LastStatusCode)
	s.FirstAttemptAt, s.DueAt = nullMS(first), nullMS(due)
	return s, err
}
