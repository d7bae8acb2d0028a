// Package storekit is the part of Herald's test kit that opens real
// stores: a SQLite file in t.TempDir(), or a PostgreSQL database created
// for the test and dropped after it, each sealed with a master key (Keys)
// and closed when the test ends. Each *sqlstore.DB is a herald.Store and a
// queue.Store.
// SQLiteFactory and PostgresFactory give storetest.Run the same stores.
//
// It is a package of its own because it imports sqlstore: heraldtest and
// storetest do not, so sqlstore's tests can use them, and a user testing a
// receiver does not link a database. sqlstore's tests in package
// sqlstore_test may import storekit; tests inside package sqlstore cannot
// (an import cycle).
//
// PostgreSQL helpers use the admin DSN in HERALD_TEST_POSTGRES (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and skip only
// when it is "off"; when the server does not answer they fail, saying how
// to fix it.
package storekit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhooks/herald/keyring"
	"github.com/heraldhooks/herald/sqlstore"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for the admin connection
)

// NewSQLite returns a store on a new SQLite file in t.TempDir(), on real
// time, closed when the test ends.
func NewSQLite(t testing.TB) *sqlstore.DB {
	return OpenSQLite(t, sqlstore.Config{})
}

// OpenSQLite is NewSQLite with a Config, for a test clock or logger.
func OpenSQLite(t testing.TB, cfg sqlstore.Config) *sqlstore.DB {
	t.Helper()
	return open(t, "sqlite:"+filepath.Join(t.TempDir(), "herald.db"), cfg)
}

// NewPostgres returns a store on a fresh PostgreSQL database (see
// PostgresDSN), on real time, closed and dropped when the test ends.
func NewPostgres(t testing.TB) *sqlstore.DB {
	return OpenPostgres(t, sqlstore.Config{})
}

// OpenPostgres is NewPostgres with a Config, for a test clock or logger.
func OpenPostgres(t testing.TB, cfg sqlstore.Config) *sqlstore.DB {
	t.Helper()
	return open(t, PostgresDSN(t), cfg)
}

// Open opens a store of dialect ("sqlite" or "postgres") as OpenSQLite or
// OpenPostgres do, for tests that run on both.
func Open(t testing.TB, dialect string, cfg sqlstore.Config) *sqlstore.DB {
	t.Helper()
	switch dialect {
	case "sqlite":
		return OpenSQLite(t, cfg)
	case "postgres":
		return OpenPostgres(t, cfg)
	}
	t.Fatalf("storekit.Open: unknown dialect %q", dialect)
	return nil
}

// Keys is the master key ring of the stores these helpers open (a new
// random key per test process), for tests that open a store themselves.
var Keys = func() *keyring.Ring {
	r, err := keyring.Parse(keyring.Generate())
	if err != nil {
		panic(err)
	}
	return r
}()

func open(t testing.TB, dsn string, cfg sqlstore.Config) *sqlstore.DB {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = Keys
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqlstore.Open(ctx, dsn, cfg)
	if err != nil {
		t.Fatalf("open store %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// DefaultPostgresAdmin is the admin DSN used when HERALD_TEST_POSTGRES is
// not set.
const DefaultPostgresAdmin = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresDSN creates a fresh database herald_test_<random> through the
// admin DSN in HERALD_TEST_POSTGRES and returns its DSN; the database is
// dropped (with FORCE, so leftover connections do not block it) when the
// test ends. Its sessions run with synchronous_commit=off, which only
// gives up durability across a crash of the server. It skips the test when HERALD_TEST_POSTGRES is "off" and fails
// it, saying how to fix it, when PostgreSQL does not answer.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("HERALD_TEST_POSTGRES")
	if admin == "off" {
		t.Skip("HERALD_TEST_POSTGRES=off: skipping PostgreSQL")
	}
	if admin == "" {
		admin = DefaultPostgresAdmin
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("HERALD_TEST_POSTGRES %q is not a URL: %v", admin, err)
	}
	adm, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("HERALD_TEST_POSTGRES: %v", err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := make([]byte, 6)
	rand.Read(b)
	name := "herald_test_" + hex.EncodeToString(b)
	if _, err := adm.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("PostgreSQL at %s does not answer (%v). Start it, point HERALD_TEST_POSTGRES at an admin DSN, or set HERALD_TEST_POSTGRES=off to skip PostgreSQL tests.", u.Redacted(), err)
	}
	t.Cleanup(func() {
		adm, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	// Test data need not survive a power cut; waiting for the disk at
	// every commit would make up most of the suite's run time.
	qv := u.Query()
	qv.Set("synchronous_commit", "off")
	u.RawQuery = qv.Encode()
	return u.String()
}

// PostgresSchema creates a fresh schema in the database of dsn and returns
// dsn with that schema as its search_path, so that many tests can share one
// database (see PostgresDSN) yet each see only its own tables; creating a
// schema takes milliseconds where a database takes most of a second. The
// schema is dropped when the test ends. Advisory locks and NOTIFY channels
// are per database, so tests of leadership and wake-ups want a database of
// their own.
func PostgresSchema(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("PostgresSchema: %v", err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("PostgresSchema: %v", err)
	}
	defer db.Close()
	b := make([]byte, 6)
	rand.Read(b)
	name := "s_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema in %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
	})
	qv := u.Query()
	qv.Set("search_path", name)
	u.RawQuery = qv.Encode()
	return u.String()
}
