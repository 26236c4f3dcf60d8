-- Orders paid by a wallet exchange (issue 16, points that add up): the
-- exchange's points come from as many rewards as it needed, so the order
-- names the exchange instead of one reward. `reward_id` keeps holding the
-- payer's id — the reward's, or the exchange's (ids are UUIDs: the two never
-- meet) — so its unique constraint still means one order per payer; for an
-- exchange `exchange_id` holds the same id. (SQLite cannot drop NOT NULL
-- from a column without rebuilding the table.)
ALTER TABLE gift_orders ADD COLUMN exchange_id TEXT;
