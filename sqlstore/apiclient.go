package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldhooks/herald"
)

// API clients, their secrets' hashes and their state, and what the access
// layer shares between nodes: revoked tokens and token request counts.
// Hashes are made and checked in package access; here they are opaque
// strings.

// clientCols are the columns scanClient reads, in its order.
const clientCols = `tenant, name, id, role, secret_hash, secret_id, generation, secret_rotated_at,
	previous_hash, previous_secret_id, previous_expires_at, disabled, tokens_valid_from, created_at`

type scanner interface{ Scan(dest ...any) error }

// scanClient reads a row of clientCols. A previous secret whose grace ended
// by now is left out: it no longer opens anything.
func scanClient(row scanner, now time.Time) (*herald.APIClient, error) {
	var c herald.APIClient
	var role string
	var rotated, prevExpires, validFrom sql.NullInt64
	var disabled int
	var created int64
	err := row.Scan(&c.Tenant, &c.Name, &c.ID, &role, &c.SecretHash, &c.SecretID, &c.Generation, &rotated,
		&c.PreviousSecretHash, &c.PreviousSecretID, &prevExpires, &disabled, &validFrom, &created)
	if err != nil {
		return nil, err
	}
	c.Role, c.Disabled, c.CreatedAt = herald.Role(role), disabled != 0, fromMS(created)
	c.SecretRotatedAt, c.TokensValidFrom = nullMS(rotated), nullMS(validFrom)
	if prevExpires.Valid && prevExpires.Int64 > ms(now) {
		c.PreviousSecretExpiresAt = nullMS(prevExpires)
	} else {
		c.PreviousSecretHash, c.PreviousSecretID = "", ""
	}
	return &c, nil
}

// clientNotFound is the ENOTFOUND of a client that does not exist.
func clientNotFound(tenant, name string) error {
	if tenant == "" {
		return herald.Errorf(herald.ENOTFOUND, "platform api client %q not found.", name)
	}
	return herald.Errorf(herald.ENOTFOUND, "api client %q of tenant %q not found.", name, tenant)
}

// clientMissing returns the ENOTFOUND for a client that a statement did not
// find: the tenant's when the tenant does not exist, the client's otherwise.
func (db *DB) clientMissing(ctx context.Context, q q, tenant, name string) error {
	if tenant != "" {
		if err := db.tenantExists(ctx, q, tenant); err != nil {
			return err
		}
	}
	return clientNotFound(tenant, name)
}

