-- Ordering per key (docs/decisions/0020-ordering-per-key.md).
--
-- webhooks.ordering is 'none', 'patient' or 'source'. A delivery of an
-- ordered webhook carries order_key, a hash of its event's patientId or
-- sourceId (herald.OrderKey; never the id itself), and, when it was made
-- behind an owed delivery of its key, waiting_for, that delivery's id:
-- the delivery is HELD, due at no time, until that one ends. waiting_for
-- stays once it is released, so the log still says what it waited for.
-- Both are NULL for the deliveries of webhooks without ordering.
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE deliveries ADD COLUMN order_key TEXT COLLATE "C";
ALTER TABLE deliveries ADD COLUMN waiting_for TEXT COLLATE "C";

-- The last delivery made for each key of each ordered webhook: the tail of
-- the key's chain. An ingest takes the row with an upsert, which on
-- PostgreSQL locks it until the ingest commits, so two nodes ingesting for
-- the same key make a chain, not two heads.
CREATE TABLE order_tails (
    webhook_id  TEXT COLLATE "C" NOT NULL,
    key_hash    TEXT COLLATE "C" NOT NULL,
    delivery_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (webhook_id, key_hash)
) WITHOUT ROWID;
-- The tails of deliveries being deleted (retention, erasure) go with them.
CREATE INDEX order_tails_delivery ON order_tails (delivery_id);

-- The HELD deliveries waiting for one that ended.
CREATE INDEX deliveries_waiting ON deliveries (waiting_for) WHERE status = 'HELD';

-- The status filter's index takes HELD too (the log's filter, and the
-- release of a webhook's held deliveries when its ordering is set to none).
DROP INDEX deliveries_status;
CREATE INDEX deliveries_status ON deliveries (tenant, instance, status, id)
    WHERE status = 'PENDING' OR status = 'RETRYING' OR status = 'FAILED' OR status = 'CANCELLED' OR status = 'HELD';
