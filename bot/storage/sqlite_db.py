"""The embedded SQLite backend (aiosqlite): one writer and read-only connections.

Writes go through the writer connection in explicit transactions under a
write lock; reads use other connections so a long ingest batch never stalls
a `/liq` answer (WAL lets them run side by side). Each aiosqlite connection
runs its statements one at a time, in order: commands (bot.plumbing.priority's
foreground) read on connections of their own, so a reply never waits behind
the thousands of reads of background work (alerts, digests) on another; and
they have several, so one command's reads do not queue behind another's (a
firehose slows every read down) nor behind one slow read. Every call is
`handed_over`: an event loop that never idles would otherwise starve the
connections' threads of the GIL (bot.plumbing.handover).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiosqlite
import orjson

from bot.plumbing.handover import handed_over
from bot.plumbing.priority import in_foreground, waited_for
from bot.storage.database import Database, Transaction
from bot.storage.migrations import migrations, newer_schema
from bot.storage.rows import EVENT_COLUMNS, EVENT_KEY, ROLLUP_UPSERT, rollup_rows

_INSERT_EVENT = f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
_KEY_MATCH = " AND ".join(f"e.{column} = i.{column}" for column in EVENT_KEY.split(", "))
FOREGROUND_READERS = 4


def packed_read(sql: str, columns: int) -> str:
    """A read of `columns` columns as one row holding a JSON array of its rows (`fetch_compact`)."""
    names = ", ".join(f"c{index}" for index in range(columns))
    return f"WITH q({names}) AS ({sql}) SELECT json_group_array(json_array({names})) FROM q"


async def _roll_back(db: aiosqlite.Connection) -> None:
    """End what was begun, also when a cancellation interrupted the BEGIN or COMMIT:
    aiosqlite runs statements in order on its thread, so this ROLLBACK runs after
    them (checking `in_transaction` first could look before the BEGIN ran and leave
    the writer inside a transaction for good). Nothing open: nothing to do."""
    with suppress(sqlite3.OperationalError):
        await handed_over(db.execute("ROLLBACK"))


class _SqliteTransaction(Transaction):
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def fetch(self, sql: str, args: Sequence = ()) -> list[tuple]:
        return [tuple(row) for row in await handed_over(self._db.execute_fetchall(sql, args))]

    async def execute(self, sql: str, args: Sequence = ()) -> int:
        cursor = await handed_over(self._db.execute(sql, args))
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence]) -> None:
        await handed_over(self._db.executemany(sql, rows))


class SqliteDatabase(Database):
    backend = "sqlite"
    integrity_ok = "SQLite integrity_check ok"

    def __init__(
        self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection, *foreground: aiosqlite.Connection
    ) -> None:
        self.path = path
        self._writer = writer
        self._background_reader = reader
        self._foreground_readers = foreground
        # Per foreground connection, when each read in flight on it began (monotonic s).
        self._foreground_reads: list[list[float]] = [[] for _ in foreground]
        self._write_lock = asyncio.Lock()

    async def _foreground_read(self, sql: str, args: Sequence) -> Iterable[sqlite3.Row]:
        """A person's read, on an idle foreground connection, or else on the one
        whose oldest read began last (a read running long is likely to run longer);
        a firehose makes way while it is in flight (bot.plumbing.priority)."""
        reads = self._foreground_reads
        chosen = max(range(len(reads)), key=lambda index: reads[index][0] if reads[index] else math.inf)
        began_s = time.monotonic()
        reads[chosen].append(began_s)
        read = asyncio.ensure_future(handed_over(self._foreground_readers[chosen].execute_fetchall(sql, args)))

        def ended(done: asyncio.Future) -> None:
            # The connection was busy until now, also if nobody waited for the read any more.
            reads[chosen].remove(began_s)
            if not done.cancelled():
                done.exception()  # retrieved here: its reader may have gone

        read.add_done_callback(ended)
        with waited_for():
            return await asyncio.shield(read)

    @classmethod
    async def open(cls, path: str | Path) -> SqliteDatabase:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(str(path), isolation_level=None)
        readers: list[aiosqlite.Connection] = []
        try:
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute("PRAGMA synchronous=NORMAL")
            await writer.execute("PRAGMA busy_timeout=5000")
            await _migrate(writer)
            await writer.execute(f"CREATE TEMP TABLE incoming AS SELECT {EVENT_COLUMNS} FROM events WHERE 0")
            for _ in range(1 + FOREGROUND_READERS):
                readers.append(await aiosqlite.connect(str(path), isolation_level=None))
                await readers[-1].execute("PRAGMA busy_timeout=5000")
                await readers[-1].execute("PRAGMA query_only=1")
        except BaseException:
            for connection in (writer, *readers):
                await connection.close()
            raise
        return cls(path, writer, *readers)

    async def close(self) -> None:
        async with self._write_lock:
            await self._writer.close()
        for reader in (self._background_reader, *self._foreground_readers):
            await reader.close()

    async def fetch(self, sql: str, args: Sequence = ()) -> list[tuple]:
        if in_foreground():
            rows = await self._foreground_read(sql, args)
        else:
            rows = await handed_over(self._background_reader.execute_fetchall(sql, args))
        return [tuple(row) for row in rows]

    async def fetch_compact(self, sql: str, args: Sequence, columns: int) -> list[tuple]:
        """The rows as one JSON array in one row. sqlite3 steps a result row by row,
        and its reader thread takes the GIL back after each step: while another
        thread runs Python, that is up to the switch interval (5 ms) a row
        (`benchmarks/busy_reads.py`: a 1,200-row read, 11.7 s row by row, 62 ms
        packed). JSON renders REAL values to 15 digits only, hence integers and text only."""
        ((text,),) = await self.fetch(packed_read(sql, columns), args)
        return [tuple(row) for row in orjson.loads(text)]

    async def execute(self, sql: str, args: Sequence = ()) -> int:
        # One statement commits by itself (autocommit): no BEGIN/COMMIT round trips.
        async with self._write_lock:
            cursor = await handed_over(self._writer.execute(sql, args))
            return cursor.rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._write_lock:
            db = self._writer
            try:
                await handed_over(db.execute("BEGIN IMMEDIATE"))
                yield _SqliteTransaction(db)
                await handed_over(db.execute("COMMIT"))
            except BaseException:
                await _roll_back(db)
                raise

    async def batches(self, sql: str, batch_rows: int) -> AsyncIterator[list[tuple]]:
        # Bulk reads (exports) are nobody's wait: one statement on the background reader,
        # whose read transaction is the snapshot.
        cursor = await handed_over(self._background_reader.execute(sql))
        try:
            while rows := await handed_over(cursor.fetchmany(batch_rows)):
                yield [tuple(row) for row in rows]
        finally:
            await handed_over(cursor.close())

    async def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        marks = ",".join("?" * len(columns))
        async with self.transaction() as tx:
            await tx.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    async def insert_events(self, rows: list[tuple]) -> int:
        async with self._write_lock:
            return await handed_over(self._insert_events_locked(rows))

    async def _insert_events_locked(self, rows: list[tuple]) -> int:
        db = self._writer
        try:
            await db.execute("BEGIN IMMEDIATE")
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
            minute_rows, hour_rows = rollup_rows(inserted)
            await db.executemany(ROLLUP_UPSERT.format(table="rollup_minute"), minute_rows)
            await db.executemany(ROLLUP_UPSERT.format(table="rollup_hour"), hour_rows)
            await db.execute("COMMIT")
        except BaseException:
            await _roll_back(db)
            raise
        return len(inserted)

    async def _insert_new_only(self, rows: list[tuple]) -> list[tuple]:
        db = self._writer
        await db.execute("DELETE FROM incoming")
        await db.executemany(f"INSERT INTO incoming ({EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows)
        cursor = await db.execute(
            f"SELECT {EVENT_COLUMNS} FROM incoming AS i WHERE NOT EXISTS (SELECT 1 FROM events AS e WHERE {_KEY_MATCH})"
        )
        # dict: the batch may repeat a row (a venue resending a frame within a batch).
        fresh = list({tuple(r)[:6]: tuple(r) for r in await cursor.fetchall()}.values())
        await db.executemany(_INSERT_EVENT, fresh)
        await db.execute("DELETE FROM incoming")
        return fresh

    async def integrity_problems(self) -> list[str]:
        messages = [row[0] for row in await self.fetch("PRAGMA integrity_check")]
        return [] if messages == ["ok"] else messages


async def _migrate(db: aiosqlite.Connection) -> None:
    scripts = migrations("sqlite")
    cursor = await db.execute("PRAGMA user_version")
    (version,) = await cursor.fetchone()
    if version > len(scripts):
        raise newer_schema(version, len(scripts))
    for number, (_name, script) in enumerate(scripts[version:], start=version + 1):
        await db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
