package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldhooks/herald"
)

var (
	_ herald.ReplayService = (*DB)(nil)
	_ herald.ReplayWorker  = (*DB)(nil)
)

const replayCols = `id, tenant, instance, webhook_name, since_at, until_at, status, reason, events,
	scanned, created, skipped, requested_by, created_at, updated_at, finished_at`

// scanReplay reads a row of replayCols, followed by more destinations.
func scanReplay(s interface{ Scan(...any) error }, more ...any) (*herald.Replay, error) {
	var r herald.Replay
	var since, until, created, updated int64
	var finished sql.NullInt64
	dest := []any{&r.ID, &r.Tenant, &r.Instance, &r.Webhook, &since, &until, &r.Status, &r.Reason, &r.Events,
		&r.Scanned, &r.Created, &r.Skipped, &r.RequestedBy, &created, &updated, &finished}
	if err := s.Scan(append(dest, more...)...); err != nil {
		return nil, err
	}
	r.Since, r.Until, r.CreatedAt, r.UpdatedAt = fromMS(since), fromMS(until), fromMS(created), fromMS(updated)
	r.FinishedAt = nullMS(finished)
	return &r, nil
}

// windowCond selects the events of an instance created in [since, until):
// IDs sort by creation time, so the primary key bounds the scan to the
// window (events have no index by instance and time: it would cost every
// ingest a B-tree write for the sake of rare replays).
const windowCond = `id >= ? AND id < ? AND created_at >= ? AND created_at < ? AND tenant = ? AND instance = ?`

func windowArgs(tenant, instance string, since, until time.Time) []any {
	return []any{idFloor("evt", since), idFloor("evt", until), ms(since), ms(until), tenant, instance}
}

