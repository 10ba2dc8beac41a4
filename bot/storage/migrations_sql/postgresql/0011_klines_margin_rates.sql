-- 11: inputs of the levels model: each venue's closed klines of a tracked asset and the
-- lowest-tier maintenance margin rate each venue publishes per asset (twin of sqlite/0011).
CREATE TABLE klines (
    asset TEXT NOT NULL,
    venue TEXT NOT NULL,
    open_ms BIGINT NOT NULL,
    close_ms BIGINT NOT NULL,
    open DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL,
    low DOUBLE PRECISION NOT NULL,
    close DOUBLE PRECISION NOT NULL,
    volume_usd DOUBLE PRECISION NOT NULL,
    taker_buy_usd DOUBLE PRECISION,
    PRIMARY KEY (asset, venue, open_ms)
);
CREATE INDEX klines_by_time ON klines (open_ms);
CREATE TABLE margin_rates (
    asset TEXT NOT NULL,
    venue TEXT NOT NULL,
    maintenance_margin_rate DOUBLE PRECISION NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (asset, venue)
);
