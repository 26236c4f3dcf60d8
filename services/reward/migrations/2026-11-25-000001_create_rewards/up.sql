-- One reward per achieved mission. Its status only moves forward:
-- 1 Allocated < 2 Issued < 3 Exchanged.
CREATE TABLE rewards (
    reward_id TEXT PRIMARY KEY,
    -- One reward per mission, beside the consumer's inbox.
    mission_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    mission_code TEXT NOT NULL,
    points BIGINT NOT NULL CHECK (points > 0),
    status INTEGER NOT NULL,
    allocated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
