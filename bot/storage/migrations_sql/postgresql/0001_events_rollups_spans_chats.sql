-- 1: events, minute/hour rollups, recorded spans, chat settings (twin of sqlite/0001).
-- Amounts are exact integer cents (BIGINT); prices and quantities DOUBLE PRECISION
-- (PostgreSQL's REAL is 4 bytes). The events key is the dedup identity of a venue
-- report (same frame replayed = same key). The rollup keys carry their sums
-- (INCLUDE), so one asset's window is an index-only scan, as SQLite's clustered
-- WITHOUT ROWID tables give it; the by-time indexes serve all-asset windows.
CREATE TABLE events (
    at_ms BIGINT NOT NULL,
    venue TEXT NOT NULL,
    instrument TEXT NOT NULL,
    liquidated TEXT NOT NULL,
    quantity DOUBLE PRECISION NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    stream TEXT NOT NULL,
    asset TEXT NOT NULL,
    notional_cents BIGINT NOT NULL,
    PRIMARY KEY (at_ms, venue, instrument, liquidated, quantity, price)
);

CREATE TABLE rollup_minute (
    asset TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    venue TEXT NOT NULL,
    liquidated TEXT NOT NULL,
    usd_cents BIGINT NOT NULL,
    events INTEGER NOT NULL,
    max_cents BIGINT NOT NULL,
    PRIMARY KEY (asset, bucket_ms, venue, liquidated) INCLUDE (usd_cents, events, max_cents)
);
CREATE INDEX rollup_minute_by_time
    ON rollup_minute (bucket_ms, asset, venue, liquidated, usd_cents, events, max_cents);

CREATE TABLE rollup_hour (
    asset TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    venue TEXT NOT NULL,
    liquidated TEXT NOT NULL,
    usd_cents BIGINT NOT NULL,
    events INTEGER NOT NULL,
    max_cents BIGINT NOT NULL,
    PRIMARY KEY (asset, bucket_ms, venue, liquidated) INCLUDE (usd_cents, events, max_cents)
);
CREATE INDEX rollup_hour_by_time
    ON rollup_hour (bucket_ms, asset, venue, liquidated, usd_cents, events, max_cents);

-- Time ranges during which a venue stream was being recorded.
CREATE TABLE recorded_spans (
    venue TEXT NOT NULL,
    stream TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    PRIMARY KEY (venue, stream, start_ms)
);

CREATE TABLE chats (
    chat_key TEXT PRIMARY KEY,
    locale TEXT NOT NULL DEFAULT 'en',
    active INTEGER NOT NULL DEFAULT 1,
    updated_ms BIGINT NOT NULL DEFAULT 0
);
