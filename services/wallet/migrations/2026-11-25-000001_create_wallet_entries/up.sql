-- One entry per issued reward. An exchange moves it AVAILABLE -> EXCHANGE_PENDING
-- -> EXCHANGED, or back to AVAILABLE when the gift exchange definitely failed.
CREATE TABLE wallet_entries (
    entry_id TEXT PRIMARY KEY,
    -- One entry per reward, beside the consumer's inbox.
    reward_id TEXT NOT NULL UNIQUE,
    mission_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    status INTEGER NOT NULL,
    product_sku TEXT,
    gift_order_id TEXT,
    -- Each exchange attempt has its own idempotency key: <entry_id>:<attempt>.
    exchange_attempt BIGINT NOT NULL,
    pending_since BIGINT,
    issued_at BIGINT NOT NULL,
    exchanged_at BIGINT,
    version BIGINT NOT NULL
);

CREATE INDEX wallet_entries_by_customer ON wallet_entries (customer_id, issued_at);
CREATE INDEX wallet_entries_pending ON wallet_entries (status, pending_since);
