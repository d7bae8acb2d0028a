package sqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
)

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://herald:s3cret@db:5432/herald", "postgres://herald:xxxxx@db:5432/herald"},
		{"postgresql://herald:s3cr%40t@db/herald?sslmode=require", "postgresql://herald:xxxxx@db/herald?sslmode=require"},
		{"postgres://herald:pa ss@w/rd@db/herald", "postgres://herald:xxxxx@db/herald"}, // malformed, as typed
		{"postgres://herald@db/herald?password=s3cret&sslmode=disable", "postgres://herald@db/herald?password=xxxxx&sslmode=disable"},
		{"postgres://herald@db/herald?sslpassword=s3cret", "postgres://herald@db/herald?sslpassword=xxxxx"},
		{"postgres://herald@db/herald", "postgres://herald@db/herald"},
		{"postgress://herald:s3cret@db/herald", "postgress://herald:xxxxx@db/herald"},
		{"sqlite:herald-data/herald.db", "sqlite:herald-data/herald.db"},
	} {
		if got := sqlstore.RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// No error of Open quotes a password of the database URL, whatever is
// wrong with it: a bad URL, an unknown scheme, a database that does not
// answer.
func TestOpenErrorsHoldNoPassword(t *testing.T) {
	t.Parallel()
	const pw = "Pw-Marker-7f3a"
	for _, dsn := range []string{
		"postgres://herald:" + pw + "@127.0.0.1:1/herald?connect_timeout=2",
		"postgres://herald@127.0.0.1:1/herald?connect_timeout=2&password=" + pw,
		"postgres://herald:" + pw + " x@127.0.0.1:1/herald",
		"postgres://herald:" + pw + "@127.0.0.1:notaport/herald",
		"postgres://herald:" + pw + "@127.0.0.1:1/herald?sslmode=bogus",
		"postgres://herald:" + pw + "@127.0.0.1:1/herald?connect_timeout=x",
		"postgress://herald:" + pw + " x@127.0.0.1:1/herald",
		"mysql://herald:" + pw + "@127.0.0.1/herald",
	} {
		_, err := sqlstore.Open(context.Background(), dsn, sqlstore.Config{Keys: storekit.Keys})
		if err == nil {
			t.Fatalf("Open(%s) succeeded", sqlstore.RedactDSN(dsn))
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(herald.ErrorMessage(err), pw) {
			t.Errorf("Open error quotes the password: %v", err)
		}
		if c := herald.ErrorCode(err); c != herald.EINVALID && c != herald.EUNAVAILABLE {
			t.Errorf("Open(%s) = %v (%s), want invalid or unavailable", sqlstore.RedactDSN(dsn), err, c)
		}
	}
}
