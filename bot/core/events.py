"""Liquidation events (cascades): runs of minutes far above their trailing baseline.

The rule, applied to one scope's (all assets, or one asset) per-minute totals:

1. A minute's baseline is the mean total of the `baseline_minutes` minutes
   before it (empty minutes count as $0: a quiet hour has a low baseline).
2. A minute is hot when its total is at least `spike_ratio` x its baseline
   and at least `min_minute_usd` (so a $30K minute after a silent hour is no event).
3. Hot minutes separated by at most `max_quiet_minutes` minutes that are not hot
   belong to one run. While a run lasts, the baseline stays what it was at the
   run's first minute: a cascade must not raise its own bar and end itself.
4. A run is an event when its total (every minute from its first to its last
   hot minute, quiet ones included) reaches `min_event_usd` over at least
   `min_orders` orders: one whale's $3M order is news, not a cascade.
5. An event whose last hot minute is within `max_quiet_minutes` of `now` may
   still be growing: it is `in_progress` (a cascade alert fires on it).

Defaults suit the all-assets scope of the majors (a $2M event out of $500K+
minutes at 5x the last hour's pace; bursts up to ten quiet minutes apart are
one episode, as a news write-up would tell it, so a cascade's end is known ten
minutes after its last hot minute); `EventRule.for_asset_share` scales the
dollar floors down for one asset. Pure: minutes in, events out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bot.core.models import MINUTE_MS
from bot.core.summary import Split, Squeeze, classify_squeeze


@dataclass(frozen=True, slots=True)
class EventRule:
    baseline_minutes: int = 60
    spike_ratio: float = 5.0
    min_minute_usd: float = 500_000.0
    min_event_usd: float = 2_000_000.0
    max_quiet_minutes: int = 10
    min_orders: int = 10

    def for_asset_share(self, share: float) -> EventRule:
        """The dollar floors scaled to an asset with `share` of the market's
        liquidations (BTC ~0.4), never below a tenth of the all-assets floors."""
        factor = min(1.0, max(0.1, share))
        return replace(self, min_minute_usd=self.min_minute_usd * factor, min_event_usd=self.min_event_usd * factor)


@dataclass(frozen=True, slots=True)
class MinuteTotal:
    """One minute of one scope: per-asset long/short USD (empty minutes may be left out)."""

    start_ms: int
    by_asset: tuple[Split, ...]

    @property
    def total_usd(self) -> float:
        return sum(split.total_usd for split in self.by_asset)


@dataclass(frozen=True, slots=True)
class Cascade:
    start_ms: int  # the first hot minute
    end_ms: int  # the end of the last hot minute
    peak_minute_ms: int
    peak_minute_usd: float
    total: Split  # named after the scope ("all" or the asset)
    by_asset: tuple[Split, ...]  # largest first
    baseline_usd_per_minute: float  # what the run was measured against
    in_progress: bool

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def kind(self) -> Squeeze:
        return classify_squeeze(self.total)


def _dense(minutes: Sequence[MinuteTotal], start_ms: int, end_ms: int) -> list[MinuteTotal | None]:
    slots: list[MinuteTotal | None] = [None] * max(0, (end_ms - start_ms) // MINUTE_MS)
    for minute in minutes:
        index = (minute.start_ms - start_ms) // MINUTE_MS
        if 0 <= index < len(slots):
            slots[index] = minute
    return slots


def _merge(minutes: Sequence[MinuteTotal | None], scope: str) -> tuple[Split, tuple[Split, ...]]:
    acc: dict[str, list[float]] = {}
    for minute in minutes:
        for split in minute.by_asset if minute is not None else ():
            entry = acc.setdefault(split.name, [0.0, 0.0, 0])
            entry[0] += split.long_usd
            entry[1] += split.short_usd
            entry[2] += split.events
    by_asset = tuple(
        sorted(
            (Split(name, round(lng, 2), round(sht, 2), n) for name, (lng, sht, n) in acc.items()),
            key=lambda s: (-s.total_usd, s.name),
        )
    )
    total = Split(
        scope,
        round(sum(s.long_usd for s in by_asset), 2),
        round(sum(s.short_usd for s in by_asset), 2),
        sum(s.events for s in by_asset),
    )
    return total, by_asset


def _runs(totals: Sequence[float], first: int, rule: EventRule) -> list[tuple[int, int, float]]:
    """(first hot index, last hot index, baseline it was measured against) of each run."""
    runs: list[tuple[int, int, float]] = []
    running: list | None = None
    trailing = sum(totals[max(0, first - rule.baseline_minutes) : first])
    for index in range(first, len(totals)):
        if running is not None and index - running[1] - 1 > rule.max_quiet_minutes:
            runs.append(tuple(running))
            running = None
        baseline = running[2] if running is not None else trailing / rule.baseline_minutes
        if totals[index] >= max(rule.spike_ratio * baseline, rule.min_minute_usd):
            if running is None:
                running = [index, index, baseline]
            else:
                running[1] = index
        trailing += totals[index]
        if index >= rule.baseline_minutes:
            trailing -= totals[index - rule.baseline_minutes]
    if running is not None:
        runs.append(tuple(running))
    return runs


def detect_cascades(
    minutes: Sequence[MinuteTotal],
    history_start_ms: int,
    window_start_ms: int,
    end_ms: int,
    now_ms: int,
    rule: EventRule = EventRule(),
    scope: str = "all",
) -> list[Cascade]:
    """Events that start in [window_start_ms, end_ms), oldest first.

    `minutes` cover [history_start_ms, end_ms) on the minute grid; those before
    `window_start_ms` only feed the baselines (pass `rule.baseline_minutes` of them).
    """
    history_start_ms -= history_start_ms % MINUTE_MS
    slots = _dense(minutes, history_start_ms, end_ms)
    totals = [m.total_usd if m is not None else 0.0 for m in slots]
    first = max(0, -(-(window_start_ms - history_start_ms) // MINUTE_MS))
    cascades = []
    for start, last, baseline in _runs(totals, first, rule):
        total, by_asset = _merge(slots[start : last + 1], scope)
        if total.total_usd < rule.min_event_usd or total.events < rule.min_orders:
            continue
        peak = max(range(start, last + 1), key=lambda i: totals[i])
        end_of_last_ms = history_start_ms + (last + 1) * MINUTE_MS
        cascades.append(
            Cascade(
                start_ms=history_start_ms + start * MINUTE_MS,
                end_ms=end_of_last_ms,
                peak_minute_ms=history_start_ms + peak * MINUTE_MS,
                peak_minute_usd=round(totals[peak], 2),
                total=total,
                by_asset=by_asset,
                baseline_usd_per_minute=round(baseline, 2),
                in_progress=now_ms < end_of_last_ms + rule.max_quiet_minutes * MINUTE_MS,
            )
        )
    return cascades


def ranked(cascades: Sequence[Cascade]) -> list[Cascade]:
    """Largest first (ties: the earlier first)."""
    return sorted(cascades, key=lambda c: (-c.total.total_usd, c.start_ms))


def asset_shares(totals_by_asset: Mapping[str, float]) -> dict[str, float]:
    """Each asset's share of the market's liquidations (for `EventRule.for_asset_share`)."""
    market = sum(totals_by_asset.values())
    return {asset: usd / market for asset, usd in totals_by_asset.items()} if market > 0 else {}
