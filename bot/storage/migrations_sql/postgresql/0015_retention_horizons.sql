-- 15: how far retention has pruned each table (twin of sqlite/0015): rows of a table
-- older than its horizon may be gone, newer ones are whole. A window's edge minute is read
-- as the minute's rollup less its rest only at or after both the events' and the minute
-- rollups' horizons (Store); rows written older than a horizon later (a replay of an
-- old recording) leave it where it is.
CREATE TABLE retention_horizons (
    name TEXT PRIMARY KEY,
    before_ms BIGINT NOT NULL
);
