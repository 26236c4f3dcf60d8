-- Fewer pages written per commit (docs/performance.md, section 17). Every
-- page a transaction dirties is a 4 KiB frame in the WAL and again in the
-- checkpoint; `scripts/wal_pages.py` shows which tables and indexes they are.

-- The inbox is only ever looked up by its key: clustered on it, an event
-- applied adds one entry to one b-tree instead of a row to the table and an
-- entry to its key's index.
CREATE TABLE inbox_clustered (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
INSERT INTO inbox_clustered (consumer, event_id, processed_at)
SELECT consumer, event_id, processed_at FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_clustered RENAME TO inbox;

-- AUTOINCREMENT rewrote its counter in `sqlite_sequence` on every commit
-- that staged an event. A plain INTEGER PRIMARY KEY still gives each row a
-- seq above every row in the table, which is all the relay needs: it orders
-- by seq only among rows still in the table, and a seq can come round again
-- only after the pruning has emptied the table, when nothing (no pending
-- row, no mark in flight) still names the old one.
CREATE TABLE outbox_plain (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    headers TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);
INSERT INTO outbox_plain (seq, event_id, subject, payload, headers, created_at, published_at)
SELECT seq, event_id, subject, payload, headers, created_at, published_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_plain RENAME TO outbox;
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
