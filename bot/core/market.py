"""Market context for leverage risk: one sample per (venue, asset, poll), and
the pure arithmetic the risk report needs over a series of them.

A `MarketSample` is what one venue said about one asset's USDT-margined
perpetual at one poll. Every measure is optional: a venue may not publish it
(OKX has no account long/short ratio on the public endpoints we poll), or one
request of the poll may have failed while the others succeeded.

Units:
- `mark_price` in USD (USDT) per base coin.
- `funding_rate` per funding interval, as a fraction (0.0001 = 0.01 %).
- `funding_interval_hours`: 8 on most majors, 4 or 1 on some contracts.
- `open_interest_usd`: open interest valued at the mark price, in USD.
- `long_short_ratio`: accounts holding a long / accounts holding a short.

Pure: no I/O, time is always passed in (`now_ms`), nothing from the rest of bot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from bot.core.models import MINUTE_MS

HOURS_PER_YEAR = 24 * 365
DEFAULT_FUNDING_INTERVAL_HOURS = 8.0
# How far a sample may sit from the instant a change is measured at: a few
# missed polls (a restart, a venue's back-off) still count, a day-long gap not.
DEFAULT_TOLERANCE_MS = 15 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class MarketSample:
    venue: str
    asset: str
    at_ms: int
    mark_price: float | None = None
    funding_rate: float | None = None
    funding_interval_hours: float | None = None
    open_interest_usd: float | None = None
    long_short_ratio: float | None = None

    @property
    def annualised_funding(self) -> float | None:
        """The funding rate as a yearly fraction (0.1095 = 10.95 % a year), or None."""
        if self.funding_rate is None:
            return None
        return annualised_funding(self.funding_rate, self.funding_interval_hours or DEFAULT_FUNDING_INTERVAL_HOURS)


MEASURES: tuple[str, ...] = tuple(
    f.name for f in fields(MarketSample) if f.name not in ("venue", "asset", "at_ms")
)


def annualised_funding(rate: float, interval_hours: float) -> float:
    """`rate` paid every `interval_hours`, as a simple (not compounded) yearly rate.

    0.0001 every 8 h -> 0.0001 * 3 * 365 = 0.1095.
    """
    if not interval_hours > 0:
        raise ValueError(f"funding interval must be positive, not {interval_hours!r}")
    return rate * (24 / interval_hours) * 365


def points(samples: Iterable[MarketSample], measure: str) -> list[tuple[int, float]]:
    """(at_ms, value) of one measure, oldest first, skipping samples without it."""
    if measure not in MEASURES and measure != "annualised_funding":
        raise ValueError(f"unknown measure {measure!r}; one of {', '.join(MEASURES)}, annualised_funding")
    found = []
    for sample in samples:
        value = getattr(sample, measure)
        if value is not None and not math.isnan(value):
            found.append((sample.at_ms, value))
    found.sort(key=lambda point: point[0])
    return found


@dataclass(frozen=True, slots=True)
class Change:
    """A measure's value at `start_at_ms` and at `end_at_ms`."""

    start: float
    end: float
    start_at_ms: int
    end_at_ms: int

    @property
    def absolute(self) -> float:
        return self.end - self.start

    @property
    def relative(self) -> float | None:
        """end / start - 1 (0.05 = +5 %); None when the start is zero."""
        if self.start == 0:
            return None
        return self.end / self.start - 1


def _value_at(series: Sequence[tuple[int, float]], at_ms: int, tolerance_ms: int) -> tuple[int, float] | None:
    """The latest point at or before `at_ms`, if it is at most `tolerance_ms` older."""
    low, high = 0, len(series)
    while low < high:  # first index with a time after at_ms
        middle = (low + high) // 2
        if series[middle][0] <= at_ms:
            low = middle + 1
        else:
            high = middle
    if low == 0:
        return None
    point = series[low - 1]
    return point if at_ms - point[0] <= tolerance_ms else None


def change(
    series: Sequence[tuple[int, float]],
    lookback_ms: int,
    now_ms: int,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> Change | None:
    """How a series (oldest first) moved from `now_ms - lookback_ms` to `now_ms`.

    Each end is the latest point at or before its instant, no more than
    `tolerance_ms` older. None when the history does not reach back that far
    (or the latest point is stale): never a change measured over a shorter span.
    """
    if lookback_ms <= 0:
        raise ValueError(f"lookback must be positive, not {lookback_ms!r}")
    end = _value_at(series, now_ms, tolerance_ms)
    start = _value_at(series, now_ms - lookback_ms, tolerance_ms)
    if end is None or start is None:
        return None
    return Change(start=start[1], end=end[1], start_at_ms=start[0], end_at_ms=end[0])


def change_of(
    samples: Iterable[MarketSample],
    measure: str,
    lookback_ms: int,
    now_ms: int,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> Change | None:
    """`change` of one measure of a venue's samples (open_interest_usd, mark_price...)."""
    return change(points(samples, measure), lookback_ms, now_ms, tolerance_ms)


def percentile_rank(value: float, history: Iterable[float]) -> float | None:
    """The share of `history` at or below `value`, in percent (0..100).

    100 means `value` is the highest seen; None when there is no history.
    NaNs in the history are ignored.
    """
    total = at_or_below = 0
    for past in history:
        if past != past:  # NaN
            continue
        total += 1
        if past <= value:
            at_or_below += 1
    if total == 0:
        return None
    return 100.0 * at_or_below / total
