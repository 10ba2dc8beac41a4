"""Keeping a long-running SQLite database healthy: retention, rollup rebuilds,
consistency checks and online backups.

Retention deletes in small batches (`batch_rows` per transaction) so the write
lock is never held for long and a live ingest keeps flowing between batches:
raw events and minute rollups older than their configured ages go, hour
rollups stay forever (they answer every long window and history rank), market
samples and klines follow `market.retention_days`.

The database keeps SQLite's default `auto_vacuum = NONE` and is never
VACUUMed: deleted pages go to the freelist and the next inserts reuse them, so
under steady traffic the file grows to the size of the retained data plus one
retention period's churn and then stays there (benchmarks/retention.py shows
it over a simulated year). INCREMENTAL would only hand pages back to the file
system, which a store that refills them the next day does not need, and
switching an existing database to it takes a full VACUUM.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.storage.rows import ROLLUP_COLUMNS, ROLLUP_TABLES
from bot.storage.store import Store

DEFAULT_BATCH_ROWS = 5_000
# The one definition of a rollup row as derived from raw events (check and rebuild):
# the largest order's time is the earliest among the bucket's orders of its largest size.
_ROLLUP_OF_EVENTS = (
    "SELECT asset, bucket_ms, venue, liquidated, SUM(notional_cents) AS usd_cents, COUNT(*) AS events,"
    " MAX(notional_cents) AS max_cents, MIN(CASE WHEN is_largest THEN at_ms END) AS max_at_ms FROM ("
    "SELECT asset, at_ms - at_ms % {bucket} AS bucket_ms, venue, liquidated, notional_cents, at_ms,"
    " notional_cents = MAX(notional_cents) OVER (PARTITION BY asset, at_ms - at_ms % {bucket}, venue, liquidated)"
    " AS is_largest FROM events WHERE at_ms >= ?) AS bucketed GROUP BY asset, bucket_ms, venue, liquidated"
)


# -- retention -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    events_days: float = 90
    minute_rollups_days: float = 90
    market_days: float = 35


@dataclass(slots=True)
class Pruned:
    events: int = 0
    minute_rollups: int = 0
    market_samples: int = 0
    level_rows: int = 0  # liquidation-level snapshots and graded crossings
    klines: int = 0

    def one_line(self) -> str:
        return (
            f"retention: {self.events:,} raw events, {self.minute_rollups:,} minute rollups,"
            f" {self.market_samples:,} market samples, {self.klines:,} klines"
            f" and {self.level_rows:,} liquidation-level rows deleted"
        )


# A horizon only moves forward (a policy keeping more from now on brings nothing back).
_RECORD_HORIZON = (
    "INSERT INTO retention_horizons (name, before_ms) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET before_ms ="
    " CASE WHEN excluded.before_ms > retention_horizons.before_ms THEN excluded.before_ms"
    " ELSE retention_horizons.before_ms END"
)


async def _delete_before(
    store: Store, table: str, column: str, cutoff_ms: int, batch_rows: int, record_horizon: bool = False
) -> int:
    """Delete rows older than `cutoff_ms` oldest first, about `batch_rows` per
    transaction (whole minutes: between two batches the oldest kept minute is
    whole, as a window's edge read from its minute's rollup needs), yielding the
    write lock between batches. With `record_horizon`, each batch also records how
    far it pruned, under the table's name in retention_horizons."""
    deleted = 0
    while True:
        async with store.db.transaction() as tx:
            boundary = await tx.fetchone(
                f"SELECT {column} FROM {table} WHERE {column} < ? ORDER BY {column} LIMIT 1 OFFSET ?",
                (cutoff_ms, batch_rows - 1),
            )
            until_ms = cutoff_ms if boundary is None else min(cutoff_ms, boundary[0] - boundary[0] % MINUTE_MS + MINUTE_MS)
            last_batch = until_ms == cutoff_ms
            deleted += await tx.execute(f"DELETE FROM {table} WHERE {column} < ?", (until_ms,))
            if record_horizon:
                await tx.execute(_RECORD_HORIZON, (table, until_ms))
        if last_batch:
            return deleted
        await asyncio.sleep(0)  # queued writers (ingest) take the lock between batches


