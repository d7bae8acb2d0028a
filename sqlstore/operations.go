package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

// The operations webhook of a tenant is a webhooks row of its reserved
// instance herald.OperationsInstance, named herald.OperationsWebhookName,
// with the payload format herald.FormatOperations: the engine claims,
// signs, sends and retries its deliveries as any other's. Operations
// events are written by operationsEvent in the transaction of the change
// they report (see herald.OperationsEvent).

// SetOperationsWebhook creates or replaces the tenant's operations webhook,
// active, with r's URL and events. The first one, and one asked with
// r.RotateSecret, gets a new signing secret (returned once, in Secret);
// a rotation stops the old secret at once.
func (db *DB) SetOperationsWebhook(ctx context.Context, tenant string, r herald.OperationsWebhookRequest) (*herald.OperationsWebhook, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var out *herald.OperationsWebhook
	err := db.tx(ctx, func(q q) error {
		var one int
		if err := q.row(ctx, `SELECT 1 FROM tenants WHERE name = ?`+db.forUpdate(), tenant).Scan(&one); err != nil {
			return notFound(err, "tenant %q not found.", tenant)
		}
		now := db.now()
		if _, err := q.exec(ctx, `INSERT INTO instances (tenant, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			tenant, herald.OperationsInstance, ms(now)); err != nil {
			return err
		}
		triggers, _ := json.Marshal(herald.OperationsTriggers(r.Events))
		w, err := db.getWebhook(ctx, q, tenant, herald.OperationsInstance, herald.OperationsWebhookName, true)
		secret := ""
		switch {
		case herald.ErrorCode(err) == herald.ENOTFOUND:
			payload, _ := json.Marshal(herald.PayloadConfig{Format: herald.FormatOperations,
				PredefinedFields: []string{}, CustomFields: []herald.NameValue{}})
			id := herald.NewID("wh", now)
			if _, err := q.exec(ctx, `INSERT INTO webhooks (id, tenant, instance, name, title, triggers, version, url, headers,
				query_parameters, payload, timeout_seconds, active, deactivated_reason, client_certificate, client_key, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, 1, '', '', ?, ?, ?)`,
				id, tenant, herald.OperationsInstance, herald.OperationsWebhookName, "Operations events", string(triggers),
				db.seal(r.URL, "webhooks", "url", id), db.seal("[]", "webhooks", "headers", id), db.seal("[]", "webhooks", "query_parameters", id),
				string(payload), herald.DefaultTimeoutSeconds, db.seal("", "webhooks", "client_key", id), ms(now), ms(now)); err != nil {
				return err
			}
			secret = herald.NewSigningSecret()
			if _, err := q.exec(ctx, `INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES (?, ?, ?)`,
				id, db.seal(secret, "webhook_secrets", "secret", id), ms(now)); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			// Set again: active with a clean failure record, whatever
			// stopped it.
			if _, err := q.exec(ctx, `UPDATE webhooks SET url = ?, triggers = ?, active = 1, deactivated_reason = '', deactivated_at = NULL,
				failing_since = NULL, last_failed_at = NULL, consecutive_failures = 0, updated_at = ? WHERE id = ?`,
				db.seal(r.URL, "webhooks", "url", w.ID), string(triggers), ms(now), w.ID); err != nil {
				return err
			}
			if r.RotateSecret {
				secret = herald.NewSigningSecret()
				if _, err := q.exec(ctx, `UPDATE webhook_secrets SET expires_at = ? WHERE webhook_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
					ms(now), w.ID, ms(now)); err != nil {
					return err
				}
				if _, err := q.exec(ctx, `INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES (?, ?, ?)`,
					w.ID, db.seal(secret, "webhook_secrets", "secret", w.ID), ms(now)); err != nil {
					return err
				}
			}
		}
		if w, err = db.getWebhook(ctx, q, tenant, herald.OperationsInstance, herald.OperationsWebhookName, false); err != nil {
			return err
		}
		out = herald.OperationsView(w)
		out.Secret = secret
		return nil
	})
	if err != nil {
		return nil, db.wrap("set operations webhook", err)
	}
	return out, nil
}

