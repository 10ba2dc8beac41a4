-- 4: a digest can attach the day's /chart top picture (per chat, off by default).
ALTER TABLE digest_schedules ADD COLUMN chart INTEGER NOT NULL DEFAULT 0;
