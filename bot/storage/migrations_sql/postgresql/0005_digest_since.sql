-- 5: when a digest was turned on (or its time changed) (twin of sqlite/0005).
ALTER TABLE digest_schedules ADD COLUMN since_ms BIGINT NOT NULL DEFAULT 0;
