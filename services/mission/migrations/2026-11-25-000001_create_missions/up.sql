-- The catalogue of the event's missions. Codes are stable: a player achieves
-- each at most once.
CREATE TABLE mission_definitions (
    mission_code TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    reward_points BIGINT NOT NULL CHECK (reward_points > 0),
    position INTEGER NOT NULL
);

INSERT INTO mission_definitions (mission_code, title, reward_points, position) VALUES
    ('FIRST_LOGIN', 'Log in during the event', 100, 1),
    ('FIRST_WIN', 'Win a match during the event', 300, 2),
    ('INVITE_FRIEND', 'Invite a friend to the event', 500, 3),
    ('WEEKLY_QUEST', 'Complete the event''s weekly quest', 800, 4),
    ('EVENT_CHAMPION', 'Finish the event in the top 100', 2000, 5);

CREATE TABLE missions (
    mission_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    mission_code TEXT NOT NULL REFERENCES mission_definitions (mission_code),
    status INTEGER NOT NULL,
    reward_id TEXT,
    reward_points BIGINT NOT NULL,
    achieved_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    -- AchieveMission is idempotent per (customer, mission code).
    UNIQUE (customer_id, mission_code)
);

CREATE INDEX missions_by_customer ON missions (customer_id, achieved_at);
