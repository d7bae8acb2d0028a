package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/signature"
)

// webhookCols are the columns scanWebhook reads. url, headers,
// query_parameters and client_key (the private key of the webhook's TLS
// client certificate) are sealed (seal.go): scanWebhook opens them,
// UpdateWebhook and insertWebhook seal them.
const webhookCols = `id, tenant, instance, name, title, triggers, version, url, headers, query_parameters,
	payload, timeout_seconds, active, deactivated_reason, deactivated_at, created_at, updated_at,
	client_certificate, client_key, signing_algorithm, failing_since, consecutive_failures, ordering, rate_limit_per_second`

// scanWebhook reads a row of webhookCols, opening its sealed columns.
func (db *DB) scanWebhook(s interface{ Scan(...any) error }) (*herald.Webhook, error) {
	var w herald.Webhook
	var triggers, headers, params, payload, clientKey string
	var active int
	var deactivated, failing, rateLimit sql.NullInt64
	var created, updated int64
	if err := s.Scan(&w.ID, &w.Tenant, &w.Instance, &w.Name, &w.Title, &triggers, &w.Version, &w.URL,
		&headers, &params, &payload, &w.TimeoutSeconds, &active, &w.DeactivatedReason, &deactivated,
		&created, &updated, &w.ClientCertificate, &clientKey, &w.Signing.Algorithm,
		&failing, &w.Health.ConsecutiveFailures, &w.Ordering, &rateLimit); err != nil {
		return nil, err
	}
	var err error
	if w.URL, err = db.open(w.URL, "webhooks", "url", w.ID); err != nil {
		return nil, err
	}
	if headers, err = db.open(headers, "webhooks", "headers", w.ID); err != nil {
		return nil, err
	}
	if params, err = db.open(params, "webhooks", "query_parameters", w.ID); err != nil {
		return nil, err
	}
	if clientKey, err = db.open(clientKey, "webhooks", "client_key", w.ID); err != nil {
		return nil, err
	}
	w.ClientKey = herald.PrivateKeyPEM(clientKey)
	for _, f := range []struct {
		name string
		text string
		v    any
	}{{"triggers", triggers, &w.Triggers}, {"headers", headers, &w.Headers},
		{"queryParameters", params, &w.QueryParameters}, {"payload", payload, &w.Payload}} {
		if err := json.Unmarshal([]byte(f.text), f.v); err != nil {
			return nil, fmt.Errorf("webhook %s: %s: %w", w.ID, f.name, err)
		}
	}
	w.Active = active != 0
	if rateLimit.Valid {
		n := int(rateLimit.Int64)
		w.RateLimitPerSecond = &n
	}
	w.DeactivatedAt = nullMS(deactivated)
	w.Health.FailingSince = nullMS(failing)
	w.CreatedAt, w.UpdatedAt = fromMS(created), fromMS(updated)
	return &w, nil
}