// GetOperationsWebhook returns the tenant's operations webhook, without its
// secret; ENOTFOUND when none is set.
func (db *DB) GetOperationsWebhook(ctx context.Context, tenant string) (*herald.OperationsWebhook, error) {
	w, err := db.operationsWebhook(ctx, db.reader(), tenant, false)
	if err != nil {
		return nil, db.wrap("get operations webhook", err)
	}
	return herald.OperationsView(w), nil
}

// DeleteOperationsWebhook deactivates the tenant's operations webhook,
// cancelling its open deliveries, and removes it (the row stays for its
// deliveries' sake, as a webhook removed by a publication does).
func (db *DB) DeleteOperationsWebhook(ctx context.Context, tenant string) error {
	err := db.tx(ctx, func(q q) error {
		w, err := db.operationsWebhook(ctx, q, tenant, true)
		if err != nil {
			return err
		}
		now := db.now()
		if err := db.deactivate(ctx, q, w.ID, "operations webhook deleted", now); err != nil {
			return err
		}
		_, err = q.exec(ctx, `UPDATE webhooks SET removed_at = ? WHERE id = ?`, ms(now), w.ID)
		return err
	})
	return db.wrap("delete operations webhook", err)
}

// operationsWebhook reads the tenant's operations webhook; ENOTFOUND naming
// the tenant or saying none is set.
func (db *DB) operationsWebhook(ctx context.Context, q q, tenant string, lock bool) (*herald.Webhook, error) {
	query := `SELECT ` + webhookCols + ` FROM webhooks WHERE tenant = ? AND instance = ? AND name = ? AND removed_at IS NULL`
	if lock {
		query += db.forUpdate()
	}
	w, err := db.scanWebhook(q.row(ctx, query, tenant, herald.OperationsInstance, herald.OperationsWebhookName))
	if errors.Is(err, sql.ErrNoRows) {
		if err := db.tenantExists(ctx, q, tenant); err != nil {
			return nil, err
		}
		return nil, notFound(err, "tenant %q has no operations webhook; set one with PUT /v1/tenants/%s/operations-webhook.", tenant, tenant)
	}
	return w, err
}

