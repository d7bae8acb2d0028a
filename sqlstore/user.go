package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldhooks/herald"
)

// Users of the web UI, their recovery codes, setup tokens and sessions.
// Password hashes, recovery code and token hashes are made and checked in
// package access; here they are opaque strings. The TOTP secret is sealed
// on its way in and opened on its way out, bound to its user's row.

const userCols = `id, email, display_name, tenant, role, password_hash, totp_secret, totp_enabled, totp_last_step,
	failed_sign_ins, locked_until, created_at`

// scanUser reads a row of userCols, opening the TOTP secret. A lock that
// ended by now is left out.
func (db *DB) scanUser(row scanner, now time.Time) (*herald.User, error) {
	var u herald.User
	var role, secret string
	var enabled int
	var locked sql.NullInt64
	var created int64
	if err := row.Scan(&u.ID, &u.Email, &u.DisplayName, &u.Tenant, &role, &u.PasswordHash, &secret, &enabled, &u.TOTPLastStep,
		&u.FailedSignIns, &locked, &created); err != nil {
		return nil, err
	}
	plain, err := db.open(secret, "users", "totp_secret", u.ID)
	if err != nil {
		return nil, err
	}
	u.TOTPSecret, u.TOTPEnabled, u.Role, u.CreatedAt = plain, enabled != 0, herald.Role(role), fromMS(created)
	u.SetupComplete = u.TOTPEnabled && u.PasswordHash != ""
	if locked.Valid && locked.Int64 > ms(now) {
		u.LockedUntil = nullMS(locked)
	}
	return &u, nil
}

func userNotFound(tenant, email string) error {
	if tenant == "" {
		return herald.Errorf(herald.ENOTFOUND, "platform user %q not found.", email)
	}
	return herald.Errorf(herald.ENOTFOUND, "user %q of tenant %q not found.", email, tenant)
}

// userMissing is the ENOTFOUND of a user a statement did not find: the
// tenant's when the tenant does not exist.
func (db *DB) userMissing(ctx context.Context, q q, tenant, email string) error {
	if tenant != "" {
		if err := db.tenantExists(ctx, q, tenant); err != nil {
			return err
		}
	}
	return userNotFound(tenant, email)
}

