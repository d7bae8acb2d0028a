package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhooks/herald"
)

// Schema is what a database holds of Herald's schema, as InspectSchema
// finds it without changing anything: for herald doctor.
type Schema struct {
	// Exists is false for a SQLite file that is not there yet (serve
	// creates it) and for a database that holds no Herald table.
	Exists bool
	// Applied is how many of this binary's migrations the database has.
	Applied int
	// Pending are the migrations serve would apply at its next start,
	// oldest first, by file name.
	Pending []string
	// Unknown are versions the database has that this binary does not
	// know: a newer Herald migrated it.
	Unknown []int
	// KeyChecked is whether the database holds a key check, that is
	// whether a master key sealed its secrets.
	KeyChecked bool
}

// InspectSchema reads the migrations dsn's database has applied, without
// migrating, locking or writing anything: a SQLite file is opened read
// only, beside a node that may run on it. An unreachable database is
// EUNAVAILABLE; no error holds a password of dsn.
func InspectSchema(ctx context.Context, dsn string) (Schema, error) {
	s, err := inspectSchema(ctx, dsn)
	return s, redactErr(err, dsnSecrets(dsn))
}

func inspectSchema(ctx context.Context, dsn string) (Schema, error) {
	all, err := migrations()
	if err != nil {
		return Schema{}, err
	}
	var s Schema
	for _, m := range all {
		s.Pending = append(s.Pending, m.name)
	}
	var db *sql.DB
	pg := false
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return s, nil
		} else if err != nil {
			return s, herald.Errorf(herald.EUNAVAILABLE, "database %s cannot be read: %v.", path, err)
		}
		if db, err = sql.Open("sqlite", path+"?mode=ro&_pragma=busy_timeout(10000)"); err != nil {
			return s, err
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		pg = true
		if _, err := pgx.ParseConfig(dsn); err != nil {
			return s, herald.Errorf(herald.EINVALID, "database %s is not a valid PostgreSQL URL: %s.", RedactDSN(dsn), strings.TrimSuffix(invalidDSN(err), "."))
		}
		if db, err = sql.Open("pgx", dsn); err != nil {
			return s, herald.Errorf(herald.EINVALID, "database %s is not a valid PostgreSQL URL: %v.", RedactDSN(dsn), err)
		}
	default:
		return s, herald.Errorf(herald.EINVALID, "database %q is not known: use sqlite:<path> or postgres://user@host:5432/db.", RedactDSN(dsn))
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		return s, herald.Errorf(herald.EUNAVAILABLE, "database %s does not answer: %v.", RedactDSN(dsn), err)
	}
	has := func(table string) (bool, error) {
		query := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
		if pg {
			query = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
		}
		var n int
		err := db.QueryRowContext(ctx, query, table).Scan(&n)
		return n > 0, err
	}
	ok, err := has("schema_migrations")
	if err != nil || !ok {
		return s, err
	}
	s.Exists = true
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return s, err
		}
		applied[v] = true
		if !slices.ContainsFunc(all, func(m migration) bool { return m.version == v }) {
			s.Unknown = append(s.Unknown, v)
		}
	}
	if err := rows.Err(); err != nil {
		return s, err
	}
	s.Pending = s.Pending[:0]
	for _, m := range all {
		if applied[m.version] {
			s.Applied++
		} else {
			s.Pending = append(s.Pending, m.name)
		}
	}
	if ok, err = has("settings"); err != nil || !ok {
		return s, err
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM settings WHERE name = 'key_check'`).Scan(&n); err != nil {
		return s, fmt.Errorf("read the key check: %w", err)
	}
	s.KeyChecked = n > 0
	return s, nil
}
