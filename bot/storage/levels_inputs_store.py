"""What the levels model reads besides market samples (migration 0011): the
venues' closed klines per asset, and the lowest-tier maintenance margin rate
each venue publishes per asset.

A kline stored twice for the same (asset, venue, open) keeps the latest read
(a re-read may carry a taker split the first lacked); a margin rate is the
latest per (asset, venue).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.bars import Kline
from bot.storage.sibling import SiblingStore

_KLINE_COLUMNS = "asset, venue, open_ms, close_ms, open, high, low, close, volume_usd, taker_buy_usd"
_KLINE_UPSERT = (
    f"INSERT INTO klines ({_KLINE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (asset, venue, open_ms) "
    "DO UPDATE SET close_ms = excluded.close_ms, open = excluded.open, high = excluded.high, low = excluded.low, "
    "close = excluded.close, volume_usd = excluded.volume_usd, taker_buy_usd = excluded.taker_buy_usd"
)


class KlineStore(SiblingStore):
    async def add_klines(self, klines: Sequence[Kline]) -> int:
        """Store klines in one transaction; returns how many were written."""
        if not klines:
            return 0
        rows = [
            (k.asset, k.venue, k.open_ms, k.close_ms, k.open, k.high, k.low, k.close, k.volume_usd, k.taker_buy_usd)
            for k in klines
        ]
        async with self._db.transaction() as tx:
            await tx.executemany(_KLINE_UPSERT, rows)
        return len(rows)

    async def kline_gaps(
        self, asset: str, venue: str, after_ms: int, before_ms: int, interval_ms: int
    ) -> list[tuple[int, int]]:
        """The stretches between the two instants where klines of `asset` on `venue`
        are missing: (after, before) pairs, oldest first, each end a stored kline's
        open or one of the two instants, more than `interval_ms` apart."""
        return [
            (previous, at_ms)
            for previous, at_ms in await self._db.fetch(
                """
                SELECT previous, at_ms FROM (
                    SELECT at_ms, COALESCE(LAG(at_ms) OVER (ORDER BY at_ms), CAST(? AS BIGINT)) AS previous
                    FROM (SELECT open_ms AS at_ms FROM klines
                          WHERE asset = ? AND venue = ? AND open_ms > ? AND open_ms < ?
                          UNION ALL SELECT CAST(? AS BIGINT) AS at_ms) AS points
                ) AS steps WHERE at_ms - previous > ? ORDER BY at_ms
                """,
                (after_ms, asset, venue, after_ms, before_ms, before_ms, interval_ms),
            )
        ]

    async def klines(self, asset: str, since_ms: int, until_ms: int) -> list[Kline]:
        """Every venue's klines of `asset` opening in [since_ms, until_ms), oldest first."""
        rows = await self._db.fetch(
            f"SELECT {_KLINE_COLUMNS} FROM klines WHERE asset = ? AND open_ms >= ? AND open_ms < ?"
            " ORDER BY venue, open_ms",
            (asset, since_ms, until_ms),
        )
        return [Kline(venue, asset_, *values) for asset_, venue, *values in rows]


class MarginRateStore(SiblingStore):
    async def set_rates(self, rates: Sequence[tuple[str, str, float]], at_ms: int) -> None:
        """(asset, venue, lowest-tier maintenance margin rate) read at `at_ms`."""
        if not rates:
            return
        async with self._db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO margin_rates (asset, venue, maintenance_margin_rate, at_ms) VALUES (?,?,?,?)"
                " ON CONFLICT (asset, venue) DO UPDATE SET"
                " maintenance_margin_rate = excluded.maintenance_margin_rate, at_ms = excluded.at_ms",
                [(asset, venue, rate, at_ms) for asset, venue, rate in rates],
            )

    async def rates(self, asset: str) -> dict[str, float]:
        """Venue -> the latest lowest-tier maintenance margin rate of `asset`."""
        rows = await self._db.fetch(
            "SELECT venue, maintenance_margin_rate FROM margin_rates WHERE asset = ? ORDER BY venue", (asset,)
        )
        return dict(rows)
