package sqlstore_test

import (
	"context"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) herald.Store {
		return storetest.OpenSQLite(t, sqlstore.Config{Now: clock.Now, Keys: storetest.Keys})
	})
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	// One database for the suite, a schema per subtest: creating databases
	// would take most of the run.
	dsn := storetest.PostgresDSN(t)
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) herald.Store {
		db, err := sqlstore.Open(context.Background(), storetest.PostgresSchema(t, dsn), sqlstore.Config{Now: clock.Now, Keys: storetest.Keys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
