-- Restocks done under an operator's idempotency key (issue 16): a restock
-- asked again under its key adds nothing and answers as the first did, with
-- the product's stock and version right after it. Restocks without a key
-- are not kept. Written for SQLite and PostgreSQL alike.
CREATE TABLE restocks (
    idempotency_key TEXT PRIMARY KEY,
    sku TEXT NOT NULL REFERENCES products (sku),
    units BIGINT NOT NULL CHECK (units > 0),
    stock BIGINT NOT NULL CHECK (stock >= 0),
    version BIGINT NOT NULL,
    restocked_at BIGINT NOT NULL
);
