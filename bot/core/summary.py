"""Liquidation summaries: totals, long/short split, venues, insights. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.core.models import LiquidationEvent, Side, Window

# A long (short) share at or above this makes the window a long (short) squeeze.
SQUEEZE_SHARE = 0.65
# A coverage shortfall up to this is noise (the first frame of a recording
# arrives a few seconds after the window starts), not worth a caveat.
COVERAGE_SLACK_MS = 60_000
COVERAGE_SLACK_SHARE = 0.005
# A most-one-sided asset at or above this share reads as a flush ripe for reversal.
FLUSH_SHARE = 0.80
# Only assets with at least this share of the window's total compete for "most
# one-sided": a single $5K order is 100% one-sided and means nothing.
ONE_SIDED_MIN_SHARE_OF_TOTAL = 0.05
# A summary ranks this many of the window's largest assets: every asset that can
# compete for "most one-sided" (at most 1 / 5 % = 20 hold 5 % each) and more than
# any reply lists.
ASSETS_RANKED = 20


@dataclass(frozen=True, slots=True)
class TotalRow:
    """Aggregated liquidations of one (asset, venue, side) over a window."""

    asset: str
    venue: str
    liquidated: Side
    usd: float
    events: int


@dataclass(frozen=True, slots=True)
class SideTotal:
    """Liquidations of one side of one group (a venue or an asset) over a window."""

    name: str
    liquidated: Side
    usd: float
    events: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A window's totals per venue and side (every venue: together they are the
    total) and per side of its `ASSETS_RANKED` largest assets."""

    by_venue: tuple[SideTotal, ...]
    by_asset: tuple[SideTotal, ...]


@dataclass(frozen=True, slots=True)
class RecordedSpan:
    """A time range during which a venue stream was being recorded, or that was
    filled afterwards from the venue's REST history (`backfilled`): both count
    as covered."""

    venue: str
    stream: str
    start_ms: int
    end_ms: int
    backfilled: bool = False


@dataclass(frozen=True, slots=True)
class Split:
    """Long/short liquidations of one group (an asset, a venue, or everything)."""

    name: str
    long_usd: float = 0.0
    short_usd: float = 0.0
    events: int = 0

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    @property
    def long_share(self) -> float | None:
        total = self.total_usd
        return self.long_usd / total if total else None

    @property
    def short_share(self) -> float | None:
        total = self.total_usd
        return self.short_usd / total if total else None

    @property
    def dominant_share(self) -> float:
        """The share of the heavier side (0.5 .. 1)."""
        share = self.long_share
        return 0.0 if share is None else max(share, 1 - share)

    @property
    def heavier_side(self) -> Side:
        return Side.LONG if self.long_usd >= self.short_usd else Side.SHORT


class Squeeze(StrEnum):
    LONG_SQUEEZE = "long_squeeze"
    SHORT_SQUEEZE = "short_squeeze"
    TWO_SIDED = "two_sided"
    QUIET = "quiet"  # nothing liquidated


def classify_squeeze(split: Split) -> Squeeze:
    share = split.long_share
    if share is None:
        return Squeeze.QUIET
    if share >= SQUEEZE_SHARE:
        return Squeeze.LONG_SQUEEZE
    if share <= 1 - SQUEEZE_SHARE:
        return Squeeze.SHORT_SQUEEZE
    return Squeeze.TWO_SIDED


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of a window liqbot was recording."""

    window: Window
    covered_ms: int
    first_recorded_ms: int | None  # start of the earliest span touching the window
    gaps: tuple[tuple[int, int], ...]  # unrecorded ranges between recorded spans
    unrecorded: tuple[tuple[int, int], ...] = ()  # every unrecorded range of the window, edges included

    @property
    def fraction(self) -> float:
        return self.covered_ms / self.window.duration_ms if self.window.duration_ms else 0.0

    @property
    def complete(self) -> bool:
        """Recorded all of the window but for a few seconds of slack."""
        missing_ms = self.window.duration_ms - self.covered_ms
        return missing_ms <= max(COVERAGE_SLACK_MS, COVERAGE_SLACK_SHARE * self.window.duration_ms)

    @property
    def starts_late(self) -> bool:
        return self.first_recorded_ms is None or self.first_recorded_ms > self.window.start_ms


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def coverage_of(window: Window, spans: Iterable[RecordedSpan]) -> Coverage:
    """Coverage of a window by the union of all streams' recorded spans."""
    clipped = [
        (max(s.start_ms, window.start_ms), min(s.end_ms, window.end_ms))
        for s in spans
        if s.start_ms < window.end_ms and s.end_ms > window.start_ms
    ]
    merged = merge_ranges(clipped)
    first = min((s.start_ms for s in spans), default=None) if merged else None
    gaps = tuple((a_end, b_start) for (_, a_end), (b_start, _) in zip(merged, merged[1:]))
    edges = [window.start_ms, *(edge for span in merged for edge in span), window.end_ms]
    unrecorded = tuple((start, end) for start, end in zip(edges[::2], edges[1::2]) if end > start)
    return Coverage(
        window=window,
        covered_ms=sum(e - s for s, e in merged),
        first_recorded_ms=first,
        gaps=gaps,
        unrecorded=unrecorded,
    )


