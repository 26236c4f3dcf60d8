-- The transactional outbox: events written in the same transaction as the
-- aggregate change, published by the relay in `seq` order.
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload BYTEA NOT NULL,
    headers TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- The idempotent inbox: one row per (durable consumer, event) already applied.
CREATE TABLE inbox (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
