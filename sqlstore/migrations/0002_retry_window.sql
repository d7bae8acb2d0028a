-- The retry schedule starts over with each retry window. Resend and recover
-- begin a new window (first_attempt_at back to NULL) and set window_start to
-- the attempts on record then, so attempt_count - window_start counts the
-- attempts of the current window. Deliveries resent before this migration
-- count all their attempts, as they did.
ALTER TABLE deliveries ADD COLUMN window_start INTEGER NOT NULL DEFAULT 0;
