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
	rows, err := r.query(ctx, `SELECT name, created_at FROM instances WHERE tenant = ? ORDER BY name`, tenant)
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

// CreateAPIClient stores a client. ECONFLICT if the name is taken anywhere;
// ENOTFOUND if its tenant is unknown.
func (db *DB) CreateAPIClient(ctx context.Context, c *herald.APIClient) error {
	return db.wrap("create api client", db.saveAPIClient(ctx, c, false))
}

// UpsertAPIClient creates or replaces a client, keeping its creation time.
func (db *DB) UpsertAPIClient(ctx context.Context, c *herald.APIClient) error {
	return db.wrap("upsert api client", db.saveAPIClient(ctx, c, true))
}

func (db *DB) saveAPIClient(ctx context.Context, c *herald.APIClient, upsert bool) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = db.now()
	}
	w := q{db, db.write}
	if c.Tenant != "" {
		if err := db.tenantExists(ctx, w, c.Tenant); err != nil {
			return err
		}
	}
	query := `INSERT INTO api_clients (name, tenant, role, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`
	if upsert {
		query += ` ON CONFLICT (name) DO UPDATE SET tenant = excluded.tenant, role = excluded.role, secret_hash = excluded.secret_hash`
	}
	_, err := w.exec(ctx, query, c.Name, c.Tenant, string(c.Role), c.SecretHash, ms(c.CreatedAt))
	if isUnique(err) {
		return herald.Errorf(herald.ECONFLICT, "api client %q already exists.", c.Name)
	}
	return err
}

// GetAPIClient returns a client or ENOTFOUND.
func (db *DB) GetAPIClient(ctx context.Context, name string) (*herald.APIClient, error) {
	c := &herald.APIClient{Name: name}
	var role string
	var created int64
	err := db.reader().row(ctx, `SELECT tenant, role, secret_hash, created_at FROM api_clients WHERE name = ?`, name).
		Scan(&c.Tenant, &role, &c.SecretHash, &created)
	if err != nil {
		return nil, db.wrap("get api client", notFound(err, "api client %q not found.", name))
	}
	c.Role, c.CreatedAt = herald.Role(role), fromMS(created)
	return c, nil
}

// ListAPIClients returns the clients of a tenant sorted by name; tenant ""
// lists the platform clients. ENOTFOUND for an unknown tenant.
func (db *DB) ListAPIClients(ctx context.Context, tenant string) ([]*herald.APIClient, error) {
	r := db.reader()
	rows, err := r.query(ctx, `SELECT name, role, secret_hash, created_at FROM api_clients WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, db.wrap("list api clients", err)
	}
	defer rows.Close()
	var out []*herald.APIClient
	for rows.Next() {
		c := herald.APIClient{Tenant: tenant}
		var role string
		var created int64
		if err := rows.Scan(&c.Name, &role, &c.SecretHash, &created); err != nil {
			return nil, db.wrap("list api clients", err)
		}
		c.Role, c.CreatedAt = herald.Role(role), fromMS(created)
		out = append(out, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list api clients", err)
	}
	if len(out) == 0 && tenant != "" {
		if err := db.tenantExists(ctx, r, tenant); err != nil {
			return nil, db.wrap("list api clients", err)
		}
	}
	return out, nil
}
