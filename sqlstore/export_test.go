package sqlstore

import "context"

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
