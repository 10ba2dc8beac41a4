"""Closed price bars with the open-interest change across them, built from the
market samples and klines the poller stores (the levels model's input, `bot.core.levels`).

- Prices come from the venues' klines where one venue's klines cover the whole
  bar (the first such of `price_venues`): the first open, the highest high, the
  lowest low, the last close. They are trade prices, so they see every wick.
- Otherwise from one venue's mark price (the first of `price_venues` with a
  sample in the bar): open, high, low, close of its samples inside the bar. A
  minute-by-minute poll sees most of a bar's range; a wick between two polls is
  missed, which only delays the consumption of a band until the next touch.
- The taker split: the taker-buy USD of the bar's klines over their volume, summed
  over the venues that publish one (Binance, OKX); None where none does, and the
  model falls back to the bar's direction.
- Open interest is summed over the venues that have a value at both edges. The
  value at an edge is the newest sample before it (within `tolerance_ms`), so a
  bar ends on the value the next one starts from and no change falls between
  two bars. A venue missing at either edge is left out of that bar, so a poll
  failure never reads as positions opened or closed.
- A bar with neither klines nor a price sample is skipped.

Pure: samples in, bars out.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.levels import Bar
from bot.core.market import DEFAULT_TOLERANCE_MS, MarketSample


@dataclass(frozen=True, slots=True)
class Kline:
    """One closed candle of an asset's USDT perpetual on one venue: trade prices,
    the traded volume in USD and the part of it bought by takers (None where the
    venue publishes no taker split)."""

    venue: str
    asset: str
    open_ms: int
    close_ms: int  # exclusive: the next kline's open
    open: float
    high: float
    low: float
    close: float
    volume_usd: float
    taker_buy_usd: float | None = None


def bars_from_samples(
    samples: Iterable[MarketSample],
    start_ms: int,
    end_ms: int,
    bar_ms: int,
    price_venues: Sequence[str],
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
    klines: Iterable[Kline] = (),
) -> list[Bar]:
    """The whole bars of [start_ms, end_ms) (start aligned down to `bar_ms`), oldest first."""
    candles: dict[str, list[Kline]] = defaultdict(list)
    for kline in klines:
        candles[kline.venue].append(kline)
    for series in candles.values():
        series.sort(key=lambda k: k.open_ms)
    prices: dict[str, list[tuple[int, float]]] = defaultdict(list)
    interest: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for sample in samples:
        if sample.mark_price is not None and sample.mark_price > 0:
            prices[sample.venue].append((sample.at_ms, sample.mark_price))
        if sample.open_interest_usd is not None and sample.open_interest_usd >= 0:
            interest[sample.venue].append((sample.at_ms, sample.open_interest_usd))
    for series in (*prices.values(), *interest.values()):
        series.sort()
    ranked_venues = _ranked(price_venues, prices)
    kline_venues = _ranked(price_venues, candles)

    bars = []
    open_ms = start_ms - start_ms % bar_ms
    while open_ms + bar_ms <= end_ms:
        close_ms = open_ms + bar_ms
        inside = {venue: _klines_inside(candles[venue], open_ms, close_ms) for venue in kline_venues}
        covering = next((k for venue in kline_venues if _covers(k := inside[venue], open_ms, close_ms)), None)
        path = next((p for venue in ranked_venues if (p := _inside(prices[venue], open_ms, close_ms))), None)
        if covering or path:
            ohlc = (
                (covering[0].open, max(k.high for k in covering), min(k.low for k in covering), covering[-1].close)
                if covering else (path[0], max(path), min(path), path[-1])
            )
            oi_start, oi_end = _open_interest(interest.values(), open_ms, close_ms, tolerance_ms)
            volume_usd, taker_buy_usd = _taker_flow([k for found in inside.values() for k in found])
            bars.append(Bar(open_ms, close_ms, *ohlc, oi_start, oi_end, volume_usd, taker_buy_usd))
        open_ms = close_ms
    return bars


def _ranked(price_venues: Sequence[str], found: dict) -> list[str]:
    return [venue for venue in price_venues if venue in found] + sorted(set(found) - set(price_venues))


def _klines_inside(series: list[Kline], start_ms: int, end_ms: int) -> list[Kline]:
    first = bisect_left(series, start_ms, key=lambda k: k.open_ms)
    last = bisect_left(series, end_ms, key=lambda k: k.open_ms)
    return [kline for kline in series[first:last] if kline.close_ms <= end_ms]


def _covers(klines: list[Kline], start_ms: int, end_ms: int) -> bool:
    """The klines tile [start, end) without a hole."""
    at = start_ms
    for kline in klines:
        if kline.open_ms != at:
            return False
        at = kline.close_ms
    return bool(klines) and at == end_ms


def _taker_flow(klines: list[Kline]) -> tuple[float, float | None]:
    """(volume, taker buys) in USD: both over the klines with a taker split when any
    has one, else the whole volume and None."""
    split = [kline for kline in klines if kline.taker_buy_usd is not None]
    if not split:
        return sum(kline.volume_usd for kline in klines), None
    return sum(kline.volume_usd for kline in split), sum(kline.taker_buy_usd for kline in split)


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
