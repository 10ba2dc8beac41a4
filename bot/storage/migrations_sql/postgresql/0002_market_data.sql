-- 2: market context for leverage risk: one row per (venue, asset, poll) (twin of sqlite/0002).
-- Measures a venue does not publish (or a request that failed) are NULL.
CREATE TABLE market_samples (
    asset TEXT NOT NULL,
    venue TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    mark_price DOUBLE PRECISION,
    funding_rate DOUBLE PRECISION,
    funding_interval_hours DOUBLE PRECISION,
    open_interest_usd DOUBLE PRECISION,
    long_short_ratio DOUBLE PRECISION,
    PRIMARY KEY (asset, venue, at_ms)
);
CREATE INDEX market_samples_by_time ON market_samples (at_ms);
