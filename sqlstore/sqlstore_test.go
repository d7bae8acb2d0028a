package sqlstore_test

import (
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) herald.Store {
		return storetest.OpenSQLite(t, sqlstore.Config{Now: clock.Now})
	})
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) herald.Store {
		return storetest.OpenPostgres(t, sqlstore.Config{Now: clock.Now})
	})
}
