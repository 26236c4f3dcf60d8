-- The vendor's catalogue, with what each product costs in points and what the
-- vendor bills us for it (in minor units of `currency`).
CREATE TABLE products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price_points BIGINT NOT NULL CHECK (price_points > 0),
    -- The last line of defence against overselling: whatever a bug in the
    -- code did, the store refuses a negative stock.
    stock BIGINT NOT NULL CHECK (stock >= 0),
    vendor_cost BIGINT NOT NULL CHECK (vendor_cost >= 0),
    currency TEXT NOT NULL,
    position INTEGER NOT NULL,
    version BIGINT NOT NULL
);

-- Prices match the points of the event's missions (100, 300, 500, 800, 2000),
-- so each reward can buy something; the two dearest run out during a demo.
INSERT INTO products (sku, name, price_points, stock, vendor_cost, currency, position, version) VALUES
    ('STICKER-PACK', 'Sticker pack of the event''s heroes', 100, 1000, 80, 'EUR', 1, 1),
    ('AVATAR-FRAME', 'Golden avatar frame', 300, 500, 150, 'EUR', 2, 1),
    ('GAME-SOUNDTRACK', 'Original game soundtrack (digital album)', 500, 200, 399, 'EUR', 3, 1),
    ('PLUSH-MASCOT', 'Plush mascot, 30 cm', 800, 25, 1250, 'EUR', 4, 1),
    ('LIMITED-FIGURE', 'Limited-edition champion figure', 2000, 3, 4500, 'EUR', 5, 1);

CREATE TABLE gift_orders (
    order_id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    reward_id TEXT NOT NULL,
    mission_id TEXT NOT NULL,
    product_sku TEXT NOT NULL REFERENCES products (sku),
    points BIGINT NOT NULL CHECK (points > 0),
    status INTEGER NOT NULL,
    placed_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    -- Never two orders for one idempotency key, nor two for one reward, even
    -- when two exchanges race past the use case's reads.
    CONSTRAINT gift_orders_one_per_key UNIQUE (idempotency_key),
    CONSTRAINT gift_orders_one_per_reward UNIQUE (reward_id)
);
