-- Attempts counted per webhook and minute, for the webhook stats and the
-- timeline (herald.InsightService): reading a day of a busy webhook then
-- costs a row per write transaction and minute, not a row per attempt,
-- and recording an attempt no longer writes an index entry of its own.
-- Each write transaction adds its own rows (no upsert), so concurrent
-- writers never wait on one another's counts; readers sum them.
CREATE TABLE attempt_counts (
    webhook_id  TEXT COLLATE "C" NOT NULL,
    minute      BIGINT NOT NULL,
    delivered   INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    unreachable INTEGER NOT NULL
);
CREATE INDEX attempt_counts_webhook ON attempt_counts (webhook_id, minute);
INSERT INTO attempt_counts (webhook_id, minute, delivered, rejected, unreachable)
SELECT d.webhook_id, a.started_at / 60000,
    SUM(CASE WHEN a.status_code >= 200 AND a.status_code < 300 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.status_code <> 0 AND NOT (a.status_code >= 200 AND a.status_code < 300) THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.status_code = 0 THEN 1 ELSE 0 END)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
GROUP BY d.webhook_id, a.started_at / 60000;
DROP INDEX attempts_started;
