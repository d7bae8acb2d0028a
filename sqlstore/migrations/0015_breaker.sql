-- The circuit breaker's record (docs/architecture.md, "Circuit breaker").
--
-- consecutive_failures counts the webhook's attempts that failed since the
-- last that delivered, kept by the same statement that keeps failing_since
-- when attempt results are written; the webhook's answer derives its
-- health (healthy, failing, probing) from the two.
ALTER TABLE webhooks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
