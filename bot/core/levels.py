"""Estimated liquidation levels: where the leveraged positions opened in the
recorded bars would be force-closed, and how well those estimates matched what
was actually liquidated.

Every liquidation map is a model; this one is small enough to check by hand.

1. A closed bar whose open interest rose by dOI opened dOI of new positions near
   the bar's typical price P = (high + low + close) / 3. Longs take the share
   taker_buy / volume (aggressive buyers open longs); where a venue publishes no
   taker split, the bar's direction decides: `direction_share` to the side it
   moved, half each on a flat bar.
2. The opened notional spreads over leverage tiers (`LevelSettings.tiers`). A long
   opened at P with leverage L is liquidated near P * (1 - 1/L + mmr), a short
   near P * (1 + 1/L - mmr), mmr the maintenance margin rate: per asset, the mean
   of the venues' lowest-tier rates (`venue_margin_rate`), else the configured one.
3. Price trading through a band consumes it: a bar whose low reaches a long band
   (or whose high reaches a short band) empties it and reports a `Crossing`, which
   the grade compares with the liquidations recorded near that price in that bar.
4. Open interest falling removes notional from every remaining band in proportion,
   after what the crossed bands held (those positions were liquidated: the same
   fall) is taken off the fall.
5. A bar consumes what was there before it, then adds what it opened; positions
   it opened whose liquidation price lies inside its own range are left out: the
   bar may already have liquidated them, and which, the model cannot tell.
6. Bands live in a bounded grid per asset: `bins` equal price buckets spanning
   +-half_span around the last close, the half span sized by recent volatility
   between `min_half_span` and `max_half_span`. When the price leaves the middle
   half of the grid or volatility moves it by half, the grid is re-centred and
   notional that falls outside it is dropped (far from price, where the estimate
   matters least).

Since only rises of open interest add notional and every other step removes
some, the estimate never exceeds the open interest it came from.

Pure: no I/O, no clock; bars carry their own times.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.core.models import DAY_MS, MINUTE_MS, Side


@dataclass(frozen=True, slots=True)
class LeverageTier:
    leverage: float
    weight: float


# Retail-heavy perpetual books: most notional at 10-25x, a tail at 50-100x.
DEFAULT_TIERS = (
    LeverageTier(5, 0.10),
    LeverageTier(10, 0.25),
    LeverageTier(25, 0.30),
    LeverageTier(50, 0.20),
    LeverageTier(100, 0.15),
)


@dataclass(frozen=True, slots=True)
class LevelSettings:
    """The model's parameters (`[levels]` in the config)."""

    tiers: tuple[LeverageTier, ...] = DEFAULT_TIERS
    maintenance_margin_rate: float = 0.005  # when no venue publishes margin tiers (see venue_margin_rate)
    direction_share: float = 0.6  # longs' share of a rising bar's new positions without taker data
    bins: int = 240
    min_half_span: float = 0.20  # of the price: at least +-20 %, where a 5x position opened now sits
    max_half_span: float = 0.50  # at most +-50 %, for the most volatile coins
    span_sigmas: float = 6.0  # half span = 6 daily standard deviations of the bar returns
    volatility_bars: int = 96

    @property
    def leverage_range(self) -> tuple[float, float]:
        return min(t.leverage for t in self.tiers), max(t.leverage for t in self.tiers)

    def __post_init__(self) -> None:
        if not self.tiers or any(t.leverage <= 1 or t.weight < 0 for t in self.tiers):
            raise ValueError("leverage tiers need leverage > 1 and weight >= 0")
        if not math.isclose(sum(t.weight for t in self.tiers), 1.0, abs_tol=1e-9):
            raise ValueError("leverage tier weights must add up to 1")
        if not 0 <= self.maintenance_margin_rate < 1 / max(t.leverage for t in self.tiers):
            raise ValueError("maintenance margin rate must be below 1/leverage of every tier")
        if not 0 < self.min_half_span <= self.max_half_span < 1:
            raise ValueError("grid half span must satisfy 0 < min <= max < 1")


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed bar of an asset, open interest summed over the venues polled."""

    open_ms: int
    close_ms: int
    open: float
    high: float
    low: float
    close: float
    open_interest_start_usd: float
    open_interest_end_usd: float
    volume_usd: float = 0.0
    taker_buy_usd: float | None = None

    @property
    def typical_price(self) -> float:
        return (self.high + self.low + self.close) / 3

    def long_share(self, direction_share: float) -> float:
        if self.taker_buy_usd is not None and self.volume_usd > 0:
            return min(1.0, max(0.0, self.taker_buy_usd / self.volume_usd))
        if self.close > self.open:
            return direction_share
        if self.close < self.open:
            return 1 - direction_share
        return 0.5


def venue_margin_rate(lowest_tier_rates: Iterable[float], settings: LevelSettings) -> float:
    """The maintenance margin rate of an asset's book: the mean of the venues'
    lowest-tier rates (the tier of the small positions that make up most of a
    retail book), leaving out any a tier of the profile could not be opened at
    (at or above 1/leverage); the configured rate when no venue gives one."""
    cap = 1 / max(tier.leverage for tier in settings.tiers)
    usable = [rate for rate in lowest_tier_rates if 0 <= rate < cap]
    return sum(usable) / len(usable) if usable else settings.maintenance_margin_rate


def liquidation_price(entry: float, leverage: float, side: Side, maintenance_margin_rate: float) -> float:
    """Where a position opened at `entry` with `leverage` is force-closed."""
    if side is Side.LONG:
        return entry * (1 - 1 / leverage + maintenance_margin_rate)
    return entry * (1 + 1 / leverage - maintenance_margin_rate)


@dataclass(frozen=True, slots=True)
class Crossing:
    """A band the price traded through: what the model expected to be liquidated there."""

    side: Side
    price: float
    estimated_usd: float
    open_ms: int
    close_ms: int


@dataclass(frozen=True, slots=True)
class Band:
    side: Side
    low: float
    high: float
    usd: float

    @property
    def mid(self) -> float:
        return (self.low + self.high) / 2

    def distance(self, price: float) -> float:
        """Signed move from `price` to the band's nearer edge, as a fraction of `price`
        (negative for long bands below, positive for short bands above)."""
        edge = self.high if self.side is Side.LONG else self.low
        return edge / price - 1


@dataclass(slots=True)
class LevelBook:
    """One asset's estimated bands. Feed it closed bars in order."""

    settings: LevelSettings = field(default_factory=LevelSettings)
    low: float = 0.0
    high: float = 0.0
    long_usd: list[float] = field(default_factory=list)
    short_usd: list[float] = field(default_factory=list)
    last_close: float | None = None
    last_close_ms: int | None = None
    closes: deque[float] = field(default_factory=deque)
    bar_ms: int = 15 * MINUTE_MS  # the length of the bars seen, for scaling volatility to a day
    first_bar_ms: int | None = None  # the open of the first bar folded in: the estimate knows nothing before

    # --- reading -------------------------------------------------------
    @property
    def width(self) -> float:
        return (self.high - self.low) / self.settings.bins

    def total_usd(self) -> float:
        return sum(self.long_usd) + sum(self.short_usd)

    def bands(self, side: Side) -> list[Band]:
        """Every non-empty bucket of one side, lowest price first."""
        amounts = self.long_usd if side is Side.LONG else self.short_usd
        width = self.width
        return [
            Band(side, self.low + i * width, self.low + (i + 1) * width, usd)
            for i, usd in enumerate(amounts)
            if usd > 0
        ]

    def bands_from(self, side: Side, price: float, band_pct: float = 0.005) -> list[Band]:
        """One side's notional summed in steps of `band_pct` of `price` away from it
        (longs below, shorts above), nearest first, each band as wide as the
        buckets that hold its notional; empty steps left out.

        Steps of a fixed share read as a trader reads a map ("$300M at 96,500 -
        96,700") and never chain a whole side into one block."""
        amounts = self.long_usd if side is Side.LONG else self.short_usd
        step = price * band_pct
        found: dict[int, list[float]] = {}  # step -> [low, high, usd]
        for index, usd in enumerate(amounts):
            low = self.low + index * self.width
            away = price - (low + self.width / 2) if side is Side.LONG else (low + self.width / 2) - price
            if usd <= 0 or away < 0:
                continue
            band = found.setdefault(int(away // step), [low, low + self.width, 0.0])
            band[0], band[1], band[2] = min(band[0], low), max(band[1], low + self.width), band[2] + usd
        return [Band(side, low, high, usd) for _, (low, high, usd) in sorted(found.items())]

    def densest(self, side: Side, price: float, count: int, band_pct: float = 0.005) -> list[Band]:
        """The `count` bands of `bands_from` holding the most USD, largest first."""
        return sorted(self.bands_from(side, price, band_pct), key=lambda band: band.usd, reverse=True)[:count]

    def nearest(self, side: Side, price: float, min_usd: float, band_pct: float = 0.005) -> Band | None:
        """The band of `bands_from` nearest to `price` holding at least `min_usd`, or None."""
        return next((band for band in self.bands_from(side, price, band_pct) if band.usd >= min_usd), None)

    # --- updating ------------------------------------------------------
    def apply(self, bar: Bar) -> list[Crossing]:
        """Fold one closed bar in; returns the bands its range consumed."""
        if not 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high:
            raise ValueError(f"bar prices out of order: {bar}")
        if bar.open_interest_start_usd < 0 or bar.open_interest_end_usd < 0:
            raise ValueError("open interest cannot be negative")
        if not self.long_usd:
            self._grid_around(bar.close, self._half_span())
            self.first_bar_ms = bar.open_ms
        crossings = self._consume(bar)
        self._follow_open_interest(bar, sum(crossing.estimated_usd for crossing in crossings))
        self.last_close, self.last_close_ms = bar.close, bar.close_ms
        self.bar_ms = max(1, bar.close_ms - bar.open_ms)
        self.closes.append(bar.close)
        while len(self.closes) > self.settings.volatility_bars:
            self.closes.popleft()
        self._recentre_if_needed(bar.close)
        return crossings

    def _consume(self, bar: Bar) -> list[Crossing]:
        crossings = []
        width = self.width
        for i in range(self.settings.bins):
            mid = self.low + (i + 0.5) * width
            if self.long_usd[i] > 0 and bar.low <= mid:
                crossings.append(Crossing(Side.LONG, mid, self.long_usd[i], bar.open_ms, bar.close_ms))
                self.long_usd[i] = 0.0
            if self.short_usd[i] > 0 and bar.high >= mid:
                crossings.append(Crossing(Side.SHORT, mid, self.short_usd[i], bar.open_ms, bar.close_ms))
                self.short_usd[i] = 0.0
        return crossings

    def _follow_open_interest(self, bar: Bar, consumed_usd: float) -> None:
        start, end = bar.open_interest_start_usd, bar.open_interest_end_usd
        if end < start:
            # The consumed bands' positions are part of the fall: the rest of it was
            # closed from everything else, in proportion.
            rest = start - consumed_usd
            kept = 1 - (start - end - consumed_usd) / rest if rest > 0 else 0.0
            kept = min(1.0, max(0.0, kept))
            self.long_usd = [usd * kept for usd in self.long_usd]
            self.short_usd = [usd * kept for usd in self.short_usd]
            return
        opened = end - start
        if opened <= 0:
            return
        longs = opened * bar.long_share(self.settings.direction_share)
        entry, mmr = bar.typical_price, self.settings.maintenance_margin_rate
        for tier in self.settings.tiers:
            long_price = liquidation_price(entry, tier.leverage, Side.LONG, mmr)
            short_price = liquidation_price(entry, tier.leverage, Side.SHORT, mmr)
            if long_price < bar.low:  # else inside the bar's own range: perhaps liquidated already
                self._add(Side.LONG, long_price, longs * tier.weight)
            if short_price > bar.high:
                self._add(Side.SHORT, short_price, (opened - longs) * tier.weight)

    def _add(self, side: Side, price: float, usd: float) -> None:
        index = self._index(price)
        if index is not None and usd > 0:
            (self.long_usd if side is Side.LONG else self.short_usd)[index] += usd

    def _index(self, price: float) -> int | None:
        if not self.low <= price < self.high:
            return None
        return min(self.settings.bins - 1, int((price - self.low) / self.width))

    def _half_span(self) -> float:
        s = self.settings
        volatility = daily_volatility(self.closes, DAY_MS / self.bar_ms)
        wanted = s.span_sigmas * volatility if volatility is not None else s.min_half_span
        return min(s.max_half_span, max(s.min_half_span, wanted))

    def _recentre_if_needed(self, price: float) -> None:
        centre = (self.low + self.high) / 2
        half_span = self._half_span()
        current_half_span = (self.high - self.low) / 2 / centre
        drifted = abs(price - centre) > (self.high - self.low) / 4
        resized = not (current_half_span / 1.5 <= half_span <= current_half_span * 1.5)
        if drifted or resized:
            old = [(Side.LONG, band) for band in self.bands(Side.LONG)] + [
                (Side.SHORT, band) for band in self.bands(Side.SHORT)
            ]
            self._grid_around(price, half_span)
            for side, band in old:
                self._add(side, band.mid, band.usd)

    def _grid_around(self, price: float, half_span: float) -> None:
        self.low, self.high = price * (1 - half_span), price * (1 + half_span)
        self.long_usd = [0.0] * self.settings.bins
        self.short_usd = [0.0] * self.settings.bins

    # --- keeping across restarts ---------------------------------------
    def to_dict(self) -> dict:
        return {
            "low": self.low,
            "high": self.high,
            "long_usd": list(self.long_usd),
            "short_usd": list(self.short_usd),
            "last_close": self.last_close,
            "last_close_ms": self.last_close_ms,
            "closes": list(self.closes),
            "bar_ms": self.bar_ms,
            "first_bar_ms": self.first_bar_ms,
        }

    @classmethod
    def from_dict(cls, data: dict, settings: LevelSettings) -> LevelBook:
        """A saved book; one saved under a different grid size starts afresh (it is an estimate)."""
        book = cls(settings)
        if len(data.get("long_usd", ())) != settings.bins or len(data.get("short_usd", ())) != settings.bins:
            return book
        book.low, book.high = float(data["low"]), float(data["high"])
        book.long_usd = [float(v) for v in data["long_usd"]]
        book.short_usd = [float(v) for v in data["short_usd"]]
        book.last_close, book.last_close_ms = data.get("last_close"), data.get("last_close_ms")
        book.bar_ms = max(1, int(data.get("bar_ms", book.bar_ms)))
        book.first_bar_ms = data.get("first_bar_ms")
        book.closes = deque(float(v) for v in data.get("closes", ())[-settings.volatility_bars:])
        return book


def daily_volatility(closes: Sequence[float], bars_per_day: float) -> float | None:
    """Standard deviation of log returns between closes, scaled to a day; None under 8 bars."""
    if len(closes) < 8:
        return None
    returns = [math.log(b / a) for a, b in zip(closes, list(closes)[1:]) if a > 0 and b > 0]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(variance * bars_per_day)


@dataclass(frozen=True, slots=True)
class Realized:
    """One recorded liquidation, as the grade needs it."""

    at_ms: int
    side: Side
    price: float
    usd: float


@dataclass(frozen=True, slots=True)
class Grade:
    """Of `estimated_usd` in the bands the price crossed, `matched_usd` was matched by
    liquidations recorded within the tolerance (each band counting at most its own
    estimate); `near_usd` is all that was recorded near them, uncapped."""

    crossings: int
    crossings_hit: int
    estimated_usd: float
    matched_usd: float
    near_usd: float

    @property
    def matched_share(self) -> float | None:
        return self.matched_usd / self.estimated_usd if self.estimated_usd > 0 else None

    @property
    def hit_rate(self) -> float | None:
        return self.crossings_hit / self.crossings if self.crossings else None


NO_GRADE = Grade(0, 0, 0.0, 0.0, 0.0)


def realized_near(crossings: Sequence[Crossing], realized: Iterable[Realized], tolerance: float = 0.005) -> list[float]:
    """The USD recorded near each crossed band during its bar, in the order given.

    Each recorded liquidation counts once, for the nearest crossed band of its side
    within `tolerance` (a fraction of the band's price) whose bar it falls in.
    """
    found = [0.0] * len(crossings)
    # Per side, the crossings by price: each order looks only at those within the tolerance.
    by_side = {side: sorted((c.price, i) for i, c in enumerate(crossings) if c.side is side) for side in Side}
    for order in realized:
        candidates = by_side[order.side]
        first = bisect_left(candidates, (order.price / (1 + tolerance), -1))
        last = bisect_right(candidates, (order.price / (1 - tolerance), len(crossings)))
        best: tuple[float, int] | None = None
        for price, index in candidates[first:last]:
            band = crossings[index]
            if not band.open_ms <= order.at_ms < band.close_ms:
                continue
            gap = abs(order.price / price - 1)
            if gap <= tolerance and (best is None or gap < best[0]):
                best = (gap, index)
        if best is not None:
            found[best[1]] += order.usd
    return found


def grade(crossings: Sequence[Crossing], realized_usd: Sequence[float]) -> Grade:
    """The grade of crossed bands given what was liquidated near each (`realized_near`)."""
    return Grade(
        crossings=len(crossings),
        crossings_hit=sum(1 for usd in realized_usd if usd > 0),
        estimated_usd=sum(band.estimated_usd for band in crossings),
        matched_usd=sum(min(band.estimated_usd, usd) for band, usd in zip(crossings, realized_usd)),
        near_usd=sum(realized_usd),
    )


@dataclass(frozen=True, slots=True)
class LevelsView:
    """What /levels shows of one asset: the price, the densest bands on each side, the grade."""

    asset: str
    price: float | None
    at_ms: int | None  # when `price` was polled (the last bar's close when no poll is recent)
    first_bar_ms: int | None  # the estimate has data since then
    longs_below: tuple[Band, ...]
    shorts_above: tuple[Band, ...]
    grade_7d: Grade
    grade_30d: Grade
    tolerance: float
    leverage: tuple[float, float]  # the lowest and highest leverage tier of the model
