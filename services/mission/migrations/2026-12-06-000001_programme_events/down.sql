-- Back to one achievement per (customer, mission code) and no events: the
-- first achievement of each mission is kept, later ones are dropped with the
-- missions of scheduled events.
CREATE TABLE missions_before_programme (
    mission_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    mission_code TEXT NOT NULL REFERENCES mission_definitions (mission_code),
    status INTEGER NOT NULL,
    reward_id TEXT,
    reward_points BIGINT NOT NULL,
    achieved_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    UNIQUE (customer_id, mission_code)
);

INSERT INTO missions_before_programme (
    mission_id, customer_id, mission_code, status, reward_id, reward_points, achieved_at, version
)
SELECT m.mission_id, m.customer_id, m.mission_code, m.status, m.reward_id, m.reward_points, m.achieved_at, m.version
FROM missions m
WHERE m.programme_event_id = 'LAUNCH'
    AND m.slot = (SELECT MIN(f.slot) FROM missions f WHERE f.customer_id = m.customer_id AND f.mission_code = m.mission_code);

DROP TABLE missions;
ALTER TABLE missions_before_programme RENAME TO missions;
CREATE INDEX missions_by_customer ON missions (customer_id, achieved_at);

DELETE FROM mission_definitions WHERE programme_event_id <> 'LAUNCH';
ALTER TABLE mission_definitions DROP COLUMN limit_times;
ALTER TABLE mission_definitions DROP COLUMN limit_kind;
ALTER TABLE mission_definitions DROP COLUMN programme_event_id;
DROP TABLE programme_events;
