package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/keyring"
)

// Secrets at rest. Every credential Herald keeps is sealed here, on its way
// into the database, and opened here on its way out, so no other code can
// forget: webhook signing secrets, webhook URLs (which may carry a token in
// their path), header values and query parameter values (the whole lists
// are sealed), the private keys of webhooks' TLS client certificates,
// users' TOTP secrets, and the diffs of the audit trail (which show URLs).
// Each value is bound to its table, column and row
// (the context string), so a sealed value copied into another row does not
// open there.
//
// The settings row key_check is a sealed constant: it names the master key
// that the database's secrets are sealed with. A start with a key ring that
// does not hold that key fails before anything is read or written, so
// Herald never runs with secrets it cannot open. keys rewrap moves key_check
// to the newest key once every row is sealed under it.

const keyCheckText = "herald key check v1"

// sealContext names where a sealed value lives: "table.column:row".
func sealContext(table, column, row string) string {
	return table + "." + column + ":" + row
}

func (db *DB) seal(plain, table, column, row string) string {
	return db.cfg.Keys.SealString(plain, sealContext(table, column, row))
}

// open returns the plain value of a column. A value that is not sealed was
// written before Herald sealed secrets (or by an older node during an
// upgrade) and is returned as it is; Open and Rewrap seal such values.
func (db *DB) open(stored, table, column, row string) (string, error) {
	if !keyring.IsSealed(stored) {
		return stored, nil
	}
	plain, err := db.cfg.Keys.OpenString(stored, sealContext(table, column, row))
	if err != nil {
		return "", fmt.Errorf("%s.%s of %s: %w", table, column, row, err)
	}
	return plain, nil
}

// checkKeys makes sure the key ring opens this database's secrets: it
// stores the key check on a new database and verifies it on an existing
// one. The error names the key the database needs and the keys given,
// never a key itself.
func (db *DB) checkKeys(ctx context.Context) error {
	w := q{db, db.write}
	if !db.cfg.ReadOnly {
		sealed := db.cfg.Keys.SealString(keyCheckText, sealContext("settings", "value", "key_check"))
		if _, err := w.exec(ctx, `INSERT INTO settings (name, value) VALUES ('key_check', ?) ON CONFLICT (name) DO NOTHING`, sealed); err != nil {
			return fmt.Errorf("key check: %w", err)
		}
	}
	var stored string
	if err := w.row(ctx, `SELECT value FROM settings WHERE name = 'key_check'`).Scan(&stored); err != nil {
		return fmt.Errorf("key check: %w", err)
	}
	plain, err := db.cfg.Keys.OpenString(stored, sealContext("settings", "value", "key_check"))
	if errors.Is(err, keyring.ErrUnknownKey) {
		return herald.Errorf(herald.EINVALID, "The master key does not match this database: its secrets are sealed with master key %s, and the keys given are %s. Start Herald with the master key this database was created with (HERALD_MASTER_KEY or --master-key-file); to change keys, put the new key first and the old one after it, run `herald keys rewrap`, and only then drop the old key.",
			keyring.SealedBy(stored), strings.Join(db.cfg.Keys.IDs(), ", "))
	}
	if err != nil || plain != keyCheckText {
		return herald.Errorf(herald.EINVALID, "The database's key check does not open under master key %s: it was altered. Restore the settings table from a backup.", keyring.SealedBy(stored))
	}
	return nil
}

// SQLiteKeyChecked reports whether the SQLite database at path holds a key
// check, that is whether a master key sealed its secrets. It is false for
// a database written before Herald sealed secrets, which a new key may
// take over. It reads the file without locking it or changing it.
func SQLiteKeyChecked(ctx context.Context, path string) (bool, error) {
	db, err := sql.Open("sqlite", path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return false, fmt.Errorf("open sqlite: %w", err)
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'settings'`).Scan(&n)
	if err != nil || n == 0 {
		return false, err
	}
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM settings WHERE name = 'key_check'`).Scan(&n)
	return n > 0, err
}

// RewrapProgress is what Rewrap reports as it goes.
type RewrapProgress struct {
	// Table is the table being re-sealed.
	Table string
	// Done and Total count the rows of Table looked at and to look at.
	Done, Total int
}

// RewrapStats is what Rewrap did.
type RewrapStats struct {
	// Rows is how many rows holding secrets were looked at.
	Rows int
	// Resealed is how many of them were sealed again under the newest key
	// (or sealed for the first time, when they were plain).
	Resealed int
	// KeyID is the newest master key, which every secret is now sealed with.
	KeyID string

	skipped int // rows that changed between read and write
}

// Rewrap seals every secret in the database under the newest master key of
// the ring, while nodes run: each row is rewritten only if it still holds
// the value that was read (a row changed in between is read again), and
// progress, when not nil, is called after every page. Once no secret is
// sealed under another key, the key check moves to the newest key, so the
// older keys can be dropped from the ring.
func (db *DB) Rewrap(ctx context.Context, progress func(RewrapProgress)) (RewrapStats, error) {
	needs := func(stored string) bool { return keyring.SealedBy(stored) != db.cfg.Keys.ID() }
	stats, err := db.reseal(ctx, needs, progress)
	// A row that changed between read and write was skipped; a node still
	// sealing under an older key may have written more. Passes repeat until
	// one finds nothing left to do.
	for pass := 0; err == nil && stats.skipped > 0; pass++ {
		if pass == 5 {
			return stats, herald.Errorf(herald.ECONFLICT, "rewrap: rows keep changing under an older master key; restart every node with the new key first, then run keys rewrap again.")
		}
		var again RewrapStats
		again, err = db.reseal(ctx, needs, nil)
		stats.Resealed += again.Resealed
		stats.skipped = again.skipped + again.Resealed
	}
	if err != nil {
		return stats, db.wrap("rewrap", err)
	}
	sealed := db.cfg.Keys.SealString(keyCheckText, sealContext("settings", "value", "key_check"))
	if _, err := (q{db, db.write}).exec(ctx, `UPDATE settings SET value = ? WHERE name = 'key_check'`, sealed); err != nil {
		return stats, db.wrap("rewrap: key check", err)
	}
	return stats, nil
}

