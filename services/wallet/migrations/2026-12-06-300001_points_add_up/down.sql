-- Back to one exchange per entry: the exchanges and prices are dropped, and
-- each entry's status says where most of its points are (the code before
-- this migration knows no partial entries).
DROP TABLE product_prices;
ALTER TABLE wallet_entries ADD COLUMN exchange_attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallet_entries ADD COLUMN pending_since BIGINT;
ALTER TABLE wallet_entries ADD COLUMN exchanged_at BIGINT;
UPDATE wallet_entries SET exchange_attempt = 1, pending_since = issued_at WHERE status = 2;
UPDATE wallet_entries SET exchange_attempt = 1, exchanged_at = issued_at WHERE status = 3;
CREATE INDEX wallet_entries_pending ON wallet_entries (status, pending_since);
DROP TABLE wallet_reservations;
DROP TABLE wallet_exchanges;
DROP INDEX wallet_entries_due;
CREATE INDEX wallet_entries_due ON wallet_entries (status, expires_at);
ALTER TABLE wallet_entries DROP COLUMN expired;
ALTER TABLE wallet_entries DROP COLUMN spent;
ALTER TABLE wallet_entries DROP COLUMN reserved;
ALTER TABLE wallet_entries DROP COLUMN remaining;
