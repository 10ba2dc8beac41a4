"""Market samples (funding, open interest, long/short ratio) in the liqbot
database (table from migration 0002).

One row per (asset, venue, at_ms); a polled sample stored twice for the same
key keeps the latest write, a backfilled one (`add_backfill`) never replaces
what is stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.market import MEASURES, MarketSample
from bot.storage.database import Transaction
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
_INSERT_NEW = f"INSERT INTO market_samples ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"


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
        async with self._db.transaction() as tx:
            await tx.executemany(_UPSERT, [_row_of(sample) for sample in samples])
        return len(samples)

    async def add_backfill(self, samples: Sequence[MarketSample]) -> int:
        """Store backfilled samples, keeping any sample already stored at the same
        key (a poll's, or an earlier backfill's); returns how many were new."""
        if not samples:
            return 0
        async with self._db.transaction() as tx:
            before = await self._stored(tx, samples)
            await tx.executemany(_INSERT_NEW, [_row_of(sample) for sample in samples])
            return await self._stored(tx, samples) - before

    @staticmethod
    async def _stored(tx: Transaction, samples: Sequence[MarketSample]) -> int:
        """How many samples are stored in the span of each (asset, venue) among `samples`."""
        spans: dict[tuple[str, str], list[int]] = {}
        for sample in samples:
            span = spans.setdefault((sample.asset, sample.venue), [sample.at_ms, sample.at_ms])
            span[0], span[1] = min(span[0], sample.at_ms), max(span[1], sample.at_ms)
        total = 0
        for (asset, venue), (first, last) in spans.items():
            (count,) = await tx.fetchone(
                "SELECT COUNT(*) FROM market_samples WHERE asset = ? AND venue = ? AND at_ms >= ? AND at_ms <= ?",
                (asset, venue, first, last),
            )
            total += count
        return total

    async def open_interest_gaps(
        self, asset: str, venue: str, after_ms: int, before_ms: int, min_gap_ms: int
    ) -> list[tuple[int, int]]:
        """The holes longer than `min_gap_ms` in the stored open interest of `asset`
        on `venue` between the two instants: (after, before) pairs, oldest first,
        each end a stored point or one of the two instants."""
        return [
            (previous, at_ms)
            for previous, at_ms in await self._db.fetch(
                """
                SELECT previous, at_ms FROM (
                    SELECT at_ms, COALESCE(LAG(at_ms) OVER (ORDER BY at_ms), CAST(? AS BIGINT)) AS previous
                    FROM (SELECT at_ms FROM market_samples
                          WHERE asset = ? AND venue = ? AND at_ms > ? AND at_ms < ?
                          AND open_interest_usd IS NOT NULL
                          UNION ALL SELECT CAST(? AS BIGINT) AS at_ms) AS points
                ) AS steps WHERE at_ms - previous > ? ORDER BY at_ms
                """,
                (after_ms, asset, venue, after_ms, before_ms, before_ms, min_gap_ms),
            )
        ]

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
