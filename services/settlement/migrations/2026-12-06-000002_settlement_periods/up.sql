-- Settlement periods: every settlement lands in the period open when it is
-- recorded; a closed period's totals are final.
CREATE TABLE settlement_periods (
    period_id TEXT PRIMARY KEY,
    -- Milliseconds since the epoch: [starts_at, ends_at). Unique, so that
    -- replicas opening the same period at once cannot both succeed.
    starts_at BIGINT NOT NULL UNIQUE,
    ends_at BIGINT NOT NULL CHECK (ends_at > starts_at),
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'CLOSED')),
    -- Moves on with every settlement recorded in the period and when it
    -- closes: a closing that read an older version lost a race.
    version BIGINT NOT NULL,
    closed_at BIGINT,
    CHECK ((status = 'OPEN') = (closed_at IS NULL))
);

-- The closing job's work: open periods by end.
CREATE INDEX settlement_periods_due ON settlement_periods (status, ends_at);

-- A closed period's totals per product and currency, written once when it closes.
CREATE TABLE settlement_period_totals (
    period_id TEXT NOT NULL REFERENCES settlement_periods (period_id),
    product_sku TEXT NOT NULL,
    currency TEXT NOT NULL,
    charges BIGINT NOT NULL,
    reversals BIGINT NOT NULL,
    -- Charges minus reversals, in minor units of `currency`.
    amount BIGINT NOT NULL,
    PRIMARY KEY (period_id, product_sku, currency)
);

-- Settlements recorded before periods existed are put in one period of
-- their own (PeriodId::BEFORE_PERIODS), from the first to just after the
-- last: its end passed, so the closing job closes it at its first run.
INSERT INTO settlement_periods (period_id, starts_at, ends_at, status, version)
SELECT '00000000-0000-8000-8000-000000000000', first_at, last_at + 1, 'OPEN', 0
FROM (SELECT MIN(recorded_at) AS first_at, MAX(recorded_at) AS last_at FROM settlements) AS recorded
WHERE first_at IS NOT NULL;

-- A settlement is now a charge or its reversal (a negative amount), in a
-- period; the table is rebuilt, as SQLite cannot change constraints in place.
CREATE TABLE settlements_in_periods (
    settlement_id TEXT PRIMARY KEY,
    -- The settlement's place in the ledger, in recording order (1, 2, 3, ...).
    seq BIGINT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('CHARGE', 'REVERSAL')),
    period_id TEXT NOT NULL REFERENCES settlement_periods (period_id),
    mission_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    product_sku TEXT NOT NULL,
    -- In minor units of `currency`: owed for a charge, taken back (negative)
    -- for a reversal.
    amount BIGINT NOT NULL CHECK ((kind = 'CHARGE' AND amount >= 0) OR (kind = 'REVERSAL' AND amount <= 0)),
    currency TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    -- At most one charge and one reversal per gift order, beside the
    -- consumers' inboxes.
    UNIQUE (order_id, kind)
);

INSERT INTO settlements_in_periods
    (settlement_id, seq, order_id, kind, period_id, mission_id, customer_id, product_sku, amount, currency, recorded_at)
SELECT settlement_id, seq, order_id, 'CHARGE', '00000000-0000-8000-8000-000000000000', mission_id, customer_id,
       product_sku, amount, currency, recorded_at
FROM settlements;

DROP TABLE settlements;
ALTER TABLE settlements_in_periods RENAME TO settlements;

CREATE INDEX settlements_by_product ON settlements (product_sku, seq);
CREATE INDEX settlements_by_period ON settlements (period_id, product_sku, currency);
