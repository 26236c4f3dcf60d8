-- One document per player: the my page view, rebuilt from events alone.
-- `version` grows with every change and guards updates (optimistic concurrency).
CREATE TABLE my_pages (
    customer_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
