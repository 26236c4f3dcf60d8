-- The event programme (issue 16): missions belong to events with a window,
-- and each mission has a per-player limit. Written for SQLite and
-- PostgreSQL alike: columns are added where both can, and `missions`, whose
-- unique key changes, is rebuilt (SQLite cannot drop a constraint).

-- Times are milliseconds since the Unix epoch, UTC. An event's missions can
-- be achieved from starts_at (inclusive) until ends_at (exclusive); an event
-- with no end never closes.
CREATE TABLE programme_events (
    programme_event_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT,
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);

-- The missions seeded before the programme keep working: they belong to an
-- event that is always open.
INSERT INTO programme_events (programme_event_id, title, starts_at, ends_at) VALUES
    ('LAUNCH', 'The launch of the game', 0, NULL);

-- limit_kind: 1 once per event, 2 limit_times times, 3 once per UTC day.
-- No foreign key on programme_event_id: SQLite adds a column with one only
-- when its default is NULL; the use case that defines a mission checks the
-- event in the same transaction.
ALTER TABLE mission_definitions ADD COLUMN programme_event_id TEXT NOT NULL DEFAULT 'LAUNCH';
ALTER TABLE mission_definitions ADD COLUMN limit_kind INTEGER NOT NULL DEFAULT 1;
ALTER TABLE mission_definitions ADD COLUMN limit_times INTEGER;

-- Each achievement takes a slot: 1 for a once-per-event mission, the
-- ordinal for one achieved N times, the day number for a daily one.
-- (customer, code, slot) is unique, so two achievements racing for the last
-- slot cannot both be kept; (customer, achievement_id) is unique, so a
-- retried repeatable achievement is found, never earned twice (NULLs, the
-- calls with no achievement id, are distinct on both databases).
CREATE TABLE missions_in_programme (
    mission_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    mission_code TEXT NOT NULL REFERENCES mission_definitions (mission_code),
    status INTEGER NOT NULL,
    reward_id TEXT,
    reward_points BIGINT NOT NULL,
    achieved_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    programme_event_id TEXT NOT NULL,
    -- The event's end as it stood at the achievement (NULL: never ends).
    event_ends_at BIGINT,
    slot BIGINT NOT NULL,
    achievement_id TEXT,
    UNIQUE (customer_id, mission_code, slot),
    UNIQUE (customer_id, achievement_id)
);

INSERT INTO missions_in_programme (
    mission_id, customer_id, mission_code, status, reward_id, reward_points, achieved_at, version,
    programme_event_id, event_ends_at, slot, achievement_id
)
SELECT mission_id, customer_id, mission_code, status, reward_id, reward_points, achieved_at, version,
    'LAUNCH', NULL, 1, NULL
FROM missions;

DROP TABLE missions;
ALTER TABLE missions_in_programme RENAME TO missions;
CREATE INDEX missions_by_customer ON missions (customer_id, achieved_at);
