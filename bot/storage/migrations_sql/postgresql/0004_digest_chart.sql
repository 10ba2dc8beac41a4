-- 4: a digest can attach the day's /chart top picture (twin of sqlite/0004).
ALTER TABLE digest_schedules ADD COLUMN chart INTEGER NOT NULL DEFAULT 0;
