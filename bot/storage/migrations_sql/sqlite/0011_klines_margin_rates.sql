-- 11: inputs of the levels model (bot.core.bars, bot.core.levels): each venue's closed
-- klines of a tracked asset (trade prices, volume and the taker-buy part of it in USD,
-- NULL where the venue publishes no taker split), clustered like market_samples for
-- "an asset's klines on a venue over a window"; and the lowest-tier maintenance margin
-- rate each venue publishes per asset, the latest read.
CREATE TABLE klines (
    asset TEXT NOT NULL,
    venue TEXT NOT NULL,
    open_ms INTEGER NOT NULL,
    close_ms INTEGER NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume_usd REAL NOT NULL,
    taker_buy_usd REAL,
    PRIMARY KEY (asset, venue, open_ms)
) WITHOUT ROWID;
CREATE INDEX klines_by_time ON klines (open_ms);
CREATE TABLE margin_rates (
    asset TEXT NOT NULL,
    venue TEXT NOT NULL,
    maintenance_margin_rate REAL NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (asset, venue)
);
