-- Operations events (docs/decisions/0018-operations-events.md).
--
-- failing_reported is 1 once a webhook.failing operations event was made
-- for the webhook's current run of failures (failing_since): the next
-- success clears it and makes webhook.recovered. The operations webhook
-- itself is a webhooks row of the tenant's reserved instance
-- '_operations', so it needs no table of its own.
ALTER TABLE webhooks ADD COLUMN failing_reported INTEGER NOT NULL DEFAULT 0;
