"""SQLite storage for liquidation events, rollups, recorded spans and chats.

Writes go through one connection in explicit transactions; reads use a second
connection so a long ingest batch never stalls a `/liq` answer (WAL lets them
run side by side). Amounts are stored as integer cents so sums are exact.

A window [start, end) is answered from hour rollups for whole hours, minute
rollups for whole minutes and raw events for the partial edge minutes, so the
result is exact at any boundary and cheap for long windows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from bot.core.models import HOUR_MS, MINUTE_MS, LiquidationEvent, Side, Window
from bot.core.summary import RecordedSpan, TotalRow
from bot.storage.migrations import MIGRATIONS

_EVENT_COLUMNS = "at_ms, venue, instrument, liquidated, quantity, price, stream, asset, notional_cents"
_INSERT_EVENT = f"INSERT OR IGNORE INTO events ({_EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
_ROLLUP_UPSERT = """
INSERT INTO {table} (asset, bucket_ms, venue, liquidated, usd_cents, events, max_cents)
VALUES (?,?,?,?,?,?,?)
ON CONFLICT (asset, bucket_ms, venue, liquidated) DO UPDATE SET
    usd_cents = usd_cents + excluded.usd_cents,
    events = events + excluded.events,
    max_cents = max(max_cents, excluded.max_cents)