@dataclass(frozen=True, slots=True)
class HistoryRank:
    """Where this window's total sits among the preceding windows of the same length."""

    previous_usd: float  # the window right before this one
    average_usd: float  # average of the preceding windows
    windows: int  # how many preceding windows were fully recorded
    rank: int  # 1 = the largest of (this + preceding windows)


def rank_against(current_usd: float, preceding_usd: Sequence[float]) -> HistoryRank | None:
    """`preceding_usd` is newest first; windows not fully recorded are left out by the caller."""
    if not preceding_usd:
        return None
    return HistoryRank(
        previous_usd=preceding_usd[0],
        average_usd=sum(preceding_usd) / len(preceding_usd),
        windows=len(preceding_usd),
        rank=1 + sum(1 for usd in preceding_usd if usd > current_usd),
    )


@dataclass(frozen=True, slots=True)
class Summary:
    asset: str | None  # None: all assets
    window: Window
    total: Split
    by_venue: tuple[Split, ...]  # largest first
    by_asset: tuple[Split, ...]  # largest first, at most ASSETS_RANKED
    largest: LiquidationEvent | None
    coverage: Coverage
    squeeze: Squeeze
    dominant_asset: Split | None
    most_one_sided: Split | None
    history: HistoryRank | None
    # Streams connected but flagged silent now (bot.core.silence): these totals miss their orders.
    silent_streams: tuple[tuple[str, str], ...] = ()


def _splits(rows: Iterable[SideTotal]) -> tuple[Split, ...]:
    acc: dict[str, list] = {}
    for row in rows:
        entry = acc.setdefault(row.name, [0.0, 0.0, 0])
        entry[0 if row.liquidated is Side.LONG else 1] += row.usd
        entry[2] += row.events
    splits = [Split(name, round(lng, 2), round(sht, 2), n) for name, (lng, sht, n) in acc.items()]
    return tuple(sorted(splits, key=lambda s: (-s.total_usd, s.name)))


def summarize(
    asset: str | None,
    window: Window,
    breakdown: Breakdown,
    largest: LiquidationEvent | None,
    spans: Iterable[RecordedSpan],
    preceding_usd: Sequence[float] = (),
    silent_streams: Sequence[tuple[str, str]] = (),
) -> Summary:
    """`breakdown` of `asset` (None: all assets) over `window`."""
    by_venue = _splits(breakdown.by_venue)
    by_asset = _splits(breakdown.by_asset)
    total = Split(
        asset or "all",
        round(sum(s.long_usd for s in by_venue), 2),
        round(sum(s.short_usd for s in by_venue), 2),
        sum(s.events for s in by_venue),
    )
    contenders = [
        s for s in by_asset if s.total_usd >= ONE_SIDED_MIN_SHARE_OF_TOTAL * total.total_usd
    ]
    return Summary(
        asset=asset,
        window=window,
        total=total,
        by_venue=by_venue,
        by_asset=by_asset,
        largest=largest,
        coverage=coverage_of(window, spans),
        squeeze=classify_squeeze(total),
        dominant_asset=by_asset[0] if by_asset else None,
        most_one_sided=max(contenders, key=lambda s: (s.dominant_share, s.total_usd), default=None),
        history=rank_against(total.total_usd, preceding_usd),
        silent_streams=tuple(silent_streams),
    )
