package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

const deliveryCols = `id, event_id, tenant, instance, webhook_id, webhook_name, event_entity, event_subtype, status,
	attempt_count, due_at, wait_reason, first_attempt_at, last_status_code, created_at, updated_at, window_start,
	COALESCE(waiting_for, '')`

// scanDelivery scans deliveryCols; it returns the webhook ID too, which the
// Delivery itself names only by webhook name.
func scanDelivery(s interface{ Scan(...any) error }) (*herald.Delivery, string, error) {
	var d herald.Delivery
	var webhookID string
	var due, first sql.NullInt64
	var created, updated int64
	var windowStart int
	if err := s.Scan(&d.ID, &d.EventID, &d.Tenant, &d.Instance, &webhookID, &d.Webhook, &d.EventEntity, &d.EventSubtype,
		&d.Status, &d.AttemptCount, &due, &d.WaitReason, &first, &d.LastStatusCode, &created, &updated, &windowStart, &d.WaitingFor); err != nil {
		return nil, "", err
	}
	d.WindowAttempts = d.AttemptCount - windowStart
	d.NextAttemptAt, d.FirstAttemptAt = nullMS(due), nullMS(first)
	d.CreatedAt, d.UpdatedAt = fromMS(created), fromMS(updated)
	return &d, webhookID, nil
}

// attempt1Cols are the columns of a delivery's first attempt, kept in its
// row (migration 0011); NULL until the attempt is recorded. Later attempts
// are rows of attempts.
const attempt1Cols = `attempt1_started_at, attempt1_duration_ms, attempt1_status_code, attempt1_response_body, attempt1_error`

// firstAttempt receives attempt1Cols.
type firstAttempt struct {
	started, duration, code sql.NullInt64
	body, err               sql.NullString
}

func (f *firstAttempt) dest() []any {
	return []any{&f.started, &f.duration, &f.code, &f.body, &f.err}
}

// attempt returns the first attempt, if it was made.
func (f *firstAttempt) attempt() (herald.Attempt, bool) {
	if !f.started.Valid {
		return herald.Attempt{}, false
	}
	return herald.Attempt{N: 1, StartedAt: fromMS(f.started.Int64), DurationMs: f.duration.Int64,
		StatusCode: int(f.code.Int64), ResponseBody: f.body.String, Error: f.err.String}, true
}

// scanWith scans a row into the destinations of scanDelivery followed by
// more.
type scanWith struct {
	s    interface{ Scan(...any) error }
	more []any
}

func (w scanWith) Scan(dest ...any) error { return w.s.Scan(append(dest, w.more...)...) }

// Page sizes of ListDeliveries.
const (
	defaultPage = 50
	maxPage     = 500
)

// pageSize is the page a list call asked for (limit), within the bounds.
func pageSize(limit int) int {
	if limit <= 0 {
		return defaultPage
	}
	return min(limit, maxPage)
}

// cursorPrefix marks cursors this store made, so garbage is told apart.
const cursorPrefix = "d1:"

func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + id))
}

// decodeCursor returns the delivery id of a cursor encodeCursor made, and
// only of one: base64 that decodes the same but is spelled otherwise (line
// breaks, set padding bits) is refused, so one page has one cursor.
func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	id, ok := strings.CutPrefix(string(b), cursorPrefix)
	if err != nil || !ok || !strings.HasPrefix(id, "dlv_") || encodeCursor(id) != c {
		return "", &herald.Error{Code: herald.EINVALID, Field: "cursor",
			Message: "cursor is not valid; pass the nextCursor of the previous page."}
	}
	return id, nil
}

// statusFilter is the condition of the log's status filter, status being
// one of herald.Statuses. The status is written as a literal, not bound:
// deliveries_status is partial (migration 0011), and a planner uses a
// partial index only for a query whose WHERE implies its predicate, which
// a parameter does not by itself (SQLite then prepares the statement again
// for the value bound; a generic plan on PostgreSQL cannot use the index).
//   - PENDING, RETRYING, FAILED, CANCELLED, HELD: deliveries_status;
//   - SENT: the open deliveries of the instance's webhooks, by
//     deliveries_due, which holds every SENT delivery (a node's in-flight
//     work, plus the backlog at most), not the instance's history;
//   - DELIVERED, the common case: the instance's deliveries newest first
//     (or the index of another filter), most of which are delivered.
func statusFilter(status, tenant, instance string) (string, []any) {
	cond := `status = '` + status + `'`
	switch status {
	case herald.StatusPending, herald.StatusRetrying, herald.StatusFailed, herald.StatusCancelled, herald.StatusHeld:
		return cond, nil
	case herald.StatusSent:
		// CROSS JOIN makes SQLite start from the instance's webhooks
		// (PostgreSQL's planner reorders it freely).
		return cond + ` AND id IN (SELECT o.id FROM webhooks w CROSS JOIN deliveries o
			WHERE w.tenant = ? AND w.instance = ? AND o.webhook_id = w.id AND o.due_at IS NOT NULL)`, []any{tenant, instance}
	}
	return cond, nil
}

