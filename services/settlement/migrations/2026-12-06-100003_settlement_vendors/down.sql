-- Back to totals per product and currency: a period's totals of several
-- vendors are summed.
CREATE TABLE settlement_period_totals_by_product (
    period_id TEXT NOT NULL REFERENCES settlement_periods (period_id),
    product_sku TEXT NOT NULL,
    currency TEXT NOT NULL,
    charges BIGINT NOT NULL,
    reversals BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (period_id, product_sku, currency)
);

INSERT INTO settlement_period_totals_by_product (period_id, product_sku, currency, charges, reversals, amount)
SELECT period_id, product_sku, currency, SUM(charges), SUM(reversals), SUM(amount)
FROM settlement_period_totals
GROUP BY period_id, product_sku, currency;

DROP TABLE settlement_period_totals;
ALTER TABLE settlement_period_totals_by_product RENAME TO settlement_period_totals;

DROP INDEX settlements_by_period;
ALTER TABLE settlements DROP COLUMN vendor;
CREATE INDEX settlements_by_period ON settlements (period_id, product_sku, currency);
