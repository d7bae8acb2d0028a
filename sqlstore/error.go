package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/heraldhooks/herald"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// wrap turns a driver error into what Herald's callers act on: application
// errors pass through, an unreachable database becomes EUNAVAILABLE (the API
// answers 503), and anything else gets op as context.
// No password of the database URL survives in what it returns.
func (db *DB) wrap(op string, err error) error {
	var he *herald.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &he):
	case unavailable(err):
		err = &herald.Error{Code: herald.EUNAVAILABLE, Message: fmt.Sprintf("database unavailable: %s.", strings.TrimSuffix(cause(err), "."))}
	default:
		err = fmt.Errorf("%s: %w", op, err)
	}
	return redactErr(err, db.dsnSecrets)
}

// invalidDSN is why pgx cannot parse a database URL, without the URL,
// which its message quotes (with the password masked as well as pgx can).
func invalidDSN(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if u := errors.Unwrap(pe); u != nil {
			var ue *url.Error
			if errors.As(u, &ue) {
				return ue.Err.Error()
			}
			return u.Error()
		}
		_, msg, _ := strings.Cut(pe.Error(), "`: ")
		return msg
	}
	return err.Error()
}

// cause is a short account of why the database is unavailable, free of the
// driver's framing and of addresses: "connect: connection refused".
func cause(err error) string {
	var pe *pgconn.PgError
	var oe *net.OpError
	var se *sqlite.Error
	switch {
	case errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL:
		return "the disk holding the database is full, so nothing was stored; retry once space is freed"
	case errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY:
		return "the database file cannot be written (read-only), so nothing was stored"
	case errors.As(err, &pe):
		return pe.Message
	case errors.As(err, &oe) && oe.Err != nil:
		return oe.Err.Error()
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return "timeout"
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return err.Error()
}

// unavailable reports whether err means the database cannot be reached or
// has gone away, rather than that the statement was wrong.
func unavailable(err error) bool {
	var (
		ce *pgconn.ConnectError
		pe *pgconn.PgError
		ne net.Error
		se *sqlite.Error
	)
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded),
		pgconn.Timeout(err):
		return true
	case errors.As(err, &pe):
		// Class 08 is connection exceptions; 57P0x are the server shutting
		// down or not yet accepting connections; class 53 insufficient
		// resources (a full disk, too many clients); 25006 a read-only
		// database or standby.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "53") ||
			pe.Code == "25006"
	case errors.As(err, &se):
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_READONLY:
			return true
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "sql: database is closed") || strings.Contains(msg, "conn closed") ||
		strings.Contains(msg, "closed pool")
}

// retryable reports whether err is a deadlock or serialisation failure,
// after which the whole transaction may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// notFound turns sql.ErrNoRows into an ENOTFOUND with the given message, the
// one place where "no rows" becomes "not found".
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return herald.Errorf(herald.ENOTFOUND, format, args...)
	}
	return err
}

// Messages naming what was not found, shared by every method.
func tenantNotFound(tenant string) error {
	return herald.Errorf(herald.ENOTFOUND, "tenant %q not found.", tenant)
}

func instanceNotFound(tenant, instance string) error {
	return herald.Errorf(herald.ENOTFOUND, "instance %q of tenant %q not found.", instance, tenant)
}

// missing returns the most precise ENOTFOUND for something that was not found
// in an instance: the tenant's, the instance's, or nil when both exist and
// the thing itself is what is missing.
func (db *DB) missing(ctx context.Context, q q, tenant, instance string) error {
	var one int
	err := q.row(ctx, `SELECT 1 FROM instances WHERE tenant = ? AND name = ?`, tenant, instance).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := db.tenantExists(ctx, q, tenant); err != nil {
		return err
	}
	return instanceNotFound(tenant, instance)
}

// tenantExists returns ENOTFOUND for an unknown tenant.
func (db *DB) tenantExists(ctx context.Context, q q, tenant string) error {
	var one int
	err := q.row(ctx, `SELECT 1 FROM tenants WHERE name = ?`, tenant).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return tenantNotFound(tenant)
	}
	return err
}
