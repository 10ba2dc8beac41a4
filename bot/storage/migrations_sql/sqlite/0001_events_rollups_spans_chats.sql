-- 1: events, minute/hour rollups, recorded spans, chat settings.
-- Clustered by time: edge-minute scans and appends are sequential. The key
-- is the dedup identity of a venue report (same frame replayed = same key).
CREATE TABLE events (
    at_ms INTEGER NOT NULL,
    venue TEXT NOT NULL,
    instrument TEXT NOT NULL,
    liquidated TEXT NOT NULL,
    quantity REAL NOT NULL,
    price REAL NOT NULL,
    stream TEXT NOT NULL,
    asset TEXT NOT NULL,
    notional_cents INTEGER NOT NULL,
    PRIMARY KEY (at_ms, venue, instrument, liquidated, quantity, price)
) WITHOUT ROWID;

CREATE TABLE rollup_minute (
    asset TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    venue TEXT NOT NULL,
    liquidated TEXT NOT NULL,
    usd_cents INTEGER NOT NULL,
    events INTEGER NOT NULL,
    max_cents INTEGER NOT NULL,
    PRIMARY KEY (asset, bucket_ms, venue, liquidated)
) WITHOUT ROWID;
CREATE INDEX rollup_minute_by_time
    ON rollup_minute (bucket_ms, asset, venue, liquidated, usd_cents, events, max_cents);

CREATE TABLE rollup_hour (
    asset TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    venue TEXT NOT NULL,
    liquidated TEXT NOT NULL,
    usd_cents INTEGER NOT NULL,
    events INTEGER NOT NULL,
    max_cents INTEGER NOT NULL,
    PRIMARY KEY (asset, bucket_ms, venue, liquidated)
) WITHOUT ROWID;
CREATE INDEX rollup_hour_by_time
    ON rollup_hour (bucket_ms, asset, venue, liquidated, usd_cents, events, max_cents);

-- Time ranges during which a venue stream was being recorded.
CREATE TABLE recorded_spans (
    venue TEXT NOT NULL,
    stream TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    PRIMARY KEY (venue, stream, start_ms)
) WITHOUT ROWID;

CREATE TABLE chats (
    chat_key TEXT PRIMARY KEY,
    locale TEXT NOT NULL DEFAULT 'en',
    active INTEGER NOT NULL DEFAULT 1,
    updated_ms INTEGER NOT NULL DEFAULT 0
);
