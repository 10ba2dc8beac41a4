"""Liquidation events, their minute and hour rollups, and recorded (and backfilled) spans.

`Store` is also the handle of an install's storage: its `db` (the `Database`
every sibling store shares) and its `chats`. Amounts are stored as integer
cents so sums are exact. Windows are answered as `windows.decompose` plans
them: hour rollups for whole hours, minute rollups for whole minutes, raw
events for the partial edge minutes (or that minute's rollup less the rest of
it: always for the end edge, for the start edge when the rest is shorter;
`windows.minute_rest`). Each rollup bucket
records its largest order and when, so a window's largest order is looked up,
not scanned for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.core.models import HOUR_MS, MINUTE_MS, LiquidationEvent, Side, Window, event_row
from bot.core.summary import Breakdown, RecordedSpan, SideTotal, TotalRow
from bot.storage.backends import open_database
from bot.storage.chats_store import ChatsStore
from bot.storage.database import Database
from bot.storage.rows import EVENT_COLUMNS, event_of
from bot.storage.windows import BUCKET_MS, CHILD, Piece, asset_filter, decompose, minute_of, minute_rest, time_column

__all__ = ["AddResult", "Store", "StoreStats"]

# SQLite refuses a compound SELECT of more than 500 terms (SQLITE_MAX_COMPOUND_SELECT).
SELECTS_PER_UNION = 400


@dataclass(frozen=True, slots=True)
class AddResult:
    inserted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class StoreStats:
    events: int
    first_at_ms: int | None
    last_at_ms: int | None
    events_by_venue: dict[str, int]


class Store:
    """Events, rollups and spans over a `Database`. `await Store.open(location)`
    opens the database too; `close()` closes it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.chats = ChatsStore(db)

    @classmethod
    async def open(cls, location: str | Path, **connection) -> Store:
        """`location`: a SQLite file path or a postgresql:// URL; `connection`: see `open_database`."""
        return cls(await open_database(location, **connection))

    async def close(self) -> None:
        await self.db.close()

    # -- writes ---------------------------------------------------------

    async def add_events(self, events: Sequence[LiquidationEvent]) -> AddResult:
        """Store events once each (a replayed frame is a duplicate) and roll them up."""
        return await self.add_rows(list(map(event_row, events)))

    async def add_rows(self, rows: list[tuple]) -> AddResult:
        """`add_events` for rows made by `event_row` (cheap to pass between processes)."""
        if not rows:
            return AddResult(0, 0)
        inserted = await self.db.insert_events(rows)
        return AddResult(inserted=inserted, duplicates=len(rows) - inserted)

    async def add_span(self, venue: str, stream: str, start_ms: int, end_ms: int) -> None:
        """Record that a stream was being recorded over [start, end); merges overlaps."""
        await self._merge_span("recorded_spans", venue, stream, start_ms, end_ms)

    async def add_backfilled_span(self, venue: str, stream: str, start_ms: int, end_ms: int) -> None:
        """Record that a stream's [start, end) was filled from the venue's REST history; merges overlaps."""
        await self._merge_span("backfilled_spans", venue, stream, start_ms, end_ms)

    async def _merge_span(self, table: str, venue: str, stream: str, start_ms: int, end_ms: int) -> None:
        async with self.db.transaction() as tx:
            overlapping = await tx.fetch(
                f"SELECT start_ms, end_ms FROM {table} WHERE venue = ? AND stream = ?"
                " AND start_ms <= ? AND end_ms >= ?",
                (venue, stream, end_ms, start_ms),
            )
            for old_start, old_end in overlapping:
                start_ms, end_ms = min(start_ms, old_start), max(end_ms, old_end)
            await tx.executemany(
                f"DELETE FROM {table} WHERE venue = ? AND stream = ? AND start_ms = ?",
                [(venue, stream, old_start) for old_start, _ in overlapping],
            )
            await tx.execute(
                f"INSERT INTO {table} (venue, stream, start_ms, end_ms) VALUES (?,?,?,?)",
                (venue, stream, start_ms, end_ms),
            )

    # -- reads ----------------------------------------------------------

    async def totals(self, asset: str | None, window: Window) -> list[TotalRow]:
        """USD and counts per (asset, venue, side) over the window, exact."""
        sums, args = _window_sums(asset, window)
        if not sums:
            return []
        rows = await self.db.fetch_compact(
            f"SELECT asset, venue, liquidated, SUM(cents), SUM(n) FROM ({sums}) AS parts GROUP BY asset, venue, liquidated",
            args, 5,
        )
        return [
            TotalRow(asset=a, venue=v, liquidated=Side(side), usd=cents / 100, events=n) for a, v, side, cents, n in rows
        ]

    async def breakdown(self, asset: str | None, window: Window, top_assets: int) -> Breakdown:
        """The window's totals per venue and side, and per side of its `top_assets`
        largest assets, summed in the database: a reply reads a few dozen rows,
        not one per (asset, venue, side) and piece of the window (thousands in a
        cascade over hundreds of listings, each a wait for the GIL under load)."""
        sums, args = _window_sums(asset, window)
        if not sums:
            return Breakdown((), ())
        rows = await self.db.fetch_compact(
            f"WITH parts AS ({sums})"
            " SELECT 'venue', venue, liquidated, SUM(cents), SUM(n) FROM parts GROUP BY venue, liquidated"
            " UNION ALL SELECT 'asset', asset, liquidated, SUM(cents), SUM(n) FROM parts"
            " WHERE asset IN (SELECT asset FROM parts GROUP BY asset ORDER BY SUM(cents) DESC, asset LIMIT ?)"
            " GROUP BY asset, liquidated",
            [*args, top_assets], 5,
        )
        groups: dict[str, list[SideTotal]] = {"venue": [], "asset": []}
        for group, name, side, cents, n in rows:
            groups[group].append(SideTotal(name, Side(side), cents / 100, n))
        return Breakdown(tuple(groups["venue"]), tuple(groups["asset"]))

    async def window_totals(self, asset: str | None, end_ms: int, duration_ms: int, count: int) -> list[float]:
        """USD totals of `count` back-to-back windows ending at `end_ms`, newest first.

        One rollup query: `end_ms` and `duration_ms` must be whole hours (or, for
        shorter windows, whole minutes) so each bucket falls in one window.
        """
        table, bucket_ms = ("rollup_hour", HOUR_MS) if duration_ms % HOUR_MS == 0 else ("rollup_minute", MINUTE_MS)
        if end_ms % bucket_ms or duration_ms % bucket_ms:
            raise ValueError("window_totals needs bucket-aligned windows")
        where_asset, asset_args = asset_filter(asset)
        rows = await self.db.fetch_compact(
            f"SELECT (? - bucket_ms - 1) / ?, SUM(usd_cents) FROM {table}"
            f" WHERE bucket_ms >= ? AND bucket_ms < ?{where_asset} GROUP BY 1",
            (end_ms, duration_ms, end_ms - count * duration_ms, end_ms, *asset_args), 2,
        )
        totals = [0.0] * count
        for index, cents in rows:
            totals[index] = cents / 100
        return totals

    async def events_since_by_stream(self, since_ms: int) -> dict[tuple[str, str], int]:
        rows = await self.db.fetch(
            "SELECT venue, stream, COUNT(*) FROM events WHERE at_ms >= ? GROUP BY venue, stream", (since_ms,)
        )
        return {(venue, stream): n for venue, stream, n in rows}

    async def largest(self, asset: str | None, window: Window, limit: int) -> list[LiquidationEvent]:
        """The `limit` largest single liquidations in the window, largest first.

        Rollups keep each bucket's largest order. Level by level (the window's
        pieces, then hours' minutes, then minutes' events), each piece's
        top-`limit` buckets are fetched in one query; only buckets whose maximum
        reaches the limit-th largest candidate can hold an answer, so only
        those are opened.
        """
        if limit == 1:
            found = await self._largest_by_rollups(asset, window)
            if found is not None:
                return found
        where_asset, asset_args = asset_filter(asset)
        found: list[tuple] = []
        level = decompose(window)
        while level:
            raw = [p for p in level if p.table == "events"]
            found += await self._union(
                [
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE at_ms >= ? AND at_ms < ?{where_asset}"
                    " ORDER BY notional_cents DESC LIMIT ?"
                    for _ in raw
                ],
                [arg for p in raw for arg in (p.start_ms, p.end_ms, *asset_args, limit)],
            )
            bucketed = [p for p in level if p.table != "events"]
            buckets = await self._union(
                [
                    f"SELECT '{p.table}', bucket_ms, max_cents FROM {p.table}"
                    f" WHERE bucket_ms >= ? AND bucket_ms < ?{where_asset} ORDER BY max_cents DESC LIMIT ?"
                    for p in bucketed
                ],
                [arg for p in bucketed for arg in (p.start_ms, p.end_ms, *asset_args, limit)],
                compact_columns=3,
            )
            values = sorted([row[8] for row in found] + [row[2] for row in buckets], reverse=True)
            floor_cents = values[min(limit, len(values)) - 1] if values else 0
            level = sorted(
                {
                    Piece(CHILD[table], bucket, bucket + BUCKET_MS[table])
                    for table, bucket, top in buckets
                    if top >= floor_cents
                },
                key=lambda p: (p.table, p.start_ms),
            )
        found.sort(key=lambda r: (-r[8], r[0]))
        return [event_of(r) for r in found[:limit]]

    async def _largest_by_rollups(self, asset: str | None, window: Window) -> list[LiquidationEvent] | None:
        """The window's largest order from the rollups' record of each bucket's largest
        (`max_at_ms`): the top bucket of each piece, then one order looked up by its
        time. An edge piece counts its minute's top bucket when that order falls inside
        it, and is scanned only when it could hold something larger. None when the
        rollups can't tell (a bucket recorded before schema 14, an order pruned by
        retention): the caller opens the buckets instead."""
        where_asset, asset_args = asset_filter(asset)
        pieces = decompose(window)
        within_minute = [p for p in pieces if p.table != "events" or minute_of(p) is not None]
        tops = await self._union(
            [_TOP_BUCKET.format(index=i, table="rollup_minute" if p.table == "events" else p.table,
                                where_asset=where_asset)
             for i, p in enumerate(within_minute)],
            [arg for p in within_minute for arg in 2 * (*_rollup_range(p), *asset_args)],
            compact_columns=6,
        )
        best: tuple | None = None  # (cents, -at_ms, asset, venue, liquidated) of the best known order
        unknown: dict[Piece, int | None] = {p: None for p in pieces if p.table == "events"}  # edge -> bound
        for index, cents, at_ms, *group in tops:
            piece = within_minute[index]
            if piece.table == "events" and (at_ms is None or not piece.start_ms <= at_ms < piece.end_ms):
                unknown[piece] = cents  # its minute's largest lies outside it: nothing inside is larger
                continue
            if at_ms is None:
                return None  # a bucket recorded before its largest order's time was
            if piece.table == "events":
                del unknown[piece]
            if best is None or (cents, -at_ms) > best[:2]:
                best = (cents, -at_ms, *group)
        if any(bound is None and minute_of(p) is not None for p, bound in unknown.items()):
            # An edge whose minute has no bucket at all holds nothing, unless retention pruned the
            # minute's rollups (and kept its events): then it is scanned.
            horizon = await self.db.fetchone("SELECT before_ms FROM retention_horizons WHERE name = 'rollup_minute'")
            pruned_before_ms = horizon[0] if horizon else 0
            unknown = {p: bound for p, bound in unknown.items()
                       if bound is not None or minute_of(p) is None or minute_of(p) < pruned_before_ms}
        scans = [p for p, bound in unknown.items() if best is None or bound is None or bound >= best[0]]
        scanned = await self._union(
            [f"SELECT {EVENT_COLUMNS} FROM events WHERE at_ms >= ? AND at_ms < ?{where_asset}"
             " ORDER BY notional_cents DESC, at_ms LIMIT 1" for _ in scans],
            [arg for p in scans for arg in (p.start_ms, p.end_ms, *asset_args)],
        )
        top_scanned = min(scanned, key=lambda r: (-r[8], r[0]), default=None)
        if top_scanned is not None and (best is None or (top_scanned[8], -top_scanned[0]) >= best[:2]):
            return [event_of(top_scanned)]
        if best is None:
            return []
        cents, negative_at_ms, top_asset, venue, liquidated = best
        row = await self.db.fetchone(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE at_ms = ? AND asset = ? AND venue = ? AND liquidated = ?"
            " AND notional_cents = ? LIMIT 1",
            (-negative_at_ms, top_asset, venue, liquidated, cents),
        )
        return None if row is None else [event_of(row)]

    async def _union(self, selects: list[str], args: list, compact_columns: int | None = None) -> list[tuple]:
        """Rows of several limited SELECTs, in as few round trips as SQLite's cap on
        compound SELECTs (500 terms) allows; every select takes the same number of args.
        With `compact_columns`, the rows of integers and text come by `Database.fetch_compact`."""
        rows: list[tuple] = []
        per_select = len(args) // len(selects) if selects else 0
        for first in range(0, len(selects), SELECTS_PER_UNION):
            chunk = selects[first:first + SELECTS_PER_UNION]
            sql = " UNION ALL ".join(f"SELECT * FROM ({select}) AS piece{i}" for i, select in enumerate(chunk))
            chunk_args = args[first * per_select:(first + len(chunk)) * per_select]
            if compact_columns is None:
                rows += await self.db.fetch(sql, chunk_args)
            else:
                rows += await self.db.fetch_compact(sql, chunk_args, compact_columns)
        return rows

    async def spans(self, window: Window) -> list[RecordedSpan]:
        """Spans touching the window, recorded live and backfilled (`RecordedSpan.backfilled`)."""
        rows = await self.db.fetch_compact(
            "SELECT venue, stream, start_ms, end_ms, 0 AS backfilled FROM recorded_spans"
            " WHERE start_ms < ? AND end_ms > ?"
            " UNION ALL SELECT venue, stream, start_ms, end_ms, 1 AS backfilled FROM backfilled_spans"
            " WHERE start_ms < ? AND end_ms > ?",
            (window.end_ms, window.start_ms, window.end_ms, window.start_ms), 5,
        )
        rows.sort(key=lambda row: (row[2], row[4], row[0], row[1]))  # by start, live before backfilled
        return [
            RecordedSpan(venue, stream, start, end, bool(backfilled)) for venue, stream, start, end, backfilled in rows
        ]

    async def assets(self) -> list[str]:
        """Assets with at least one stored event, most liquidated first."""
        rows = await self.db.fetch("SELECT asset FROM rollup_hour GROUP BY asset ORDER BY SUM(usd_cents) DESC")
        return [row[0] for row in rows]

    async def stats(self) -> StoreStats:
        by_venue = dict(await self.db.fetch("SELECT venue, SUM(events) FROM rollup_hour GROUP BY venue"))
        (first,) = await self.db.fetchone("SELECT MIN(at_ms) FROM events")
        (last,) = await self.db.fetchone("SELECT MAX(at_ms) FROM events")
        return StoreStats(sum(by_venue.values()), first, last, by_venue)



