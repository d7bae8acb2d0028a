package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

// instanceKey names an instance of a tenant.
type instanceKey struct{ tenant, instance string }

// CreateEvents stores each event and one PENDING delivery, due now, for each
// active webhook of its instance whose triggers match, all in one
// transaction. An event whose idempotency key its instance has seen, earlier
// or in this batch, creates nothing and returns the first event. An event of
// an unknown tenant or instance gets an ENOTFOUND in its result; the others
// are stored all the same.
//
// It is a convenience for tests and tools, not part of the queue contract
// (queue.Store): a thin wrapper over the same write transaction as Write,
// without handoff. A running node accepts events through its engine, which
// stores them with Write.
func (db *DB) CreateEvents(ctx context.Context, events []*herald.Event) ([]herald.EventResult, error) {
	w, err := db.writeTx(ctx, &queue.Write{Events: events}, "create events")
	if err != nil {
		return nil, err
	}
	return w.Events, nil
}

// createEvents is CreateEvents inside a transaction, handing new deliveries
// to h's owner as far as its room goes (h may be nil). It returns the
// results, the jobs handed off, and how many deliveries it left PENDING.
//
// It is built for group commit: each instance's webhooks are loaded once per
// call, and events and deliveries are written with multi-row inserts.
func (db *DB) createEvents(ctx context.Context, q q, events []*herald.Event, h *queue.Handoff, now time.Time) ([]herald.EventResult, []*queue.Job, int, error) {
	results := make([]herald.EventResult, len(events))
	if len(events) == 0 {
		return results, nil, 0, nil
	}
	nowMS := ms(now)

	// Resolve each instance once: its existence and active webhooks.
	targets := map[instanceKey][]*herald.Webhook{}
	refused := map[instanceKey]error{}
	for _, e := range events {
		k := instanceKey{e.TenantName, e.InstanceName}
		if _, ok := targets[k]; ok {
			continue
		}
		if _, ok := refused[k]; ok {
			continue
		}
		t, err := db.targets(ctx, q, k)
		if err != nil {
			if herald.ErrorCode(err) != herald.ENOTFOUND {
				return nil, nil, 0, err
			}
			refused[k] = err
			continue
		}
		targets[k] = t
	}

	// Idempotency keys: the first event with a key wins, in this batch
	// and across batches.
	type keyed struct {
		instanceKey
		key string
	}
	firstWithKey := map[keyed]int{}
	dupOf := make([]int, len(events)) // index of the first event with the same key, or -1
	byInstance := map[instanceKey][]string{}
	for i, e := range events {
		dupOf[i] = -1
		k := instanceKey{e.TenantName, e.InstanceName}
		if err := refused[k]; err != nil {
			results[i].Err = err
			continue
		}
		if e.IdempotencyKey == "" {
			continue
		}
		kk := keyed{k, e.IdempotencyKey}
		if j, ok := firstWithKey[kk]; ok {
			dupOf[i] = j
			continue
		}
		firstWithKey[kk] = i
		byInstance[k] = append(byInstance[k], e.IdempotencyKey)
	}
	seen := map[keyed]herald.EventResult{}
	for k, keys := range byInstance {
		if err := db.seenKeys(ctx, q, k, keys, func(key string, r herald.EventResult) { seen[keyed{k, key}] = r }); err != nil {
			return nil, nil, 0, err
		}
	}

	// The events to insert and their deliveries.
	var fresh []int
	deliveries := make([][]*herald.Webhook, len(events))
	for i, e := range events {
		if results[i].Err != nil || dupOf[i] >= 0 {
			continue
		}
		k := instanceKey{e.TenantName, e.InstanceName}
		var hit *herald.EventResult
		if r, ok := seen[keyed{k, e.IdempotencyKey}]; ok && e.IdempotencyKey != "" {
			hit = &r
		} else {
			if e.ID == "" {
				e.ID = db.ids.next("evt", now)
			}
			if e.CreatedAt.IsZero() {
				e.CreatedAt = fromMS(nowMS)
			}
		}
		if results[i], deliveries[i] = herald.PlanEvent(e, hit, targets[k]); hit == nil {
			fresh = append(fresh, i)
		}
	}
	// Keyed events go first, in key order, so that two batches racing
	// on the same keys on PostgreSQL wait for each other in the same
	// order instead of deadlocking.
	slices.SortStableFunc(fresh, func(a, b int) int {
		ka, kb := events[a].IdempotencyKey, events[b].IdempotencyKey
		if (ka == "") != (kb == "") {
			if ka == "" {
				return 1
			}
			return -1
		}
		return cmp.Compare(ka, kb)
	})

	inserted, err := db.insertEvents(ctx, q, events, fresh, results)
	if err != nil {
		return nil, nil, 0, err
	}
	// An event not inserted either lost a race with another transaction
	// that committed the same idempotency key first (PostgreSQL), or
	// came with the ID of a stored event: report the stored one.
	for _, i := range fresh {
		e := events[i]
		if inserted[e.ID] {
			continue
		}
		deliveries[i] = nil
		results[i] = herald.EventResult{Duplicate: true}
		if e.IdempotencyKey != "" {
			k := instanceKey{e.TenantName, e.InstanceName}
			err := db.seenKeys(ctx, q, k, []string{e.IdempotencyKey}, func(_ string, r herald.EventResult) {
				r.Duplicate = true
				results[i] = r
			})
			if err != nil {
				return nil, nil, 0, err
			}
		}
		if results[i].EventID == "" {
			results[i].EventID = e.ID
			if err := q.row(ctx, `SELECT deliveries FROM events WHERE id = ?`, e.ID).Scan(&results[i].Deliveries); err != nil {
				return nil, nil, 0, err
			}
		}
	}

	jobs, pending, err := db.insertDeliveries(ctx, q, events, deliveries, h, now)
	if err != nil {
		return nil, nil, 0, err
	}
	for i, j := range dupOf {
		if j >= 0 {
			results[i] = results[j]
			results[i].Duplicate = true
		}
	}
	return results, jobs, pending, nil
}

