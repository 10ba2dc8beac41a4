"""Market samples (funding, open interest, long/short ratio) in the liqbot
database (table from migration 0002).

One row per (asset, venue, at_ms); a sample stored twice for the same key
keeps the latest write.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.market import MEASURES, MarketSample
from bot.storage.sibling import SiblingStore

_COLUMNS = (
    "asset, venue, at_ms, mark_price, funding_rate, funding_interval_hours, open_interest_usd, long_short_ratio"
)
_M_COLUMNS = ", ".join(f"m.{column.strip()}" for column in _COLUMNS.split(","))
_MEASURE_COLUMNS = [column.strip() for column in _COLUMNS.split(",")][3:]
_UPSERT = (
    f"INSERT INTO market_samples ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (asset, venue, at_ms) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _MEASURE_COLUMNS)
)


def _row_of(sample: MarketSample) -> tuple:
    return (
        sample.asset,
        sample.venue,
        sample.at_ms,
        sample.mark_price,
        sample.funding_rate,
        sample.funding_interval_hours,
        sample.open_interest_usd,
        sample.long_short_ratio,
    )


def _sample_of(row: Sequence) -> MarketSample:
    asset, venue, at_ms, mark, funding, interval, open_interest, ratio = row
    return MarketSample(
        venue=venue,
        asset=asset,
        at_ms=at_ms,
        mark_price=mark,
        funding_rate=funding,
        funding_interval_hours=interval,
        open_interest_usd=open_interest,
        long_short_ratio=ratio,
    )


class MarketStore(SiblingStore):
    """Market samples."""

    async def add_samples(self, samples: Sequence[MarketSample]) -> int:
        """Store samples in one transaction; returns how many were written."""
        if not samples:
            return 0
        rows = [_row_of(sample) for sample in samples]
        async with self._db.transaction() as tx:
            await tx.executemany(_UPSERT, rows)
        return len(rows)

    async def latest(self, asset: str, since_ms: int | None = None) -> dict[str, MarketSample]:
        """The newest sample of `asset` per venue (only those at or after `since_ms`).

        Walks the distinct venues through the key (one seek each) rather than
        grouping the asset's whole history.
        """
        rows = await self._db.fetch(
            f"""
            WITH RECURSIVE venues(venue) AS (
                SELECT MIN(venue) FROM market_samples WHERE asset = ?
                UNION ALL
                SELECT (SELECT MIN(venue) FROM market_samples WHERE asset = ? AND venue > venues.venue)
                FROM venues WHERE venues.venue IS NOT NULL
            )
            SELECT {_M_COLUMNS} FROM venues JOIN market_samples AS m
                ON m.asset = ? AND m.venue = venues.venue
                AND m.at_ms = (SELECT MAX(at_ms) FROM market_samples
                               WHERE asset = ? AND venue = venues.venue)
            WHERE m.at_ms >= ?
            """,
            (asset, asset, asset, asset, -(2**62) if since_ms is None else since_ms),
        )
        return {row[1]: _sample_of(row) for row in rows}

    async def series(
        self, asset: str, venue: str, since_ms: int, until_ms: int | None = None
    ) -> list[MarketSample]:
        """Samples of `asset` on `venue` in [since_ms, until_ms), oldest first."""
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM market_samples WHERE asset = ? AND venue = ?"
            " AND at_ms >= ? AND at_ms < ? ORDER BY at_ms",
            (asset, venue, since_ms, 2**62 if until_ms is None else until_ms),
        )
        return [_sample_of(row) for row in rows]

    async def points(
        self, asset: str, venue: str, measure: str, since_ms: int, until_ms: int | None = None
    ) -> list[tuple[int, float]]:
        """(at_ms, value) of one measure in [since_ms, until_ms), oldest first, NULLs skipped.

        The light form of `series` for long windows (a 30-day funding
        percentile reads ~43k rows per venue): no sample objects are built.
        """
        if measure not in MEASURES:
            raise ValueError(f"unknown measure {measure!r}; one of {', '.join(MEASURES)}")
        return await self._db.fetch(
            f"SELECT at_ms, {measure} FROM market_samples WHERE asset = ? AND venue = ?"
            f" AND at_ms >= ? AND at_ms < ? AND {measure} IS NOT NULL ORDER BY at_ms",
            (asset, venue, since_ms, 2**62 if until_ms is None else until_ms),
        )