// ListWebhooks returns the webhooks of an instance sorted by name; ENOTFOUND
// for an unknown instance.
func (db *DB) ListWebhooks(ctx context.Context, tenant, instance string) ([]*herald.Webhook, error) {
	r := db.reader()
	rows, err := r.query(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE tenant = ? AND instance = ? AND removed_at IS NULL ORDER BY name`, tenant, instance)
	if err != nil {
		return nil, db.wrap("list webhooks", err)
	}
	defer rows.Close()
	out := []*herald.Webhook{}
	for rows.Next() {
		w, err := db.scanWebhook(rows)
		if err != nil {
			return nil, db.wrap("list webhooks", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list webhooks", err)
	}
	if len(out) == 0 {
		if err := db.missing(ctx, r, tenant, instance); err != nil {
			return nil, db.wrap("list webhooks", err)
		}
	}
	return out, nil
}

// GetWebhook returns one webhook of an instance, or ENOTFOUND naming what is
// missing.
func (db *DB) GetWebhook(ctx context.Context, tenant, instance, name string) (*herald.Webhook, error) {
	w, err := db.getWebhook(ctx, db.reader(), tenant, instance, name, false)
	return w, db.wrap("get webhook", err)
}

func (db *DB) getWebhook(ctx context.Context, q q, tenant, instance, name string, lock bool) (*herald.Webhook, error) {
	query := `SELECT ` + webhookCols + ` FROM webhooks WHERE tenant = ? AND instance = ? AND name = ? AND removed_at IS NULL`
	if lock {
		query += db.forUpdate()
	}
	w, err := db.scanWebhook(q.row(ctx, query, tenant, instance, name))
	if errors.Is(err, sql.ErrNoRows) {
		if err := db.missing(ctx, q, tenant, instance); err != nil {
			return nil, err
		}
		return nil, herald.Errorf(herald.ENOTFOUND, "webhook %q not found in instance %q of tenant %q.", name, instance, tenant)
	}
	return w, err
}

// UpdateWebhook merges upd into the webhook, validates the result, stores and
// returns it. EINVALID for a bad setting; EUNPROCESSABLE when it would clear
// the URL of an active webhook.
func (db *DB) UpdateWebhook(ctx context.Context, tenant, instance, name string, upd herald.WebhookUpdate) (*herald.Webhook, error) {
	var w *herald.Webhook
	err := db.tx(ctx, func(q q) error {
		var err error
		if w, err = db.getWebhook(ctx, q, tenant, instance, name, true); err != nil {
			return err
		}
		algorithm, ordering := w.Signing.AlgorithmOrDefault(), w.Ordering
		upd.Apply(w)
		if err := w.Validate(); err != nil {
			return err
		}
		if w.Active && w.URL == "" {
			return herald.Errorf(herald.EUNPROCESSABLE, "webhook %q is active; deactivate it before clearing its url.", name)
		}
		w.Signing.Algorithm = w.Signing.AlgorithmOrDefault()
		w.Ordering = herald.OrderingOrDefault(w.Ordering)
		if w.Ordering == herald.OrderingNone && ordering != herald.OrderingNone {
			if err := db.unholdAll(ctx, q, w); err != nil {
				return err
			}
		}
		if w.Signing.Algorithm != algorithm {
			// A key of the new kind; the old one keeps signing for the
			// grace, so receivers switch without dropping a request.
			if _, err := db.rotateKey(ctx, q, w, herald.DefaultSigningGrace); err != nil {
				return err
			}
		}
		w.UpdatedAt = db.now()
		headers, _ := json.Marshal(nonNil(w.Headers))
		params, _ := json.Marshal(nonNil(w.QueryParameters))
		w.Payload.PredefinedFields = nonNil(w.Payload.PredefinedFields)
		w.Payload.CustomFields = nonNil(w.Payload.CustomFields)
		payload, _ := json.Marshal(w.Payload)
		_, err = q.exec(ctx, `UPDATE webhooks SET url = ?, headers = ?, query_parameters = ?, payload = ?, timeout_seconds = ?,
			client_certificate = ?, client_key = ?, signing_algorithm = ?, ordering = ?, rate_limit_per_second = ?, updated_at = ? WHERE id = ?`,
			db.seal(w.URL, "webhooks", "url", w.ID), db.seal(string(headers), "webhooks", "headers", w.ID),
			db.seal(string(params), "webhooks", "query_parameters", w.ID), string(payload), w.TimeoutSeconds,
			w.ClientCertificate, db.seal(string(w.ClientKey), "webhooks", "client_key", w.ID), w.Signing.Algorithm, w.Ordering, w.RateLimitPerSecond, ms(w.UpdatedAt), w.ID)
		return err
	})
	if err != nil {
		return nil, db.wrap("update webhook", err)
	}
	db.wake() // the deliveries it released, if ordering was set to none
	return w, nil
}

// nonNil keeps lists "[]" rather than "null" in storage and in the API.
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// ActivateWebhook makes a webhook receive events from now on, with a clean
// failure record. EUNPROCESSABLE when it has no URL.
func (db *DB) ActivateWebhook(ctx context.Context, tenant, instance, name string) (*herald.Webhook, error) {
	var w *herald.Webhook
	err := db.tx(ctx, func(q q) error {
		var err error
		if w, err = db.getWebhook(ctx, q, tenant, instance, name, true); err != nil {
			return err
		}
		if w.URL == "" {
			return herald.Errorf(herald.EUNPROCESSABLE, "webhook %q has no url; set one with PATCH before activating.", name)
		}
		if w.Active {
			return nil
		}
		w.Active, w.DeactivatedReason, w.DeactivatedAt, w.Health = true, "", nil, herald.WebhookHealthRecord{}
		w.UpdatedAt = db.now()
		if _, err := q.exec(ctx, `UPDATE webhooks SET active = 1, deactivated_reason = '', deactivated_at = NULL,
			failing_since = NULL, last_failed_at = NULL, failing_reported = 0, consecutive_failures = 0, updated_at = ? WHERE id = ?`, ms(w.UpdatedAt), w.ID); err != nil {
			return err
		}
		return db.notify(ctx, q)
	})
	if err != nil {
		return nil, db.wrap("activate webhook", err)
	}
	db.wake()
	return w, nil
}

// DeactivateWebhook stops a webhook: its PENDING, RETRYING and SENT
// deliveries become CANCELLED and no new ones are made. reason defaults to
// "deactivated by admin".
func (db *DB) DeactivateWebhook(ctx context.Context, tenant, instance, name, reason string) (*herald.Webhook, error) {
	if reason == "" {
		reason = "deactivated by admin"
	}
	var w *herald.Webhook
	err := db.tx(ctx, func(q q) error {
		var err error
		if w, err = db.getWebhook(ctx, q, tenant, instance, name, true); err != nil {
			return err
		}
		now := db.now()
		if err := db.deactivate(ctx, q, w.ID, reason, now); err != nil {
			return err
		}
		w.Active, w.DeactivatedReason, w.DeactivatedAt, w.UpdatedAt = false, reason, &now, now
		return nil
	})
	if err != nil {
		return nil, db.wrap("deactivate webhook", err)
	}
	db.wake() // its operations event, if one was made
	return w, nil
}

// deactivate turns a webhook off and cancels its open deliveries, which are
// exactly those with a due_at (herald.Cancel, for all of them at once). It
// first locks the webhook FOR UPDATE, on PostgreSQL, which waits for the
// ingests that read it as active (see forKeyShare): the cancelling
// statement then sees their deliveries. A webhook that was active makes a
// webhook.deactivated operations event with the reason, in the same
// transaction; the caller wakes the claim loop after the commit.
func (db *DB) deactivate(ctx context.Context, q q, id, reason string, now time.Time) error {
	var ow herald.OpsWebhook
	var active int
	if err := q.row(ctx, `SELECT tenant, instance, name, active FROM webhooks WHERE id = ?`+db.forUpdate(), id).Scan(
		&ow.Tenant, &ow.Instance, &ow.Webhook, &active); err != nil {
		return err
	}
	if _, err := q.exec(ctx, `UPDATE webhooks SET active = 0, deactivated_reason = ?, deactivated_at = ?, updated_at = ? WHERE id = ?`,
		reason, ms(now), ms(now), id); err != nil {
		return err
	}
	if _, err := q.exec(ctx, `UPDATE deliveries SET status = 'CANCELLED', due_at = NULL, claimed_by = '', wait_reason = ?, updated_at = ?
		WHERE webhook_id = ? AND due_at IS NOT NULL`, herald.CancelReason(reason), ms(now), id); err != nil {
		return err
	}
	// The HELD ones too (herald.Cancel): nothing is left waiting for a
	// delivery that will not be sent.
	if _, err := q.exec(ctx, `UPDATE deliveries SET status = 'CANCELLED', wait_reason = ?, updated_at = ?
		WHERE tenant = ? AND instance = ? AND status = 'HELD' AND webhook_id = ?`, herald.CancelReason(reason), ms(now), ow.Tenant, ow.Instance, id); err != nil {
		return err
	}
	if active == 0 {
		return nil
	}
	_, err := db.operationsEvent(ctx, q, herald.OperationsEvent(herald.OpsWebhookDeactivated, ow,
		map[string]any{"reason": reason, "deactivatedAt": now.UTC().Format(herald.TimestampFormat)}, now), now)
	return err
}

// WebhookSecrets returns the current secret first, then rotated-out secrets
// still within their grace period, newest first.
func (db *DB) WebhookSecrets(ctx context.Context, tenant, instance, name string) ([]herald.WebhookSecret, error) {
	r := db.reader()
	w, err := db.getWebhook(ctx, r, tenant, instance, name, false)
	if err != nil {
		return nil, db.wrap("webhook secrets", err)
	}
	secrets, err := db.secrets(ctx, r, []string{w.ID}, db.now())
	if err != nil {
		return nil, db.wrap("webhook secrets", err)
	}
	return secrets[w.ID], nil
}

// setSigners gives each job a signer holding its Secrets decoded: one per
// webhook of the batch, so a sender decodes no key per request.
func setSigners(jobs []*queue.Job) {
	signers := map[string]*signature.Signer{}
	for _, j := range jobs {
		if j.Webhook == nil {
			continue
		}
		s := signers[j.Webhook.ID]
		if s == nil {
			s = signature.NewSigner(j.Secrets)
			signers[j.Webhook.ID] = s
		}
		j.Signer = s
	}
}

// secrets returns the usable secrets of webhooks at now, current first.
func (db *DB) secrets(ctx context.Context, q q, ids []string, now time.Time) (map[string][]herald.WebhookSecret, error) {
	out := map[string][]herald.WebhookSecret{}
	if len(ids) == 0 {
		return out, nil
	}
	in, args := inList(db, ids)
	rows, err := q.query(ctx, `SELECT webhook_id, secret, created_at, expires_at FROM webhook_secrets
		WHERE webhook_id IN (`+in+`) AND (expires_at IS NULL OR expires_at > ?)`, append(args, ms(now))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	created := map[string]int64{}
	for rows.Next() {
		var id string
		var s herald.WebhookSecret
		var c int64
		var exp sql.NullInt64
		if err := rows.Scan(&id, &s.Secret, &c, &exp); err != nil {
			return nil, err
		}
		var err error
		if s.Secret, err = db.open(s.Secret, "webhook_secrets", "secret", id); err != nil {
			return nil, err
		}
		s.ExpiresAt = nullMS(exp)
		created[s.Secret] = c
		out[id] = append(out[id], s)
	}
	for _, list := range out {
		sort.SliceStable(list, func(i, j int) bool {
			if (list[i].ExpiresAt == nil) != (list[j].ExpiresAt == nil) {
				return list[i].ExpiresAt == nil
			}
			return created[list[i].Secret] > created[list[j].Secret]
		})
	}
	return out, rows.Err()
}

// RotateWebhookSecret makes a new current key of the webhook's signing
// algorithm and returns it (a whsec_ secret, or a whsk_ ed25519 private
// key); the old ones keep signing for grace (zero: they stop at once).
func (db *DB) RotateWebhookSecret(ctx context.Context, tenant, instance, name string, grace time.Duration) (string, error) {
	var key string
	err := db.tx(ctx, func(q q) error {
		w, err := db.getWebhook(ctx, q, tenant, instance, name, true)
		if err != nil {
			return err
		}
		key, err = db.rotateKey(ctx, q, w, grace)
		return err
	})
	if err != nil {
		return "", db.wrap("rotate webhook secret", err)
	}
	return key, nil
}

// rotateKey stores a new current key of w's signing algorithm, sealed,
// and ends the old keys' signing at now+grace (never later than they
// would have ended anyway). It returns the new key.
func (db *DB) rotateKey(ctx context.Context, q q, w *herald.Webhook, grace time.Duration) (string, error) {
	key := newSigningKey(w.Signing.AlgorithmOrDefault())
	now := db.now()
	// The replaced key signs until the end of the grace; so do the ones
	// replaced earlier, but never longer: a rotation without grace (a
	// leaked key) stops every old key at once.
	until := ms(now.Add(max(grace, 0)))
	if _, err := q.exec(ctx, `UPDATE webhook_secrets SET expires_at = ?
		WHERE webhook_id = ? AND (expires_at IS NULL OR expires_at > ?)`, until, w.ID, until); err != nil {
		return "", err
	}
	_, err := q.exec(ctx, `INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES (?, ?, ?)`,
		w.ID, db.seal(key, "webhook_secrets", "secret", w.ID), ms(now))
	return key, err
}

// newSigningKey makes a key for a signing algorithm: a whsec_ secret for
// hmac-sha256, a whsk_ ed25519 private key for ed25519.
func newSigningKey(algorithm string) string {
	if algorithm == herald.SigningEd25519 {
		private, _ := signature.NewKeyPair()
		return private
	}
	return herald.NewSigningSecret()
}

// RecoverWebhook re-queues the webhook's FAILED and CANCELLED deliveries
// created at or after since as PENDING, due now, with a fresh retry window.
// For a webhook with ordering, the recovered deliveries of each key join
// its chain again, oldest first, behind what is owed of the key (chain):
// one of them at a time goes, as for new ones. EUNPROCESSABLE if the
// webhook is inactive.
func (db *DB) RecoverWebhook(ctx context.Context, tenant, instance, name string, since time.Time) (int, error) {
	var n int64
	err := db.tx(ctx, func(q q) error {
		w, err := db.getWebhook(ctx, q, tenant, instance, name, true)
		if err != nil {
			return err
		}
		if !w.Active {
			return herald.Errorf(herald.EUNPROCESSABLE, "webhook %q is inactive; activate it before recovering its deliveries.", name)
		}
		now := ms(db.now())
		// The name index narrows the scan to this webhook's deliveries
		// since the time; IDs sort by creation time.
		const which = ` WHERE tenant = ? AND instance = ? AND webhook_name = ? AND id >= ? AND webhook_id = ?
			AND status IN ('FAILED', 'CANCELLED') AND created_at >= ?`
		args := []any{tenant, instance, name, idFloor("dlv", since), w.ID, ms(since)}
		var links []*link
		if herald.OrderingOrDefault(w.Ordering) != herald.OrderingNone {
			rows, err := q.query(ctx, `SELECT id, order_key FROM deliveries`+which+` AND order_key IS NOT NULL ORDER BY id`, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				l := &link{webhookID: w.ID}
				if err := rows.Scan(&l.id, &l.key); err != nil {
					rows.Close()
					return err
				}
				links = append(links, l)
			}
			if err := rows.Close(); err != nil {
				return err
			}
		}
		// herald.Recover, for many deliveries at once.
		res, err := q.exec(ctx, `UPDATE deliveries SET status = 'PENDING', due_at = ?, first_attempt_at = NULL, window_start = attempt_count,
			claimed_by = '', wait_reason = 'recovered', updated_at = ?`+which, append([]any{now, now}, args...)...)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if err := db.chain(ctx, q, links); err != nil {
			return err
		}
		for _, l := range links {
			if l.prev == "" {
				continue
			}
			// herald.Hold, keeping the delivery's attempts on record.
			if _, err := q.exec(ctx, `UPDATE deliveries SET status = 'HELD', due_at = NULL, waiting_for = ?, wait_reason = ? WHERE id = ?`,
				l.prev, herald.HeldReason(l.prev), l.id); err != nil {
				return err
			}
		}
		return db.notify(ctx, q)
	})
	if err != nil {
		return 0, db.wrap("recover webhook", err)
	}
	if n > 0 {
		db.wake()
	}
	return int(n), nil
}