// targets returns the active webhooks of an instance, or ENOTFOUND naming
// the tenant or instance that does not exist. It locks them against a
// deactivation until q's transaction ends (see forKeyShare): without the
// lock, on PostgreSQL, a deactivation committing between this read and
// the insert of the deliveries would cancel the open deliveries it saw
// and leave the new ones PENDING for an inactive webhook.
func (db *DB) targets(ctx context.Context, q q, k instanceKey) ([]*herald.Webhook, error) {
	if err := db.missing(ctx, q, k.tenant, k.instance); err != nil {
		return nil, err
	}
	rows, err := q.query(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE tenant = ? AND instance = ? AND active = 1 AND removed_at IS NULL
		ORDER BY id`+db.forKeyShare(), k.tenant, k.instance)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*herald.Webhook{}
	for rows.Next() {
		w, err := db.scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// seenKeys calls fn for each of keys an event of the instance already has.
func (db *DB) seenKeys(ctx context.Context, q q, k instanceKey, keys []string, fn func(string, herald.EventResult)) error {
	for chunk := range slices.Chunk(keys, 500) {
		args := append([]any{k.tenant, k.instance}, anys(chunk)...)
		rows, err := q.query(ctx, `SELECT idempotency_key, id, deliveries FROM events WHERE tenant = ? AND instance = ? AND idempotency_key IN (`+
			placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var key string
			var r herald.EventResult
			if err := rows.Scan(&key, &r.EventID, &r.Deliveries); err != nil {
				rows.Close()
				return err
			}
			fn(key, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

const eventCols = `id, tenant, instance, entity, subtype, source_id, source_name, patient_id, url, initiated_by,
	initiated_by_name, initiated_by_object_id, initiated_by_object_type, initiated_time, data, occurred_at,
	created_at, idempotency_key, deliveries, trace_parent`

var eventBatch = &batch{
	prefix: `INSERT INTO events (` + eventCols + `) VALUES `,
	row:    "(" + placeholders(20) + ")",
	ncols:  20,
	suffix: ` ON CONFLICT DO NOTHING RETURNING id`,
}

// insertEvents inserts events[fresh] and returns the IDs it inserted; a
// keyed event whose key another transaction committed meanwhile is skipped,
// not an error.
func (db *DB) insertEvents(ctx context.Context, q q, events []*herald.Event, fresh []int, results []herald.EventResult) (map[string]bool, error) {
	inserted := make(map[string]bool, len(fresh))
	args := make([]any, 0, len(fresh)*eventBatch.ncols)
	for _, i := range fresh {
		e := events[i]
		var data, occurred, key, traceParent any
		if len(e.Data) > 0 {
			data = string(e.Data)
		}
		if !e.OccurredAt.IsZero() {
			occurred = ms(e.OccurredAt)
		}
		if e.IdempotencyKey != "" {
			key = e.IdempotencyKey
		}
		if e.TraceParent != "" {
			traceParent = e.TraceParent
		}
		args = append(args, e.ID, e.TenantName, e.InstanceName, e.Entity, e.Subtype, e.SourceID, e.SourceName,
			e.PatientID, e.URL, e.InitiatedBy, e.InitiatedByName, e.InitiatedByObjectID, e.InitiatedByObjectType,
			e.InitiatedTime, data, occurred, ms(e.CreatedAt), key, results[i].Deliveries, traceParent)
	}
	err := db.batchRows(ctx, q, eventBatch, args, func(rows *sql.Rows) error {
		var id string
		err := rows.Scan(&id)
		inserted[id] = true
		return err
	})
	return inserted, err
}

var deliveryBatch = &batch{
	prefix: `INSERT INTO deliveries (id, event_id, tenant, instance, webhook_id, webhook_name, event_entity, event_subtype,
		status, due_at, claimed_by, created_at, updated_at, order_key, waiting_for, wait_reason) VALUES `,
	row:   "(" + placeholders(16) + ")",
	ncols: 16,
}

// insertDeliveries inserts one delivery per event and target. A delivery
// of an ordered webhook whose event has the key joins its key's chain
// (chain), HELD while the one before it is owed (herald.Hold); the others
// are placed as herald.HandoffRoom places them: claimed by h's owner (SENT
// until herald.LeaseEnd) while h has room for the webhook, else PENDING
// and due now. It returns the claimed ones as jobs and how many it left
// PENDING.
func (db *DB) insertDeliveries(ctx context.Context, q q, events []*herald.Event, targets [][]*herald.Webhook, h *queue.Handoff, now time.Time) ([]*queue.Job, int, error) {
	nowMS := ms(now)
	room := h.HandoffRoom()
	dlvIDs := make([][]string, len(targets))
	var links []*link
	linkOf := map[string]*link{}
	for i, ts := range targets {
		dlvIDs[i] = make([]string, len(ts))
		for j, t := range ts {
			dlvIDs[i][j] = db.ids.next("dlv", now)
			if key := herald.OrderKey(t.Ordering, events[i]); key != "" {
				l := &link{id: dlvIDs[i][j], webhookID: t.ID, key: key}
				links = append(links, l)
				linkOf[l.id] = l
			}
		}
	}
	if err := db.chain(ctx, q, links); err != nil {
		return nil, 0, err
	}
	var args []any
	var jobs []*queue.Job
	pending := 0
	for i, ts := range targets {
		e := events[i]
		for j, t := range ts {
			id := dlvIDs[i][j]
			var key, waitingFor any
			var st herald.DeliveryState
			if l := linkOf[id]; l != nil && l.prev != "" {
				key, waitingFor, st = l.key, l.prev, herald.Hold(herald.DeliveryState{}, l.prev)
			} else {
				if l != nil {
					key = l.key
				}
				st = room.Place(t, now)
			}
			var due any
			if st.DueAt != nil {
				due = ms(*st.DueAt)
			}
			switch st.Status {
			case herald.StatusSent:
				lease := *st.DueAt
				jobs = append(jobs, &queue.Job{
					Delivery: &herald.Delivery{ID: id, EventID: e.ID, Tenant: e.TenantName, Instance: e.InstanceName,
						Webhook: t.Name, EventEntity: e.Entity, EventSubtype: e.Subtype, Status: st.Status,
						NextAttemptAt: &lease, CreatedAt: fromMS(nowMS), UpdatedAt: fromMS(nowMS)},
					Event:      e,
					Webhook:    t,
					LeaseUntil: lease,
					ClaimedAt:  now,
				})
			case herald.StatusPending:
				pending++
			}
			args = append(args, id, e.ID, e.TenantName, e.InstanceName, t.ID, t.Name,
				e.Entity, e.Subtype, st.Status, due, st.Owner, nowMS, nowMS, key, waitingFor, st.WaitReason)
		}
	}
	if err := db.batchRows(ctx, q, deliveryBatch, args, nil); err != nil {
		return nil, 0, err
	}
	if len(jobs) == 0 {
		return nil, pending, nil
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.Webhook.ID)
	}
	slices.Sort(ids)
	secrets, err := db.secrets(ctx, q, slices.Compact(ids), now)
	if err != nil {
		return nil, 0, err
	}
	for _, j := range jobs {
		j.Secrets = herald.SigningKeys(secrets[j.Webhook.ID])
	}
	setSigners(jobs)
	return jobs, pending, nil
}

// GetEvent returns one event of an instance, or ENOTFOUND naming what is
// missing.
func (db *DB) GetEvent(ctx context.Context, tenant, instance, id string) (*herald.Event, error) {
	r := db.reader()
	evs, err := db.events(ctx, r, []string{id})
	if err == nil {
		if e := evs[id]; e != nil && e.TenantName == tenant && e.InstanceName == instance {
			return e, nil
		}
		if err = db.missing(ctx, r, tenant, instance); err == nil {
			err = herald.Errorf(herald.ENOTFOUND, "event %q not found in instance %q of tenant %q.", id, instance, tenant)
		}
	}
	return nil, db.wrap("get event", err)
}

// events loads events by ID.
func (db *DB) events(ctx context.Context, q q, ids []string) (map[string]*herald.Event, error) {
	out := make(map[string]*herald.Event, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		in, args := inList(db, chunk)
		rows, err := q.query(ctx, `SELECT `+eventCols+` FROM events WHERE id IN (`+in+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var e herald.Event
			var data, key, traceParent sql.NullString
			var occurred sql.NullInt64
			var created int64
			var deliveries int
			if err := rows.Scan(&e.ID, &e.TenantName, &e.InstanceName, &e.Entity, &e.Subtype, &e.SourceID, &e.SourceName,
				&e.PatientID, &e.URL, &e.InitiatedBy, &e.InitiatedByName, &e.InitiatedByObjectID, &e.InitiatedByObjectType,
				&e.InitiatedTime, &data, &occurred, &created, &key, &deliveries, &traceParent); err != nil {
				rows.Close()
				return nil, err
			}
			if data.Valid {
				e.Data = json.RawMessage(data.String)
			}
			if occurred.Valid {
				e.OccurredAt = fromMS(occurred.Int64)
			}
			e.CreatedAt = fromMS(created)
			e.IdempotencyKey = key.String
			e.TraceParent = traceParent.String
			out[e.ID] = &e
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
