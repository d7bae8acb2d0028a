-- Herald's schema, for SQLite and PostgreSQL alike.
--
-- Portable on purpose: times are BIGINT unix milliseconds, booleans are
-- INTEGER 0/1, lists are TEXT holding JSON, and IDs are TEXT made by
-- herald.NewID (no autoincrement). Key columns say COLLATE "C" so that
-- PostgreSQL compares them byte by byte, as SQLite's default BINARY
-- collation does: time-sortable IDs then sort by time on both. The
-- migration runner drops COLLATE "C" on SQLite, which has no collation of
-- that name and needs none.

CREATE TABLE tenants (
    name       TEXT COLLATE "C" PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE instances (
    tenant     TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    name       TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- tenant is '' for a platform client.
CREATE TABLE api_clients (
    name        TEXT COLLATE "C" PRIMARY KEY,
    tenant      TEXT COLLATE "C" NOT NULL,
    role        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX api_clients_tenant ON api_clients (tenant, name);

-- Deployment-wide values, such as the token signing key.
CREATE TABLE settings (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

-- The designer draft: what the next published version will be.
CREATE TABLE designer_webhooks (
    tenant     TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    name       TEXT COLLATE "C" NOT NULL,
    title      TEXT NOT NULL,
    triggers   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- Published versions; webhooks is the JSON snapshot of the draft.
CREATE TABLE designer_versions (
    tenant       TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    version      INTEGER NOT NULL,
    comment      TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    webhooks     TEXT NOT NULL,
    PRIMARY KEY (tenant, version)
);

-- A published webhook in one instance. removed_at is set when a publish
-- deleted it: the row stays for its deliveries' sake but no longer lists or
-- matches, and the name may be published again as a new row.
-- failing_since is the first failed attempt since the last success (NULL
-- while healthy); last_failed_at the latest failed attempt.
CREATE TABLE webhooks (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    tenant             TEXT COLLATE "C" NOT NULL,
    instance           TEXT COLLATE "C" NOT NULL,
    name               TEXT COLLATE "C" NOT NULL,
    title              TEXT NOT NULL,
    triggers           TEXT NOT NULL,
    version            INTEGER NOT NULL,
    url                TEXT NOT NULL,
    headers            TEXT NOT NULL,
    query_parameters   TEXT NOT NULL,
    payload            TEXT NOT NULL,
    timeout_seconds    INTEGER NOT NULL,
    active             INTEGER NOT NULL,
    deactivated_reason TEXT NOT NULL,
    deactivated_at     BIGINT,
    removed_at         BIGINT,
    failing_since      BIGINT,
    last_failed_at     BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    FOREIGN KEY (tenant, instance) REFERENCES instances (tenant, name)
);
CREATE UNIQUE INDEX webhooks_name ON webhooks (tenant, instance, name) WHERE removed_at IS NULL;
CREATE INDEX webhooks_active ON webhooks (active, id);

-- Signing secrets; expires_at is NULL for the current one.
CREATE TABLE webhook_secrets (
    webhook_id TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id),
    secret     TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (webhook_id, secret)
);

-- deliveries is the number of deliveries made at creation, returned again
-- when a repeated idempotency key finds this event.
CREATE TABLE events (
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
);
CREATE UNIQUE INDEX events_idempotency ON events (tenant, instance, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The queue. due_at is when a delivery is next due: PENDING and RETRYING
-- until their attempt, SENT until the lease of the claiming node runs out
-- (so a crashed node's deliveries become due again by themselves), NULL once
-- final. tenant, instance, webhook_name and the event's entity and subtype
-- are copied in so listing with filters needs no join.
CREATE TABLE deliveries (
    id               TEXT COLLATE "C" PRIMARY KEY,
    event_id         TEXT COLLATE "C" NOT NULL REFERENCES events (id),
    tenant           TEXT COLLATE "C" NOT NULL,
    instance         TEXT COLLATE "C" NOT NULL,
    webhook_id       TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id),
    webhook_name     TEXT COLLATE "C" NOT NULL,
    event_entity     TEXT COLLATE "C" NOT NULL,
    event_subtype    TEXT COLLATE "C" NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    due_at           BIGINT,
    claimed_by       TEXT NOT NULL DEFAULT '',
    wait_reason      TEXT NOT NULL DEFAULT '',
    first_attempt_at BIGINT,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- Claiming takes the first due deliveries of each active webhook.
CREATE INDEX deliveries_due ON deliveries (webhook_id, due_at) WHERE due_at IS NOT NULL;
-- Listing, newest first, by instance and by each common filter.
CREATE INDEX deliveries_instance ON deliveries (tenant, instance, id);
CREATE INDEX deliveries_webhook ON deliveries (tenant, instance, webhook_name, id);
CREATE INDEX deliveries_status ON deliveries (tenant, instance, status, id);
CREATE INDEX deliveries_subtype ON deliveries (tenant, instance, event_subtype, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    delivery_id   TEXT COLLATE "C" NOT NULL REFERENCES deliveries (id),
    n             INTEGER NOT NULL,
    started_at    BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    status_code   INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    error         TEXT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
