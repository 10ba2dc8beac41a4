"""Long/short liquidations per interval (chart bars) and per minute (cascade
detection), over a `Store`.

Intervals sit on a UTC grid of `step_ms` (hourly bars start at :00, daily bars
at 00:00 UTC); the first and last are clipped to the window. Like
`Store.totals`, the window is answered from hour rollups, minute rollups and
raw events for the partial edge minutes, so the bars add up exactly to the
summary of the same window.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.events import MinuteTotal
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Window
from bot.core.summary import Split
from bot.storage.store import Store
from bot.storage.windows import asset_filter, decompose


@dataclass(frozen=True, slots=True)
class Bar:
    start_ms: int
    end_ms: int
    long_usd: float
    short_usd: float
    events: int

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd


def grid(window: Window, step_ms: int) -> list[tuple[int, int]]:
    """The intervals of `window` on the UTC grid of `step_ms`, clipped to the window."""
    origin = window.start_ms - window.start_ms % step_ms
    edges = []
    start = origin
    while start < window.end_ms:
        edges.append((max(start, window.start_ms), min(start + step_ms, window.end_ms)))
        start += step_ms
    return edges


async def liquidation_bars(store: Store, asset: str | None, window: Window, step_ms: int) -> list[Bar]:
    """Long/short USD per interval of `window` (every interval, empty ones too)."""
    if step_ms <= 0 or step_ms % MINUTE_MS or (step_ms < HOUR_MS and HOUR_MS % step_ms):
        raise ValueError(f"step must be whole minutes dividing an hour, or whole hours, not {step_ms!r}")
    intervals = grid(window, step_ms)
    if not intervals:
        return []
    origin = window.start_ms - window.start_ms % step_ms
    hour_buckets_fit = step_ms % HOUR_MS == 0
    where_asset, asset_args = asset_filter(asset)
    selects, args = [], []
    for piece in decompose(window):
        table = piece.table
        if table == "rollup_hour" and not hour_buckets_fit:
            table = "rollup_minute"  # an hour bucket would straddle two bars
        if table == "events":
            column, sums = "at_ms", "SUM(notional_cents), COUNT(*)"
        else:
            column, sums = "bucket_ms", "SUM(usd_cents), SUM(events)"
        selects.append(
            f"SELECT ({column} - ?) / ? AS bar, liquidated, {sums} FROM {table}"
            f" WHERE {column} >= ? AND {column} < ?{where_asset} GROUP BY bar, liquidated"
        )
        args += [origin, step_ms, piece.start_ms, piece.end_ms, *asset_args]
    acc = [[0, 0, 0] for _ in intervals]  # long cents, short cents, events
    for bar, liquidated, cents, count in await store.db.fetch(" UNION ALL ".join(selects), args):
        entry = acc[bar]
        entry[0 if liquidated == "long" else 1] += cents
        entry[2] += count
    return [
        Bar(start, end, long_cents / 100, short_cents / 100, events)
        for (start, end), (long_cents, short_cents, events) in zip(intervals, acc)
    ]


async def minute_totals(store: Store, asset: str | None, start_ms: int, end_ms: int) -> list[MinuteTotal]:
    """Per-minute, per-asset long/short USD of the whole minutes in [start, end)
    (minute rollups; empty minutes left out), oldest first: cascade detection's input."""
    where_asset, asset_args = asset_filter(asset)
    rows = await store.db.fetch(
        "SELECT bucket_ms, asset, liquidated, SUM(usd_cents), SUM(events) FROM rollup_minute"
        f" WHERE bucket_ms >= ? AND bucket_ms < ?{where_asset} GROUP BY bucket_ms, asset, liquidated"
        " ORDER BY bucket_ms",
        (start_ms, end_ms, *asset_args),
    )
    by_minute: dict[int, dict[str, list[int]]] = {}
    for bucket_ms, row_asset, liquidated, cents, count in rows:
        entry = by_minute.setdefault(bucket_ms, {}).setdefault(row_asset, [0, 0, 0])
        entry[0 if liquidated == "long" else 1] += cents
        entry[2] += count
    return [
        MinuteTotal(
            bucket_ms,
            tuple(Split(name, lng / 100, sht / 100, n) for name, (lng, sht, n) in sorted(assets.items())),
        )
        for bucket_ms, assets in by_minute.items()
    ]


async def largest_day(store: Store, asset: str | None) -> tuple[int, float] | None:
    """The recorded UTC day with the most liquidations: (its midnight in ms, USD); None when empty.

    Hour rollups are kept forever, so this covers all the history liqbot recorded.
    """
    where_asset, asset_args = ("", ()) if asset is None else (" WHERE asset = ?", (asset,))
    row = await store.db.fetchone(
        f"SELECT bucket_ms - bucket_ms % {DAY_MS} AS day, SUM(usd_cents) FROM rollup_hour{where_asset}"
        " GROUP BY day ORDER BY 2 DESC, day LIMIT 1",
        asset_args,
    )
    return (row[0], row[1] / 100) if row else None