// CreateAPIClient stores a new client, giving it an ID, its creation time
// and generation 1. EINVALID unless the name is a slug; ECONFLICT if its
// tenant has a client of that name; ENOTFOUND if its tenant is unknown.
func (db *DB) CreateAPIClient(ctx context.Context, c *herald.APIClient) error {
	if err := herald.ValidateName("name", c.Name); err != nil {
		return err
	}
	now := db.now()
	w := q{db, db.write}
	if c.Tenant != "" {
		if err := db.tenantExists(ctx, w, c.Tenant); err != nil {
			return db.wrap("create api client", err)
		}
	}
	c.ID, c.CreatedAt, c.Generation = herald.NewID("cli", now), now, 1
	_, err := w.exec(ctx, `INSERT INTO api_clients (tenant, name, id, role, secret_hash, secret_id, generation, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
		c.Tenant, c.Name, c.ID, string(c.Role), c.SecretHash, c.SecretID, boolInt(c.Disabled), ms(now), ms(now))
	if isUnique(err) {
		if c.Tenant == "" {
			return herald.Errorf(herald.ECONFLICT, "platform api client %q already exists.", c.Name)
		}
		return herald.Errorf(herald.ECONFLICT, "api client %q already exists in tenant %q.", c.Name, c.Tenant)
	}
	return db.wrap("create api client", err)
}

// GetAPIClient returns the client name of tenant ("" for the platform), or
// ENOTFOUND naming the tenant or the client, whichever is missing.
func (db *DB) GetAPIClient(ctx context.Context, tenant, name string) (*herald.APIClient, error) {
	r := db.reader()
	c, err := scanClient(r.row(ctx, `SELECT `+clientCols+` FROM api_clients WHERE tenant = ? AND name = ?`, tenant, name), db.now())
	if errors.Is(err, sql.ErrNoRows) {
		err = db.clientMissing(ctx, r, tenant, name)
	}
	if err != nil {
		return nil, db.wrap("get api client", err)
	}
	return c, nil
}

// queryClients returns the clients a query of clientCols selects.
func (db *DB) queryClients(ctx context.Context, q q, op, query string, args ...any) ([]*herald.APIClient, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, db.wrap(op, err)
	}
	defer rows.Close()
	now := db.now()
	var out []*herald.APIClient
	for rows.Next() {
		c, err := scanClient(rows, now)
		if err != nil {
			return nil, db.wrap(op, err)
		}
		out = append(out, c)
	}
	return out, db.wrap(op, rows.Err())
}

// ListAPIClients returns the clients of a tenant sorted by name; tenant ""
// lists the platform clients. ENOTFOUND for an unknown tenant.
func (db *DB) ListAPIClients(ctx context.Context, tenant string) ([]*herald.APIClient, error) {
	r := db.reader()
	out, err := db.queryClients(ctx, r, "list api clients", `SELECT `+clientCols+` FROM api_clients WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 && tenant != "" {
		if err := db.tenantExists(ctx, r, tenant); err != nil {
			return nil, db.wrap("list api clients", err)
		}
	}
	return out, nil
}

// APIClientsNamed returns every client called name, platform clients
// first, then by tenant.
func (db *DB) APIClientsNamed(ctx context.Context, name string) ([]*herald.APIClient, error) {
	return db.queryClients(ctx, db.reader(), "find api clients", `SELECT `+clientCols+` FROM api_clients WHERE name = ? ORDER BY tenant`, name)
}

// APIClientStates returns every client without its secret hashes.
func (db *DB) APIClientStates(ctx context.Context) ([]*herald.APIClient, error) {
	return db.queryClients(ctx, db.reader(), "api client states", `SELECT tenant, name, id, role, '', '', generation, secret_rotated_at,
		'', '', previous_expires_at, disabled, tokens_valid_from, created_at FROM api_clients`)
}

// RotateAPIClientSecret gives the client a new secret and the next
// generation; the current secret stays valid for grace, replacing any
// previous one. ENOTFOUND naming the tenant or the client.
func (db *DB) RotateAPIClientSecret(ctx context.Context, tenant, name, hash, id string, grace time.Duration) (*herald.APIClient, error) {
	now := db.now()
	// The right-hand sides read the row as it was: the current secret
	// becomes the previous one.
	set := `previous_hash = secret_hash, previous_secret_id = secret_id, previous_expires_at = ?`
	args := []any{ms(now.Add(grace))}
	if grace <= 0 {
		set, args = `previous_hash = '', previous_secret_id = '', previous_expires_at = NULL`, nil
	}
	args = append(args, hash, id, ms(now), ms(now), tenant, name)
	return db.updateClient(ctx, "rotate api client secret", `UPDATE api_clients SET `+set+`,
		secret_hash = ?, secret_id = ?, generation = generation + 1, secret_rotated_at = ?, updated_at = ?
		WHERE tenant = ? AND name = ? RETURNING `+clientCols, tenant, name, args...)
}

// updateClient runs an UPDATE ... RETURNING clientCols of one client and
// returns the client as updated, or ENOTFOUND when no row matched.
func (db *DB) updateClient(ctx context.Context, op, query, tenant, name string, args ...any) (*herald.APIClient, error) {
	w := q{db, db.write}
	c, err := scanClient(w.row(ctx, query, args...), db.now())
	if errors.Is(err, sql.ErrNoRows) {
		err = db.clientMissing(ctx, w, tenant, name)
	}
	if err != nil {
		return nil, db.wrap(op, err)
	}
	return c, nil
}

// RehashAPIClientSecret replaces the current secret hash old with new,
// keeping the generation; false when the hash is no longer old.
func (db *DB) RehashAPIClientSecret(ctx context.Context, tenant, name, old, new string) (bool, error) {
	w := q{db, db.write}
	res, err := w.exec(ctx, `UPDATE api_clients SET secret_hash = ?, updated_at = ? WHERE tenant = ? AND name = ? AND secret_hash = ?`,
		new, ms(db.now()), tenant, name, old)
	if err != nil {
		return false, db.wrap("rehash api client secret", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, db.wrap("rehash api client secret", err)
	}
	_, err = db.GetAPIClient(ctx, tenant, name)
	return false, err
}

// SetAPIClientDisabled disables or enables a client. Enabling a disabled
// client sets TokensValidFrom to now; enabling an enabled one changes
// nothing. ENOTFOUND naming the tenant or the client.
func (db *DB) SetAPIClientDisabled(ctx context.Context, tenant, name string, disabled bool) (*herald.APIClient, error) {
	now := ms(db.now())
	if disabled {
		return db.updateClient(ctx, "disable api client", `UPDATE api_clients SET disabled = 1, updated_at = ?
			WHERE tenant = ? AND name = ? RETURNING `+clientCols, tenant, name, now, tenant, name)
	}
	c, err := db.updateClient(ctx, "enable api client", `UPDATE api_clients SET disabled = 0, tokens_valid_from = ?, updated_at = ?
		WHERE tenant = ? AND name = ? AND disabled = 1 RETURNING `+clientCols, tenant, name, now, now, tenant, name)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return db.GetAPIClient(ctx, tenant, name) // enabled already, or missing
	}
	return c, err
}

// DeleteAPIClient deletes a client. ENOTFOUND naming the tenant or the
// client.
func (db *DB) DeleteAPIClient(ctx context.Context, tenant, name string) error {
	w := q{db, db.write}
	res, err := w.exec(ctx, `DELETE FROM api_clients WHERE tenant = ? AND name = ?`, tenant, name)
	if err != nil {
		return db.wrap("delete api client", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return db.wrap("delete api client", err)
	}
	return db.wrap("delete api client", db.clientMissing(ctx, w, tenant, name))
}

// RevokeToken records a revoked token until it expires.
func (db *DB) RevokeToken(ctx context.Context, id string, expiresAt time.Time) error {
	_, err := q{db, db.write}.exec(ctx, `INSERT INTO revoked_tokens (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, ms(expiresAt))
	return db.wrap("revoke token", err)
}

// RevokedTokens returns the ids of revoked tokens that expire after now.
func (db *DB) RevokedTokens(ctx context.Context, now time.Time) ([]string, error) {
	ids, err := queryStrings(ctx, db.reader(), `SELECT id FROM revoked_tokens WHERE expires_at > ?`, ms(now))
	return ids, db.wrap("revoked tokens", err)
}

// CountAuthRequests adds one to each key's count in the window starting at
// window, in one statement, and returns the new counts in keys' order.
func (db *DB) CountAuthRequests(ctx context.Context, window time.Time, keys ...string) ([]int, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	// One row per key: PostgreSQL refuses to update a row twice in one
	// statement.
	var distinct []string
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			distinct = append(distinct, k)
		}
	}
	values, args := "", make([]any, 0, 2*len(distinct))
	for i, k := range distinct {
		if i > 0 {
			values += ", "
		}
		values += "(?, ?, 1)"
		args = append(args, k, ms(window))
	}
	rows, err := q{db, db.write}.query(ctx, `INSERT INTO auth_requests (request_key, window_start, requests) VALUES `+values+`
		ON CONFLICT (request_key, window_start) DO UPDATE SET requests = auth_requests.requests + 1
		RETURNING request_key, requests`, args...)
	if err != nil {
		return nil, db.wrap("count auth requests", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, db.wrap("count auth requests", err)
		}
		counts[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("count auth requests", err)
	}
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = counts[k]
	}
	return out, nil
}

// PurgeAuthRecords deletes revoked tokens expired by now and the counts of
// windows that started before windowsBefore.
func (db *DB) PurgeAuthRecords(ctx context.Context, now, windowsBefore time.Time) (int, error) {
	w := q{db, db.write}
	total := 0
	for _, del := range []struct {
		query string
		arg   int64
	}{
		{`DELETE FROM revoked_tokens WHERE expires_at <= ?`, ms(now)},
		{`DELETE FROM auth_requests WHERE window_start < ?`, ms(windowsBefore)},
	} {
		res, err := w.exec(ctx, del.query, del.arg)
		if err != nil {
			return total, db.wrap("purge auth records", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, db.wrap("purge auth records", err)
		}
		total += int(n)
	}
	return total, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
