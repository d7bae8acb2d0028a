-- Insight queries (herald.InsightService). Events are found by the
-- producer's source id, newest first; a webhook's recent attempts are
-- counted and charted by the time they started.
CREATE INDEX events_source ON events (tenant, instance, source_id, id);
CREATE INDEX attempts_started ON attempts (started_at);
