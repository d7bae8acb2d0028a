-- Replays (docs/decisions/0017-replay.md): a request to give a webhook the
-- retained events of a window it has not received. The row is the job:
-- the batches that create its deliveries advance last_event (the last event
-- id worked) and the counters in the transaction that creates them, so a
-- replay resumes where it stopped after a crash.
CREATE TABLE replays (
    id           TEXT COLLATE "C" PRIMARY KEY,
    tenant       TEXT COLLATE "C" NOT NULL,
    instance     TEXT COLLATE "C" NOT NULL,
    webhook_id   TEXT COLLATE "C" NOT NULL,
    webhook_name TEXT NOT NULL,
    since_at     BIGINT NOT NULL,
    until_at     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    events       INTEGER NOT NULL,
    last_event   TEXT COLLATE "C" NOT NULL DEFAULT '',
    scanned      INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
-- One running replay per webhook: two would each find an event without a
-- delivery and both make one.
CREATE UNIQUE INDEX replays_running ON replays (webhook_id) WHERE status = 'RUNNING';
CREATE INDEX replays_webhook ON replays (webhook_id, id);
