-- Settlements name the vendor they are owed to (issue 16): gift's
-- `GiftExchanged.vendor`, and a reversal its charge's. Everything recorded
-- before was owed to the one vendor there was, `gift`. Written for SQLite
-- and PostgreSQL alike.
ALTER TABLE settlements ADD COLUMN vendor TEXT NOT NULL DEFAULT 'gift';

DROP INDEX settlements_by_period;
CREATE INDEX settlements_by_period ON settlements (period_id, vendor, product_sku, currency);

-- A closed period's totals are now per vendor, product and currency; the
-- table is rebuilt, as SQLite cannot change a primary key in place.
CREATE TABLE settlement_period_totals_by_vendor (
    period_id TEXT NOT NULL REFERENCES settlement_periods (period_id),
    vendor TEXT NOT NULL,
    product_sku TEXT NOT NULL,
    currency TEXT NOT NULL,
    charges BIGINT NOT NULL,
    reversals BIGINT NOT NULL,
    -- Charges minus reversals, in minor units of `currency`.
    amount BIGINT NOT NULL,
    PRIMARY KEY (period_id, vendor, product_sku, currency)
);

INSERT INTO settlement_period_totals_by_vendor
    (period_id, vendor, product_sku, currency, charges, reversals, amount)
SELECT period_id, 'gift', product_sku, currency, charges, reversals, amount
FROM settlement_period_totals;

DROP TABLE settlement_period_totals;
ALTER TABLE settlement_period_totals_by_vendor RENAME TO settlement_period_totals;
