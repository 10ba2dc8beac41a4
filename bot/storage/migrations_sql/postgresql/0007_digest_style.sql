-- 7: a digest's style: "full" (the write-up of /report) or "brief" (twin of sqlite/0007).
ALTER TABLE digest_schedules ADD COLUMN style TEXT NOT NULL DEFAULT 'full';
