-- A replay rests while its webhook has ReplayBacklog open deliveries
-- (docs/operations.md, "Replaying events to a webhook"). Open deliveries with a due time are found
-- by deliveries_due; those HELD behind an earlier one of their key
-- (ordering) have none, and are counted by this index. Only HELD rows have
-- an entry, so a delivery that is never held costs nothing here.
CREATE INDEX deliveries_held ON deliveries (webhook_id) WHERE status = 'HELD';