// CreateReplay counts the events of the window that the webhook's
// triggers select (herald.ReplaySelects, per entity and subtype of the
// window: the answer has a row per kind of event, however many events
// there are) and records the replay RUNNING, for ReplayBatch to work
// through. EUNPROCESSABLE when the webhook is inactive, ECONFLICT while
// another replay of it runs.
func (db *DB) CreateReplay(ctx context.Context, tenant, instance, webhook string, since, until time.Time, requestedBy string) (*herald.Replay, error) {
	r := db.reader()
	w, err := db.getWebhook(ctx, r, tenant, instance, webhook, false)
	if err != nil {
		return nil, db.wrap("create replay", err)
	}
	if !w.Active {
		return nil, herald.Errorf(herald.EUNPROCESSABLE, "webhook %q is inactive; activate it before replaying events to it.", webhook)
	}
	// The count reads the window on a reader, outside the transaction,
	// so that it holds no lock however large the window.
	rows, err := r.query(ctx, `SELECT entity, subtype, COUNT(*) FROM events WHERE `+windowCond+` GROUP BY entity, subtype`,
		windowArgs(tenant, instance, since, until)...)
	if err != nil {
		return nil, db.wrap("create replay", err)
	}
	count := 0
	for rows.Next() {
		var e herald.Event
		var n int
		if err := rows.Scan(&e.Entity, &e.Subtype, &n); err != nil {
			rows.Close()
			return nil, db.wrap("create replay", err)
		}
		if herald.ReplaySelects(w, &e) {
			count += n
		}
	}
	if err := rows.Close(); err != nil {
		return nil, db.wrap("create replay", err)
	}

	now := db.now()
	rp := &herald.Replay{ID: db.ids.next("rpl", now), Tenant: tenant, Instance: instance, Webhook: webhook,
		Since: since.UTC(), Until: until.UTC(), Status: herald.ReplayRunning, Events: count,
		RequestedBy: requestedBy, CreatedAt: now, UpdatedAt: now}
	err = db.tx(ctx, func(q q) error {
		var running string
		err := q.row(ctx, `SELECT id FROM replays WHERE webhook_id = ? AND status = 'RUNNING'`, w.ID).Scan(&running)
		if err == nil {
			return herald.Errorf(herald.ECONFLICT, "replay %q of webhook %q is still running; wait for it to finish (GET its status) and replay again.", running, webhook)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = q.exec(ctx, `INSERT INTO replays (id, tenant, instance, webhook_id, webhook_name, since_at, until_at, status, events,
			requested_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			rp.ID, tenant, instance, w.ID, webhook, ms(since), ms(until), rp.Status, count, requestedBy, ms(now), ms(now))
		if isUnique(err) {
			return herald.Errorf(herald.ECONFLICT, "another replay of webhook %q started at the same moment; wait for it to finish and replay again.", webhook)
		}
		return err
	})
	if err != nil {
		return nil, db.wrap("create replay", err)
	}
	return rp, nil
}

// GetReplay returns one replay of the webhook, or ENOTFOUND.
func (db *DB) GetReplay(ctx context.Context, tenant, instance, webhook, id string) (*herald.Replay, error) {
	r := db.reader()
	rp, err := scanReplay(r.row(ctx, `SELECT `+replayCols+` FROM replays WHERE id = ? AND tenant = ? AND instance = ? AND webhook_name = ?`,
		id, tenant, instance, webhook))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err = db.getWebhook(ctx, r, tenant, instance, webhook, false); err == nil {
			err = herald.Errorf(herald.ENOTFOUND, "replay %q of webhook %q not found.", id, webhook)
		}
	}
	return rp, db.wrap("get replay", err)
}

// ListReplays returns the webhook's latest replays, newest first.
func (db *DB) ListReplays(ctx context.Context, tenant, instance, webhook string, limit int) ([]*herald.Replay, error) {
	if limit <= 0 {
		limit = 20
	}
	r := db.reader()
	w, err := db.getWebhook(ctx, r, tenant, instance, webhook, false)
	if err != nil {
		return nil, db.wrap("list replays", err)
	}
	rows, err := r.query(ctx, `SELECT `+replayCols+` FROM replays WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`, w.ID, limit)
	if err != nil {
		return nil, db.wrap("list replays", err)
	}
	defer rows.Close()
	out := []*herald.Replay{}
	for rows.Next() {
		rp, err := scanReplay(rows)
		if err != nil {
			return nil, db.wrap("list replays", err)
		}
		out = append(out, rp)
	}
	return out, db.wrap("list replays", rows.Err())
}

// ReplayBatch works one batch of the running replay that waited longest
// and whose webhook has fewer than backlog open deliveries, due or HELD
// (found by the indexes of each, counting no further than backlog). It returns
// nil when no replay had work.
func (db *DB) ReplayBatch(ctx context.Context, limit, backlog int) (*herald.Replay, error) {
	if limit <= 0 {
		limit = herald.ReplayBatchSize
	}
	if backlog <= 0 {
		backlog = herald.ReplayBacklog
	}
	r := db.reader()
	rows, err := r.query(ctx, `SELECT id, webhook_id FROM replays WHERE status = 'RUNNING' ORDER BY updated_at, id`)
	if err != nil {
		return nil, db.wrap("replay batch", err)
	}
	type cand struct{ id, webhookID string }
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.webhookID); err != nil {
			rows.Close()
			return nil, db.wrap("replay batch", err)
		}
		cands = append(cands, c)
	}
	if err := rows.Close(); err != nil {
		return nil, db.wrap("replay batch", err)
	}
	for _, c := range cands {
		var open int
		// Due ones (deliveries_due), and HELD ones, which wait for an
		// earlier one of their key without a due time (deliveries_held).
		if err := r.row(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE webhook_id = ? AND due_at IS NOT NULL LIMIT ?) x)
			+ (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE webhook_id = ? AND status = 'HELD' LIMIT ?) y)`,
			c.webhookID, backlog, c.webhookID, backlog).Scan(&open); err != nil {
			return nil, db.wrap("replay batch", err)
		}
		if open >= backlog {
			continue
		}
		rp, err := db.replayBatch(ctx, c.id, limit)
		if err != nil || rp != nil {
			return rp, db.wrap("replay batch", err)
		}
	}
	return nil, nil
}

// replayBatch works the next limit events of replay id, if it is still
// RUNNING and (on PostgreSQL) no other node is working it right now, in
// one transaction: the events of the window after its last_event, those
// the webhook selects (herald.ReplaySelects) and that want a delivery
// (herald.ReplayWants) get one, PENDING and due now, and the replay's
// last_event and counters move on. A batch that reads fewer than limit
// events is the last: the replay is DONE. A webhook found inactive stops
// it.
func (db *DB) replayBatch(ctx context.Context, id string, limit int) (*herald.Replay, error) {
	var rp *herald.Replay
	created := 0
	err := db.tx(ctx, func(q q) error {
		rp, created = nil, 0
		lock := ""
		if db.pg {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var webhookID, last string
		got, err := scanReplay(q.row(ctx, `SELECT `+replayCols+`, webhook_id, last_event FROM replays WHERE id = ? AND status = 'RUNNING'`+lock, id),
			&webhookID, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // finished, or another node has it
		}
		if err != nil {
			return err
		}
		now := db.now()
		// The webhook under the ingest's lock (forKeyShare): a
		// deactivation waits for this batch and cancels what it made, or
		// this batch sees the webhook inactive.
		w, err := db.scanWebhook(q.row(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = ? AND removed_at IS NULL`+db.forKeyShare(), webhookID))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if w == nil || !w.Active {
			got.Status, got.Reason, got.FinishedAt, got.UpdatedAt = herald.ReplayStopped, "the webhook was deactivated; activate it and replay again.", &now, now
			_, err := q.exec(ctx, `UPDATE replays SET status = ?, reason = ?, finished_at = ?, updated_at = ? WHERE id = ?`,
				got.Status, got.Reason, ms(now), ms(now), id)
			rp = got
			return err
		}

		// The events under a share lock, on PostgreSQL: an erasure
		// (PurgePatient locks its events FOR UPDATE) waits for this batch
		// and then deletes what it made too, or this batch waits for the
		// erasure and no longer finds the events.
		ids, err := queryStrings(ctx, q, `SELECT id FROM events WHERE id > ? AND `+windowCond+` ORDER BY id LIMIT ?`+db.forKeyShare(),
			append(append([]any{last}, windowArgs(got.Tenant, got.Instance, got.Since, got.Until)...), limit)...)
		if err != nil {
			return err
		}
		evs, err := db.events(ctx, q, ids)
		if err != nil {
			return err
		}
		var selected []*herald.Event
		for _, eid := range ids {
			if e := evs[eid]; e != nil && herald.ReplaySelects(w, e) {
				selected = append(selected, e)
			}
		}
		statuses, err := db.deliveryStatuses(ctx, q, selected, webhookID)
		if err != nil {
			return err
		}
		var events []*herald.Event
		var targets [][]*herald.Webhook
		for _, e := range selected {
			if herald.ReplayWants(statuses[e.ID]) {
				events = append(events, e)
				targets = append(targets, []*herald.Webhook{w})
			}
		}
		if _, _, err := db.insertDeliveries(ctx, q, events, targets, nil, now); err != nil {
			return err
		}
		created = len(events)

		got.Scanned += len(selected)
		got.Created += created
		got.Skipped += len(selected) - created
		got.UpdatedAt = now
		if len(ids) > 0 {
			last = ids[len(ids)-1]
		}
		var finished any
		if len(ids) < limit {
			got.Status, got.FinishedAt = herald.ReplayDone, &now
			finished = ms(now)
		}
		if _, err := q.exec(ctx, `UPDATE replays SET status = ?, last_event = ?, scanned = ?, created = ?, skipped = ?, updated_at = ?,
			finished_at = ? WHERE id = ?`, got.Status, last, got.Scanned, got.Created, got.Skipped, ms(now), finished, id); err != nil {
			return err
		}
		rp = got
		if created > 0 {
			return db.notify(ctx, q)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if created > 0 {
		db.wake()
	}
	return rp, nil
}

// deliveryStatuses returns the statuses of the events' deliveries to one
// webhook, by event ID.
func (db *DB) deliveryStatuses(ctx context.Context, q q, events []*herald.Event, webhookID string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(events) == 0 {
		return out, nil
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	in, args := inList(db, ids)
	rows, err := q.query(ctx, `SELECT event_id, status FROM deliveries WHERE event_id IN (`+in+`) AND webhook_id = ?`, append(args, webhookID)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var eid, status string
		if err := rows.Scan(&eid, &status); err != nil {
			return nil, err
		}
		out[eid] = append(out[eid], status)
	}
	return out, rows.Err()
}
