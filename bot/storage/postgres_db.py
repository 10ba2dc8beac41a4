"""The PostgreSQL backend (asyncpg), for several replicas sharing one database.

asyncpg: maintained, the fastest Python driver, with binary COPY and
executemany of prepared statements. One pool serves reads and writes; writes of
this process still go one at a time (a write lock), like on SQLite, so every
store's check-then-write transaction behaves the same on both backends.

Stores write `?` placeholders; they become `$1, $2, ...` here (once per
statement text). Bulk ingest COPYs a batch into a per-connection temporary
table, then one statement inserts the new events (ON CONFLICT DO NOTHING) and
adds exactly those to the minute and hour rollups (INSERT ... ON CONFLICT DO
UPDATE). Migrations are tracked in `schema_migrations`, applied under an
advisory lock so replicas starting together apply each once.

The password never comes from the URL in the config file: it is passed apart
(LIQBOT_DB_PASSWORD), and the URL shown in messages has none.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache

import asyncpg

from bot.plumbing.bounds import Url
from bot.storage.database import TOPICS, Database, DatabaseUnavailable, Transaction
from bot.storage.migrations import migrations, newer_schema
from bot.storage.rows import EVENT_COLUMNS, ROLLUP_COLUMNS, ROLLUP_MERGE, ROLLUP_TABLES

log = logging.getLogger(__name__)

_MIGRATION_LOCK_KEY = 0x6C69716D  # "liqm": one advisory lock id for schema changes
CHANGES_CHANNEL = "liqbot_changes"  # NOTIFY channel of `changed`; the payload is the topic
# Each connection's landing table for COPY; emptied by every commit.
_INCOMING = (
    "CREATE TEMPORARY TABLE incoming (at_ms BIGINT, venue TEXT, instrument TEXT, liquidated TEXT,"
    " quantity DOUBLE PRECISION, price DOUBLE PRECISION, stream TEXT, asset TEXT, notional_cents BIGINT)"
    " ON COMMIT DELETE ROWS"
)
_EVENT_COLUMN_NAMES = [column.strip() for column in EVENT_COLUMNS.split(",")]


def _rollup_of_new(table: str, bucket_ms: int) -> str:
    return (
        f"{table} AS (INSERT INTO {table} ({ROLLUP_COLUMNS})"
        f" SELECT asset, at_ms - at_ms % {bucket_ms}, venue, liquidated,"
        " SUM(notional_cents), COUNT(*), MAX(notional_cents),"
        " (ARRAY_AGG(at_ms ORDER BY notional_cents DESC, at_ms))[1] FROM new GROUP BY 1, 2, 3, 4"
        f" {ROLLUP_MERGE.format(table=table)})"
    )


# One statement: the batch's new events (a duplicate of a stored row or of another
# row of the batch is skipped), and exactly those added to both rollups.
_INGEST = (
    f"WITH new AS (INSERT INTO events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM incoming"
    " ON CONFLICT DO NOTHING RETURNING asset, at_ms, venue, liquidated, notional_cents), "
    + ", ".join(_rollup_of_new(table, bucket_ms) for table, bucket_ms in ROLLUP_TABLES)
    + " SELECT COUNT(*) FROM new"
)


@lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...` (string literals left alone)."""
    count = 0

    def number(match: re.Match) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return re.sub(r"'(?:[^']|'')*'|\?", number, sql)


