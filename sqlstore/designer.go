package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/heraldhooks/herald"
)

// CreateDesignerWebhook adds a webhook to the tenant's draft. ENOTFOUND for
// an unknown tenant, ECONFLICT if the draft has the name already.
func (db *DB) CreateDesignerWebhook(ctx context.Context, tenant string, w *herald.DesignerWebhook) error {
	if err := w.Validate(); err != nil {
		return err
	}
	now := db.now()
	err := db.tx(ctx, func(q q) error {
		if err := db.tenantExists(ctx, q, tenant); err != nil {
			return err
		}
		triggers, _ := json.Marshal(w.Triggers)
		_, err := q.exec(ctx, `INSERT INTO designer_webhooks (tenant, name, title, triggers, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			tenant, w.Name, w.Title, string(triggers), ms(now), ms(now))
		if isUnique(err) {
			return herald.Errorf(herald.ECONFLICT, "designer webhook %q already exists in tenant %q.", w.Name, tenant)
		}
		return err
	})
	if err != nil {
		return db.wrap("create designer webhook", err)
	}
	w.CreatedAt, w.UpdatedAt = now, now
	return nil
}

const designerCols = `name, title, triggers, created_at, updated_at`

func scanDesigner(s interface{ Scan(...any) error }) (*herald.DesignerWebhook, error) {
	var w herald.DesignerWebhook
	var triggers string
	var created, updated int64
	if err := s.Scan(&w.Name, &w.Title, &triggers, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(triggers), &w.Triggers); err != nil {
		return nil, fmt.Errorf("designer webhook %s: triggers: %w", w.Name, err)
	}
	w.CreatedAt, w.UpdatedAt = fromMS(created), fromMS(updated)
	return &w, nil
}

// GetDesignerWebhook returns a webhook of the draft, or ENOTFOUND.
func (db *DB) GetDesignerWebhook(ctx context.Context, tenant, name string) (*herald.DesignerWebhook, error) {
	r := db.reader()
	w, err := db.getDesigner(ctx, r, tenant, name, false)
	return w, db.wrap("get designer webhook", err)
}

func (db *DB) getDesigner(ctx context.Context, q q, tenant, name string, lock bool) (*herald.DesignerWebhook, error) {
	query := `SELECT ` + designerCols + ` FROM designer_webhooks WHERE tenant = ? AND name = ?`
	if lock {
		query += db.forUpdate()
	}
	w, err := scanDesigner(q.row(ctx, query, tenant, name))
	if errors.Is(err, sql.ErrNoRows) {
		if err := db.tenantExists(ctx, q, tenant); err != nil {
			return nil, err
		}
		return nil, herald.Errorf(herald.ENOTFOUND, "designer webhook %q not found in tenant %q.", name, tenant)
	}
	return w, err
}

// ListDesignerWebhooks returns the draft's webhooks sorted by name; ENOTFOUND
// for an unknown tenant.
func (db *DB) ListDesignerWebhooks(ctx context.Context, tenant string) ([]*herald.DesignerWebhook, error) {
	r := db.reader()
	out, err := db.listDesigner(ctx, r, tenant)
	if err == nil && len(out) == 0 {
		err = db.tenantExists(ctx, r, tenant)
	}
	if err != nil {
		return nil, db.wrap("list designer webhooks", err)
	}
	return out, nil
}

func (db *DB) listDesigner(ctx context.Context, q q, tenant string) ([]*herald.DesignerWebhook, error) {
	rows, err := q.query(ctx, `SELECT `+designerCols+` FROM designer_webhooks WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*herald.DesignerWebhook
	for rows.Next() {
		w, err := scanDesigner(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// UpdateDesignerWebhook merges upd into a draft webhook, validates the
// result, stores and returns it.
func (db *DB) UpdateDesignerWebhook(ctx context.Context, tenant, name string, upd herald.DesignerWebhookUpdate) (*herald.DesignerWebhook, error) {
	var w *herald.DesignerWebhook
	err := db.tx(ctx, func(q q) error {
		var err error
		if w, err = db.getDesigner(ctx, q, tenant, name, true); err != nil {
			return err
		}
		if upd.Title != nil {
			w.Title = *upd.Title
		}
		if upd.Triggers != nil {
			w.Triggers = *upd.Triggers
		}
		if err := w.Validate(); err != nil {
			return err
		}
		w.UpdatedAt = db.now()
		triggers, _ := json.Marshal(w.Triggers)
		_, err = q.exec(ctx, `UPDATE designer_webhooks SET title = ?, triggers = ?, updated_at = ? WHERE tenant = ? AND name = ?`,
			w.Title, string(triggers), ms(w.UpdatedAt), tenant, name)
		return err
	})
	if err != nil {
		return nil, db.wrap("update designer webhook", err)
	}
	return w, nil
}

// DeleteDesignerWebhook removes a webhook from the draft; instances keep it
// until the draft is published. ENOTFOUND when the draft has no such webhook.
func (db *DB) DeleteDesignerWebhook(ctx context.Context, tenant, name string) error {
	w := q{db, db.write}
	res, err := w.exec(ctx, `DELETE FROM designer_webhooks WHERE tenant = ? AND name = ?`, tenant, name)
	if err != nil {
		return db.wrap("delete designer webhook", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if err := db.tenantExists(ctx, w, tenant); err != nil {
			return db.wrap("delete designer webhook", err)
		}
		return herald.Errorf(herald.ENOTFOUND, "designer webhook %q not found in tenant %q.", name, tenant)
	}
	return nil
}

// Draft returns the changes of the draft against the last published version,
// sorted by name; empty when there are none.
func (db *DB) Draft(ctx context.Context, tenant string) ([]herald.DraftChange, error) {
	r := db.reader()
	if err := db.tenantExists(ctx, r, tenant); err != nil {
		return nil, db.wrap("draft", err)
	}
	changes, _, err := db.draft(ctx, r, tenant)
	if err != nil {
		return nil, db.wrap("draft", err)
	}
	return changes, nil
}

// draft diffs the draft against the latest version, which it also returns
// (nil before the first publish).
func (db *DB) draft(ctx context.Context, q q, tenant string) ([]herald.DraftChange, *herald.DesignerVersion, error) {
	draft, err := db.listDesigner(ctx, q, tenant)
	if err != nil {
		return nil, nil, err
	}
	latest, err := db.latestVersion(ctx, q, tenant)
	if err != nil {
		return nil, nil, err
	}
	published := map[string]herald.DesignerWebhook{}
	if latest != nil {
		for _, w := range latest.Webhooks {
			published[w.Name] = w
		}
	}
	changes := []herald.DraftChange{}
	for _, w := range draft {
		p, ok := published[w.Name]
		switch {
		case !ok:
			changes = append(changes, herald.DraftChange{Action: "created", Name: w.Name, Webhook: w})
		case p.Title != w.Title || !slices.Equal(p.Triggers, w.Triggers):
			changes = append(changes, herald.DraftChange{Action: "updated", Name: w.Name, Webhook: w})
		}
		delete(published, w.Name)
	}
	for name := range published {
		changes = append(changes, herald.DraftChange{Action: "deleted", Name: name})
	}
	slices.SortFunc(changes, func(a, b herald.DraftChange) int {
		if a.Name < b.Name {
			return -1
		} else if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return changes, latest, nil
}

// latestVersion returns the tenant's latest published version with its
// webhooks, or nil before the first publish.
func (db *DB) latestVersion(ctx context.Context, q q, tenant string) (*herald.DesignerVersion, error) {
	var v herald.DesignerVersion
	var published int64
	var webhooks string
	err := q.row(ctx, `SELECT version, comment, published_at, published_by, webhooks FROM designer_versions WHERE tenant = ? ORDER BY version DESC LIMIT 1`, tenant).
		Scan(&v.Version, &v.Comment, &published, &v.PublishedBy, &webhooks)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	v.PublishedAt = fromMS(published)
	if err := json.Unmarshal([]byte(webhooks), &v.Webhooks); err != nil {
		return nil, fmt.Errorf("version %d: webhooks: %w", v.Version, err)
	}
	return &v, nil
}

// Publish snapshots the draft as the next version and applies it to every
// instance of the tenant, in one transaction. ECONFLICT when the draft has
// no changes.
func (db *DB) Publish(ctx context.Context, tenant, comment, by string) (*herald.DesignerVersion, error) {
	now := db.now()
	var v *herald.DesignerVersion
	err := db.tx(ctx, func(q q) error {
		// The tenant row lock serialises publishes (and instance creation)
		// of one tenant across nodes.
		var one int
		if err := q.row(ctx, `SELECT 1 FROM tenants WHERE name = ?`+db.forUpdate(), tenant).Scan(&one); err != nil {
			return notFound(err, "tenant %q not found.", tenant)
		}
		changes, latest, err := db.draft(ctx, q, tenant)
		if err != nil {
			return err
		}
		prev := 0
		if latest != nil {
			prev = latest.Version
		}
		if len(changes) == 0 {
			if prev == 0 {
				return herald.Errorf(herald.ECONFLICT, "nothing to publish: the draft has no webhooks yet.")
			}
			return herald.Errorf(herald.ECONFLICT, "nothing to publish: the draft has no changes since version %d.", prev)
		}
		draft, err := db.listDesigner(ctx, q, tenant)
		if err != nil {
			return err
		}
		v = &herald.DesignerVersion{Version: prev + 1, Comment: comment, PublishedAt: now, PublishedBy: by,
			Webhooks: make([]herald.DesignerWebhook, len(draft))}
		for i, w := range draft {
			v.Webhooks[i] = *w
		}
		snapshot, _ := json.Marshal(v.Webhooks)
		if _, err := q.exec(ctx, `INSERT INTO designer_versions (tenant, version, comment, published_at, published_by, webhooks) VALUES (?, ?, ?, ?, ?, ?)`,
			tenant, v.Version, comment, ms(now), by, string(snapshot)); err != nil {
			return err
		}
		instances, err := db.instanceNames(ctx, q, tenant)
		if err != nil {
			return err
		}
		for _, c := range changes {
			switch c.Action {
			case "created":
				for _, inst := range instances {
					if err := db.insertWebhook(ctx, q, tenant, inst, c.Webhook, v.Version, now); err != nil {
						return err
					}
				}
			case "updated":
				triggers, _ := json.Marshal(c.Webhook.Triggers)
				if _, err := q.exec(ctx, `UPDATE webhooks SET title = ?, triggers = ?, version = ?, updated_at = ? WHERE tenant = ? AND name = ? AND removed_at IS NULL`,
					c.Webhook.Title, string(triggers), v.Version, ms(now), tenant, c.Name); err != nil {
					return err
				}
			case "deleted":
				if err := db.removeWebhooks(ctx, q, tenant, c.Name, v.Version, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, db.wrap("publish", err)
	}
	db.wake() // the operations events of webhooks it removed, if any
	v.Webhooks = nil
	return v, nil
}

func (db *DB) instanceNames(ctx context.Context, q q, tenant string) ([]string, error) {
	rows, err := q.query(ctx, `SELECT name FROM instances WHERE tenant = ? AND name <> ? ORDER BY name`, tenant, herald.OperationsInstance)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// insertWebhook materialises a published designer webhook in an instance:
// inactive, without URL or client certificate (client_key, a credential,
// starts empty), with the default payload and a fresh secret.
func (db *DB) insertWebhook(ctx context.Context, q q, tenant, instance string, dw *herald.DesignerWebhook, version int, now time.Time) error {
	id := herald.NewID("wh", now)
	triggers, _ := json.Marshal(dw.Triggers)
	payload, _ := json.Marshal(herald.PayloadConfig{Format: herald.FormatWelkin,
		PredefinedFields: herald.DefaultPredefinedFields, CustomFields: []herald.NameValue{}})
	if _, err := q.exec(ctx, `INSERT INTO webhooks (id, tenant, instance, name, title, triggers, version, url, headers,
		query_parameters, payload, timeout_seconds, active, deactivated_reason, client_certificate, client_key, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '', ?, ?, ?)`,
		id, tenant, instance, dw.Name, dw.Title, string(triggers), version,
		db.seal("", "webhooks", "url", id), db.seal("[]", "webhooks", "headers", id), db.seal("[]", "webhooks", "query_parameters", id),
		string(payload), herald.DefaultTimeoutSeconds, db.seal("", "webhooks", "client_key", id), ms(now), ms(now)); err != nil {
		if isUnique(err) {
			return herald.Errorf(herald.ECONFLICT, "webhook %q already exists in instance %q of tenant %q.", dw.Name, instance, tenant)
		}
		return err
	}
	_, err := q.exec(ctx, `INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES (?, ?, ?)`,
		id, db.seal(herald.NewSigningSecret(), "webhook_secrets", "secret", id), ms(now))
	return err
}

// removeWebhooks deactivates a webhook deleted from the designer in every
// instance, cancelling its open deliveries, and marks it removed.
func (db *DB) removeWebhooks(ctx context.Context, q q, tenant, name string, version int, now time.Time) error {
	reason := fmt.Sprintf("removed from the designer in version %d", version)
	rows, err := q.query(ctx, `SELECT id FROM webhooks WHERE tenant = ? AND name = ? AND removed_at IS NULL`, tenant, name)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := db.deactivate(ctx, q, id, reason, now); err != nil {
			return err
		}
		if _, err := q.exec(ctx, `UPDATE webhooks SET removed_at = ?, version = ? WHERE id = ?`, ms(now), version, id); err != nil {
			return err
		}
	}
	return nil
}

// ListVersions returns the published versions, newest first, without their
// webhooks. ENOTFOUND for an unknown tenant.
func (db *DB) ListVersions(ctx context.Context, tenant string) ([]*herald.DesignerVersion, error) {
	r := db.reader()
	rows, err := r.query(ctx, `SELECT version, comment, published_at, published_by FROM designer_versions WHERE tenant = ? ORDER BY version DESC`, tenant)
	if err != nil {
		return nil, db.wrap("list versions", err)
	}
	defer rows.Close()
	out := []*herald.DesignerVersion{}
	for rows.Next() {
		var v herald.DesignerVersion
		var published int64
		if err := rows.Scan(&v.Version, &v.Comment, &published, &v.PublishedBy); err != nil {
			return nil, db.wrap("list versions", err)
		}
		v.PublishedAt = fromMS(published)
		out = append(out, &v)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list versions", err)
	}
	if len(out) == 0 {
		if err := db.tenantExists(ctx, r, tenant); err != nil {
			return nil, db.wrap("list versions", err)
		}
	}
	return out, nil
}