def _rollup_range(piece: Piece) -> tuple[int, int]:
    """The rollup buckets that hold a piece: its own, or a raw piece's minute."""
    if piece.table == "events":
        minute = minute_of(piece)
        return minute, minute + MINUTE_MS
    return piece.start_ms, piece.end_ms


def _window_sums(asset: str | None, window: Window) -> tuple[str, list]:
    """One SELECT of (asset, venue, liquidated, cents, n) per piece of the window
    (`windows.decompose`), joined by UNION ALL; empty for an empty window."""
    where_asset, asset_args = asset_filter(asset)
    selects, args = [], []
    for piece in decompose(window):
        raw = piece.table == "events"
        sums = "SUM(notional_cents) AS cents, COUNT(*) AS n" if raw else "SUM(usd_cents) AS cents, SUM(events) AS n"
        column = time_column(piece.table)
        rest = minute_rest(piece)
        if rest is None:
            selects.append(
                f"SELECT asset, venue, liquidated, {sums} FROM {piece.table}"
                f" WHERE {column} >= ? AND {column} < ?{where_asset} GROUP BY asset, venue, liquidated"
            )
            args += [piece.start_ms, piece.end_ms, *asset_args]
            continue
        # As the minute's rollup less its rest where retention kept both the minute's events
        # and its rollup; else as raw events (their range made empty when it did).
        minute = minute_of(piece)
        selects.append(_MINUTE_LESS_REST.format(rest_asset=where_asset, rollup_asset=asset_filter(asset, "r.asset")[0]))
        args += [rest.start_ms, rest.end_ms, *asset_args, minute, *asset_args, minute, minute]
        selects.append(
            f"SELECT asset, venue, liquidated, {sums} FROM events WHERE at_ms >= ?"
            f" AND at_ms < CASE WHEN {_MINUTE_KEPT} THEN CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END{where_asset}"
            " GROUP BY asset, venue, liquidated"
        )
        args += [piece.start_ms, minute, minute, piece.start_ms, piece.end_ms, *asset_args]
    return " UNION ALL ".join(selects), args


