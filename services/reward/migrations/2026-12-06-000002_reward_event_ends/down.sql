ALTER TABLE rewards DROP COLUMN event_ends_at;
ALTER TABLE rewards DROP COLUMN programme_event_id;