async def apply_retention(
    store: Store, policy: RetentionPolicy, now_ms: int, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Pruned:
    """Delete what the policy no longer keeps; hour rollups, spans and each asset's
    current levels book are kept forever."""
    pruned = Pruned()
    pruned.events = await _delete_before(
        store, "events", "at_ms", _cutoff(now_ms, policy.events_days, MINUTE_MS), batch_rows, record_horizon=True
    )
    pruned.minute_rollups = await _delete_before(
        store, "rollup_minute", "bucket_ms", _cutoff(now_ms, policy.minute_rollups_days, HOUR_MS), batch_rows,
        record_horizon=True,
    )
    market_cutoff = _cutoff(now_ms, policy.market_days, MINUTE_MS)
    pruned.market_samples = await _delete_before(store, "market_samples", "at_ms", market_cutoff, batch_rows)
    pruned.klines = await _delete_before(store, "klines", "open_ms", market_cutoff, batch_rows)
    # The levels are drawn from market samples: their heatmap snapshots and graded
    # crossings go with them (the book itself is one row per asset, kept).
    for table, column in (("level_snapshots", "at_ms"), ("level_crossings", "close_ms")):
        pruned.level_rows += await _delete_before(store, table, column, market_cutoff, batch_rows)
    return pruned


def _cutoff(now_ms: int, days: float, align_ms: int) -> int:
    """Cut on a bucket boundary: a rollup bucket is either whole or gone."""
    cutoff = now_ms - round(days * DAY_MS)
    return cutoff - cutoff % align_ms


# -- rollups derived from raw events ---------------------------------------------


async def rollup_horizon_ms(store: Store, bucket_ms: int) -> int | None:
    """The first bucket whose raw events are all still stored (None: no events).

    Retention removes old events, so older buckets can't be recomputed; the
    bucket holding the oldest kept event may have lost part of its events.
    """
    (first_ms,) = await store.db.fetchone("SELECT MIN(at_ms) FROM events")
    if first_ms is None:
        return None
    return -(-first_ms // bucket_ms) * bucket_ms if first_ms % bucket_ms else first_ms


def rollup_difference_sql(table: str, bucket_ms: int) -> str:
    """How many buckets of `table` differ from their recomputation from events
    (wrong, missing or extra), from a horizon given four times as a parameter.
    A largest order's time not recorded (NULL: a bucket older than schema 14) is no difference."""
    key = "asset, bucket_ms, venue, liquidated"
    sums = f"{key}, usd_cents, events, max_cents"
    stored = f"SELECT {ROLLUP_COLUMNS} FROM {table} WHERE bucket_ms >= ?"
    return (
        f"WITH derived AS ({_ROLLUP_OF_EVENTS.format(bucket=bucket_ms)})"
        f" SELECT COUNT(*) FROM (SELECT {key} FROM (SELECT {sums} FROM derived EXCEPT SELECT {sums} FROM ({stored}) AS s)"
        f" AS missing UNION SELECT {key} FROM (SELECT {sums} FROM ({stored}) AS s EXCEPT SELECT {sums} FROM derived)"
        f" AS extra UNION SELECT {key} FROM (SELECT {key}, max_at_ms FROM ({stored}) AS s WHERE max_at_ms IS NOT NULL"
        f" EXCEPT SELECT {key}, max_at_ms FROM derived) AS misplaced) AS differing"
    )


async def rebuild_rollups(store: Store) -> int:
    """Recompute minute and hour rollups from the raw events still stored.

    Buckets older than the oldest kept event are left alone (their events are
    gone; the rollup is all that is left). Returns the rollup rows written.
    """
    written = 0
    for table, bucket_ms in ROLLUP_TABLES:
        horizon = await rollup_horizon_ms(store, bucket_ms)
        if horizon is None:
            continue
        async with store.db.transaction() as tx:
            await tx.execute(f"DELETE FROM {table} WHERE bucket_ms >= ?", (horizon,))
            written += await tx.execute(
                f"INSERT INTO {table} ({ROLLUP_COLUMNS}) {_ROLLUP_OF_EVENTS.format(bucket=bucket_ms)}", (horizon,)
            )
    return written


# -- backups ----------------------------------------------------------------------


def backup_database(source: Path, target: Path) -> int:
    """A consistent copy of a live database with SQLite's online backup API.

    Runs in the caller's thread (use `asyncio.to_thread`). The copy is taken in
    one step under a read transaction: in WAL mode writers carry on meanwhile,
    and the copy is the database as of that transaction's start. Refuses to
    overwrite an existing file. Returns the copy's size in bytes.
    """
    if target.exists():
        raise FileExistsError(f"{target} exists; liqbot backup never overwrites a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reader, sqlite3.connect(partial) as copy:
        reader.execute("PRAGMA busy_timeout=5000")
        reader.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    reader.close()
    copy.close()
    partial.rename(target)  # a crash mid-copy never leaves something that looks like a backup
    return target.stat().st_size
