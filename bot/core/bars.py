"""Closed price bars with the open-interest change across them, built from the
market samples the poller stores (the levels model's input, `bot.core.levels`).

- Prices come from one venue's mark price (the first of `price_venues` with a
  sample in the bar): open, high, low, close of its samples inside the bar. A
  minute-by-minute poll sees most of a bar's range; a wick between two polls is
  missed, which only delays the consumption of a band until the next touch.
- Open interest is summed over the venues that have a value at both edges. The
  value at an edge is the newest sample before it (within `tolerance_ms`), so a
  bar ends on the value the next one starts from and no change falls between
  two bars. A venue missing at either edge is left out of that bar, so a poll
  failure never reads as positions opened or closed.
- A bar with no price sample is skipped.

Pure: samples in, bars out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence

from bot.core.levels import Bar
from bot.core.market import DEFAULT_TOLERANCE_MS, MarketSample


def bars_from_samples(
    samples: Iterable[MarketSample],
    start_ms: int,
    end_ms: int,
    bar_ms: int,
    price_venues: Sequence[str],
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> list[Bar]:
    """The whole bars of [start_ms, end_ms) (start aligned down to `bar_ms`), oldest first."""
    prices: dict[str, list[tuple[int, float]]] = defaultdict(list)
    interest: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for sample in samples:
        if sample.mark_price is not None and sample.mark_price > 0:
            prices[sample.venue].append((sample.at_ms, sample.mark_price))
        if sample.open_interest_usd is not None and sample.open_interest_usd >= 0:
            interest[sample.venue].append((sample.at_ms, sample.open_interest_usd))
    for series in (*prices.values(), *interest.values()):
        series.sort()
    ranked_venues = [venue for venue in price_venues if venue in prices] + sorted(set(prices) - set(price_venues))

    bars = []
    open_ms = start_ms - start_ms % bar_ms
    while open_ms + bar_ms <= end_ms:
        close_ms = open_ms + bar_ms
        path = next((p for venue in ranked_venues if (p := _inside(prices[venue], open_ms, close_ms))), None)
        if path:
            oi_start, oi_end = _open_interest(interest.values(), open_ms, close_ms, tolerance_ms)
            bars.append(Bar(open_ms, close_ms, path[0], max(path), min(path), path[-1], oi_start, oi_end))
        open_ms = close_ms
    return bars


def _inside(series: list[tuple[int, float]], start_ms: int, end_ms: int) -> list[float]:
    first = bisect_right(series, (start_ms, float("-inf")))
    last = bisect_right(series, (end_ms, float("-inf")))
    return [value for _, value in series[first:last]]


def _before(series: list[tuple[int, float]], at_ms: int, tolerance_ms: int) -> float | None:
    index = bisect_right(series, (at_ms, float("-inf"))) - 1
    if index < 0 or series[index][0] < at_ms - tolerance_ms:
        return None
    return series[index][1]


def _open_interest(
    venues: Iterable[list[tuple[int, float]]], open_ms: int, close_ms: int, tolerance_ms: int
) -> tuple[float, float]:
    start_total = end_total = 0.0
    for series in venues:
        start = _before(series, open_ms, tolerance_ms)
        end = _before(series, close_ms, tolerance_ms)
        if start is not None and end is not None:
            start_total += start
            end_total += end
    return start_total, end_total
