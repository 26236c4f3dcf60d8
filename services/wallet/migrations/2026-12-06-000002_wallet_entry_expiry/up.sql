-- Rewards expire a configured time after the end of the event they were
-- earned in (issue 16). expires_at is NULL for a reward that never expires:
-- every entry issued before this migration, and those of an event that
-- never ends. An AVAILABLE entry past its expiry becomes EXPIRED (status 4)
-- at expired_at, by the wallet's expiry job.
ALTER TABLE wallet_entries ADD COLUMN expires_at BIGINT;
ALTER TABLE wallet_entries ADD COLUMN expired_at BIGINT;

-- The expiry job's work: AVAILABLE entries, soonest expiry first.
CREATE INDEX wallet_entries_due ON wallet_entries (status, expires_at);
