-- Back to one charge per order with no period: reversals cannot be kept.
CREATE TABLE settlements_without_periods (
    settlement_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    order_id TEXT NOT NULL UNIQUE,
    mission_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    product_sku TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);

INSERT INTO settlements_without_periods
    (settlement_id, seq, order_id, mission_id, customer_id, product_sku, amount, currency, recorded_at)
SELECT settlement_id, seq, order_id, mission_id, customer_id, product_sku, amount, currency, recorded_at
FROM settlements
WHERE kind = 'CHARGE';

DROP TABLE settlements;
ALTER TABLE settlements_without_periods RENAME TO settlements;
CREATE INDEX settlements_by_product ON settlements (product_sku, seq);

DROP TABLE settlement_period_totals;
DROP TABLE settlement_periods;