// sealPlain seals the secrets that are not sealed yet: those of a database
// written before Herald sealed them. Open runs it at every start; it reads
// the secret columns once and writes only plain values.
func (db *DB) sealPlain(ctx context.Context) (int, error) {
	stats, err := db.reseal(ctx, func(stored string) bool { return !keyring.IsSealed(stored) }, nil)
	return stats.Resealed, err
}

// sealedTable is a table holding sealed columns, paged through by its key.
type sealedTable struct {
	name    string
	key     []string // primary key columns, in order
	columns []string // sealed columns
	// context returns the row part of each column's seal context from the
	// row's key values.
	context func(key []string) string
}

var sealedTables = []sealedTable{
	{name: "webhooks", key: []string{"id"}, columns: []string{"url", "headers", "query_parameters", "client_key"},
		context: func(k []string) string { return k[0] }},
	{name: "webhook_secrets", key: []string{"webhook_id", "secret"}, columns: []string{"secret"},
		context: func(k []string) string { return k[0] }},
	{name: "audit_log", key: []string{"seq"}, columns: []string{"diff"},
		context: func(k []string) string { return k[0] }},
	{name: "users", key: []string{"id"}, columns: []string{"totp_secret"},
		context: func(k []string) string { return k[0] }},
}

const resealPage = 200

// reseal rewrites, under the newest key, every sealed column value for which
// needs is true, page by page, each page in its own transaction.
func (db *DB) reseal(ctx context.Context, needs func(stored string) bool, progress func(RewrapProgress)) (RewrapStats, error) {
	stats := RewrapStats{KeyID: db.cfg.Keys.ID()}
	for _, t := range sealedTables {
		var total int
		if err := db.reader().row(ctx, `SELECT COUNT(*) FROM `+t.name).Scan(&total); err != nil {
			return stats, fmt.Errorf("%s: %w", t.name, err)
		}
		done := 0
		after := make([]string, len(t.key))
		first := true
		for {
			var n int
			var err error
			n, after, err = db.resealPage(ctx, t, needs, after, first, &stats)
			if err != nil {
				return stats, fmt.Errorf("%s: %w", t.name, err)
			}
			first = false
			done += n
			stats.Rows += n
			if progress != nil {
				progress(RewrapProgress{Table: t.name, Done: done, Total: max(total, done)})
			}
			if n < resealPage {
				break
			}
		}
	}
	return stats, nil
}

// resealPage reseals one page of t after the key after, returning the
// number of rows read and the key of the last one.
func (db *DB) resealPage(ctx context.Context, t sealedTable, needs func(string) bool, after []string, first bool, stats *RewrapStats) (int, []string, error) {
	cols := strings.Join(append(append([]string{}, t.key...), t.columns...), ", ")
	query := `SELECT ` + cols + ` FROM ` + t.name
	var args []any
	if !first {
		// Keyset pagination over the primary key: (a, b) > (x, y).
		query += ` WHERE (` + strings.Join(t.key, ", ") + `) > (` + placeholders(len(t.key)) + `)`
		for _, k := range after {
			args = append(args, k)
		}
	}
	query += ` ORDER BY ` + strings.Join(t.key, ", ") + fmt.Sprintf(` LIMIT %d`, resealPage)
	var n int
	last := after
	err := db.tx(ctx, func(q q) error {
		n, last = 0, after
		rows, err := q.query(ctx, query, args...)
		if err != nil {
			return err
		}
		type row struct{ key, values []string }
		var page []row
		for rows.Next() {
			vals := make([]sql.NullString, len(t.key)+len(t.columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return err
			}
			r := row{}
			for i, v := range vals {
				if i < len(t.key) {
					r.key = append(r.key, v.String)
				} else {
					r.values = append(r.values, v.String)
				}
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range page {
			n++
			last = r.key
			var sets []string
			var setArgs, whereArgs []any
			for i, c := range t.columns {
				if !needs(r.values[i]) {
					continue
				}
				plain, err := db.open(r.values[i], t.name, c, t.context(r.key))
				if err != nil {
					return err
				}
				sets = append(sets, c+" = ?")
				setArgs = append(setArgs, db.seal(plain, t.name, c, t.context(r.key)))
			}
			if len(sets) == 0 {
				continue
			}
			// Compare and set: the row is rewritten only if it still holds
			// what was read; a writer in between already sealed it anew.
			var where []string
			for i, k := range t.key {
				where = append(where, k+" = ?")
				whereArgs = append(whereArgs, r.key[i])
			}
			for i, c := range t.columns {
				where = append(where, c+" = ?")
				whereArgs = append(whereArgs, r.values[i])
			}
			res, err := q.exec(ctx, `UPDATE `+t.name+` SET `+strings.Join(sets, ", ")+` WHERE `+strings.Join(where, " AND "), append(setArgs, whereArgs...)...)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k > 0 {
				stats.Resealed++
			} else {
				stats.skipped++
			}
		}
		return nil
	})
	return n, last, err
}
