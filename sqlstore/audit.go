package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
)

// auditLockKey is the PostgreSQL advisory lock that orders audit appends
// across nodes ("herald" in ASCII, then 03; 01 orders migrations and 02
// elects the maintenance leader).
const auditLockKey = 0x68657261_6c64_03

// lockAudit takes the audit lock for the rest of the transaction on
// PostgreSQL (SQLite's single writer orders appends already), failing
// after 10 s rather than hanging a request.
func (db *DB) lockAudit(ctx context.Context, q q) error {
	if !db.pg {
		return nil
	}
	if _, err := q.exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
		return err
	}
	_, err := q.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(auditLockKey))
	return err
}

const auditCols = `seq, at, actor_type, actor, actor_tenant, role, source, tenant, instance, action, target, diff, prev_hash, hash`

// AppendAudit appends e to the audit trail, setting Seq, At (when zero),
// PrevHash and Hash. Appends are serialised across nodes (SQLite has one
// writer; on PostgreSQL a transaction-scoped advisory lock), so the chain
// has no forks and no gaps.
func (db *DB) AppendAudit(ctx context.Context, e *herald.AuditEntry) error {
	if e.At.IsZero() {
		e.At = db.now()
	}
	e.At = e.At.Truncate(time.Millisecond).UTC()
	if len(e.Diff) > 0 && !json.Valid(e.Diff) {
		return fmt.Errorf("append audit: diff is not JSON")
	}
	err := db.tx(ctx, func(q q) error {
		if err := db.lockAudit(ctx, q); err != nil {
			return err
		}
		var seq int64
		var hash string
		err := q.row(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			a, err := db.auditAnchor(ctx, q)
			if err != nil {
				return err
			}
			seq, hash = a.Seq, a.Hash
		} else if err != nil {
			return err
		}
		e.Seq, e.PrevHash = seq+1, hash
		e.Hash = herald.AuditHash(e.PrevHash, e)
		// The diff is sealed like every secret: it may hold a URL whose
		// path is a credential. The hash covers the plain diff, so the
		// chain verifies whatever key sealed it.
		diff := ""
		if len(e.Diff) > 0 {
			diff = db.seal(string(e.Diff), "audit_log", "diff", strconv.FormatInt(e.Seq, 10))
		}
		_, err = q.exec(ctx, `INSERT INTO audit_log (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, ms(e.At), e.ActorType, e.Actor, e.ActorTenant, string(e.Role), e.Source, e.Tenant, e.Instance,
			e.Action, e.Target, diff, e.PrevHash, e.Hash)
		return err
	})
	return db.wrap("append audit", err)
}

func (db *DB) auditAnchor(ctx context.Context, q q) (herald.AuditAnchor, error) {
	var v string
	err := q.row(ctx, `SELECT value FROM settings WHERE name = 'audit_anchor'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return herald.AuditAnchor{}, nil
	} else if err != nil {
		return herald.AuditAnchor{}, err
	}
	seqText, hash, _ := strings.Cut(v, " ")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil {
		return herald.AuditAnchor{}, fmt.Errorf("audit anchor %q is malformed", v)
	}
	return herald.AuditAnchor{Seq: seq, Hash: hash}, nil
}

// AuditHead returns the last entry's sequence number and hash, or the
// anchor when the trail is empty.
func (db *DB) AuditHead(ctx context.Context) (herald.AuditAnchor, error) {
	r := db.reader()
	var a herald.AuditAnchor
	err := r.row(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&a.Seq, &a.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		a, err = db.auditAnchor(ctx, r)
	}
	return a, db.wrap("audit head", err)
}

// AuditStart returns the anchor the chain starts from: the last entry
// retention deleted, zero when none was.
func (db *DB) AuditStart(ctx context.Context) (herald.AuditAnchor, error) {
	a, err := db.auditAnchor(ctx, db.reader())
	return a, db.wrap("audit start", err)
}

// scanAudit reads a row of auditCols, opening its diff. A diff that does
// not open (it was altered) is returned as a JSON string of what is
// stored, so the entry's hash no longer matches and verification names it.
func (db *DB) scanAudit(s interface{ Scan(...any) error }) (*herald.AuditEntry, error) {
	var e herald.AuditEntry
	var at int64
	var role, diff string
	if err := s.Scan(&e.Seq, &at, &e.ActorType, &e.Actor, &e.ActorTenant, &role, &e.Source, &e.Tenant,
		&e.Instance, &e.Action, &e.Target, &diff, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.At, e.Role = fromMS(at), herald.Role(role)
	if diff != "" {
		plain, err := db.open(diff, "audit_log", "diff", strconv.FormatInt(e.Seq, 10))
		switch {
		case err != nil || (plain != "" && !json.Valid([]byte(plain))):
			e.Diff = json.RawMessage(strconv.Quote(diff))
		case plain != "": // "" sealed (by a rewrap) is no diff
			e.Diff = json.RawMessage(plain)
		}
	}
	return &e, nil
}

// WalkAudit calls fn with every entry in Seq order, a page at a time.
func (db *DB) WalkAudit(ctx context.Context, fn func(*herald.AuditEntry) error) error {
	var after int64 = -1
	for {
		rows, err := db.reader().query(ctx, `SELECT `+auditCols+` FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 1000`, after)
		if err != nil {
			return db.wrap("walk audit", err)
		}
		var page []*herald.AuditEntry
		for rows.Next() {
			e, err := db.scanAudit(rows)
			if err != nil {
				rows.Close()
				return db.wrap("walk audit", err)
			}
			page = append(page, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return db.wrap("walk audit", err)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
			after = e.Seq
		}
		if len(page) < 1000 {
			return nil
		}
	}
}

const auditCursorPrefix = "a1:"

// ListAudit returns entries matching f, newest first, and the cursor of
// the next page ("" on the last). EINVALID for a cursor it did not make.
func (db *DB) ListAudit(ctx context.Context, f herald.AuditFilter) ([]*herald.AuditEntry, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var where []string
	var args []any
	if f.Tenant != "" {
		where, args = append(where, "tenant = ?"), append(args, f.Tenant)
	}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Action != "" {
		// "webhook" matches every webhook.* action; "webhook.update" itself.
		where, args = append(where, "(action = ? OR action LIKE ?)"), append(args, f.Action, f.Action+".%")
	}
	if !f.From.IsZero() {
		where, args = append(where, "at >= ?"), append(args, ms(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "at < ?"), append(args, ms(f.To))
	}
	if f.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		seqText, ok := strings.CutPrefix(string(b), auditCursorPrefix)
		seq, perr := strconv.ParseInt(seqText, 10, 64)
		if err != nil || !ok || perr != nil {
			return nil, "", &herald.Error{Code: herald.EINVALID, Field: "cursor", Message: "cursor is not valid; pass the nextCursor of the previous page."}
		}
		where, args = append(where, "seq < ?"), append(args, seq)
	}
	query := `SELECT ` + auditCols + ` FROM audit_log`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(` ORDER BY seq DESC LIMIT %d`, limit+1)
	rows, err := db.reader().query(ctx, query, args...)
	if err != nil {
		return nil, "", db.wrap("list audit", err)
	}
	defer rows.Close()
	out := []*herald.AuditEntry{}
	for rows.Next() {
		e, err := db.scanAudit(rows)
		if err != nil {
			return nil, "", db.wrap("list audit", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", db.wrap("list audit", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(auditCursorPrefix + strconv.FormatInt(out[limit-1].Seq, 10)))
	}
	return out, next, nil
}

// PurgeAudit deletes the entries older than before, oldest first, and
// moves the anchor to the last one deleted, in one transaction, so the
// chain that remains still verifies.
func (db *DB) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.tx(ctx, func(q q) error {
		if err := db.lockAudit(ctx, q); err != nil {
			return err
		}
		var seq int64
		var hash string
		err := q.row(ctx, `SELECT seq, hash FROM audit_log WHERE at < ? ORDER BY seq DESC LIMIT 1`, ms(before)).Scan(&seq, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		res, err := q.exec(ctx, `DELETE FROM audit_log WHERE seq <= ?`, seq)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = q.exec(ctx, `INSERT INTO settings (name, value) VALUES ('audit_anchor', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.FormatInt(seq, 10)+" "+hash)
		return err
	})
	return int(n), db.wrap("purge audit", err)
}
