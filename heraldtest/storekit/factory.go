package storekit

import (
	"context"
	"testing"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
)

// SQLiteFactory is a storetest.NewStoreFunc: a new SQLite store in
// t.TempDir() on clock, with its rewrap.
func SQLiteFactory(t *testing.T, clock *heraldtest.Clock) storetest.Store {
	t.Helper()
	return Subject(OpenSQLite(t, sqlstore.Config{Now: clock.Now}))
}

// PostgresFactory creates one PostgreSQL database for t (see PostgresDSN)
// and returns a storetest.NewStoreFunc that gives each caller a new schema
// of its own in it (see PostgresSchema): creating a database per subtest
// would take most of the suite's run.
func PostgresFactory(t *testing.T) storetest.NewStoreFunc {
	t.Helper()
	dsn := PostgresDSN(t)
	return func(t *testing.T, clock *heraldtest.Clock) storetest.Store {
		t.Helper()
		return Subject(open(t, PostgresSchema(t, dsn), sqlstore.Config{Now: clock.Now}))
	}
}

// Subject is db as storetest takes it: the store and its rewrap, a
// capability storetest cannot name without importing sqlstore.
func Subject(db *sqlstore.DB) storetest.Store {
	return storetest.Store{UnderTest: db, Rewrap: func(ctx context.Context) error {
		_, err := db.Rewrap(ctx, nil)
		return err
	}}
}
