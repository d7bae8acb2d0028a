package sqlstore

import "context"

// RetryWebhookNow makes the webhook's RETRYING deliveries due now, keeping
// their attempts, retry windows and wait reasons; see
// herald.WebhookService. Deliveries in flight (SENT: due_at is their
// lease) are left alone.
func (db *DB) RetryWebhookNow(ctx context.Context, tenant, instance, name string) (int, error) {
	var n int64
	err := db.tx(ctx, func(q q) error {
		w, err := db.getWebhook(ctx, q, tenant, instance, name, true)
		if err != nil {
			return err
		}
		now := ms(db.now())
		res, err := q.exec(ctx, `UPDATE deliveries SET due_at = ?, updated_at = ?
			WHERE webhook_id = ? AND due_at > ? AND status = 'RETRYING'`,
			now, now, w.ID, now)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.notify(ctx, q)
	})
	if err != nil {
		return 0, db.wrap("retry webhook now", err)
	}
	if n > 0 {
		db.wake()
	}
	return int(n), nil
}
