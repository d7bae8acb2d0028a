package sqlstore_test

import (
	"context"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/sqlstore"
)

// TestAPIClientMigrationKeepsRows builds a database as version 0005 left
// it, with API clients in the old shape (names unique deployment-wide,
// SHA-256 hashes), and checks that opening it with migration 0006 keeps
// every client with its tenant, role, hash and creation time, and that
// names are then per tenant.
func TestAPIClientMigrationKeepsRows(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dsn, old := oldSchema(t, dialect, 5)
			ctx := context.Background()
			const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // SHA-256 of "test"
			for _, stmt := range []string{
				`INSERT INTO tenants (name, created_at) VALUES ('acme', 1000)`,
				`INSERT INTO api_clients (name, tenant, role, secret_hash, created_at) VALUES ('admin', '', 'platform-admin', '` + sha + `', 2000)`,
				`INSERT INTO api_clients (name, tenant, role, secret_hash, created_at) VALUES ('ehr-sync', 'acme', 'producer', '` + sha + `', 3000)`,
			} {
				if _, err := old.ExecContext(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
			old.Close()

			db, err := sqlstore.Open(ctx, dsn, sqlstore.Config{Keys: storekit.Keys})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			admin, err := db.GetAPIClient(ctx, "", "admin")
			if err != nil {
				t.Fatal(err)
			}
			sync, err := db.GetAPIClient(ctx, "acme", "ehr-sync")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				got       *herald.APIClient
				role      herald.Role
				createdMS int64
			}{{admin, herald.RolePlatformAdmin, 2000}, {sync, herald.RoleProducer, 3000}} {
				if c.got.Role != c.role || c.got.SecretHash != sha || c.got.SecretID != "" || c.got.Generation != 1 ||
					c.got.Disabled || c.got.ID == "" || c.got.CreatedAt.UnixMilli() != c.createdMS {
					t.Errorf("after the migration: %+v", c.got)
				}
			}
			if admin.ID == sync.ID {
				t.Errorf("migrated clients share the ID %s", admin.ID)
			}
			// Names are per tenant now.
			if err := db.CreateAPIClient(ctx, &herald.APIClient{Name: "admin", Tenant: "acme", Role: herald.RoleAdmin, SecretHash: "h"}); err != nil {
				t.Errorf("a tenant's client named like the platform's admin: %v", err)
			}
		})
	}
}