def _changed(status: str) -> int:
    """Rows a statement changed, from its status ("UPDATE 3", "INSERT 0 1")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _numeric(text: str) -> int | float:
    """SUM of BIGINT cents is NUMERIC in PostgreSQL: whole numbers come back as int
    (exact cents, like SQLite's sums); the schema has no NUMERIC column of its own."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


class _Connection(asyncpg.Connection):
    """Pooled connections keep no session state of ours to reset (the advisory
    lock of leadership lives on its own connection), so releasing one costs no
    round trip; the temporary `incoming` table stays for the next batch."""

    def get_reset_query(self) -> str:
        return ""


async def _prepare_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text")
    await connection.execute(_INCOMING)


class _PgTransaction(Transaction):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def fetch(self, sql: str, args: Sequence = ()) -> list[tuple]:
        return [tuple(row) for row in await self._connection.fetch(numbered(sql), *args)]

    async def execute(self, sql: str, args: Sequence = ()) -> int:
        return _changed(await self._connection.execute(numbered(sql), *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence]) -> None:
        if rows:
            await self._connection.executemany(numbered(sql), rows)


class PostgresDatabase(Database):
    backend = "postgresql"
    integrity_ok = "PostgreSQL answers (the server guards its own pages)"

    def __init__(self, url: str, pool: asyncpg.Pool, connect: Callable[[], asyncpg.Connection] | None = None) -> None:
        self.url = Url.without_password(url)
        self._pool = pool
        self._write_lock = asyncio.Lock()
        self._connect = connect  # a connection of its own (for `listen`), as the pool's are made

    @classmethod
    async def open(
        cls, url: str, password: str | None = None, connect_timeout_s: float = 5.0, pool_size: int = 4
    ) -> PostgresDatabase:
        """Connect (each attempt bounded by `connect_timeout_s`) and migrate;
        DatabaseUnavailable (one line) when the server cannot be used."""
        shown = Url.without_password(url)
        try:
            pool = await asyncio.wait_for(
                asyncpg.create_pool(
                    url,
                    password=password,
                    min_size=1,
                    max_size=pool_size,
                    timeout=connect_timeout_s,
                    connection_class=_Connection,
                    init=_prepare_connection,
                ),
                timeout=connect_timeout_s * 2,
            )
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
            reason = str(error).strip() or type(error).__name__
            if isinstance(error, asyncio.TimeoutError):
                reason = f"no answer within {connect_timeout_s:g} s"
            raise DatabaseUnavailable(f"cannot open PostgreSQL at {shown}: {reason}") from None
        try:
            await _migrate(pool)
        except BaseException:
            await pool.close()
            raise
        return cls(url, pool, lambda: asyncpg.connect(url, password=password, timeout=connect_timeout_s))

    async def close(self) -> None:
        async with self._write_lock:
            await self._pool.close()

    async def fetch(self, sql: str, args: Sequence = ()) -> list[tuple]:
        return [tuple(row) for row in await self._pool.fetch(numbered(sql), *args)]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._write_lock, self._pool.acquire() as connection, connection.transaction():
            yield _PgTransaction(connection)

    async def batches(self, sql: str, batch_rows: int) -> AsyncIterator[list[tuple]]:
        async with self._pool.acquire() as connection, connection.transaction(
            isolation="repeatable_read", readonly=True
        ):
            cursor = await connection.cursor(numbered(sql))
            while rows := await cursor.fetch(batch_rows):
                yield [tuple(row) for row in rows]

    async def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        async with self._write_lock, self._pool.acquire() as connection, connection.transaction():
            await connection.copy_records_to_table(table, records=rows, columns=list(columns))

    async def insert_events(self, rows: list[tuple]) -> int:
        async with self._write_lock, self._pool.acquire() as connection, connection.transaction():
            await connection.copy_records_to_table("incoming", records=rows, columns=_EVENT_COLUMN_NAMES)
            inserted = await connection.fetchval(_INGEST)
        return inserted

    async def changed(self, topic: str) -> None:
        assert topic in TOPICS, topic
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", CHANGES_CHANNEL, topic)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The change is stored; the leader sees it at its next term instead of now.
            log.warning("could not announce a change of %s to the leader: %s", topic, error)

    @asynccontextmanager
    async def listen(self, on_change: Callable[[str], None]) -> AsyncIterator[None]:
        """LISTEN on a connection of its own (a pooled one would be reused by others)."""
        connection = await self._connect()

        def notified(_connection, _pid, _channel, payload: str) -> None:
            if payload in TOPICS:
                on_change(payload)

        try:
            await connection.add_listener(CHANGES_CHANNEL, notified)
            yield
        finally:
            try:
                await connection.close(timeout=2)
            except Exception:  # already cut: nothing to say goodbye to
                connection.terminate()

    async def integrity_problems(self) -> list[str]:
        # The server guards its own pages (WAL, checksums when enabled); what liqbot can
        # check is that it answers, and the rollups (doctor's next check).
        await self.fetch("SELECT 1")
        return []


async def _migrate(pool: asyncpg.Pool) -> None:
    scripts = migrations("postgresql")
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)"
        )
        version = await connection.fetchval("SELECT COALESCE(MAX(number), 0) FROM schema_migrations")
        if version > len(scripts):
            raise newer_schema(version, len(scripts))
        for number, (name, script) in enumerate(scripts[version:], start=version + 1):
            await connection.execute(script)
            await connection.execute(
                "INSERT INTO schema_migrations (number, name, applied_ms) VALUES ($1, $2, $3)",
                number, name, int(time.time() * 1000),
            )
