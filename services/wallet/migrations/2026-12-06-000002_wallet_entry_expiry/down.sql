DROP INDEX wallet_entries_due;
ALTER TABLE wallet_entries DROP COLUMN expired_at;
ALTER TABLE wallet_entries DROP COLUMN expires_at;
