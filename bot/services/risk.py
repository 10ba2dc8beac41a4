"""Risk reports from storage: market samples (MarketStore) + the last 24 h of
liquidations (QueryService), assessed by the pure rules of bot.core.risk.

Reads per report and venue: the newest sample, small slices of open interest
and mark price around now, now-1h, now-24h and now-7d, and 30 days of funding
and long/short ratio for the percentiles (that history read once an hour per
asset and venue). Reports are cached per (asset, minute), so /risk, the /liq
note and alert checks share one read.
"""

from __future__ import annotations

from collections import OrderedDict

from bot.core.market import DEFAULT_TOLERANCE_MS, MarketSample, annualised_funding
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Window
from bot.core.risk import RiskLevel, RiskReport, RiskThresholds, VenueMarket, assess
from bot.replies.risk import risk_note
from bot.services.queries import QueryService
from bot.storage.market_store import MarketStore

LOOKBACKS_MS = (0, HOUR_MS, DAY_MS, 7 * DAY_MS)
CACHE_ENTRIES = 256


class RiskService:
    def __init__(
        self,
        market: MarketStore,
        queries: QueryService,
        thresholds: RiskThresholds | None = None,
    ) -> None:
        self._market = market
        self._queries = queries
        self._thresholds = thresholds or RiskThresholds()
        self._cache: OrderedDict[tuple[str, int], RiskReport] = OrderedDict()
        # 30-day histories change little within an hour: read once per (asset, venue, measure, hour).
        self._histories: OrderedDict[tuple[str, str, str, int], list[float]] = OrderedDict()

    async def report(self, asset: str, now_ms: int) -> RiskReport:
        key = (asset, now_ms // MINUTE_MS)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        report = await self._assess(asset, now_ms)
        self._cache[key] = report
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return report

    async def risk_level(self, asset: str, now_ms: int) -> RiskLevel | None:
        """The level alone (for `/alert risk` and digests); None without market data."""
        return (await self.report(asset, now_ms)).level

    async def note(self, asset: str, now_ms: int, locale: str) -> str | None:
        """The one-line risk note of a /liq reply or a digest; None without market data."""
        return risk_note(await self.report(asset, now_ms), locale)

    async def _slices(self, asset: str, venue: str, measure: str, now_ms: int) -> list[tuple[int, float]]:
        found: dict[int, float] = {}
        for lookback in LOOKBACKS_MS:
            at = now_ms - lookback
            for point in await self._market.points(asset, venue, measure, at - DEFAULT_TOLERANCE_MS, at + 1):
                found[point[0]] = point[1]
        return sorted(found.items())

    async def _history(self, asset: str, venue: str, measure: str, now_ms: int) -> list[float]:
        """The measure's values over the last `history_days` up to the current hour, plus the newest."""
        hour = now_ms // HOUR_MS
        key = (asset, venue, measure, hour)
        found = self._histories.get(key)
        if found is None:
            start = hour * HOUR_MS - self._thresholds.history_days * DAY_MS
            found = [value for _, value in await self._market.points(asset, venue, measure, start, hour * HOUR_MS)]
            self._histories[key] = found
            while len(self._histories) > CACHE_ENTRIES:
                self._histories.popitem(last=False)
        recent = await self._market.points(asset, venue, measure, hour * HOUR_MS, now_ms + 1)
        return found + [value for _, value in recent]

    async def _venue(self, asset: str, venue: str, latest, now_ms: int) -> VenueMarket:
        interval = latest.funding_interval_hours or 8.0
        funding = await self._history(asset, venue, "funding_rate", now_ms)
        return VenueMarket(
            venue=venue,
            latest=latest,
            open_interest=await self._slices(asset, venue, "open_interest_usd", now_ms),
            mark_price=await self._slices(asset, venue, "mark_price", now_ms),
            funding_history=[annualised_funding(rate, interval) for rate in funding],
            long_short_history=await self._history(asset, venue, "long_short_ratio", now_ms),
            open_interest_history=await self._history(asset, venue, "open_interest_usd", now_ms),
        )

    async def _latest(self, asset: str, now_ms: int) -> dict[str, MarketSample]:
        """The newest sample per venue at or before `now_ms` (a day back at most)."""
        found = {}
        for venue, sample in (await self._market.latest(asset)).items():
            if sample.at_ms > now_ms:  # asked about the past (tests, replays)
                earlier = await self._market.series(asset, venue, now_ms - DAY_MS, now_ms + 1)
                if not earlier:
                    continue
                sample = earlier[-1]
            found[venue] = sample
        return found

    async def _assess(self, asset: str, now_ms: int) -> RiskReport:
        latest = await self._latest(asset, now_ms)
        venues = [await self._venue(asset, venue, sample, now_ms) for venue, sample in sorted(latest.items())]
        summary = await self._queries.summary(asset, Window.trailing(DAY_MS, now_ms))
        return assess(asset, venues, summary, self._thresholds, now_ms)
