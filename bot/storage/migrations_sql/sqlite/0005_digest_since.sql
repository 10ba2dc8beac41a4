-- 5: when a digest was turned on (or its time changed); slots before it are never due,
-- so last_sent_local_date records only digests really sent.
ALTER TABLE digest_schedules ADD COLUMN since_ms INTEGER NOT NULL DEFAULT 0;
