-- The event programme (issue 16): products are sold in an event's window,
-- and the vendor may cancel a placed order later. Written for SQLite and
-- PostgreSQL alike: only columns that both can add, and new tables.

-- Gift's copy of the programme's events, kept from the mission context's
-- `mission.event_scheduled` (gift never calls mission). Times are
-- milliseconds since the Unix epoch, UTC: products are sold from starts_at
-- (inclusive) until ends_at (exclusive); an event with no end never closes.
CREATE TABLE programme_events (
    programme_event_id TEXT PRIMARY KEY,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT,
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);

-- The products seeded before the programme stay on sale: LAUNCH is always
-- open, as in the mission context, which never publishes it.
INSERT INTO programme_events (programme_event_id, starts_at, ends_at) VALUES ('LAUNCH', 0, NULL);

-- No foreign key: SQLite adds a column with one only when its default is
-- NULL; the use case that lists a product checks the event in the same
-- transaction.
ALTER TABLE products ADD COLUMN programme_event_id TEXT NOT NULL DEFAULT 'LAUNCH';

-- A cancelled order (status 2) says when and why; both NULL while it is placed.
ALTER TABLE gift_orders ADD COLUMN cancelled_at BIGINT;
ALTER TABLE gift_orders ADD COLUMN cancel_reason TEXT;

-- Orders the vendor will cancel, and when: the follow-up kept with the order
-- in the transaction that placed it, so that it survives restarts and is
-- done once whichever replica's job claims it (the row is deleted in the
-- transaction that cancels the order).
CREATE TABLE vendor_cancellations (
    order_id TEXT PRIMARY KEY REFERENCES gift_orders (order_id),
    due_at BIGINT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX vendor_cancellations_by_due ON vendor_cancellations (due_at);
