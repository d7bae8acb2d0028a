-- Fewer B-tree writes per delivery (docs/decisions/0014).
--
-- events, deliveries and attempts are made anew: on SQLite as WITHOUT ROWID
-- tables, clustered on their primary keys, so an event or a delivery is one
-- B-tree entry instead of a row plus an autoindex entry, and is found by
-- its id in one descent (the migration runner drops WITHOUT ROWID on PostgreSQL). The
-- first attempt moves into the delivery row (attempt1_*; NULL until it is
-- made): most deliveries have exactly one attempt, which then writes no row
-- of its own. attempts keeps the later ones (n >= 2).
--
-- The new tables declare no foreign keys: checking them cost every delivery
-- two lookups (its event, its webhook) and every attempt one, on
-- PostgreSQL a trigger and a row lock each, and the store keeps the
-- references itself: a delivery is made only in its event's transaction,
-- for a webhook read under lock, and webhooks are never deleted; an attempt
-- is written only for a delivery locked in the same transaction; and
-- deletions take the attempts before their deliveries and the deliveries
-- before their events (sqlstore/maintenance.go).
--
-- Every delivery is copied with its id, state, lease (due_at, claimed_by)
-- and history: what was owed stays owed. The new tables are filled before
-- the old ones go, and the renames make them the only ones, in this
-- migration's transaction.
CREATE TABLE events_v11 (
    id                       TEXT COLLATE "C" PRIMARY KEY,
    tenant                   TEXT COLLATE "C" NOT NULL,
    instance                 TEXT COLLATE "C" NOT NULL,
    entity                   TEXT NOT NULL,
    subtype                  TEXT NOT NULL,
    source_id                TEXT NOT NULL,
    source_name              TEXT NOT NULL,
    patient_id               TEXT NOT NULL,
    url                      TEXT NOT NULL,
    initiated_by             TEXT NOT NULL,
    initiated_by_name        TEXT NOT NULL,
    initiated_by_object_id   TEXT NOT NULL,
    initiated_by_object_type TEXT NOT NULL,
    initiated_time           TEXT NOT NULL,
    data                     TEXT,
    occurred_at              BIGINT,
    created_at               BIGINT NOT NULL,
    idempotency_key          TEXT COLLATE "C",
    deliveries               INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO events_v11 (id, tenant, instance, entity, subtype, source_id, source_name, patient_id, url, initiated_by,
    initiated_by_name, initiated_by_object_id, initiated_by_object_type, initiated_time, data, occurred_at,
    created_at, idempotency_key, deliveries)
SELECT id, tenant, instance, entity, subtype, source_id, source_name, patient_id, url, initiated_by,
    initiated_by_name, initiated_by_object_id, initiated_by_object_type, initiated_time, data, occurred_at,
    created_at, idempotency_key, deliveries
FROM events;

CREATE TABLE deliveries_v11 (
    id                     TEXT COLLATE "C" PRIMARY KEY,
    event_id               TEXT COLLATE "C" NOT NULL,
    tenant                 TEXT COLLATE "C" NOT NULL,
    instance               TEXT COLLATE "C" NOT NULL,
    webhook_id             TEXT COLLATE "C" NOT NULL,
    webhook_name           TEXT COLLATE "C" NOT NULL,
    event_entity           TEXT COLLATE "C" NOT NULL,
    event_subtype          TEXT COLLATE "C" NOT NULL,
    status                 TEXT COLLATE "C" NOT NULL,
    attempt_count          INTEGER NOT NULL DEFAULT 0,
    due_at                 BIGINT,
    claimed_by             TEXT NOT NULL DEFAULT '',
    wait_reason            TEXT NOT NULL DEFAULT '',
    first_attempt_at       BIGINT,
    last_status_code       INTEGER NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    window_start           INTEGER NOT NULL DEFAULT 0,
    attempt1_started_at    BIGINT,
    attempt1_duration_ms   BIGINT,
    attempt1_status_code   INTEGER,
    attempt1_response_body TEXT,
    attempt1_error         TEXT
) WITHOUT ROWID;

INSERT INTO deliveries_v11 (id, event_id, tenant, instance, webhook_id, webhook_name, event_entity, event_subtype,
    status, attempt_count, due_at, claimed_by, wait_reason, first_attempt_at, last_status_code, created_at, updated_at,
    window_start, attempt1_started_at, attempt1_duration_ms, attempt1_status_code, attempt1_response_body, attempt1_error)
SELECT d.id, d.event_id, d.tenant, d.instance, d.webhook_id, d.webhook_name, d.event_entity, d.event_subtype,
    d.status, d.attempt_count, d.due_at, d.claimed_by, d.wait_reason, d.first_attempt_at, d.last_status_code, d.created_at, d.updated_at,
    d.window_start, a.started_at, a.duration_ms, a.status_code, a.response_body, a.error
FROM deliveries d LEFT JOIN attempts a ON a.delivery_id = d.id AND a.n = 1;

CREATE TABLE attempts_v11 (
    delivery_id   TEXT COLLATE "C" NOT NULL,
    n             INTEGER NOT NULL,
    started_at    BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    status_code   INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    error         TEXT NOT NULL,
    PRIMARY KEY (delivery_id, n)
) WITHOUT ROWID;

INSERT INTO attempts_v11 (delivery_id, n, started_at, duration_ms, status_code, response_body, error)
SELECT delivery_id, n, started_at, duration_ms, status_code, response_body, error FROM attempts WHERE n > 1;

DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
ALTER TABLE events_v11 RENAME TO events;
ALTER TABLE deliveries_v11 RENAME TO deliveries;
ALTER TABLE attempts_v11 RENAME TO attempts;

CREATE UNIQUE INDEX events_idempotency ON events (tenant, instance, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_source ON events (tenant, instance, source_id, id);
CREATE INDEX events_patient ON events (tenant, instance, patient_id, id);

-- Claiming takes the first due deliveries of each active webhook; every
-- open delivery (PENDING, RETRYING, SENT) is here, so it also finds the
-- SENT ones for the log.
CREATE INDEX deliveries_due ON deliveries (webhook_id, due_at) WHERE due_at IS NOT NULL;
-- Listing, newest first, by instance and by each common filter.
CREATE INDEX deliveries_instance ON deliveries (tenant, instance, id);
CREATE INDEX deliveries_webhook ON deliveries (tenant, instance, webhook_name, id);
CREATE INDEX deliveries_subtype ON deliveries (tenant, instance, event_subtype, id);
-- An event's deliveries (the log's event filter, erasure, retention). With
-- tenant and instance in it SQLite takes it for the event filter, not the
-- instance's history newest first.
CREATE INDEX deliveries_event ON deliveries (event_id, tenant, instance);
-- The status filter, for the statuses off the common path only: a
-- delivery handed off SENT and then DELIVERED never enters it. A query
-- names the status as a literal to use it (sqlstore/delivery.go,
-- statusFilter).
CREATE INDEX deliveries_status ON deliveries (tenant, instance, status, id)
    WHERE status = 'PENDING' OR status = 'RETRYING' OR status = 'FAILED' OR status = 'CANCELLED';
