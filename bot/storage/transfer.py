"""Copying an install's data from one database to another (`liqbot migrate`):
SQLite to PostgreSQL when a community outgrows one machine, or back.

Both databases are opened by this liqbot, so both carry the same schema (every
migration applied); every table of it is copied, in batches, each table read
from one snapshot of the source and written with the target driver's fast path
(COPY on PostgreSQL). The target must be empty: a copy never merges into data
already there. Identity counters (alert rule ids, outbox ids) continue after the
copied rows on PostgreSQL (SQLite's follow explicit ids by themselves). At the
end every table's rows are counted on both sides.

Stop `liqbot run` on the source first: rows it writes during the copy would
make the counts differ (the copy says so, and the target can be dropped and
copied again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.storage.database import Database

DEFAULT_BATCH_ROWS = 20_000
# The schema's own bookkeeping: each database keeps its own (PostgreSQL's table of
# applied migrations; SQLite's is a PRAGMA).
_NOT_COPIED = {"schema_migrations"}

# on_progress(rows copied, rows in all, tables done)
OnProgress = Callable[[int, int, int], None]


class TargetNotEmpty(Exception):
    """The target holds data already (one line for a person)."""


@dataclass(slots=True)
class Copied:
    rows_by_table: dict[str, int] = field(default_factory=dict)
    # table -> (rows in the source, rows in the target), for the tables whose counts differ
    differences: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_table.values())

    def difference_line(self) -> str:
        return "; ".join(f"{table}: {source:,} in the source, {target:,} copied"
                         for table, (source, target) in self.differences.items())


async def tables(db: Database) -> dict[str, list[str]]:
    """liqbot's tables and their columns, by name (the schema's bookkeeping left out)."""
    if db.backend == "postgresql":
        rows = await db.fetch(
            "SELECT c.table_name, c.column_name FROM information_schema.columns AS c"
            " WHERE c.table_schema = current_schema() ORDER BY c.table_name, c.ordinal_position"
        )
    else:
        rows = await db.fetch(
            "SELECT m.name, c.name FROM sqlite_master AS m, pragma_table_info(m.name) AS c"
            " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, c.cid"
        )
    found: dict[str, list[str]] = {}
    for table, column in rows:
        if table not in _NOT_COPIED:
            found.setdefault(table, []).append(column)
    return found


async def row_counts(db: Database, names: list[str]) -> dict[str, int]:
    counts = {}
    for table in names:
        (counts[table],) = await db.fetchone(f"SELECT COUNT(*) FROM {table}")
    return counts


async def copy_database(
    source: Database, target: Database, batch_rows: int = DEFAULT_BATCH_ROWS, on_progress: OnProgress | None = None
) -> Copied:
    """Copy every table of `source` into the empty `target` and count both sides.
    Raises TargetNotEmpty before writing anything when the target holds rows."""
    schema = await tables(source)
    target_schema = await tables(target)
    if set(schema) != set(target_schema):
        raise RuntimeError(f"the two schemas differ: {sorted(set(schema) ^ set(target_schema))}")
    occupied = {table: n for table, n in (await row_counts(target, list(schema))).items() if n}
    if occupied:
        listed = ", ".join(f"{table} ({n:,} rows)" for table, n in occupied.items())
        raise TargetNotEmpty(f"the target is not empty: {listed}; migrate into a new, empty database")
    expected = await row_counts(source, list(schema))
    total, done = sum(expected.values()), 0
    copied = Copied()
    for number, (table, columns) in enumerate(schema.items()):
        rows = 0
        async for batch in _prefetched(source, f"SELECT {', '.join(columns)} FROM {table}", batch_rows):
            await target.copy_rows(table, columns, batch)
            rows += len(batch)
            done += len(batch)
            if on_progress is not None:
                on_progress(done, total, number)
        copied.rows_by_table[table] = rows
        if on_progress is not None:
            on_progress(done, total, number + 1)
    if target.backend == "postgresql":
        await _continue_identities(target)
    for table, count in (await row_counts(target, list(schema))).items():
        if count != expected[table]:
            copied.differences[table] = (expected[table], count)
    return copied


async def _prefetched(source: Database, sql: str, batch_rows: int):
    """The source's batches, the next one read while the last is being written."""
    batches = source.batches(sql, batch_rows)
    pending = asyncio.ensure_future(anext(batches, None))
    try:
        while (batch := await pending) is not None:
            pending = asyncio.ensure_future(anext(batches, None))
            yield batch
    finally:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pending  # its error, if any, was raised above already
        await batches.aclose()


async def _continue_identities(target: Database) -> None:
    """Each identity column's next value after the copied ids (explicit ids leave it at 1)."""
    identities = await target.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    )
    for table, column in identities:
        await target.fetch(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 1),"
            f" MAX({column}) IS NOT NULL) FROM {table}"
        )
