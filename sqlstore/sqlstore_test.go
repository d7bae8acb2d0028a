package sqlstore_test

import (
	"testing"

	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/storetest"
)

// The conformance suite on both dialects, through the kit's factories.

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storekit.SQLiteFactory)
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storekit.PostgresFactory(t))
}
