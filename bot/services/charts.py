"""/chart pictures: data from storage, rendering off the event loop, a cache.

A chart is cached per (asset or "top", window, minute, time zone): everyone
asking within the same minute (in the same zone) gets the same PNG and the
same caption totals (the summary the picture was drawn from), without a
second render. The zone (an IANA name; None or an unknown name is UTC) sets
the axis times and the title's end time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Window
from bot.core.summary import Summary
from bot.replies import charts, heatmap
from bot.replies.model import Image, Reply
from bot.services.levels import LevelsService
from bot.services.queries import QueryService
from bot.storage.market_store import MarketStore
from bot.storage.series import liquidation_bars
from bot.storage.store import Store

# Window up to (inclusive) -> bar width: 30-60 bars whatever the window.
STEPS_MS = (
    (HOUR_MS, MINUTE_MS),
    (4 * HOUR_MS, 5 * MINUTE_MS),
    (12 * HOUR_MS, 15 * MINUTE_MS),
    (DAY_MS, 30 * MINUTE_MS),
    (3 * DAY_MS, 2 * HOUR_MS),
    (7 * DAY_MS, 4 * HOUR_MS),
    (14 * DAY_MS, 8 * HOUR_MS),
)
HEATMAP_ORDERS = 300  # the largest recorded orders drawn as dots; more would hide the bands
PRICE_VENUES = ("binance", "bybit", "okx")  # the mark price line comes from the first that has one

log = logging.getLogger(__name__)
T = TypeVar("T")


def zone_of(tz: str | None) -> tzinfo | None:
    """The zoneinfo zone of an IANA name; None (UTC) for none, "UTC" or an unknown name."""
    if not tz or tz.upper() == "UTC":
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("charts: unknown time zone %r, drawing in UTC", tz)
        return None


def step_for(window_ms: int) -> int:
    for up_to, step in STEPS_MS:
        if window_ms <= up_to:
            return step
    return DAY_MS


@dataclass(frozen=True, slots=True)
class Rendered:
    summary: Summary
    image: Image


class ChartService:
    def __init__(
        self,
        store: Store,
        queries: QueryService,
        market: MarketStore | None = None,
        theme: str = "dark",
        cache_entries: int = 64,
        levels: LevelsService | None = None,
    ) -> None:
        self._store = store
        self._queries = queries
        self._market = market
        self._theme = theme
        self._cache_entries = cache_entries
        self._levels = levels
        self._cache: OrderedDict[tuple, Rendered] = OrderedDict()
        self.renders = 0  # how many PNGs were drawn (the rest came from the cache)

    async def chart(
        self, asset: str | None, window_ms: int, now_ms: int, locale: str, refresh_command: str, tz: str | None = None
    ) -> Reply:
        zone = zone_of(tz)
        key = ("series", asset, window_ms, now_ms // MINUTE_MS, charts.zone_name(zone), locale)
        rendered = await self._cached(key, self._series, asset, window_ms, now_ms, zone, locale)
        return charts.chart_reply(rendered.summary, rendered.image, locale, refresh_command, zone)

    async def top(
        self, window_ms: int, now_ms: int, locale: str, refresh_command: str, tz: str | None = None
    ) -> Reply:
        rendered = await self._top_rendered(window_ms, now_ms, tz, locale)
        return charts.top_chart_reply(rendered.summary, rendered.image, locale, refresh_command, zone_of(tz))

    async def top_image(self, window_ms: int, now_ms: int, tz: str | None = None, locale: str = "en") -> Image:
        """Just the `/chart top` picture (the digest attaches the day's)."""
        return (await self._top_rendered(window_ms, now_ms, tz, locale)).image

    async def _top_rendered(self, window_ms: int, now_ms: int, tz: str | None, locale: str) -> Rendered:
        zone = zone_of(tz)
        key = ("top", None, window_ms, now_ms // MINUTE_MS, charts.zone_name(zone), locale)
        return await self._cached(key, self._top, window_ms, now_ms, zone, locale)

    async def heatmap(
        self, asset: str, window_ms: int, now_ms: int, locale: str, refresh_command: str, tz: str | None = None
    ) -> Reply:
        """The estimated liquidation levels of `asset` over the window, with price and recorded orders."""
        zone = zone_of(tz)
        key = ("heatmap", asset, window_ms, now_ms // MINUTE_MS, charts.zone_name(zone), locale)
        image = await self._cached(key, self._heatmap, asset, window_ms, now_ms, zone, locale)
        leverage = self._levels.settings.model.leverage_range if self._levels is not None else (1.0, 1.0)
        return heatmap.heatmap_reply(asset, window_ms, image, locale, refresh_command, leverage)

    async def _heatmap(
        self, asset: str, window_ms: int, now_ms: int, zone: tzinfo | None, locale: str
    ) -> Image | None:
        if self._levels is None:
            return None
        window = Window.trailing(window_ms, now_ms)
        columns = await self._levels.columns(asset, window, now_ms)
        if not columns:
            return None
        prices = await self._prices(asset, window)
        orders = await self._store.largest(asset, window, HEATMAP_ORDERS)
        title = heatmap.heatmap_title(asset, window_ms, now_ms, zone, locale)
        png = await asyncio.to_thread(
            heatmap.heatmap_png, title, columns, now_ms, prices, orders, self._theme, zone, locale
        )
        self.renders += 1
        return Image(png, heatmap.heatmap_filename(asset, window_ms, now_ms, zone))

    async def _cached(self, key: tuple, build: Callable[..., Awaitable[T]], *args) -> T:
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        rendered = await build(*args)
        self._cache[key] = rendered
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)
        return rendered

    async def _prices(self, asset: str, window: Window) -> list[tuple[int, float]]:
        if self._market is None:
            return []
        for venue in PRICE_VENUES:
            points = await self._market.points(asset, venue, "mark_price", window.start_ms, window.end_ms)
            if points:
                return points
        return []

    async def _series(
        self, asset: str | None, window_ms: int, now_ms: int, zone: tzinfo | None, locale: str
    ) -> Rendered:
        window = Window.trailing(window_ms, now_ms)
        summary = await self._queries.summary(asset, window)
        bars = await liquidation_bars(self._store, asset, window, step_for(window_ms))
        prices = await self._prices(asset, window) if asset is not None else []
        title = charts.chart_title(asset, window_ms, now_ms, zone, locale)
        # A gap shorter than a bar is not worth shading: the bar already says little about it.
        step_ms = step_for(window_ms)
        unrecorded = [(s, e) for s, e in summary.coverage.unrecorded if e - s >= step_ms]
        png = await asyncio.to_thread(
            charts.series_png, title, bars, prices, self._theme, zone, locale, unrecorded=unrecorded
        )
        self.renders += 1
        return Rendered(summary, Image(png, charts.chart_filename(asset, window_ms, now_ms, zone)))

    async def _top(self, window_ms: int, now_ms: int, zone: tzinfo | None, locale: str) -> Rendered:
        summary = await self._queries.summary(None, Window.trailing(window_ms, now_ms))
        title = charts.top_title(window_ms, now_ms, zone, locale)
        png = await asyncio.to_thread(charts.top_png, title, summary.by_asset, self._theme, locale)
        self.renders += 1
        filename = charts.chart_filename(None, window_ms, now_ms, zone).replace("liqbot-all", "liqbot-top")
        return Rendered(summary, Image(png, filename))
