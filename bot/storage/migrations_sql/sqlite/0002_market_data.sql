-- 2: market context for leverage risk: one row per (venue, asset, poll).
-- Measures a venue does not publish (or a request that failed) are NULL.
-- The key, clustered by (asset, venue, at_ms), answers both "latest sample
-- of an asset per venue" (one seek per venue) and "an asset's series on a
-- venue over 30 days" (one range scan). The time index serves retention.
CREATE TABLE market_samples (
    asset TEXT NOT NULL,
    venue TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    mark_price REAL,
    funding_rate REAL,
    funding_interval_hours REAL,
    open_interest_usd REAL,
    long_short_ratio REAL,
    PRIMARY KEY (asset, venue, at_ms)
) WITHOUT ROWID;
CREATE INDEX market_samples_by_time ON market_samples (at_ms);
