-- A webhook's rate limit (docs/architecture.md, "Pace and rate limit").
--
-- rate_limit_per_second caps the requests sent to the webhook per second
-- across all nodes; NULL for none. webhook_rate_windows holds, per
-- webhook, the one-second window of request slots the nodes take from
-- (sqlstore/pace.go): window_ms is its start (unix milliseconds), used the
-- slots taken of it, taken how many the last take got. Only PostgreSQL
-- nodes use it; a SQLite node, alone on its file, keeps the window in
-- memory.
ALTER TABLE webhooks ADD COLUMN rate_limit_per_second INTEGER;

CREATE TABLE webhook_rate_windows (
	webhook_id TEXT PRIMARY KEY,
	window_ms BIGINT NOT NULL,
	used INTEGER NOT NULL,
	taken INTEGER NOT NULL
);
