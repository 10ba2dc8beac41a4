-- 10: live channel feeds (/feed on MIN_USD [ASSET...]): one per chat. `assets` is
-- the space-separated tickers it covers, '' for every asset.
CREATE TABLE feed_subscriptions (
    chat_key TEXT PRIMARY KEY,
    min_usd REAL NOT NULL,
    assets TEXT NOT NULL DEFAULT '',
    user_key TEXT NOT NULL,
    since_ms INTEGER NOT NULL
);
