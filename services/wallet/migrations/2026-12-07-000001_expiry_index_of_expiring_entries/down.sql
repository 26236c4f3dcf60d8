DROP INDEX wallet_entries_due;
CREATE INDEX wallet_entries_due ON wallet_entries (expires_at, remaining);
