package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey is the PostgreSQL advisory lock that serialises
// migrations of nodes starting at the same time ("herald" in ASCII).
const migrationLockKey = 0x68657261_6c64_01

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. Files are
// named NNNN_what.sql.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and _", base)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// migrate applies the migrations not yet recorded in schema_migrations,
// each in its own transaction. On PostgreSQL it holds an advisory lock on
// one connection throughout, so nodes starting together migrate one after
// the other and the later ones find nothing left to do.
func (db *DB) migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := q{db, conn}
	if db.pg {
		if _, err := c.exec(ctx, `SELECT pg_advisory_lock(?)`, int64(migrationLockKey)); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		defer c.exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, int64(migrationLockKey))
	}
	if _, err := c.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := c.query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		text := dialectSQL(m.sql, db.pg)
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, text); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, db.rewrite(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), m.version, ms(db.now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		db.cfg.Logger.Info("applied migration", "migration", m.name, "dialect", db.Dialect())
	}
	return nil
}

// dialectSQL rewrites a migration for its dialect: SQLite has no collation
// named "C" and needs none (its BINARY collation compares bytes), and
// PostgreSQL has no WITHOUT ROWID tables (its tables are heaps anyway).
func dialectSQL(text string, pg bool) string {
	if pg {
		return strings.ReplaceAll(text, ") WITHOUT ROWID;", ");")
	}
	return strings.ReplaceAll(text, ` COLLATE "C"`, "")
}
