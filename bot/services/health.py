"""Is the database usable, and are the feeds recording? Asked two ways, one rule:

- `liqbot health` (`check_health`), meant for a container's HEALTHCHECK, runs
  beside `liqbot run` in another process: it opens the SQLite file read-only (no
  migrations, no write lock); on PostgreSQL it connects and asks like `/healthz`
  of a leader;
- `/healthz` of `liqbot run` itself (`live_health`, served by
  bot.services.ops_http) asks over the process's own database connection, so a
  connection that is gone, or a database file removed under it, shows.

Both read how far each stream's recorded span reaches. The live ingest extends the
span of every connected stream at each flush (`feeds.runner.batch_ms`), so a
connected but quiet stream stays fresh.

Healthy = the database answers and at least one enabled stream recorded within
`stale_after_ms` (or no stream is enabled). One venue's outage keeps the bot
healthy (it is named in the line): restarting liqbot cannot fix a venue. A
follower (a replica that is not the leader, bot.services.leadership) runs no
feeds: the database alone decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.core.models import Window
from bot.core.summary import RecordedSpan
from bot.replies.numbers import age, duration

# /healthz answers within this even when the database hangs (a load balancer's probe times out too).
DATABASE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Health:
    ok: bool
    line: str


def _recorded_until(path: Path) -> dict[tuple[str, str], int]:
    """The end of each stream's newest recorded span, read-only."""
    uri = path.resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
        rows = db.execute("SELECT venue, stream, MAX(end_ms) FROM recorded_spans GROUP BY venue, stream")
        return {(venue, stream): end_ms for venue, stream, end_ms in rows}


def check_health(
    db_path: Path, enabled_streams: Iterable[tuple[str, str]], now_ms: int, stale_after_ms: int
) -> Health:
    if not db_path.is_file():
        return Health(False, f"unhealthy: no database at {db_path}")
    try:
        recorded = _recorded_until(db_path)
    except sqlite3.Error as error:
        return Health(False, f"unhealthy: cannot read the database {db_path}: {error}")
    return _assess(recorded, enabled_streams, now_ms, stale_after_ms, f"database {db_path} opens")


class SpanReader(Protocol):
    async def spans(self, window: Window) -> list[RecordedSpan]: ...


async def live_health(
    store: SpanReader,
    db_file: Path | None,
    leader: bool,
    enabled_streams: Iterable[tuple[str, str]],
    now_ms: int,
    stale_after_ms: int,
) -> Health:
    """`/healthz`: the process's own connection answers (and, for SQLite, `db_file`
    is still there); for the leader, the feeds record."""
    if db_file is not None and not db_file.is_file():
        return Health(False, f"unhealthy: the database file {db_file} is gone")
    # Not wait_for: it waits for the cancelled read to finish, and a driver cancelling a
    # query over a cut connection can take far longer than a probe waits.
    read = asyncio.ensure_future(store.spans(Window(0, now_ms + 1)))
    done, _ = await asyncio.wait({read}, timeout=DATABASE_TIMEOUT_S)
    if not done:
        read.cancel()  # finishes in the background
        return Health(False, f"unhealthy: the database does not answer within {DATABASE_TIMEOUT_S:g} s")
    try:
        spans = read.result()
    except Exception as error:  # closed, cut or locked: whatever it is, it does not answer
        detail = " ".join(str(error).split()) or type(error).__name__
        return Health(False, f"unhealthy: the database does not answer: {detail}")
    if not leader:
        return Health(True, "healthy: the database answers; a follower (the leader runs the feeds)")
    recorded: dict[tuple[str, str], int] = {}
    for span in spans:
        key = (span.venue, span.stream)
        recorded[key] = max(recorded.get(key, span.end_ms), span.end_ms)
    return _assess(recorded, enabled_streams, now_ms, stale_after_ms, "the database answers")


def _assess(
    recorded: dict[tuple[str, str], int],
    enabled_streams: Iterable[tuple[str, str]],
    now_ms: int,
    stale_after_ms: int,
    database: str,
) -> Health:
    """Healthy when a stream recorded lately; the line names the ones that did not."""
    streams = list(enabled_streams)
    if not streams:
        return Health(True, f"healthy: {database}; no feed is enabled")
    fresh = [key for key in streams if key in recorded and now_ms - recorded[key] <= stale_after_ms]
    stale = [
        f"{venue}/{stream} ({age(now_ms - recorded[venue, stream], 'en') if (venue, stream) in recorded else 'never'})"
        for venue, stream in streams
        if (venue, stream) not in fresh
    ]
    line = (
        f"{'healthy' if fresh else 'unhealthy'}: {database}; "
        f"{len(fresh)} of {len(streams)} streams recorded in the last {duration(stale_after_ms, 'en')}"
    )
    return Health(bool(fresh), line + (f"; not recording: {', '.join(stale)}" if stale else ""))
