"""The write-up of a window (`/report`, the full daily digest): gathers the
summary, the window's cascades with the price move of each, the history
standing and the leverage after the events, for `bot.replies.report`.

Market data (mark price, open interest, funding) comes from the stored
samples of every venue that has them; without samples those parts are left
out and the write-up says so, nothing is estimated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from bot.core.events import EventRule, asset_shares, detect_cascades, ranked
from bot.core.market import DEFAULT_TOLERANCE_MS, MarketSample
from bot.core.models import DAY_MS, MINUTE_MS, Window
from bot.core.report import (
    HISTORY_PERIODS_DAYS,
    CascadeStory,
    History,
    LeverageAfter,
    PriceMove,
    WriteUp,
    leverage_verdict,
    standings,
)
from bot.core.risk import RiskThresholds
from bot.services.queries import QueryService
from bot.storage.market_store import MarketStore
from bot.storage.series import largest_day, minute_totals
from bot.storage.store import Store

STORIES_SHOWN = 5


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


class ReportService:
    def __init__(
        self,
        store: Store,
        queries: QueryService,
        market: MarketStore | None = None,
        thresholds: RiskThresholds | None = None,
        rule: EventRule | None = None,
    ) -> None:
        self._store = store
        self._queries = queries
        self._market = market
        self._thresholds = thresholds or RiskThresholds()
        self._rule = rule or EventRule()

    async def write_up(self, asset: str | None, window: Window, now_ms: int, tz: str | None = None) -> WriteUp:
        summary = await self._queries.summary(asset, window)
        rule = await self.rule_for(asset, window)
        stories = await self._stories(asset, window, now_ms, rule)
        history = await self._history(asset, window, summary.total.total_usd)
        leverage = None
        if stories:
            subject = asset or (summary.dominant_asset.name if summary.dominant_asset else None)
            first_start = min(story.cascade.start_ms for story in stories)
            if subject is not None:
                leverage = await self._leverage(subject, first_start, now_ms)
        return WriteUp(summary, tuple(stories), history, leverage, tz, rule)

    async def rule_for(self, asset: str | None, window: Window) -> EventRule:
        """The event rule of a scope: an asset's dollar floors follow its share of the market."""
        if asset is None:
            return self._rule
        rows = await self._store.totals(None, window)
        by_asset: dict[str, float] = {}
        for row in rows:
            by_asset[row.asset] = by_asset.get(row.asset, 0.0) + row.usd
        return self._rule.for_asset_share(asset_shares(by_asset).get(asset, 0.0))

    async def _stories(self, asset: str | None, window: Window, now_ms: int, rule: EventRule) -> list[CascadeStory]:
        history_start = window.start_ms - rule.baseline_minutes * MINUTE_MS
        minutes = await minute_totals(self._store, asset, history_start, window.end_ms)
        cascades = ranked(
            detect_cascades(minutes, history_start, window.start_ms, window.end_ms, now_ms, rule, asset or "all")
        )[:STORIES_SHOWN]
        stories = []
        for cascade in cascades:
            subject = asset or cascade.by_asset[0].name
            largest, move = await asyncio.gather(
                self._store.largest(asset, Window(cascade.start_ms, cascade.end_ms), 1),
                self._price_move(subject, cascade.start_ms, cascade.end_ms),
            )
            stories.append(CascadeStory(cascade, move, largest[0] if largest else None))
        return stories

    async def _history(self, asset: str | None, window: Window, total_usd: float) -> History:
        longest_days = max(HISTORY_PERIODS_DAYS)
        count = longest_days * DAY_MS // window.duration_ms if window.duration_ms else 0
        _spans, preceding = await self._queries.recorded_preceding(asset, window, count)
        day = await largest_day(self._store, asset)
        return History(
            standings(total_usd, preceding, window.duration_ms),
            largest_day_usd=day[1] if day else None,
            largest_day_start_ms=day[0] if day else None,
        )

    async def _sample_near(self, asset: str, venue: str, at_ms: int, after: bool = False) -> MarketSample | None:
        """The venue's newest sample at or before `at_ms` (with `after`: its oldest
        at or after `at_ms`), within the tolerance of `at_ms`."""
        if self._market is None:
            return None
        if after:
            found = await self._market.series(asset, venue, at_ms, at_ms + DEFAULT_TOLERANCE_MS)
            return found[0] if found else None
        found = await self._market.series(asset, venue, at_ms - DEFAULT_TOLERANCE_MS, at_ms + 1)
        return found[-1] if found else None

    async def _venues(self, asset: str) -> list[str]:
        return sorted(await self._market.latest(asset)) if self._market is not None else []

    async def _price_move(self, asset: str, start_ms: int, end_ms: int) -> PriceMove | None:
        for venue in await self._venues(asset):
            before, after = await asyncio.gather(
                self._sample_near(asset, venue, start_ms), self._sample_near(asset, venue, end_ms, after=True)
            )
            if before and after and before.mark_price and after.mark_price:
                return PriceMove(asset, before.mark_price, after.mark_price)
        return None

    async def _leverage(self, asset: str, first_event_ms: int, now_ms: int) -> LeverageAfter | None:
        venues = await self._venues(asset)
        if not venues:
            return None
        since_ms = first_event_ms - MINUTE_MS
        pairs = await asyncio.gather(
            *(asyncio.gather(self._sample_near(asset, v, since_ms), self._sample_near(asset, v, now_ms)) for v in venues)
        )
        both = [(b, a) for b, a in pairs if b and a and b.open_interest_usd and a.open_interest_usd is not None]
        before_oi = sum(b.open_interest_usd for b, _ in both) if both else None
        now_oi = sum(a.open_interest_usd for _, a in both) if both else None
        funding_before = _mean(b.annualised_funding for b, _ in pairs if b)
        funding_now = _mean(a.annualised_funding for _, a in pairs if a)
        change = now_oi / before_oi - 1 if before_oi else None
        return LeverageAfter(
            asset=asset,
            since_ms=since_ms,
            open_interest_before_usd=before_oi,
            open_interest_now_usd=now_oi,
            funding_before_annual=funding_before,
            funding_now_annual=funding_now,
            verdict=leverage_verdict(change, funding_now, self._thresholds),
        )
