package sqlstore_test

import (
	"context"
	"testing"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, clock *heraldtest.Clock) storetest.Store {
		return subject(storekit.OpenSQLite(t, sqlstore.Config{Now: clock.Now, Keys: storekit.Keys}))
	})
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	// One database for the suite, a schema per subtest: creating databases
	// would take most of the run.
	dsn := storekit.PostgresDSN(t)
	storetest.Run(t, func(t *testing.T, clock *heraldtest.Clock) storetest.Store {
		db, err := sqlstore.Open(context.Background(), storekit.PostgresSchema(t, dsn), sqlstore.Config{Now: clock.Now, Keys: storekit.Keys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return subject(db)
	})
}

// subject is db as the suite takes it: the store and its rewrap, which
// storetest cannot name without importing sqlstore.
func subject(db *sqlstore.DB) storetest.Store {
	return storetest.Store{Store: db, Rewrap: func(ctx context.Context) error {
		_, err := db.Rewrap(ctx, nil)
		return err
	}}
}
