"""Window planning, pure: which table answers which part of a window.

A window [start, end) is answered from hour rollups for whole hours, minute
rollups for whole minutes and raw events for the partial edge minutes, so the
result is exact at any boundary and cheap for long windows. Both backends run
the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.models import HOUR_MS, MINUTE_MS, Window

# A bucketed table's finer table (where `Store.largest` looks inside a bucket) and bucket length.
CHILD = {"rollup_hour": "rollup_minute", "rollup_minute": "events"}
BUCKET_MS = {"rollup_hour": HOUR_MS, "rollup_minute": MINUTE_MS}


@dataclass(frozen=True, slots=True)
class Piece:
    """A part of a window answered by one source."""

    table: str  # "events", "rollup_minute" or "rollup_hour"
    start_ms: int
    end_ms: int


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def _floor(value: int, step: int) -> int:
    return value - value % step


def decompose(window: Window) -> list[Piece]:
    """Split a window into raw edges, whole minutes and whole hours."""
    start, end = window.start_ms, window.end_ms
    if end <= start:
        return []
    first_minute, last_minute = _ceil(start, MINUTE_MS), _floor(end, MINUTE_MS)
    if first_minute >= last_minute:
        return [Piece("events", start, end)]
    pieces = []
    if start < first_minute:
        pieces.append(Piece("events", start, first_minute))
    first_hour, last_hour = _ceil(first_minute, HOUR_MS), _floor(last_minute, HOUR_MS)
    if first_hour >= last_hour:
        pieces.append(Piece("rollup_minute", first_minute, last_minute))
    else:
        if first_minute < first_hour:
            pieces.append(Piece("rollup_minute", first_minute, first_hour))
        pieces.append(Piece("rollup_hour", first_hour, last_hour))
        if last_hour < last_minute:
            pieces.append(Piece("rollup_minute", last_hour, last_minute))
    if last_minute < end:
        pieces.append(Piece("events", last_minute, end))
    return pieces


def minute_of(piece: Piece) -> int | None:
    """The start of the one minute a piece lies in (None: it spans more than one)."""
    minute = piece.start_ms - piece.start_ms % MINUTE_MS
    return minute if piece.end_ms <= minute + MINUTE_MS else None


def minute_rest(piece: Piece) -> Piece | None:
    """The rest of a raw edge piece's minute, when reading that is likely cheaper.

    An edge piece starts or ends on a minute boundary; its sums are then also the
    minute's rollup less the events of the rest of that minute. A window's end is
    most often now, and what comes after now is (almost) nothing yet however dense
    the current minute: an end edge is always read as its minute less the rest. A
    start edge's rest is in the past like the edge itself: the shorter one is read.
    """
    minute = minute_of(piece)
    if piece.table != "events" or minute is None:
        return None
    if piece.start_ms == minute:
        return Piece("events", piece.end_ms, minute + MINUTE_MS)
    if piece.end_ms == minute + MINUTE_MS:
        rest = Piece("events", minute, piece.start_ms)
        return rest if rest.end_ms - rest.start_ms < piece.end_ms - piece.start_ms else None
    return None  # inside one minute: its rest would be two pieces


def time_column(table: str) -> str:
    return "at_ms" if table == "events" else "bucket_ms"


def asset_filter(asset: str | None, column: str = "asset") -> tuple[str, tuple]:
    """The `AND asset = ?` of a query limited to one asset (nothing for all assets)."""
    return ("", ()) if asset is None else (f" AND {column} = ?", (asset,))
