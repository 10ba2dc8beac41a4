-- 8: estimated liquidation levels (bot.core.levels): each asset's book as JSON, the
-- bands the price crossed with what was liquidated near them (the grade), and an
-- hourly snapshot of the bands for the heatmap.
CREATE TABLE level_books (
    asset TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE level_crossings (
    asset TEXT NOT NULL,
    side TEXT NOT NULL,
    price REAL NOT NULL,
    open_ms INTEGER NOT NULL,
    close_ms INTEGER NOT NULL,
    estimated_cents INTEGER NOT NULL,
    realized_cents INTEGER NOT NULL,
    PRIMARY KEY (asset, close_ms, side, price)
);
CREATE TABLE level_snapshots (
    asset TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (asset, at_ms)
);
