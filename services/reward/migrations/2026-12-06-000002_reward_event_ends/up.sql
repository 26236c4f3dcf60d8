-- The event of the programme a reward's mission belongs to, and when that
-- event ends, carried from MissionAchieved to RewardAllocated: the wallet
-- reckons the reward's expiry from the end. NULL for rewards allocated
-- before the programme, and for an event that never ends (`LAUNCH`).
ALTER TABLE rewards ADD COLUMN programme_event_id TEXT;
ALTER TABLE rewards ADD COLUMN event_ends_at BIGINT;