// CreateUser stores a new user. ECONFLICT when the email is taken;
// ENOTFOUND for an unknown tenant.
func (db *DB) CreateUser(ctx context.Context, u *herald.User) error {
	email, err := herald.NormalizeEmail("email", u.Email)
	if err != nil {
		return err
	}
	w := q{db, db.write}
	if u.Tenant != "" {
		if err := db.tenantExists(ctx, w, u.Tenant); err != nil {
			return db.wrap("create user", err)
		}
	}
	now := db.now()
	u.ID, u.Email, u.CreatedAt = herald.NewID("usr", now), email, now
	_, err = w.exec(ctx, `INSERT INTO users (id, email, display_name, tenant, role, totp_secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.DisplayName, u.Tenant, string(u.Role), db.seal("", "users", "totp_secret", u.ID), ms(now))
	if isUnique(err) {
		return herald.Errorf(herald.ECONFLICT, "a user with email %q already exists.", u.Email)
	}
	return db.wrap("create user", err)
}

// GetUser returns the user of tenant with email.
func (db *DB) GetUser(ctx context.Context, tenant, email string) (*herald.User, error) {
	r := db.reader()
	u, err := db.scanUser(r.row(ctx, `SELECT `+userCols+` FROM users WHERE tenant = ? AND email = ?`, tenant, normEmail(email)), db.now())
	if errors.Is(err, sql.ErrNoRows) {
		err = db.userMissing(ctx, r, tenant, email)
	}
	if err != nil {
		return nil, db.wrap("get user", err)
	}
	return u, nil
}

// UserByEmail returns the user with email in any tenant.
func (db *DB) UserByEmail(ctx context.Context, email string) (*herald.User, error) {
	u, err := db.scanUser(db.reader().row(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, normEmail(email)), db.now())
	if errors.Is(err, sql.ErrNoRows) {
		err = herald.Errorf(herald.ENOTFOUND, "user %q not found.", email)
	}
	if err != nil {
		return nil, db.wrap("user by email", err)
	}
	return u, nil
}

// UserByID returns a user or ENOTFOUND.
func (db *DB) UserByID(ctx context.Context, id string) (*herald.User, error) {
	u, err := db.scanUser(db.reader().row(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id), db.now())
	if errors.Is(err, sql.ErrNoRows) {
		err = herald.Errorf(herald.ENOTFOUND, "user not found.")
	}
	if err != nil {
		return nil, db.wrap("user by id", err)
	}
	return u, nil
}

// ListUsers returns the users of a tenant sorted by email.
func (db *DB) ListUsers(ctx context.Context, tenant string) ([]*herald.User, error) {
	r := db.reader()
	rows, err := r.query(ctx, `SELECT `+userCols+` FROM users WHERE tenant = ? ORDER BY email`, tenant)
	if err != nil {
		return nil, db.wrap("list users", err)
	}
	defer rows.Close()
	now := db.now()
	var out []*herald.User
	for rows.Next() {
		u, err := db.scanUser(rows, now)
		if err != nil {
			return nil, db.wrap("list users", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list users", err)
	}
	if len(out) == 0 && tenant != "" {
		if err := db.tenantExists(ctx, r, tenant); err != nil {
			return nil, db.wrap("list users", err)
		}
	}
	return out, nil
}

// SetUserRole changes a user's role.
func (db *DB) SetUserRole(ctx context.Context, tenant, email string, role herald.Role) (*herald.User, error) {
	w := q{db, db.write}
	u, err := db.scanUser(w.row(ctx, `UPDATE users SET role = ? WHERE tenant = ? AND email = ? RETURNING `+userCols,
		string(role), tenant, normEmail(email)), db.now())
	if errors.Is(err, sql.ErrNoRows) {
		err = db.userMissing(ctx, w, tenant, email)
	}
	if err != nil {
		return nil, db.wrap("set user role", err)
	}
	return u, nil
}

// DeleteUser deletes a user with everything that is theirs.
func (db *DB) DeleteUser(ctx context.Context, tenant, email string) error {
	err := db.tx(ctx, func(q q) error {
		var id string
		err := q.row(ctx, `DELETE FROM users WHERE tenant = ? AND email = ? RETURNING id`, tenant, normEmail(email)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return db.userMissing(ctx, q, tenant, email)
		}
		if err != nil {
			return err
		}
		for _, t := range []string{"user_sessions", "user_recovery_codes", "user_setup_tokens"} {
			if _, err := q.exec(ctx, `DELETE FROM `+t+` WHERE user_id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
	return db.wrap("delete user", err)
}

// updateUser runs an UPDATE of one user by id; ENOTFOUND when it is gone.
func (db *DB) updateUser(ctx context.Context, op, query string, args ...any) error {
	res, err := q{db, db.write}.exec(ctx, query, args...)
	if err != nil {
		return db.wrap(op, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err == nil {
			err = herald.Errorf(herald.ENOTFOUND, "user not found.")
		}
		return db.wrap(op, err)
	}
	return nil
}

// SetUserPassword stores a new password hash.
func (db *DB) SetUserPassword(ctx context.Context, userID, hash string) error {
	return db.updateUser(ctx, "set user password", `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
}

// SetUserTOTP stores the TOTP secret, sealed, and whether it is confirmed.
func (db *DB) SetUserTOTP(ctx context.Context, userID, secret string, enabled bool) error {
	return db.updateUser(ctx, "set user totp", `UPDATE users SET totp_secret = ?, totp_enabled = ?, totp_last_step = 0 WHERE id = ?`,
		db.seal(secret, "users", "totp_secret", userID), boolInt(enabled), userID)
}

// UseTOTPStep records step as the last accepted one, if it is later than
// the last.
func (db *DB) UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	res, err := q{db, db.write}.exec(ctx, `UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`, step, userID, step)
	if err != nil {
		return false, db.wrap("use totp step", err)
	}
	n, err := res.RowsAffected()
	return n == 1, db.wrap("use totp step", err)
}

// ReplaceRecoveryCodes replaces the user's recovery code hashes.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error {
	return db.wrap("replace recovery codes", db.tx(ctx, func(q q) error {
		if _, err := q.exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = ?`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := q.exec(ctx, `INSERT INTO user_recovery_codes (user_id, code_hash) VALUES (?, ?)`, userID, h); err != nil {
				return err
			}
		}
		return nil
	}))
}

