package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/heraldhooks/herald"
)

// CreateTenant creates a tenant. EINVALID unless the name is a slug,
// ECONFLICT if it is taken.
func (db *DB) CreateTenant(ctx context.Context, name string) (*herald.Tenant, error) {
	if err := herald.ValidateName("name", name); err != nil {
		return nil, err
	}
	t := &herald.Tenant{Name: name, CreatedAt: db.now()}
	_, err := q{db, db.write}.exec(ctx, `INSERT INTO tenants (name, created_at) VALUES (?, ?)`, name, ms(t.CreatedAt))
	if isUnique(err) {
		return nil, herald.Errorf(herald.ECONFLICT, "tenant %q already exists.", name)
	}
	if err != nil {
		return nil, db.wrap("create tenant", err)
	}
	return t, nil
}

// ListTenants returns every tenant sorted by name.
func (db *DB) ListTenants(ctx context.Context) ([]*herald.Tenant, error) {
	rows, err := db.reader().query(ctx, `SELECT name, created_at FROM tenants ORDER BY name`)
	if err != nil {
		return nil, db.wrap("list tenants", err)
	}
	defer rows.Close()
	var out []*herald.Tenant
	for rows.Next() {
		var t herald.Tenant
		var created int64
		if err := rows.Scan(&t.Name, &created); err != nil {
			return nil, db.wrap("list tenants", err)
		}
		t.CreatedAt = fromMS(created)
		out = append(out, &t)
	}
	return out, db.wrap("list tenants", rows.Err())
}

// GetTenant returns a tenant or ENOTFOUND.
func (db *DB) GetTenant(ctx context.Context, name string) (*herald.Tenant, error) {
	t := &herald.Tenant{Name: name}
	var created int64
	err := db.reader().row(ctx, `SELECT created_at FROM tenants WHERE name = ?`, name).Scan(&created)
	if err != nil {
		return nil, db.wrap("get tenant", notFound(err, "tenant %q not found.", name))
	}
	t.CreatedAt = fromMS(created)
	return t, nil
}

// CreateInstance creates an instance of a tenant with the webhooks of the
// tenant's latest published version, inactive, each with its own signing
// secret. ENOTFOUND for an unknown tenant, ECONFLICT if the name is taken.
func (db *DB) CreateInstance(ctx context.Context, tenant, name string) (*herald.Instance, error) {
	if err := herald.ValidateName("name", name); err != nil {
		return nil, err
	}
	now := db.now()
	inst := &herald.Instance{Tenant: tenant, Name: name, CreatedAt: now}
	err := db.tx(ctx, func(q q) error {
		// Lock the tenant so a concurrent Publish either sees this instance
		// or publishes before the latest version is read below.
		var one int
		err := q.row(ctx, `SELECT 1 FROM tenants WHERE name = ?`+db.forUpdate(), tenant).Scan(&one)
		if err != nil {
			return notFound(err, "tenant %q not found.", tenant)
		}
		_, err = q.exec(ctx, `INSERT INTO instances (tenant, name, created_at) VALUES (?, ?, ?)`, tenant, name, ms(now))
		if isUnique(err) {
			return herald.Errorf(herald.ECONFLICT, "instance %q of tenant %q already exists.", name, tenant)
		} else if err != nil {
			return err
		}
		v, err := db.latestVersion(ctx, q, tenant)
		if err != nil || v == nil {
			return err
		}
		for _, w := range v.Webhooks {
			if err := db.insertWebhook(ctx, q, tenant, name, &w, v.Version, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, db.wrap("create instance", err)
	}
	return inst, nil
}

// ListInstances returns the instances of a tenant sorted by name; ENOTFOUND
// for an unknown tenant.
func (db *DB) ListInstances(ctx context.Context, tenant string) ([]*herald.Instance, error) {
	r := db.reader()
	rows, err := r.query(ctx, `SELECT name, created_at FROM instances WHERE tenant = ? AND name <> ? ORDER BY name`, tenant, herald.OperationsInstance)
	if err != nil {
		return nil, db.wrap("list instances", err)
	}
	defer rows.Close()
	var out []*herald.Instance
	for rows.Next() {
		i := herald.Instance{Tenant: tenant}
		var created int64
		if err := rows.Scan(&i.Name, &created); err != nil {
			return nil, db.wrap("list instances", err)
		}
		i.CreatedAt = fromMS(created)
		out = append(out, &i)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list instances", err)
	}
	if len(out) == 0 {
		if err := db.tenantExists(ctx, r, tenant); err != nil {
			return nil, db.wrap("list instances", err)
		}
	}
	return out, nil
}

// GetInstance returns an instance or ENOTFOUND naming the tenant or the
// instance, whichever is missing.
func (db *DB) GetInstance(ctx context.Context, tenant, name string) (*herald.Instance, error) {
	r := db.reader()
	var created int64
	err := r.row(ctx, `SELECT created_at FROM instances WHERE tenant = ? AND name = ?`, tenant, name).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		err = db.missing(ctx, r, tenant, name)
	}
	if err != nil {
		return nil, db.wrap("get instance", err)
	}
	return &herald.Instance{Tenant: tenant, Name: name, CreatedAt: fromMS(created)}, nil
}
