"""Leverage risk of one asset: plain rules over funding, open interest, the
account long/short ratio and the last 24 h of liquidations. Pure.

Each rule that fires adds (or, for a flush, removes) points; the level is read
off the total. Every reason carries its numbers and, where liqbot has the
history, where they sit against the asset's own last 30 days.

| rule | fires when (defaults, `[risk]`) | points |
| --- | --- | --- |
| funding high | mean annualised funding of the venues, in either direction, >= 20 %/yr | +1 |
| funding extreme | ... >= 50 %/yr | +2 (instead of +1) |
| leverage building | open interest +10 % or more over 24 h while the price moved less than 2 % | +2 |
| OI rising with price | open interest +10 % or more over 24 h, the price moved 2 % or more | +1 |
| OI 7-day build-up | open interest +25 % or more over 7 days | +1 |
| crowded positioning | account long/short ratio >= 2.0 (or <= 1/2.0) | +1 |
| extremely crowded | ... >= 3.0 (or <= 1/3.0) | +2 (instead of +1) |
| cascade under way | open interest -5 % or more within the last hour | +2 |
| one-sided liquidations | one side >= 80 % of the last 24 h of liquidations, and the 24 h total at least 2x the average of the previous recorded 24 h windows (when known) | +1 |
| leverage flushed | open interest -10 % or more over 24 h and no cascade in the last hour | -2 |

Level from the total (never below 0): 0-1 low, 2-3 elevated, 4-5 high, 6+ extreme.

Open interest is summed over the venues that have both ends of a change; the
price change is the mean of the venues' mark-price changes. A venue whose
newest sample is older than `stale_after_s` is left out and named. A measure
nobody has is reported missing, never guessed; with no fresh market sample at
all the level is unknown (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated

from bot.core.market import Change, MarketSample, change, percentile_rank
from bot.core.models import DAY_MS, HOUR_MS
from bot.core.summary import Split, Summary
from bot.plumbing.bounds import Between


class RiskLevel(StrEnum):
    LOW = "low"
    ELEVATED = "elevated"
    HIGH = "high"
    EXTREME = "extreme"


LEVELS = (RiskLevel.LOW, RiskLevel.ELEVATED, RiskLevel.HIGH, RiskLevel.EXTREME)


@dataclass(frozen=True)
class RiskThresholds:
    """The numbers of the rules above; `RiskConfig` ([risk] in the config) is one of these."""

    # |mean annualised funding| at or above this: +1 (0.20 = 20 %/yr)
    funding_high_annual: Annotated[float, Between(0.001, 100)] = 0.20
    funding_extreme_annual: Annotated[float, Between(0.001, 100)] = 0.50  # ... at or above this: +2
    # open interest up this much over 24 h (0.10 = +10 %)...
    oi_build_24h: Annotated[float, Between(0.001, 10)] = 0.10
    # ...while |price change 24 h| is below this: leverage building, +2 (else +1)
    price_stall_24h: Annotated[float, Between(0.001, 1)] = 0.02
    oi_build_7d: Annotated[float, Between(0.001, 10)] = 0.25  # open interest up this much over 7 days: +1
    # account long/short ratio at or above this (or at or below its inverse): +1
    long_short_crowded: Annotated[float, Between(1.01, 100)] = 2.0
    # ... at or above this (or its inverse): +2
    long_short_extreme: Annotated[float, Between(1.01, 100)] = 3.0
    # open interest down this much within 1 h: a cascade under way, +2
    cascade_oi_1h: Annotated[float, Between(0.001, 1)] = 0.05
    # open interest down this much over 24 h (no cascade in the last hour): flushed, -2
    flush_oi_24h: Annotated[float, Between(0.001, 1)] = 0.10
    # one side's share of the last 24 h of liquidations at or above this...
    skew_share: Annotated[float, Between(0.5, 1)] = 0.80
    # ...and the 24 h total at least this x the previous windows' average: +1
    skew_heavy_ratio: Annotated[float, Between(0.01, 1000)] = 2.0
    elevated_at: Annotated[int, Between(1, 10)] = 2  # points from which the level is elevated
    high_at: Annotated[int, Between(1, 10)] = 4  # ... high
    extreme_at: Annotated[int, Between(1, 10)] = 6  # ... extreme
    # a venue's newest sample older than this is left out (and named)
    stale_after_s: Annotated[float, Between(1, 604_800)] = 600.0
    # percentiles are against this many days of the asset's own history
    history_days: Annotated[int, Between(1, 365)] = 30


@dataclass(frozen=True)
class VenueMarket:
    """What one venue's stored samples say about an asset, for `assess`.

    `open_interest` / `mark_price` are (at_ms, value) points, oldest first, that
    cover at least the instants now, now-1h, now-24h and now-7d (a series may
    hold only small slices around them). Histories are the measure's values
    over the last `history_days` (funding already annualised).
    """

    venue: str
    latest: MarketSample | None
    open_interest: Sequence[tuple[int, float]] = ()
    mark_price: Sequence[tuple[int, float]] = ()
    funding_history: Sequence[float] = ()
    long_short_history: Sequence[float] = ()
    open_interest_history: Sequence[float] = ()  # USD


@dataclass(frozen=True)
class Reason:
    """A rule that fired. `numbers` are named values for the message
    (`*_change`, `*_annual`, `*_share`: fractions; `percentile`: 0..100; `*_usd`: USD)."""

    key: str
    points: int
    numbers: tuple[tuple[str, float], ...] = ()

    def number(self, name: str) -> float | None:
        return dict(self.numbers).get(name)


@dataclass(frozen=True)
class FundingReading:
    venue: str
    rate: float
    interval_hours: float
    annualised: float
    percentile: float | None  # of `annualised` in the venue's own history


@dataclass(frozen=True)
class LongShortReading:
    venue: str
    ratio: float
    percentile: float | None


@dataclass(frozen=True)
class OpenInterestReading:
    usd: float  # summed over `venues`
    venues: tuple[str, ...]
    change_1h: float | None  # relative, 0.05 = +5 %
    change_24h: float | None
    change_7d: float | None
    price: float | None
    price_change_1h: float | None
    price_change_24h: float | None
    price_change_7d: float | None
    # Where today's OI sits in the venues' own history: the mean of each venue's
    # percentile of its latest OI (venues' sizes differ, so their sums would not compare).
    percentile: float | None = None


@dataclass(frozen=True)
class RiskReport:
    asset: str
    at_ms: int
    level: RiskLevel | None  # None: not enough market data to say
    score: int
    reasons: tuple[Reason, ...]
    funding: tuple[FundingReading, ...] = ()
    open_interest: OpenInterestReading | None = None
    long_short: tuple[LongShortReading, ...] = ()
    liquidations: Split | None = None  # the last 24 h
    liquidations_vs_average: float | None = None  # 24 h total / previous windows' average
    liquidations_coverage: float | None = None  # share of the 24 h liqbot recorded
    missing: tuple[str, ...] = ()  # funding, open_interest, oi_1h, oi_24h, oi_7d, price, long_short, liquidations
    stale: tuple[tuple[str, int], ...] = field(default=())  # (venue, age of its newest sample in ms)
    history_days: int = 30  # percentiles are against this many days


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def level_of(score: int, thresholds: RiskThresholds) -> RiskLevel:
    if score >= thresholds.extreme_at:
        return RiskLevel.EXTREME
    if score >= thresholds.high_at:
        return RiskLevel.HIGH
    if score >= thresholds.elevated_at:
        return RiskLevel.ELEVATED
    return RiskLevel.LOW


def _summed_change(venues: Sequence[VenueMarket], lookback_ms: int, now_ms: int) -> Change | None:
    start = end = 0.0
    found: list[Change] = []
    for venue in venues:
        moved = change(venue.open_interest, lookback_ms, now_ms)
        if moved is not None:
            found.append(moved)
            start += moved.start
            end += moved.end
    if not found:
        return None
    return Change(start, end, min(c.start_at_ms for c in found), max(c.end_at_ms for c in found))


def _relative(moved: Change | None) -> float | None:
    return None if moved is None else moved.relative


def _price_change(venues: Sequence[VenueMarket], lookback_ms: int, now_ms: int) -> float | None:
    moves = [_relative(change(v.mark_price, lookback_ms, now_ms)) for v in venues]
    moves = [m for m in moves if m is not None]
    return sum(moves) / len(moves) if moves else None


def _funding_reasons(funding: Sequence[FundingReading], t: RiskThresholds) -> list[Reason]:
    if not funding:
        return []
    mean = sum(f.annualised for f in funding) / len(funding)
    strongest = max(funding, key=lambda f: abs(f.annualised))
    numbers = [("funding_annual", mean), ("venues", float(len(funding)))]
    if strongest.percentile is not None:
        numbers.append(("percentile", strongest.percentile))
    side = "long" if mean >= 0 else "short"  # who pays: crowded longs pay positive funding
    if abs(mean) >= t.funding_extreme_annual:
        return [Reason(f"funding_extreme_{side}", 2, tuple(numbers))]
    if abs(mean) >= t.funding_high_annual:
        return [Reason(f"funding_high_{side}", 1, tuple(numbers))]
    return []


def _long_short_reasons(readings: Sequence[LongShortReading], t: RiskThresholds) -> list[Reason]:
    if not readings:
        return []
    mean = sum(r.ratio for r in readings) / len(readings)
    numbers = [("ratio", mean)]
    with_history = [r for r in readings if r.percentile is not None]
    if with_history:
        numbers.append(("percentile", with_history[0].percentile))
    side = "long" if mean >= 1 else "short"
    crowding = mean if mean >= 1 else (1 / mean if mean > 0 else float("inf"))
    if crowding >= t.long_short_extreme:
        return [Reason(f"crowded_extreme_{side}", 2, tuple(numbers))]
    if crowding >= t.long_short_crowded:
        return [Reason(f"crowded_{side}", 1, tuple(numbers))]
    return []


def _open_interest_reasons(oi: OpenInterestReading, t: RiskThresholds) -> list[Reason]:
    reasons = []
    cascade = oi.change_1h is not None and oi.change_1h <= -t.cascade_oi_1h
    if cascade:
        numbers = [("oi_change", oi.change_1h), ("oi_usd", oi.usd)]
        if oi.price_change_1h is not None:
            numbers.append(("price_change", oi.price_change_1h))
        reasons.append(Reason("cascade", 2, tuple(numbers)))
    if oi.change_24h is not None:
        numbers = [("oi_change", oi.change_24h), ("oi_usd", oi.usd)]
        if oi.price_change_24h is not None:
            numbers.append(("price_change", oi.price_change_24h))
        if oi.change_24h >= t.oi_build_24h:
            if oi.price_change_24h is not None and abs(oi.price_change_24h) < t.price_stall_24h:
                reasons.append(Reason("oi_building", 2, tuple(numbers)))
            elif oi.price_change_24h is not None:
                reasons.append(Reason("oi_rising_with_price", 1, tuple(numbers)))
            else:  # no price to tell building from trend: count the smaller
                reasons.append(Reason("oi_rising", 1, tuple(numbers)))
        elif oi.change_24h <= -t.flush_oi_24h and not cascade:
            reasons.append(Reason("flushed", -2, tuple(numbers)))
    if oi.change_7d is not None and oi.change_7d >= t.oi_build_7d:
        reasons.append(Reason("oi_build_7d", 1, (("oi_change", oi.change_7d), ("oi_usd", oi.usd))))
    return reasons


def _liquidation_reasons(
    split: Split, vs_average: float | None, t: RiskThresholds
) -> list[Reason]:
    if split.total_usd <= 0 or split.dominant_share < t.skew_share:
        return []
    if vs_average is not None and vs_average < t.skew_heavy_ratio:
        return []
    numbers = [("share", split.dominant_share), ("total_usd", split.total_usd)]
    if vs_average is not None:
        numbers.append(("vs_average", vs_average))
    return [Reason(f"skew_{split.heavier_side.value}", 1, tuple(numbers))]


def assess(
    asset: str,
    venues: Sequence[VenueMarket],
    liquidations: Summary | None,
    thresholds: RiskThresholds,
    now_ms: int,
) -> RiskReport:
    """The risk report of `asset` at `now_ms`; `liquidations` is its last-24 h summary."""
    t = thresholds
    stale_ms = int(t.stale_after_s * 1000)
    fresh, stale = [], []
    for venue in venues:
        if venue.latest is None:
            continue
        age = now_ms - venue.latest.at_ms
        (fresh if age <= stale_ms else stale).append((venue, age))
    fresh_venues = [v for v, _ in fresh]
    missing: list[str] = []

    funding = tuple(
        FundingReading(
            v.venue,
            v.latest.funding_rate,
            v.latest.funding_interval_hours or 8.0,
            v.latest.annualised_funding,
            percentile_rank(v.latest.annualised_funding, v.funding_history) if v.funding_history else None,
        )
        for v in fresh_venues
        if v.latest.funding_rate is not None
    )
    if not funding:
        missing.append("funding")

    long_short = tuple(
        LongShortReading(
            v.venue,
            v.latest.long_short_ratio,
            percentile_rank(v.latest.long_short_ratio, v.long_short_history) if v.long_short_history else None,
        )
        for v in fresh_venues
        if v.latest.long_short_ratio is not None
    )
    if not long_short:
        missing.append("long_short")

    oi_now = [v for v in fresh_venues if v.latest.open_interest_usd is not None]
    open_interest = None
    if oi_now:
        prices = [v.latest.mark_price for v in fresh_venues if v.latest.mark_price is not None]
        open_interest = OpenInterestReading(
            usd=sum(v.latest.open_interest_usd for v in oi_now),
            venues=tuple(v.venue for v in oi_now),
            change_1h=_relative(_summed_change(oi_now, HOUR_MS, now_ms)),
            change_24h=_relative(_summed_change(oi_now, DAY_MS, now_ms)),
            change_7d=_relative(_summed_change(oi_now, 7 * DAY_MS, now_ms)),
            price=sum(prices) / len(prices) if prices else None,
            price_change_1h=_price_change(fresh_venues, HOUR_MS, now_ms),
            price_change_24h=_price_change(fresh_venues, DAY_MS, now_ms),
            price_change_7d=_price_change(fresh_venues, 7 * DAY_MS, now_ms),
            percentile=_mean(
                [
                    percentile_rank(v.latest.open_interest_usd, v.open_interest_history)
                    for v in oi_now
                    if v.open_interest_history
                ]
            ),
        )
        for name, value in (("oi_1h", open_interest.change_1h), ("oi_24h", open_interest.change_24h),
                            ("oi_7d", open_interest.change_7d), ("price", open_interest.price_change_24h)):
            if value is None:
                missing.append(name)
    else:
        missing.append("open_interest")

    split = vs_average = coverage = None
    if liquidations is not None and liquidations.coverage.covered_ms > 0:
        split = liquidations.total
        coverage = liquidations.coverage.fraction
        history = liquidations.history
        if history is not None and history.average_usd > 0:
            vs_average = split.total_usd / history.average_usd
    else:
        missing.append("liquidations")

    reasons = _funding_reasons(funding, t) + _long_short_reasons(long_short, t)
    if open_interest is not None:
        reasons += _open_interest_reasons(open_interest, t)
    if split is not None:
        reasons += _liquidation_reasons(split, vs_average, t)
    reasons.sort(key=lambda r: -r.points)
    score = max(0, sum(r.points for r in reasons))
    has_market = bool(funding or long_short or open_interest)
    return RiskReport(
        asset=asset,
        at_ms=now_ms,
        level=level_of(score, t) if has_market else None,
        score=score,
        reasons=tuple(reasons),
        funding=funding,
        open_interest=open_interest,
        long_short=long_short,
        liquidations=split,
        liquidations_vs_average=vs_average,
        liquidations_coverage=coverage,
        missing=tuple(missing),
        stale=tuple((v.venue, age) for v, age in stale),
        history_days=t.history_days,
    )
