-- The audit trail: append-only, each entry chained to the one before by
-- hash (herald.AuditHash). seq numbers entries without gaps. The settings
-- row audit_anchor holds "<seq> <hash>" of the last entry retention
-- deleted, where verification starts.
CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor_type   TEXT NOT NULL,
    actor        TEXT COLLATE "C" NOT NULL,
    actor_tenant TEXT COLLATE "C" NOT NULL,
    role         TEXT NOT NULL,
    source       TEXT NOT NULL,
    tenant       TEXT COLLATE "C" NOT NULL,
    instance     TEXT COLLATE "C" NOT NULL,
    action       TEXT COLLATE "C" NOT NULL,
    target       TEXT NOT NULL,
    diff         TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant, seq);
CREATE INDEX audit_log_at ON audit_log (at);
