-- 8: estimated liquidation levels (twin of sqlite/0008): each asset's book as JSON, the
-- bands the price crossed with what was liquidated near them (the grade), and an
-- hourly snapshot of the bands for the heatmap.
CREATE TABLE level_books (
    asset TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE TABLE level_crossings (
    asset TEXT NOT NULL,
    side TEXT NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    open_ms BIGINT NOT NULL,
    close_ms BIGINT NOT NULL,
    estimated_cents BIGINT NOT NULL,
    realized_cents BIGINT NOT NULL,
    PRIMARY KEY (asset, close_ms, side, price)
);
CREATE TABLE level_snapshots (
    asset TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (asset, at_ms)
);
