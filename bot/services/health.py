"""`liqbot health`: is the database usable, and are the feeds recording?

Meant for a container's HEALTHCHECK, so it runs beside `liqbot run` in another
process: it opens the database read-only (no migrations, no write lock) and
reads how far each stream's recorded span reaches. The live ingest extends the
span of every connected stream at each flush (`feeds.runner.batch_ms`), so a
connected but quiet stream stays fresh.

Healthy = the database opens and at least one enabled stream recorded within
`stale_after_ms` (or no stream is enabled). One venue's outage keeps the bot
healthy (it is named in the line): restarting liqbot cannot fix a venue.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.replies.numbers import age, duration


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
    streams = list(enabled_streams)
    if not streams:
        return Health(True, f"healthy: database {db_path} opens; no feed is enabled")
    fresh = [key for key in streams if key in recorded and now_ms - recorded[key] <= stale_after_ms]
    stale = [
        f"{venue}/{stream} ({age(now_ms - recorded[venue, stream], 'en') if (venue, stream) in recorded else 'never'})"
        for venue, stream in streams
        if (venue, stream) not in fresh
    ]
    line = (
        f"{'healthy' if fresh else 'unhealthy'}: database {db_path} opens; "
        f"{len(fresh)} of {len(streams)} streams recorded in the last {duration(stale_after_ms, 'en')}"
    )
    return Health(bool(fresh), line + (f"; not recording: {', '.join(stale)}" if stale else ""))
