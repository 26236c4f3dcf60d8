CREATE TABLE inbox_with_rowid (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
INSERT INTO inbox_with_rowid (consumer, event_id, processed_at)
SELECT consumer, event_id, processed_at FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_with_rowid RENAME TO inbox;

CREATE TABLE outbox_autoincrement (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    headers TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);
INSERT INTO outbox_autoincrement (seq, event_id, subject, payload, headers, created_at, published_at)
SELECT seq, event_id, subject, payload, headers, created_at, published_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_autoincrement RENAME TO outbox;
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
