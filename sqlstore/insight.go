package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
)

var _ herald.InsightService = (*DB)(nil)

// success2xx is the SQL condition for an attempt the receiver answered 2xx.
const success2xx = `a.status_code >= 200 AND a.status_code < 300`

// WebhookStats returns every webhook of an instance, sorted by name, with
// its attempts since since (by the attempts_started index) and its newest
// delivery (by deliveries_webhook). ENOTFOUND for an unknown instance.
func (db *DB) WebhookStats(ctx context.Context, tenant, instance string, since time.Time) ([]*herald.WebhookStats, error) {
	hooks, err := db.ListWebhooks(ctx, tenant, instance)
	if err != nil {
		return nil, err
	}
	r := db.reader()
	type counts struct{ attempts, succeeded int }
	byName := map[string]counts{}
	rows, err := r.query(ctx, `SELECT d.webhook_name, COUNT(*), SUM(CASE WHEN `+success2xx+` THEN 1 ELSE 0 END)
		FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
		WHERE a.started_at >= ? AND d.tenant = ? AND d.instance = ?
		GROUP BY d.webhook_name`, ms(since), tenant, instance)
	if err != nil {
		return nil, db.wrap("webhook stats", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var c counts
		if err := rows.Scan(&name, &c.attempts, &c.succeeded); err != nil {
			return nil, db.wrap("webhook stats", err)
		}
		byName[name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("webhook stats", err)
	}
	out := make([]*herald.WebhookStats, 0, len(hooks))
	for _, w := range hooks {
		c := byName[w.Name]
		st := &herald.WebhookStats{Webhook: w.Name, Since: fromMS(ms(since)), Attempts: c.attempts, Succeeded: c.succeeded}
		if c.attempts > 0 {
			rate := float64(c.succeeded) / float64(c.attempts)
			st.SuccessRate = &rate
		}
		d, _, err := scanDelivery(r.row(ctx, `SELECT `+deliveryCols+` FROM deliveries
			WHERE tenant = ? AND instance = ? AND webhook_name = ? ORDER BY id DESC LIMIT 1`, tenant, instance, w.Name))
		if err == nil {
			st.LastDelivery = d
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, db.wrap("webhook stats", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// DeliveryTimeline counts a webhook's attempts in [from, to) by outcome,
// in buckets of step, every bucket present.
func (db *DB) DeliveryTimeline(ctx context.Context, tenant, instance, webhook string, from, to time.Time, step time.Duration) ([]herald.TimelineBucket, error) {
	if step < time.Second {
		return nil, herald.FieldErrorf("step", "step must be at least one second; it is %s.", step)
	}
	if !to.After(from) {
		return nil, herald.FieldErrorf("to", "to (%s) must be after from (%s).", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	stepMS := step.Milliseconds()
	fromMS, toMS := ms(from), ms(to)
	n := int((toMS - fromMS + stepMS - 1) / stepMS)
	if n > herald.MaxTimelineBuckets {
		return nil, herald.FieldErrorf("step", "from %s to %s in steps of %s makes %d buckets; the limit is %d: choose a shorter range or a longer step.",
			from.Format(time.RFC3339), to.Format(time.RFC3339), step, n, herald.MaxTimelineBuckets)
	}
	if _, err := db.GetWebhook(ctx, tenant, instance, webhook); err != nil {
		return nil, err
	}
	out := make([]herald.TimelineBucket, n)
	for i := range out {
		out[i].Start = time.UnixMilli(fromMS + int64(i)*stepMS).UTC()
	}
	// The bucket is computed in SQL so that a busy webhook's attempts are
	// counted by the database, not shipped to us one row each.
	rows, err := db.reader().query(ctx, `SELECT (a.started_at - ?) / ? AS bucket,
			SUM(CASE WHEN `+success2xx+` THEN 1 ELSE 0 END),
			SUM(CASE WHEN a.status_code <> 0 AND NOT (`+success2xx+`) THEN 1 ELSE 0 END),
			SUM(CASE WHEN a.status_code = 0 THEN 1 ELSE 0 END)
		FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
		WHERE a.started_at >= ? AND a.started_at < ? AND d.tenant = ? AND d.instance = ? AND d.webhook_name = ?
		GROUP BY bucket`, fromMS, stepMS, fromMS, toMS, tenant, instance, webhook)
	if err != nil {
		return nil, db.wrap("delivery timeline", err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int64
		var b herald.TimelineBucket
		if err := rows.Scan(&i, &b.Delivered, &b.Rejected, &b.Unreachable); err != nil {
			return nil, db.wrap("delivery timeline", err)
		}
		if i >= 0 && i < int64(n) {
			b.Start = out[i].Start
			out[i] = b
		}
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("delivery timeline", err)
	}
	return out, nil
}

// FindEvents returns the events of an instance with the query's ID and/or
// source ID, newest first (by the events_source index for a source ID).
func (db *DB) FindEvents(ctx context.Context, eq herald.EventQuery) ([]*herald.Event, error) {
	if eq.ID == "" && eq.SourceID == "" {
		return nil, herald.FieldErrorf("sourceId", "Give an event id or a source id to find events by.")
	}
	limit := eq.Limit
	if limit <= 0 {
		limit = defaultPage
	}
	limit = min(limit, maxPage)
	where := []string{"tenant = ?", "instance = ?"}
	args := []any{eq.Tenant, eq.Instance}
	if eq.ID != "" {
		where = append(where, "id = ?")
		args = append(args, eq.ID)
	}
	if eq.SourceID != "" {
		where = append(where, "source_id = ?")
		args = append(args, eq.SourceID)
	}
	r := db.reader()
	ids, err := queryStrings(ctx, r, `SELECT id FROM events WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, db.wrap("find events", err)
	}
	if len(ids) == 0 {
		if err := db.missing(ctx, r, eq.Tenant, eq.Instance); err != nil {
			return nil, db.wrap("find events", err)
		}
		return []*herald.Event{}, nil
	}
	byID, err := db.events(ctx, r, ids)
	if err != nil {
		return nil, db.wrap("find events", err)
	}
	out := make([]*herald.Event, 0, len(ids))
	for _, id := range ids {
		if e := byID[id]; e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// PublishedVersion returns the latest designer version with its webhooks.
func (db *DB) PublishedVersion(ctx context.Context, tenant string) (*herald.DesignerVersion, error) {
	r := db.reader()
	v, err := db.latestVersion(ctx, r, tenant)
	if err == nil && v == nil {
		if err = db.tenantExists(ctx, r, tenant); err == nil {
			err = herald.Errorf(herald.ENOTFOUND, "tenant %q has not published its designer yet.", tenant)
		}
	}
	if err != nil {
		return nil, db.wrap("published version", err)
	}
	return v, nil
}