# The bucket with the largest order of a piece of a rollup table: its size found on the
# index alone, then of the buckets of that size the one whose order came first (one whose
# time is not recorded first of all: the caller then can't tell). Args, twice: the
# piece's start and end, the asset.
# (The time is looked up per bucket of that size: a filter on the whole range that read
# it would fetch every bucket's row, as the by-time index does not hold it.)
_TOP_BUCKET = (
    "SELECT * FROM (SELECT {index} AS piece, top.max_cents, (SELECT k.max_at_ms FROM {table} AS k"
    " WHERE k.asset = top.asset AND k.bucket_ms = top.bucket_ms AND k.venue = top.venue"
    " AND k.liquidated = top.liquidated) AS at_ms, top.asset, top.venue, top.liquidated"
    " FROM (SELECT max_cents, asset, bucket_ms, venue, liquidated FROM {table}"
    " WHERE bucket_ms >= ? AND bucket_ms < ?{where_asset} AND max_cents ="
    " (SELECT MAX(max_cents) FROM {table} WHERE bucket_ms >= ? AND bucket_ms < ?{where_asset})) AS top) AS tied"
    " ORDER BY at_ms IS NOT NULL, at_ms LIMIT 1"
)


# Whether retention kept a minute's events and its rollup whole: the minute is at or after
# both tables' horizons (maintenance.apply_retention). Args: the minute, twice.
_MINUTE_KEPT = (
    "(? >= COALESCE((SELECT before_ms FROM retention_horizons WHERE name = 'events'), 0)"
    " AND ? >= COALESCE((SELECT before_ms FROM retention_horizons WHERE name = 'rollup_minute'), 0))"
)
# A raw edge piece as its minute's rollup less the rest of the minute (`windows.minute_rest`),
# where `_MINUTE_KEPT`. Args: the rest's start and end, the asset (if any), the minute, the
# asset again, the minute twice.
_MINUTE_LESS_REST = (
    "SELECT r.asset, r.venue, r.liquidated,"
    " r.usd_cents - COALESCE(rest.cents, 0) AS cents, r.events - COALESCE(rest.n, 0) AS n"
    " FROM rollup_minute AS r LEFT JOIN ("
    "SELECT asset, venue, liquidated, SUM(notional_cents) AS cents, COUNT(*) AS n FROM events"
    " WHERE at_ms >= ? AND at_ms < ?{rest_asset} GROUP BY asset, venue, liquidated"
    ") AS rest ON rest.asset = r.asset AND rest.venue = r.venue AND rest.liquidated = r.liquidated"
    " WHERE r.bucket_ms = ?{rollup_asset} AND r.events > COALESCE(rest.n, 0) AND " + _MINUTE_KEPT
)
