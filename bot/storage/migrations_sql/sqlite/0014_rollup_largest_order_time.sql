-- 14: each rollup bucket keeps the time of its largest order (the earliest of a tie;
-- twin of postgresql/0014), so the largest order of a window is found without
-- scanning the events of a dense minute. NULL in the buckets recorded before:
-- Store.largest scans those as it did, and `liqbot doctor --repair` fills them.
ALTER TABLE rollup_minute ADD COLUMN max_at_ms BIGINT;
ALTER TABLE rollup_hour ADD COLUMN max_at_ms BIGINT;