// ListDeliveries returns the deliveries of an instance that match f, newest
// first, without attempts, and the cursor of the next page ("" on the last).
// EINVALID for a cursor it did not make or an unknown status; ENOTFOUND for
// an unknown instance.
func (db *DB) ListDeliveries(ctx context.Context, f herald.DeliveryFilter) ([]*herald.Delivery, string, error) {
	limit := pageSize(f.Limit)
	query, args, err := listQuery(f, limit)
	if err != nil {
		return nil, "", err
	}
	r := db.reader()
	rows, err := r.query(ctx, query, args...)
	if err != nil {
		return nil, "", db.wrap("list deliveries", err)
	}
	defer rows.Close()
	out := []*herald.Delivery{}
	for rows.Next() {
		d, _, err := scanDelivery(rows)
		if err != nil {
			return nil, "", db.wrap("list deliveries", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", db.wrap("list deliveries", err)
	}
	if len(out) == 0 && f.Cursor == "" {
		if err := db.missing(ctx, r, f.Tenant, f.Instance); err != nil {
			return nil, "", db.wrap("list deliveries", err)
		}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// listQuery is ListDeliveries' query for f, a page of limit plus one.
func listQuery(f herald.DeliveryFilter, limit int) (string, []any, error) {
	where := []string{"tenant = ?", "instance = ?"}
	args := []any{f.Tenant, f.Instance}
	add := func(cond string, v ...any) {
		where = append(where, cond)
		args = append(args, v...)
	}
	if f.Webhook != "" {
		add("webhook_name = ?", f.Webhook)
	}
	if f.Status != "" {
		if !slices.Contains(herald.Statuses, f.Status) {
			return "", nil, herald.FieldErrorf("status", "status %q is not known; use one of %s.", f.Status, strings.Join(herald.Statuses, ", "))
		}
		cond, v := statusFilter(f.Status, f.Tenant, f.Instance)
		add(cond, v...)
	}
	if f.EventSubtype != "" {
		add("event_subtype = ?", f.EventSubtype)
	}
	if f.EventEntity != "" {
		add("event_entity = ?", f.EventEntity)
	}
	if f.EventID != "" {
		add("event_id = ?", f.EventID)
	}
	// IDs sort by creation time, so the time bounds are also bounds on the
	// ID, which the indexes end in.
	if !f.From.IsZero() {
		add("id >= ?", idFloor("dlv", f.From))
		add("created_at >= ?", ms(f.From))
	}
	if !f.To.IsZero() {
		add("id < ?", idFloor("dlv", f.To))
		add("created_at < ?", ms(f.To))
	}
	if f.Cursor != "" {
		id, err := decodeCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		add("id < ?", id)
	}
	args = append(args, limit+1)
	return `SELECT ` + deliveryCols + ` FROM deliveries WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC LIMIT ?`, args, nil
}

// GetDelivery returns one delivery of an instance with its attempts, oldest
// first, or ENOTFOUND naming what is missing.
func (db *DB) GetDelivery(ctx context.Context, tenant, instance, id string) (*herald.Delivery, error) {
	d, _, err := db.getDelivery(ctx, db.reader(), tenant, instance, id, false)
	return d, db.wrap("get delivery", err)
}

func (db *DB) getDelivery(ctx context.Context, q q, tenant, instance, id string, lock bool) (*herald.Delivery, string, error) {
	query := `SELECT ` + deliveryCols + `, ` + attempt1Cols + ` FROM deliveries WHERE id = ? AND tenant = ? AND instance = ?`
	if lock {
		query += db.forUpdate()
	}
	var first firstAttempt
	d, webhookID, err := scanDelivery(scanWith{q.row(ctx, query, id, tenant, instance), first.dest()})
	if errors.Is(err, sql.ErrNoRows) {
		if err := db.missing(ctx, q, tenant, instance); err != nil {
			return nil, "", err
		}
		return nil, "", herald.Errorf(herald.ENOTFOUND, "delivery %q not found in instance %q of tenant %q.", id, instance, tenant)
	} else if err != nil {
		return nil, "", err
	}
	if a, ok := first.attempt(); ok {
		d.Attempts = append(d.Attempts, a)
	}
	rows, err := q.query(ctx, `SELECT n, started_at, duration_ms, status_code, response_body, error FROM attempts WHERE delivery_id = ? ORDER BY n`, id)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	for rows.Next() {
		var a herald.Attempt
		var started int64
		if err := rows.Scan(&a.N, &started, &a.DurationMs, &a.StatusCode, &a.ResponseBody, &a.Error); err != nil {
			return nil, "", err
		}
		a.StartedAt = fromMS(started)
		d.Attempts = append(d.Attempts, a)
	}
	return d, webhookID, rows.Err()
}

// ResendDelivery makes a delivery PENDING and due now with a fresh retry
// window, keeping its attempts on record. EUNPROCESSABLE if its webhook is
// inactive, ECONFLICT if it is being sent right now.
func (db *DB) ResendDelivery(ctx context.Context, tenant, instance, id string) (*herald.Delivery, error) {
	var d *herald.Delivery
	err := db.tx(ctx, func(q q) error {
		var webhookID string
		var err error
		if d, webhookID, err = db.getDelivery(ctx, q, tenant, instance, id, true); err != nil {
			return err
		}
		var active int
		if err := q.row(ctx, `SELECT active FROM webhooks WHERE id = ?`, webhookID).Scan(&active); err != nil {
			return err
		}
		now := db.now()
		s, err := herald.Resend(d, active != 0, now)
		if err != nil {
			return err
		}
		if _, err := q.exec(ctx, `UPDATE deliveries SET status = ?, due_at = ?, first_attempt_at = NULL, window_start = ?,
			claimed_by = ?, wait_reason = ?, updated_at = ? WHERE id = ?`, s.Status, ms(*s.DueAt), s.WindowStart, s.Owner, s.WaitReason, ms(now), id); err != nil {
			return err
		}
		d.SetState(s)
		d.UpdatedAt = now
		return db.notify(ctx, q)
	})
	if err != nil {
		return nil, db.wrap("resend delivery", err)
	}
	db.wake()
	return d, nil
}

// ClaimDeliveries marks up to r.Limit due deliveries of active webhooks SENT,
// owned by r.Owner until herald.LeaseEnd (r.LeaseUntil plus the webhook's
// timeout), and returns them with their events,
// webhooks and secrets, oldest due first. It takes at most r.PerWebhook from
// each webhook, picking each webhook's first due deliveries by index, so a
// webhook with a large backlog cannot starve the others and the cost does not
// grow with the backlog. On PostgreSQL the rows are locked with SKIP LOCKED
// and due_at is checked again under the lock, so concurrent claimers on
// several nodes never take the same delivery.
func (db *DB) ClaimDeliveries(ctx context.Context, r queue.ClaimRequest) ([]*queue.Job, error) {
	if r.Limit <= 0 {
		return nil, nil
	}
	if r.Now.IsZero() {
		r.Now = db.now()
	}
	per := r.PerWebhook
	if per <= 0 {
		per = r.Limit
	}
	now := ms(r.Now)
	excl, exclArgs := "", []any(nil)
	if len(r.ExcludeWebhooks) > 0 {
		var in string
		in, exclArgs = inList(db, r.ExcludeWebhooks)
		excl = ` AND w.id NOT IN (` + in + `)`
	}
	var query string
	var args []any
	if db.pg {
		query = `SELECT id FROM deliveries WHERE id IN (
			SELECT d.id FROM webhooks w CROSS JOIN LATERAL (
				SELECT d2.id, d2.due_at FROM deliveries d2 WHERE d2.webhook_id = w.id AND d2.due_at <= ? ORDER BY d2.due_at LIMIT ?) d
			WHERE w.active = 1` + excl + ` ORDER BY d.due_at LIMIT ?)
			AND due_at <= ? ORDER BY due_at, id FOR UPDATE SKIP LOCKED`
		args = append(append([]any{now, per}, exclArgs...), r.Limit, now)
	} else {
		query = `SELECT d.id FROM webhooks w JOIN deliveries d ON d.id IN (
			SELECT d2.id FROM deliveries d2 WHERE d2.webhook_id = w.id AND d2.due_at <= ? ORDER BY d2.due_at LIMIT ?)
			WHERE w.active = 1` + excl + ` ORDER BY d.due_at, d.id LIMIT ?`
		args = append(append([]any{now, per}, exclArgs...), r.Limit)
	}

	if !db.pg {
		// Look before taking the single writer: most claims of an idle or
		// handed-off engine find nothing, and a reader runs beside the
		// writer.
		ids, err := queryStrings(ctx, db.reader(), query, args...)
		if err != nil || len(ids) == 0 {
			return nil, db.wrap("claim deliveries", err)
		}
	}
	var jobs []*queue.Job
	err := db.tx(ctx, func(q q) error {
		jobs = nil
		ids, err := queryStrings(ctx, q, query, args...)
		if err != nil || len(ids) == 0 {
			return err
		}
		// herald.Claim, for many deliveries at once: the lease rule is
		// herald.LeaseEnd, whose timeout the statement adds per row.
		in, inArgs := inList(db, ids)
		rows, err := q.query(ctx, `UPDATE deliveries SET status = 'SENT', claimed_by = ?,
			due_at = CAST(? AS BIGINT) + 1000 * (SELECT w.timeout_seconds FROM webhooks w WHERE w.id = deliveries.webhook_id), updated_at = ?
			WHERE id IN (`+in+`) RETURNING `+deliveryCols, append([]any{r.Owner, ms(herald.LeaseEnd(r.LeaseUntil, 0)), now}, inArgs...)...)
		if err != nil {
			return err
		}
		byID := make(map[string]*queue.Job, len(ids))
		var eventIDs, webhookIDs []string
		webhookOf := map[string]string{}
		for rows.Next() {
			d, webhookID, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return err
			}
			byID[d.ID] = &queue.Job{Delivery: d, LeaseUntil: *d.NextAttemptAt, ClaimedAt: r.Now}
			webhookOf[d.ID] = webhookID
			eventIDs = append(eventIDs, d.EventID)
			webhookIDs = append(webhookIDs, webhookID)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		slices.Sort(eventIDs)
		slices.Sort(webhookIDs)
		eventIDs, webhookIDs = slices.Compact(eventIDs), slices.Compact(webhookIDs)
		events, err := db.events(ctx, q, eventIDs)
		if err != nil {
			return err
		}
		webhooks, err := db.webhooksByID(ctx, q, webhookIDs)
		if err != nil {
			return err
		}
		secrets, err := db.secrets(ctx, q, webhookIDs, r.Now)
		if err != nil {
			return err
		}
		for _, id := range ids {
			j := byID[id]
			if j == nil {
				continue
			}
			wid := webhookOf[id]
			j.Event, j.Webhook = events[j.Delivery.EventID], webhooks[wid]
			j.Secrets = herald.SigningKeys(secrets[wid])
			jobs = append(jobs, j)
		}
		setSigners(jobs)
		return nil
	})
	if err != nil {
		return nil, db.wrap("claim deliveries", err)
	}
	return jobs, nil
}

// queryStrings returns the first column of every row.
func queryStrings(ctx context.Context, q q, query string, args ...any) ([]string, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (db *DB) webhooksByID(ctx context.Context, q q, ids []string) (map[string]*herald.Webhook, error) {
	out := make(map[string]*herald.Webhook, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	in, args := inList(db, ids)
	rows, err := q.query(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id IN (`+in+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		w, err := db.scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out[w.ID] = w
	}
	return out, rows.Err()
}

// openDelivery is what RecordAttempts needs of a delivery before writing.
type openDelivery struct {
	webhookID string
	// orderKey is its key's hash when its webhook orders deliveries.
	orderKey string
	herald.DeliveryState
	touched bool
	// first is the delivery's first attempt when this write records it:
	// it goes into the delivery's row, not into attempts.
	first *herald.Attempt
}

// RecordAttempts stores attempts and the new states of claimed deliveries in
// one transaction, with one multi-row statement per table. A result for a
// delivery no longer SENT (cancelled meanwhile) keeps its attempt but not its
// status. It keeps each webhook's failing_since (the first failed attempt
// since its last success) for DeactivateFailing, and deactivates webhooks
// whose results carry a DeactivateReason, cancelling their open deliveries.
// A result for a delivery that no longer exists (purged meanwhile) is
// dropped, and neither fails the others nor brings the delivery back.
//
// It is a convenience for tests and tools, not part of the queue contract
// (queue.Store): a thin wrapper over the same write transaction as Write.
// The engine records results only with Write.
func (db *DB) RecordAttempts(ctx context.Context, results []herald.AttemptResult) error {
	_, err := db.writeTx(ctx, &queue.Write{Results: results}, "record attempts")
	return err
}

// recordAttempts is RecordAttempts inside a transaction. It returns how
// many deliveries it made due: operations deliveries (a delivery that gave
// up, a webhook deactivated by a 410: see operations.go) and the HELD
// deliveries it released (ordering.go), for the caller to wake the claim
// loop after the commit.
func (db *DB) recordAttempts(ctx context.Context, q q, results []herald.AttemptResult, nowMS int64) (int, error) {
	if len(results) == 0 {
		return 0, nil
	}
	ids := make([]string, 0, len(results))
	for _, r := range results {
		ids = append(ids, r.DeliveryID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	open := make(map[string]*openDelivery, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		in, args := inList(db, chunk)
		rows, err := q.query(ctx, `SELECT id, webhook_id, status, attempt_count, first_attempt_at, due_at, wait_reason, claimed_by, last_status_code,
			COALESCE(order_key, '') FROM deliveries WHERE id IN (`+in+`) ORDER BY id`+db.forUpdate(), args...)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var id string
			var d openDelivery
			var first, due sql.NullInt64
			if err := rows.Scan(&id, &d.webhookID, &d.Status, &d.Attempts, &first, &due, &d.WaitReason, &d.Owner, &d.LastStatusCode, &d.orderKey); err != nil {
				rows.Close()
				return 0, err
			}
			d.FirstAttemptAt, d.DueAt = nullMS(first), nullMS(due)
			open[id] = &d
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
	}

	var webhookOrder, gaveUp []string
	var ends []ended // ordered deliveries this write ends: their waiters go
	healths := map[string]*herald.WebhookHealth{}
	counts := attemptCounts{}
	var attemptArgs []any
	for _, r := range results {
		d := open[r.DeliveryID]
		if d == nil {
			continue // purged meanwhile; nothing to record against
		}
		a := r.Attempt
		started := ms(a.StartedAt)
		wasSent := d.Status == herald.StatusSent
		d.DeliveryState = herald.ApplyResult(d.DeliveryState, r, fromMS(nowMS))
		d.touched = true
		if wasSent && d.Status == herald.StatusFailed {
			gaveUp = append(gaveUp, r.DeliveryID)
		}
		if wasSent && d.orderKey != "" && !herald.Owed(d.Status) {
			ends = append(ends, ended{id: r.DeliveryID, webhookID: d.webhookID, key: d.orderKey, status: d.Status})
		}
		body := a.ResponseBody
		if len(body) > herald.MaxResponseBody {
			body = strings.ToValidUTF8(body[:herald.MaxResponseBody], "")
		}
		if d.Attempts == 1 {
			d.first = &herald.Attempt{N: 1, StartedAt: fromMS(started), DurationMs: a.DurationMs, StatusCode: a.StatusCode,
				ResponseBody: body, Error: a.Error}
		} else {
			attemptArgs = append(attemptArgs, r.DeliveryID, d.Attempts, started, a.DurationMs, a.StatusCode, body, a.Error)
		}

		h := healths[d.webhookID]
		if h == nil {
			h = &herald.WebhookHealth{}
			healths[d.webhookID] = h
			webhookOrder = append(webhookOrder, d.webhookID)
		}
		h.Add(r)
		counts.add(d.webhookID, started, a.StatusCode)
	}

	if err := db.batchRows(ctx, q, attemptBatch, attemptArgs, nil); err != nil {
		return 0, err
	}
	if err := db.batchRows(ctx, q, attemptCountBatch, counts.args(), nil); err != nil {
		return 0, err
	}
	if err := db.updateDeliveries(ctx, q, ids, open, nowMS); err != nil {
		return 0, err
	}
	released, err := db.unhold(ctx, q, ends, fromMS(nowMS))
	if err != nil {
		return 0, err
	}

	// The statements carry out herald.WebhookHealth.Apply without reading
	// the webhooks.
	var healthy, recovered []string
	ops := released
	for _, id := range webhookOrder {
		h := healths[id]
		var err error
		switch {
		case h.FailingSince == nil:
			healthy = append(healthy, id)
		case h.Succeeded:
			var reported int
			err = q.row(ctx, `UPDATE webhooks SET failing_since = ?, last_failed_at = ?, consecutive_failures = ? WHERE id = ? RETURNING failing_reported`,
				ms(*h.FailingSince), ms(h.LastFailedAt), h.Failures, id).Scan(&reported)
			if reported != 0 {
				recovered = append(recovered, id)
			}
		default:
			_, err = q.exec(ctx, `UPDATE webhooks SET failing_since = COALESCE(failing_since, ?), last_failed_at = ?,
				consecutive_failures = consecutive_failures + ? WHERE id = ?`, ms(*h.FailingSince), ms(h.LastFailedAt), h.Failures, id)
		}
		if err != nil {
			return 0, err
		}
	}
	if len(healthy) > 0 {
		// RETURNING names the webhooks that were failing (few), with
		// whether that was reported: those have recovered.
		rows, err := q.query(ctx, `UPDATE webhooks SET failing_since = NULL, consecutive_failures = 0 WHERE failing_since IS NOT NULL AND id IN (`+
			placeholders(len(healthy))+`) RETURNING id, failing_reported`, anys(healthy)...)
		if err != nil {
			return 0, err
		}
		var back []string
		for rows.Next() {
			var id string
			var reported int
			if err := rows.Scan(&id, &reported); err != nil {
				rows.Close()
				return 0, err
			}
			back = append(back, id)
			if reported != 0 {
				recovered = append(recovered, id)
			}
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
		if err := db.catchUp(ctx, q, back, nowMS); err != nil {
			return 0, err
		}
	}
	n, err := db.webhooksRecovered(ctx, q, recovered, fromMS(nowMS))
	if err != nil {
		return 0, err
	}
	ops += n
	for _, id := range webhookOrder {
		h := healths[id]
		if h.DeactivateReason == "" {
			continue
		}
		var active int
		if err := q.row(ctx, `SELECT active FROM webhooks WHERE id = ?`+db.forUpdate(), id).Scan(&active); err != nil {
			return 0, err
		}
		if !h.Deactivates(active != 0) {
			continue
		}
		if err := db.deactivate(ctx, q, id, h.DeactivateReason, fromMS(nowMS)); err != nil {
			return 0, err
		}
		ops++
	}
	n, err = db.deliveriesFailed(ctx, q, gaveUp, open, fromMS(nowMS))
	return ops + n, err
}

// attemptCountBatch adds rows to attempt_counts: per webhook and minute,
// the attempts of one write, by outcome (see migration 0004), or the sums
// of a minute's rows folded into one (see foldAttemptCounts).
var attemptCountBatch = &batch{
	prefix: `INSERT INTO attempt_counts (webhook_id, minute, delivered, rejected, unreachable) VALUES `,
	row:    "(" + placeholders(5) + ")",
	ncols:  5,
}

// attemptCount is a row of attempt_counts being gathered.
type attemptCount struct {
	webhookID                        string
	minute                           int64
	delivered, rejected, unreachable int
}

// attemptCounts gathers a write's attempts by webhook and minute.
type attemptCounts map[attemptCountKey]*attemptCount

type attemptCountKey struct {
	webhookID string
	minute    int64
}

// add counts an attempt started at startedMS (unix ms) with status code
// code: 2xx delivered, 0 unreachable (no answer), anything else rejected.
func (c attemptCounts) add(webhookID string, startedMS int64, code int) {
	n := c.row(webhookID, startedMS/60000)
	switch {
	case code >= 200 && code < 300:
		n.delivered++
	case code == 0:
		n.unreachable++
	default:
		n.rejected++
	}
}

// row returns the row of a webhook and minute, new if need be.
func (c attemptCounts) row(webhookID string, minute int64) *attemptCount {
	k := attemptCountKey{webhookID, minute}
	n := c[k]
	if n == nil {
		n = &attemptCount{webhookID: webhookID, minute: minute}
		c[k] = n
	}
	return n
}

// args returns the rows' values for attemptCountBatch.
func (c attemptCounts) args() []any {
	args := make([]any, 0, 5*len(c))
	for _, n := range c {
		args = append(args, n.webhookID, n.minute, n.delivered, n.rejected, n.unreachable)
	}
	return args
}

var attemptBatch = &batch{
	prefix: `INSERT INTO attempts (delivery_id, n, started_at, duration_ms, status_code, response_body, error) VALUES `,
	row:    "(" + placeholders(7) + ")",
	ncols:  7,
}

// deliveryUpdateBatch writes the new state of many deliveries in one
// statement, on PostgreSQL. The casts tell PostgreSQL the types of the
// otherwise untyped parameters. Both dialects name the columns of a VALUES
// list column1, column2... The first attempt's columns are NULL for a
// delivery whose first attempt is not in this write, and COALESCE keeps
// what the row has.
var deliveryUpdateBatch = &batch{
	prefix: `UPDATE deliveries SET status = v.column2, attempt_count = v.column3, due_at = v.column4,
		first_attempt_at = v.column5, wait_reason = v.column6, claimed_by = v.column7, last_status_code = v.column8,
		updated_at = v.column9, attempt1_started_at = COALESCE(v.column10, attempt1_started_at),
		attempt1_duration_ms = COALESCE(v.column11, attempt1_duration_ms), attempt1_status_code = COALESCE(v.column12, attempt1_status_code),
		attempt1_response_body = COALESCE(v.column13, attempt1_response_body), attempt1_error = COALESCE(v.column14, attempt1_error)
		FROM (VALUES `,
	row: `(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS BIGINT),
		CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT),
		CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS INTEGER), CAST(? AS TEXT), CAST(? AS TEXT))`,
	ncols:  14,
	suffix: `) AS v WHERE deliveries.id = v.column1`,
}

// deliveryUpdate writes the new state of one delivery: on SQLite, a
// prepared statement run once per row is cheaper than the VALUES join,
// which SQLite carries out in two passes. deliveryUpdateFirst also writes
// the delivery's first attempt into its row.
const (
	deliveryUpdate = `UPDATE deliveries SET status = ?, attempt_count = ?, due_at = ?, first_attempt_at = ?, wait_reason = ?,
	claimed_by = ?, last_status_code = ?, updated_at = ? WHERE id = ?`
	deliveryUpdateFirst = `UPDATE deliveries SET status = ?, attempt_count = ?, due_at = ?, first_attempt_at = ?, wait_reason = ?,
	claimed_by = ?, last_status_code = ?, updated_at = ?, attempt1_started_at = ?, attempt1_duration_ms = ?, attempt1_status_code = ?,
	attempt1_response_body = ?, attempt1_error = ? WHERE id = ?`
)

// updateDeliveries writes the new state of the touched deliveries.
func (db *DB) updateDeliveries(ctx context.Context, q q, ids []string, open map[string]*openDelivery, nowMS int64) error {
	var args []any
	var plain, withFirst *sql.Stmt // SQLite's prepared statements, once looked up
	for _, id := range ids {
		d := open[id]
		if d == nil || !d.touched {
			continue
		}
		var due, first any
		if d.DueAt != nil {
			due = ms(*d.DueAt)
		}
		if d.FirstAttemptAt != nil {
			first = ms(*d.FirstAttemptAt)
		}
		row := []any{d.Status, d.Attempts, due, first, d.WaitReason, d.Owner, d.LastStatusCode, nowMS}
		var a1 []any
		if a := d.first; a != nil {
			a1 = []any{ms(a.StartedAt), a.DurationMs, a.StatusCode, a.ResponseBody, a.Error}
		}
		if db.pg {
			if a1 == nil {
				a1 = []any{nil, nil, nil, nil, nil}
			}
			args = append(append(append(args, id), row...), a1...)
			continue
		}
		// Each statement is taken into the transaction once per call.
		query, stmt := deliveryUpdate, &plain
		if a1 != nil {
			query, stmt = deliveryUpdateFirst, &withFirst
		}
		if *stmt == nil {
			*stmt = q.stmt(ctx, query)
		}
		var err error
		if *stmt != nil {
			_, err = (*stmt).ExecContext(ctx, append(append(row, a1...), id)...)
		} else {
			_, err = q.x.ExecContext(ctx, query, append(append(row, a1...), id)...)
		}
		if err != nil {
			return err
		}
	}
	return db.batchRows(ctx, q, deliveryUpdateBatch, args, nil)
}

// ReleaseDeliveries makes the owner's SENT deliveries due at once, as
// PENDING or RETRYING depending on whether they were tried before.
func (db *DB) ReleaseDeliveries(ctx context.Context, owner string) (int, error) {
	n, err := db.release(ctx, ` AND claimed_by = ?`, owner)
	return n, db.wrap("release deliveries", err)
}

// ReleaseAll makes every SENT delivery due at once, whoever claimed it: for
// the single SQLite node at start, which takes back its predecessor's leases.
func (db *DB) ReleaseAll(ctx context.Context) (int, error) {
	n, err := db.release(ctx, ``)
	return n, db.wrap("release all", err)
}

// ReleaseUnheld makes the owner's SENT deliveries that are not in held due
// at once, as ReleaseDeliveries does, and returns how many it released. It
// reads the owner's SENT deliveries first (a node holds few: its senders
// and their queues) and releases the others by ID, so held may be of any
// length; the release checks status and owner again, so a delivery
// recorded or taken over meanwhile is left alone.
func (db *DB) ReleaseUnheld(ctx context.Context, owner string, held []string) (int, error) {
	keep := make(map[string]bool, len(held))
	for _, id := range held {
		keep[id] = true
	}
	var n int64
	err := db.tx(ctx, func(q q) error {
		n = 0
		ids, err := queryStrings(ctx, q, `SELECT id FROM deliveries WHERE due_at IS NOT NULL AND status = 'SENT' AND claimed_by = ?`, owner)
		if err != nil {
			return err
		}
		ids = slices.DeleteFunc(ids, func(id string) bool { return keep[id] })
		now := ms(db.now())
		for chunk := range slices.Chunk(ids, 500) {
			res, err := q.exec(ctx, releaseSQL+` AND claimed_by = ? AND id IN (`+placeholders(len(chunk))+`)`,
				append([]any{now, now, owner}, anys(chunk)...)...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		if n == 0 {
			return nil
		}
		return db.notify(ctx, q)
	})
	if err != nil {
		return 0, db.wrap("release unheld deliveries", err)
	}
	if n > 0 {
		db.wake()
	}
	return int(n), nil
}

// releaseSQL makes SENT deliveries due at once (its two parameters are now),
// as PENDING or RETRYING depending on whether they were tried before; the
// caller appends conditions. due_at IS NOT NULL lets the partial index of
// open deliveries serve the scan; every SENT delivery has a due_at.
const releaseSQL = `UPDATE deliveries SET status = CASE WHEN attempt_count = 0 THEN 'PENDING' ELSE 'RETRYING' END,
	due_at = ?, claimed_by = '', updated_at = ? WHERE due_at IS NOT NULL AND status = 'SENT'`

func (db *DB) release(ctx context.Context, cond string, args ...any) (int, error) {
	var n int64
	err := db.tx(ctx, func(q q) error {
		now := ms(db.now())
		res, err := q.exec(ctx, releaseSQL+cond, append([]any{now, now}, args...)...)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.notify(ctx, q)
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		db.wake()
	}
	return int(n), nil
}

// NextDue returns when the earliest delivery of an active webhook becomes
// due, a lease running out included, or nil when none will. It asks each
// active webhook's index for its earliest, which stays cheap whatever the
// backlog.
func (db *DB) NextDue(ctx context.Context) (*time.Time, error) {
	var next sql.NullInt64
	err := db.reader().row(ctx, `SELECT MIN(m) FROM (SELECT (SELECT MIN(d.due_at) FROM deliveries d
		WHERE d.webhook_id = w.id AND d.due_at IS NOT NULL) AS m FROM webhooks w WHERE w.active = 1) x`).Scan(&next)
	if err != nil {
		return nil, db.wrap("next due", err)
	}
	return nullMS(next), nil
}

// catchUp carries out herald.CatchUp for the webhooks that answered 2xx
// again after failing: the herald.CatchUpBatch of each one's RETRYING
// deliveries due soonest after now become due now (through the
// deliveries_due index on webhook_id and due_at), so a receiver that was
// down gets what it missed as it comes back, not at each delivery's next
// step of the schedule.
func (db *DB) catchUp(ctx context.Context, q q, webhookIDs []string, nowMS int64) error {
	for _, id := range webhookIDs {
		if _, err := q.exec(ctx, `UPDATE deliveries SET due_at = ?, wait_reason = ?, updated_at = ? WHERE id IN (
			SELECT id FROM deliveries WHERE webhook_id = ? AND due_at > ? AND status = 'RETRYING' ORDER BY due_at LIMIT ?)`,
			nowMS, herald.ReasonCaughtUp, nowMS, id, nowMS, herald.CatchUpBatch); err != nil {
			return err
		}
	}
	return nil
}
