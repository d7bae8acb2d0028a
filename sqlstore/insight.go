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

// WebhookStats returns every webhook of an instance, sorted by name, with
// its attempts since since, counted by the minute (attempt_counts: the
// minute since falls in counts whole), and its newest delivery (by
// deliveries_webhook). ENOTFOUND for an unknown instance.
func (db *DB) WebhookStats(ctx context.Context, tenant, instance string, since time.Time) ([]*herald.WebhookStats, error) {
	hooks, err := db.ListWebhooks(ctx, tenant, instance)
	if err != nil {
		return nil, err
	}
	r := db.reader()
	type counts struct{ attempts, succeeded int }
	byName := map[string]counts{}
	rows, err := r.query(ctx, `SELECT w.name, SUM(c.delivered + c.rejected + c.unreachable), SUM(c.delivered)
		FROM attempt_counts c JOIN webhooks w ON w.id = c.webhook_id
		WHERE w.tenant = ? AND w.instance = ? AND w.removed_at IS NULL AND c.minute >= ?
		GROUP BY w.name`, tenant, instance, ms(since)/60000)
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
// in buckets of step, every bucket present. Attempts are counted by the
// minute (attempt_counts), so step is a whole number of minutes, and a
// minute goes whole to the bucket it starts in.
func (db *DB) DeliveryTimeline(ctx context.Context, tenant, instance, webhook string, from, to time.Time, step time.Duration) ([]herald.TimelineBucket, error) {
	if step < time.Minute || step%time.Minute != 0 {
		return nil, herald.FieldErrorf("step", "step must be a whole number of minutes (attempts are counted by the minute); it is %s.", step)
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
	w, err := db.GetWebhook(ctx, tenant, instance, webhook)
	if err != nil {
		return nil, err
	}
	out := make([]herald.TimelineBucket, n)
	for i := range out {
		out[i].Start = time.UnixMilli(fromMS + int64(i)*stepMS).UTC()
	}
	// Buckets are counted in minutes from the minute from falls in; the
	// database sums them, so a busy webhook's counts are not shipped to
	// us one row each.
	fromMin, toMin, stepMin := fromMS/60000, (toMS+59999)/60000, stepMS/60000
	rows, err := db.reader().query(ctx, `SELECT (c.minute - ?) / ? AS bucket, SUM(c.delivered), SUM(c.rejected), SUM(c.unreachable)
		FROM attempt_counts c
		WHERE c.webhook_id = ? AND c.minute >= ? AND c.minute < ?
		GROUP BY bucket`, fromMin, stepMin, w.ID, fromMin, toMin)
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
	limit := pageSize(eq.Limit)
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
