-- 10: live channel feeds (/feed on MIN_USD [ASSET...]), one per chat (twin of sqlite/0010).
-- `assets` is the space-separated tickers it covers, '' for every asset.
CREATE TABLE feed_subscriptions (
    chat_key TEXT PRIMARY KEY,
    min_usd DOUBLE PRECISION NOT NULL,
    assets TEXT NOT NULL DEFAULT '',
    user_key TEXT NOT NULL,
    since_ms BIGINT NOT NULL
);