// operationsEvent stores e (a herald.OperationsEvent; nil stores nothing)
// with one delivery to its tenant's operations webhook, PENDING and due
// now, in q's transaction, when that webhook is active and takes e's type.
// It returns how many deliveries it made (0 or 1); the caller wakes the
// claim loop after the commit when it made one. The operations webhook is
// read under the same share lock as any ingest's targets, so a deletion
// running at the same time waits for it or is seen.
func (db *DB) operationsEvent(ctx context.Context, q q, e *herald.Event, now time.Time) (int, error) {
	if e == nil {
		return 0, nil
	}
	w, err := db.scanWebhook(q.row(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE tenant = ? AND instance = ? AND name = ?
		AND active = 1 AND removed_at IS NULL`+db.forKeyShare(), e.TenantName, herald.OperationsInstance, herald.OperationsWebhookName))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	if !herald.MatchesAny(w.Triggers, e) {
		return 0, nil
	}
	e.ID = db.ids.next("evt", now)
	if _, err := db.insertEvents(ctx, q, []*herald.Event{e}, []int{0}, []herald.EventResult{{EventID: e.ID, Deliveries: 1}}); err != nil {
		return 0, err
	}
	var none *queue.Handoff
	if _, _, err := db.insertDeliveries(ctx, q, []*herald.Event{e}, [][]*herald.Webhook{{w}}, none, now); err != nil {
		return 0, err
	}
	return 1, db.notify(ctx, q)
}

// deliveriesFailed makes a delivery.failed operations event for each of
// ids, deliveries that gave up in this write (FAILED), whose new states are
// in open: the delivery's and its event's ids, its webhook, its last
// status code and how many attempts it made. It returns how many
// operations deliveries it made.
func (db *DB) deliveriesFailed(ctx context.Context, q q, ids []string, open map[string]*openDelivery, now time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	type failed struct {
		id, eventID string
		w           herald.OpsWebhook
	}
	var list []failed
	in, args := inList(db, ids)
	rows, err := q.query(ctx, `SELECT id, event_id, tenant, instance, webhook_name FROM deliveries WHERE id IN (`+in+`) ORDER BY id`, args...)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var f failed
		if err := rows.Scan(&f.id, &f.eventID, &f.w.Tenant, &f.w.Instance, &f.w.Webhook); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, f)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	made := 0
	for _, f := range list {
		d := open[f.id]
		e := herald.OperationsEvent(herald.OpsDeliveryFailed, f.w, map[string]any{"delivery": f.id, "event": f.eventID,
			"statusCode": d.LastStatusCode, "attempts": d.Attempts, "failedAt": now.UTC().Format(herald.TimestampFormat)}, now)
		n, err := db.operationsEvent(ctx, q, e, now)
		if err != nil {
			return 0, err
		}
		made += n
	}
	return made, nil
}

// webhooksRecovered makes a webhook.recovered operations event for each of
// ids, webhooks reported failing (failing_reported) that had a success in
// this write, and clears their report. It returns how many operations
// deliveries it made.
func (db *DB) webhooksRecovered(ctx context.Context, q q, ids []string, now time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var list []herald.OpsWebhook
	rows, err := q.query(ctx, `UPDATE webhooks SET failing_reported = 0 WHERE id IN (`+placeholders(len(ids))+`)
		RETURNING tenant, instance, name`, anys(ids)...)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var w herald.OpsWebhook
		if err := rows.Scan(&w.Tenant, &w.Instance, &w.Webhook); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, w)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	made := 0
	for _, w := range list {
		e := herald.OperationsEvent(herald.OpsWebhookRecovered, w,
			map[string]any{"recoveredAt": now.UTC().Format(herald.TimestampFormat)}, now)
		n, err := db.operationsEvent(ctx, q, e, now)
		if err != nil {
			return 0, err
		}
		made += n
	}
	return made, nil
}

// ReportFailing makes a webhook.failing operations event, in one
// transaction, for each active webhook (not an operations webhook) whose
// attempts have all failed since before failingSince and whose run of
// failures was not reported yet, and marks it reported (failing_reported).
// The next success clears the mark and makes webhook.recovered
// (recordAttempts); an activation clears it too.
func (db *DB) ReportFailing(ctx context.Context, failingSince time.Time) (int, error) {
	made := 0
	err := db.tx(ctx, func(q q) error {
		made = 0
		type failing struct {
			id    string
			w     herald.OpsWebhook
			since int64
		}
		var list []failing
		rows, err := q.query(ctx, `SELECT id, tenant, instance, name, failing_since FROM webhooks WHERE active = 1
			AND failing_since IS NOT NULL AND failing_since < ? AND failing_reported = 0 AND instance <> ? ORDER BY id`+db.forUpdate(),
			ms(failingSince), herald.OperationsInstance)
		if err != nil {
			return err
		}
		for rows.Next() {
			var f failing
			if err := rows.Scan(&f.id, &f.w.Tenant, &f.w.Instance, &f.w.Webhook, &f.since); err != nil {
				rows.Close()
				return err
			}
			list = append(list, f)
		}
		if err := rows.Close(); err != nil || len(list) == 0 {
			return err
		}
		now := db.now()
		for _, f := range list {
			if _, err := q.exec(ctx, `UPDATE webhooks SET failing_reported = 1 WHERE id = ?`, f.id); err != nil {
				return err
			}
			e := herald.OperationsEvent(herald.OpsWebhookFailing, f.w,
				map[string]any{"failingSince": fromMS(f.since).UTC().Format(herald.TimestampFormat)}, now)
			n, err := db.operationsEvent(ctx, q, e, now)
			if err != nil {
				return err
			}
			made += n
		}
		return nil
	})
	if err != nil {
		return 0, db.wrap("report failing webhooks", err)
	}
	if made > 0 {
		db.wake()
	}
	return made, nil
}
