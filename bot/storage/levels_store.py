"""Estimated liquidation levels in the liqbot database (migration 0008): each
asset's book, the crossed bands with their grade, and hourly snapshots."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from bot.core.levels import NO_GRADE, Crossing, Grade
from bot.storage.sibling import SiblingStore


def _cents(usd: float) -> int:
    return round(usd * 100)


class LevelsStore(SiblingStore):
    async def book_state(self, asset: str) -> dict | None:
        rows = await self._db.fetch("SELECT state FROM level_books WHERE asset = ?", (asset,))
        return orjson.loads(rows[0][0]) if rows else None

    async def save(
        self,
        asset: str,
        state: dict,
        graded: Sequence[tuple[Crossing, float]],
        snapshots: Sequence[tuple[int, dict]],
        now_ms: int,
    ) -> None:
        """The book, the bands crossed since the last save (with the USD liquidated
        near each) and the new snapshots, in one transaction."""
        crossings = [
            (asset, c.side.value, c.price, c.open_ms, c.close_ms, _cents(c.estimated_usd), _cents(realized))
            for c, realized in graded
        ]
        shots = [(asset, at_ms, orjson.dumps(shot).decode()) for at_ms, shot in snapshots]
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO level_books (asset, state, updated_ms) VALUES (?,?,?)"
                " ON CONFLICT (asset) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
                (asset, orjson.dumps(state).decode(), now_ms),
            )
            await tx.executemany(
                "INSERT INTO level_crossings (asset, side, price, open_ms, close_ms, estimated_cents,"
                " realized_cents) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                crossings,
            )
            await tx.executemany(
                "INSERT INTO level_snapshots (asset, at_ms, state) VALUES (?,?,?)"
                " ON CONFLICT (asset, at_ms) DO UPDATE SET state = excluded.state",
                shots,
            )

    async def grade(self, asset: str, since_ms: int, until_ms: int) -> Grade:
        """The grade of the bands crossed in bars closing in (since_ms, until_ms] (each crossing
        keeps what was recorded near it; the match caps that at the band's estimate)."""
        rows = await self._db.fetch(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN realized_cents > 0 THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(estimated_cents), 0),"
            " COALESCE(SUM(CASE WHEN realized_cents < estimated_cents THEN realized_cents ELSE estimated_cents END), 0),"
            " COALESCE(SUM(realized_cents), 0)"
            " FROM level_crossings WHERE asset = ? AND close_ms > ? AND close_ms <= ?",
            (asset, since_ms, until_ms),
        )
        crossings, hit, estimated_cents, matched_cents, near_cents = rows[0]
        if not crossings:
            return NO_GRADE
        return Grade(crossings, hit, estimated_cents / 100, matched_cents / 100, near_cents / 100)

    async def snapshots(self, asset: str, since_ms: int, until_ms: int) -> list[tuple[int, dict]]:
        """(at_ms, book state) of the hourly snapshots in [since_ms, until_ms), oldest first."""
        rows = await self._db.fetch(
            "SELECT at_ms, state FROM level_snapshots WHERE asset = ? AND at_ms >= ? AND at_ms < ? ORDER BY at_ms",
            (asset, since_ms, until_ms),
        )
        return [(at_ms, orjson.loads(state)) for at_ms, state in rows]