"""


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


def event_row(event: LiquidationEvent) -> tuple:
    """An event as a row of the events table (what `add_rows` takes)."""
    return (
        event.at_ms,
        event.venue,
        event.instrument,
        event.liquidated.value,
        event.quantity,
        event.price,
        event.stream,
        event.asset,
        round(event.notional_usd * 100),
    )


def _event_of(row: Sequence) -> LiquidationEvent:
    at_ms, venue, instrument, liquidated, quantity, price, stream, asset, cents = row
    return LiquidationEvent(
        venue=venue,
        stream=stream,
        instrument=instrument,
        asset=asset,
        liquidated=Side(liquidated),
        price=price,
        quantity=quantity,
        notional_usd=cents / 100,
        at_ms=at_ms,
    )


def _rollup_rows(rows: Iterable[tuple]) -> tuple[list[tuple], list[tuple]]:
    """Group event rows into (asset, bucket, venue, side) deltas: per minute, per hour."""
    minutes: dict[tuple, list[int]] = {}
    for at_ms, venue, _instrument, liquidated, _q, _p, _stream, asset, cents in rows:
        key = (asset, at_ms - at_ms % MINUTE_MS, venue, liquidated)
        delta = minutes.get(key)
        if delta is None:
            minutes[key] = [cents, 1, cents]
        else:
            delta[0] += cents
            delta[1] += 1
            if cents > delta[2]:
                delta[2] = cents
    hours: dict[tuple, list[int]] = {}
    for (asset, minute, venue, liquidated), (cents, count, top) in minutes.items():
        key = (asset, minute - minute % HOUR_MS, venue, liquidated)
        delta = hours.get(key)
        if delta is None:
            hours[key] = [cents, count, top]
        else:
            delta[0] += cents
            delta[1] += count
            if top > delta[2]:
                delta[2] = top
    return (
        [(*key, *delta) for key, delta in minutes.items()],
        [(*key, *delta) for key, delta in hours.items()],
    )


@dataclass(frozen=True, slots=True)
class _Piece:
    """A part of a window answered by one source."""

    table: str  # "events", "rollup_minute" or "rollup_hour"
    start_ms: int
    end_ms: int


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def _floor(value: int, step: int) -> int:
    return value - value % step


def decompose(window: Window) -> list[_Piece]:
    """Split a window into raw edges, whole minutes and whole hours."""
    start, end = window.start_ms, window.end_ms
    if end <= start:
        return []
    first_minute, last_minute = _ceil(start, MINUTE_MS), _floor(end, MINUTE_MS)
    if first_minute >= last_minute:
        return [_Piece("events", start, end)]
    pieces = []
    if start < first_minute:
        pieces.append(_Piece("events", start, first_minute))
    first_hour, last_hour = _ceil(first_minute, HOUR_MS), _floor(last_minute, HOUR_MS)
    if first_hour >= last_hour:
        pieces.append(_Piece("rollup_minute", first_minute, last_minute))
    else:
        if first_minute < first_hour:
            pieces.append(_Piece("rollup_minute", first_minute, first_hour))
        pieces.append(_Piece("rollup_hour", first_hour, last_hour))
        if last_hour < last_minute:
            pieces.append(_Piece("rollup_minute", last_hour, last_minute))
    if last_minute < end:
        pieces.append(_Piece("events", last_minute, end))
    return pieces


_CHILD = {"rollup_hour": "rollup_minute", "rollup_minute": "events"}
_BUCKET_MS = {"rollup_hour": HOUR_MS, "rollup_minute": MINUTE_MS}


def _time_column(table: str) -> str:
    return "at_ms" if table == "events" else "bucket_ms"


def _asset_filter(asset: str | None) -> tuple[str, tuple]:
    return ("", ()) if asset is None else (" AND asset = ?", (asset,))


class Store:
    """The one gateway to the database. Create with `await Store.open(path)`."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._chat_locales: dict[str, str | None] = {}
        self._chat_timezones: dict[str, str | None] = {}

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute("PRAGMA synchronous=NORMAL")
            await writer.execute("PRAGMA busy_timeout=5000")
            await _migrate(writer)
            await writer.execute(
                f"CREATE TEMP TABLE incoming AS SELECT {_EVENT_COLUMNS} FROM events WHERE 0"
            )
            reader = await aiosqlite.connect(str(path), isolation_level=None)
            await reader.execute("PRAGMA busy_timeout=5000")
            await reader.execute("PRAGMA query_only=1")
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader)

    async def close(self) -> None:
        async with self._write_lock:
            await self._writer.close()
        await self._reader.close()

    # -- writes ---------------------------------------------------------

    async def add_events(self, events: Sequence[LiquidationEvent]) -> AddResult:
        """Store events once each (a replayed frame is a duplicate) and roll them up."""
        return await self.add_rows(list(map(event_row, events)))

    async def add_rows(self, rows: list[tuple]) -> AddResult:
        """`add_events` for rows made by `event_row` (cheap to pass between processes)."""
        if not rows:
            return AddResult(0, 0)
        async with self._write_lock:
            db = self._writer
            await db.execute("BEGIN IMMEDIATE")
            try:
                changes_before = db.total_changes
                await db.executemany(_INSERT_EVENT, rows)
                inserted = rows
                if db.total_changes - changes_before != len(rows):
                    # Some rows were duplicates (of stored rows or of each other): redo the
                    # batch keeping only new rows, so rollups count each event once.
                    # Rare: replays and reconnect overlaps.
                    await db.execute("ROLLBACK")
                    await db.execute("BEGIN IMMEDIATE")
                    inserted = await self._insert_new_only(rows)
                minute_rows, hour_rows = _rollup_rows(inserted)
                await db.executemany(_ROLLUP_UPSERT.format(table="rollup_minute"), minute_rows)
                await db.executemany(_ROLLUP_UPSERT.format(table="rollup_hour"), hour_rows)
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise
        return AddResult(inserted=len(inserted), duplicates=len(rows) - len(inserted))

    async def _insert_new_only(self, rows: list[tuple]) -> list[tuple]:
        db = self._writer
        await db.execute("DELETE FROM incoming")
        await db.executemany(
            f"INSERT INTO incoming ({_EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows
        )
        cursor = await db.execute(
            f"""SELECT {_EVENT_COLUMNS} FROM incoming AS i WHERE NOT EXISTS (
                SELECT 1 FROM events AS e WHERE e.at_ms = i.at_ms AND e.venue = i.venue
                AND e.instrument = i.instrument AND e.liquidated = i.liquidated
                AND e.quantity = i.quantity AND e.price = i.price)"""
        )
        # dict: the batch may repeat a row (a venue resending a frame within a batch).
        fresh = list({tuple(r)[:6]: tuple(r) for r in await cursor.fetchall()}.values())
        await db.executemany(_INSERT_EVENT, fresh)
        await db.execute("DELETE FROM incoming")
        return fresh

    async def add_span(self, venue: str, stream: str, start_ms: int, end_ms: int) -> None:
        """Record that a stream was being recorded over [start, end); merges overlaps."""
        async with self._write_lock:
            db = self._writer
            await db.execute("BEGIN IMMEDIATE")
            try:
                cursor = await db.execute(
                    "SELECT start_ms, end_ms FROM recorded_spans WHERE venue = ? AND stream = ?"
                    " AND start_ms <= ? AND end_ms >= ?",
                    (venue, stream, end_ms, start_ms),
                )
                overlapping = await cursor.fetchall()
                for old_start, old_end in overlapping:
                    start_ms, end_ms = min(start_ms, old_start), max(end_ms, old_end)
                await db.executemany(
                    "DELETE FROM recorded_spans WHERE venue = ? AND stream = ? AND start_ms = ?",
                    [(venue, stream, old_start) for old_start, _ in overlapping],
                )
                await db.execute(
                    "INSERT INTO recorded_spans VALUES (?,?,?,?)", (venue, stream, start_ms, end_ms)
                )
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise

    async def set_chat_locale(self, chat_key: str, locale: str, now_ms: int) -> None:
        async with self._write_lock:
            await self._writer.execute(
                "INSERT INTO chats (chat_key, locale, updated_ms) VALUES (?,?,?)"
                " ON CONFLICT (chat_key) DO UPDATE SET locale = excluded.locale,"
                " updated_ms = excluded.updated_ms",
                (chat_key, locale, now_ms),
            )
            self._chat_locales[chat_key] = locale

    async def set_chat_timezone(self, chat_key: str, tz: str | None, now_ms: int) -> None:
        """The chat's own IANA zone for every time shown; None goes back to UTC."""
        async with self._write_lock:
            if tz is None:
                await self._writer.execute("DELETE FROM chat_timezones WHERE chat_key = ?", (chat_key,))
            else:
                await self._writer.execute(
                    "INSERT INTO chat_timezones (chat_key, tz, updated_ms) VALUES (?,?,?)"
                    " ON CONFLICT (chat_key) DO UPDATE SET tz = excluded.tz, updated_ms = excluded.updated_ms",
                    (chat_key, tz, now_ms),
                )
            self._chat_timezones[chat_key] = tz

    async def set_chat_active(self, chat_key: str, active: bool, now_ms: int) -> None:
        async with self._write_lock:
            await self._writer.execute(
                "INSERT INTO chats (chat_key, active, updated_ms) VALUES (?,?,?)"
                " ON CONFLICT (chat_key) DO UPDATE SET active = excluded.active,"
                " updated_ms = excluded.updated_ms",
                (chat_key, int(active), now_ms),
            )

    # -- reads ----------------------------------------------------------

    async def chat_locale(self, chat_key: str) -> str | None:
        """Every command asks, and only `set_chat_locale` changes it: cached."""
        return await self._cached(self._chat_locales, "SELECT locale FROM chats WHERE chat_key = ?", chat_key)

    async def chat_timezone(self, chat_key: str) -> str | None:
        """Every command asks, and only `set_chat_timezone` changes it: cached."""
        return await self._cached(self._chat_timezones, "SELECT tz FROM chat_timezones WHERE chat_key = ?", chat_key)

    async def _cached(self, cache: dict[str, str | None], sql: str, chat_key: str) -> str | None:
        if chat_key not in cache:
            cursor = await self._reader.execute(sql, (chat_key,))
            row = await cursor.fetchone()
            # setdefault: a write that landed while this read was in flight wins.
            cache.setdefault(chat_key, row[0] if row else None)
        return cache[chat_key]

    async def chat_active(self, chat_key: str) -> bool:
        cursor = await self._reader.execute("SELECT active FROM chats WHERE chat_key = ?", (chat_key,))
        row = await cursor.fetchone()
        return bool(row[0]) if row else True

    async def totals(self, asset: str | None, window: Window) -> list[TotalRow]:
        """USD and counts per (asset, venue, side) over the window, exact: one query
        over the window's raw edges, minute and hour rollups."""
        where_asset, asset_args = _asset_filter(asset)
        selects, args = [], []
        for piece in decompose(window):
            sums = "SUM(notional_cents), COUNT(*)" if piece.table == "events" else "SUM(usd_cents), SUM(events)"
            column = _time_column(piece.table)
            selects.append(
                f"SELECT asset, venue, liquidated, {sums} FROM {piece.table}"
                f" WHERE {column} >= ? AND {column} < ?{where_asset} GROUP BY asset, venue, liquidated"
            )
            args += [piece.start_ms, piece.end_ms, *asset_args]
        sums_by_key: dict[tuple[str, str, str], list[int]] = {}
        if selects:
            cursor = await self._reader.execute(" UNION ALL ".join(selects), args)
            for row_asset, venue, liquidated, cents, count in await cursor.fetchall():
                acc = sums_by_key.setdefault((row_asset, venue, liquidated), [0, 0])
                acc[0] += cents
                acc[1] += count
        return [
            TotalRow(asset=a, venue=v, liquidated=Side(side), usd=cents / 100, events=n)
            for (a, v, side), (cents, n) in sums_by_key.items()
        ]

    async def window_totals(self, asset: str | None, end_ms: int, duration_ms: int, count: int) -> list[float]:
        """USD totals of `count` back-to-back windows ending at `end_ms`, newest first.

        One rollup query: `end_ms` and `duration_ms` must be whole hours (or, for
        shorter windows, whole minutes) so each bucket falls in one window.
        """
        table, bucket_ms = ("rollup_hour", HOUR_MS) if duration_ms % HOUR_MS == 0 else ("rollup_minute", MINUTE_MS)
        if end_ms % bucket_ms or duration_ms % bucket_ms:
            raise ValueError("window_totals needs bucket-aligned windows")
        where_asset, asset_args = _asset_filter(asset)
        cursor = await self._reader.execute(
            f"SELECT (? - bucket_ms - 1) / ?, SUM(usd_cents) FROM {table}"
            f" WHERE bucket_ms >= ? AND bucket_ms < ?{where_asset} GROUP BY 1",
            (end_ms, duration_ms, end_ms - count * duration_ms, end_ms, *asset_args),
        )
        totals = [0.0] * count
        for index, cents in await cursor.fetchall():
            totals[index] = cents / 100
        return totals

    async def events_since_by_stream(self, since_ms: int) -> dict[tuple[str, str], int]:
        cursor = await self._reader.execute(
            "SELECT venue, stream, COUNT(*) FROM events WHERE at_ms >= ? GROUP BY venue, stream", (since_ms,)
        )
        return {(venue, stream): n for venue, stream, n in await cursor.fetchall()}

    async def largest(self, asset: str | None, window: Window, limit: int) -> list[LiquidationEvent]:
        """The `limit` largest single liquidations in the window, largest first.

        Rollups keep each bucket's largest order. Level by level (the window's
        pieces, then hours' minutes, then minutes' events), each piece's
        top-`limit` buckets are fetched in one query; only buckets whose maximum
        reaches the limit-th largest candidate can hold an answer, so only
        those are opened.
        """
        where_asset, asset_args = _asset_filter(asset)
        found: list[tuple] = []
        level = decompose(window)
        while level:
            raw = [p for p in level if p.table == "events"]
            found += await self._union(
                [
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE at_ms >= ? AND at_ms < ?{where_asset}"
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
            )
            values = sorted([row[8] for row in found] + [row[2] for row in buckets], reverse=True)
            floor_cents = values[min(limit, len(values)) - 1] if values else 0
            level = sorted(
                {
                    _Piece(_CHILD[table], bucket, bucket + _BUCKET_MS[table])
                    for table, bucket, top in buckets
                    if top >= floor_cents
                },
                key=lambda p: (p.table, p.start_ms),
            )
        found.sort(key=lambda r: (-r[8], r[0]))
        return [_event_of(r) for r in found[:limit]]

    async def _union(self, selects: list[str], args: list) -> list[tuple]:
        """Rows of several limited SELECTs in one round trip."""
        if not selects:
            return []
        sql = " UNION ALL ".join(f"SELECT * FROM ({select})" for select in selects)
        cursor = await self._reader.execute(sql, args)
        return [tuple(row) for row in await cursor.fetchall()]

    async def spans(self, window: Window) -> list[RecordedSpan]:
        cursor = await self._reader.execute(
            "SELECT venue, stream, start_ms, end_ms FROM recorded_spans"
            " WHERE start_ms < ? AND end_ms > ? ORDER BY start_ms",
            (window.end_ms, window.start_ms),
        )
        return [RecordedSpan(*row) for row in await cursor.fetchall()]

    async def assets(self) -> list[str]:
        """Assets with at least one stored event, most liquidated first."""
        cursor = await self._reader.execute(
            "SELECT asset FROM rollup_hour GROUP BY asset ORDER BY SUM(usd_cents) DESC"
        )
        return [row[0] for row in await cursor.fetchall()]

    async def stats(self) -> StoreStats:
        cursor = await self._reader.execute(
            "SELECT venue, SUM(events) FROM rollup_hour GROUP BY venue"
        )
        by_venue = dict(await cursor.fetchall())
        cursor = await self._reader.execute("SELECT MIN(at_ms) FROM events")
        (first,) = await cursor.fetchone()
        cursor = await self._reader.execute("SELECT MAX(at_ms) FROM events")
        (last,) = await cursor.fetchone()
        return StoreStats(sum(by_venue.values()), first, last, by_venue)

    # -- for sibling stores (market_store) sharing these connections ----

    @property
    def writer(self) -> aiosqlite.Connection:
        """The write connection; write only while holding `write_lock`."""
        return self._writer

    @property
    def reader(self) -> aiosqlite.Connection:
        """The read-only connection."""
        return self._reader

    @property
    def write_lock(self) -> asyncio.Lock:
        return self._write_lock


async def _migrate(db: aiosqlite.Connection) -> None:
    cursor = await db.execute("PRAGMA user_version")
    (version,) = await cursor.fetchone()
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this liqbot ({len(MIGRATIONS)}); upgrade liqbot"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
