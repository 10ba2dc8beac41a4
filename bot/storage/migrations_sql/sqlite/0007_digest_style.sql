-- 7: a digest's style: "full" (the write-up of /report) or "brief" (the table and notes).
ALTER TABLE digest_schedules ADD COLUMN style TEXT NOT NULL DEFAULT 'full';