// UseRecoveryCode deletes a recovery code, reporting whether it was there.
func (db *DB) UseRecoveryCode(ctx context.Context, userID, hash string) (bool, error) {
	res, err := q{db, db.write}.exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = ? AND code_hash = ?`, userID, hash)
	if err != nil {
		return false, db.wrap("use recovery code", err)
	}
	n, err := res.RowsAffected()
	return n == 1, db.wrap("use recovery code", err)
}

// CountSignInFailure adds one failed sign-in and returns the count.
func (db *DB) CountSignInFailure(ctx context.Context, userID string) (int, error) {
	var n int
	err := q{db, db.write}.row(ctx, `UPDATE users SET failed_sign_ins = failed_sign_ins + 1 WHERE id = ? RETURNING failed_sign_ins`, userID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		err = herald.Errorf(herald.ENOTFOUND, "user not found.")
	}
	return n, db.wrap("count sign-in failure", err)
}

// LockUser refuses the user's sign-ins until until.
func (db *DB) LockUser(ctx context.Context, userID string, until time.Time) error {
	return db.updateUser(ctx, "lock user", `UPDATE users SET locked_until = ?, failed_sign_ins = 0 WHERE id = ?`, ms(until), userID)
}

// ClearSignInFailures resets the failure count and any lock.
func (db *DB) ClearSignInFailures(ctx context.Context, userID string) error {
	return db.updateUser(ctx, "clear sign-in failures", `UPDATE users SET locked_until = NULL, failed_sign_ins = 0 WHERE id = ?`, userID)
}

// CreateSetupToken stores a setup token, replacing the user's earlier ones.
func (db *DB) CreateSetupToken(ctx context.Context, t *herald.SetupToken) error {
	return db.wrap("create setup token", db.tx(ctx, func(q q) error {
		if _, err := q.exec(ctx, `DELETE FROM user_setup_tokens WHERE user_id = ?`, t.UserID); err != nil {
			return err
		}
		_, err := q.exec(ctx, `INSERT INTO user_setup_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)`, t.Hash, t.UserID, ms(t.ExpiresAt))
		return err
	}))
}

// GetSetupToken returns the token with hash, or ENOTFOUND.
func (db *DB) GetSetupToken(ctx context.Context, hash string) (*herald.SetupToken, error) {
	t := &herald.SetupToken{Hash: hash}
	var exp int64
	err := db.reader().row(ctx, `SELECT user_id, expires_at FROM user_setup_tokens WHERE token_hash = ?`, hash).Scan(&t.UserID, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		err = herald.Errorf(herald.ENOTFOUND, "setup link not found.")
	}
	if err != nil {
		return nil, db.wrap("get setup token", err)
	}
	t.ExpiresAt = fromMS(exp)
	return t, nil
}

// DeleteSetupToken deletes a token, reporting whether it was there.
func (db *DB) DeleteSetupToken(ctx context.Context, hash string) (bool, error) {
	res, err := q{db, db.write}.exec(ctx, `DELETE FROM user_setup_tokens WHERE token_hash = ?`, hash)
	if err != nil {
		return false, db.wrap("delete setup token", err)
	}
	n, err := res.RowsAffected()
	return n == 1, db.wrap("delete setup token", err)
}

// CreateSession stores a session.
func (db *DB) CreateSession(ctx context.Context, s *herald.Session) error {
	_, err := q{db, db.write}.exec(ctx, `INSERT INTO user_sessions (id_hash, user_id, created_at, last_seen) VALUES (?, ?, ?, ?)`,
		s.IDHash, s.UserID, ms(s.CreatedAt), ms(s.LastSeen))
	return db.wrap("create session", err)
}

// GetSession returns the session with hash, or ENOTFOUND. It reads from
// the writer: a sign-out on any node must count at once.
func (db *DB) GetSession(ctx context.Context, hash string) (*herald.Session, error) {
	s := &herald.Session{IDHash: hash}
	var created, seen int64
	err := q{db, db.write}.row(ctx, `SELECT user_id, created_at, last_seen FROM user_sessions WHERE id_hash = ?`, hash).Scan(&s.UserID, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		err = herald.Errorf(herald.ENOTFOUND, "session not found.")
	}
	if err != nil {
		return nil, db.wrap("get session", err)
	}
	s.CreatedAt, s.LastSeen = fromMS(created), fromMS(seen)
	return s, nil
}

// TouchSession sets the session's LastSeen, never moving it back.
func (db *DB) TouchSession(ctx context.Context, hash string, at time.Time) error {
	_, err := q{db, db.write}.exec(ctx, `UPDATE user_sessions SET last_seen = ? WHERE id_hash = ? AND last_seen < ?`, ms(at), hash, ms(at))
	return db.wrap("touch session", err)
}

// DeleteSession deletes a session.
func (db *DB) DeleteSession(ctx context.Context, hash string) error {
	_, err := q{db, db.write}.exec(ctx, `DELETE FROM user_sessions WHERE id_hash = ?`, hash)
	return db.wrap("delete session", err)
}

// DeleteUserSessions deletes every session of a user.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	res, err := q{db, db.write}.exec(ctx, `DELETE FROM user_sessions WHERE user_id = ?`, userID)
	if err != nil {
		return 0, db.wrap("delete user sessions", err)
	}
	n, err := res.RowsAffected()
	return int(n), db.wrap("delete user sessions", err)
}

// PurgeSessions deletes idle and old sessions and expired setup tokens.
func (db *DB) PurgeSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error) {
	w := q{db, db.write}
	res, err := w.exec(ctx, `DELETE FROM user_sessions WHERE last_seen < ? OR created_at < ?`, ms(idleBefore), ms(createdBefore))
	if err != nil {
		return 0, db.wrap("purge sessions", err)
	}
	n, _ := res.RowsAffected()
	res, err = w.exec(ctx, `DELETE FROM user_setup_tokens WHERE expires_at <= ?`, ms(db.now()))
	if err != nil {
		return int(n), db.wrap("purge setup tokens", err)
	}
	m, _ := res.RowsAffected()
	return int(n + m), nil
}

// normEmail is email as stored: trimmed, lower case.
func normEmail(email string) string {
	e, err := herald.NormalizeEmail("email", email)
	if err != nil {
		return email
	}
	return e
}
