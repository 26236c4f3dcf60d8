-- Points that add up (issue 16): an entry's points are always in exactly one
-- of four places — remaining (spendable), reserved (held by a pending
-- exchange), spent (paid for an order that stands), expired — and exchanges,
-- one per player request, reserve a product's price across entries. Written
-- for SQLite and PostgreSQL alike: only columns that both can add, and new
-- tables. `status`, `product_sku` and `gift_order_id` stay, written from where
-- the points are, for the readers that know one reward as one exchange.
ALTER TABLE wallet_entries ADD COLUMN remaining BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallet_entries ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallet_entries ADD COLUMN spent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallet_entries ADD COLUMN expired BIGINT NOT NULL DEFAULT 0;

-- Every entry so far held all its points in one place, as its status says.
UPDATE wallet_entries SET remaining = points WHERE status = 1;
UPDATE wallet_entries SET reserved = points WHERE status = 2;
UPDATE wallet_entries SET spent = points WHERE status = 3;
UPDATE wallet_entries SET expired = points WHERE status = 4;

-- The expiry job's work: entries with remaining points, soonest expiry first.
DROP INDEX wallet_entries_due;
CREATE INDEX wallet_entries_due ON wallet_entries (expires_at, remaining);

-- One exchange per player request. gift_key is what gift is asked under,
-- every call: at most one order per exchange. idempotency_key is the
-- player's (NULL for ExchangeReward's exchanges). paid_by_reward marks the
-- exchanges begun before this migration: gift is asked for them as then,
-- with the one reward's id and all its points. status: 1 PENDING, 2 PLACED,
-- 3 RELEASED, 4 REFUNDED; settled_at and reason say when and why it was
-- released (gift's refusal) or refunded (the vendor's reason).
CREATE TABLE wallet_exchanges (
    exchange_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    product_sku TEXT NOT NULL,
    price_points BIGINT NOT NULL CHECK (price_points > 0),
    idempotency_key TEXT,
    gift_key TEXT NOT NULL,
    paid_by_reward BOOLEAN NOT NULL DEFAULT FALSE,
    mission_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    calls BIGINT NOT NULL,
    requested_at BIGINT NOT NULL,
    gift_order_id TEXT,
    placed_at BIGINT,
    settled_at BIGINT,
    reason TEXT,
    version BIGINT NOT NULL,
    CONSTRAINT wallet_exchanges_one_per_gift_key UNIQUE (gift_key),
    -- A player's repeated request finds its exchange; two racing requests
    -- under one key: one insert wins, the other is decided again.
    CONSTRAINT wallet_exchanges_one_per_key UNIQUE (customer_id, idempotency_key)
);
CREATE INDEX wallet_exchanges_by_customer ON wallet_exchanges (customer_id, requested_at);
CREATE INDEX wallet_exchanges_pending ON wallet_exchanges (status, requested_at);

-- The part of an exchange's price each entry pays.
CREATE TABLE wallet_reservations (
    exchange_id TEXT NOT NULL REFERENCES wallet_exchanges (exchange_id),
    entry_id TEXT NOT NULL REFERENCES wallet_entries (entry_id),
    reward_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    points BIGINT NOT NULL CHECK (points > 0),
    PRIMARY KEY (exchange_id, entry_id)
);
CREATE INDEX wallet_reservations_by_entry ON wallet_reservations (entry_id);

-- The exchanges begun before: one per entry pending or exchanged, under the
-- key of its latest attempt (`<entry_id>:<attempt>`), paying all its points.
-- The entry's id names the exchange (an entry had one exchange at a time).
INSERT INTO wallet_exchanges (exchange_id, customer_id, product_sku, price_points, idempotency_key, gift_key,
    paid_by_reward, mission_id, status, calls, requested_at, gift_order_id, placed_at, settled_at, reason, version)
SELECT entry_id, customer_id, product_sku, points, NULL, entry_id || ':' || CAST(exchange_attempt AS TEXT),
    TRUE, mission_id, CASE status WHEN 2 THEN 1 ELSE 2 END, 1, COALESCE(pending_since, exchanged_at, issued_at),
    gift_order_id, CASE status WHEN 3 THEN COALESCE(exchanged_at, issued_at) END, NULL, NULL, 1
FROM wallet_entries WHERE status IN (2, 3) AND points > 0;
INSERT INTO wallet_reservations (exchange_id, entry_id, reward_id, position, points)
SELECT entry_id, entry_id, reward_id, 0, points FROM wallet_entries WHERE status IN (2, 3) AND points > 0;

-- What the exchanges now hold: an entry no longer has an attempt of its own.
DROP INDEX wallet_entries_pending;
ALTER TABLE wallet_entries DROP COLUMN exchange_attempt;
ALTER TABLE wallet_entries DROP COLUMN pending_since;
ALTER TABLE wallet_entries DROP COLUMN exchanged_at;

-- The wallet's copy of gift's prices, kept from `gift.product_listed`; the
-- products gift seeded are known from the start.
CREATE TABLE product_prices (
    sku TEXT PRIMARY KEY,
    price_points BIGINT NOT NULL CHECK (price_points > 0)
);
INSERT INTO product_prices (sku, price_points) VALUES
    ('STICKER-PACK', 100),
    ('AVATAR-FRAME', 300),
    ('GAME-SOUNDTRACK', 500),
    ('PLUSH-MASCOT', 800),
    ('LIMITED-FIGURE', 2000);
