-- What is owed to the gift vendor: one settlement per gift order, never changed.
CREATE TABLE settlements (
    settlement_id TEXT PRIMARY KEY,
    -- The settlement's place in the ledger, in recording order (1, 2, 3, ...).
    -- Assigned by the recording transaction rather than by AUTOINCREMENT or
    -- SERIAL, so the same SQL runs on SQLite and PostgreSQL; unique, so two
    -- concurrent recordings can never share a place.
    seq BIGINT NOT NULL UNIQUE,
    -- Exactly one settlement per gift order, beside the consumer's inbox.
    order_id TEXT NOT NULL UNIQUE,
    mission_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    product_sku TEXT NOT NULL,
    -- In minor units of `currency`.
    amount BIGINT NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);

CREATE INDEX settlements_by_product ON settlements (product_sku, seq);
