"""The venues' public margin tiers: the lowest tier's maintenance margin rate of
each tracked asset, for the levels model's liquidation prices.

What to ask each venue and how to read it is the venue's `MARGIN`
(`bot.feeds.contract.MarginTiers`, listed in `bot.feeds.venues.MARGINS`).
`MarginTierReader.run` reads every asset of every venue of `[levels]
margin_venues` at start and every `margin_refresh_hours`, one request per
asset and venue, paced under the venue's published limit (`[market]
budget_fraction` of it). An answer that is not what the venue documents, a
failed request or an asset the venue does not list leaves that rate out
(the others are kept); a 429 / 418 / 403 ends that venue's round. Every body
goes to `on_response` (`liqbot record`) stamped with the round's start, so a
replay reads the same rates (`bot.feeds.market_replay`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import orjson

from bot.feeds.contract import MarginTiers
from bot.feeds.http_policy import BLOCKING_STATUSES, RequestBudget, take
from bot.feeds.market import query_path
from bot.feeds.marketdata import MarketDataError
from bot.feeds.venues import MARGINS

log = logging.getLogger(__name__)

# (asset, venue, lowest-tier maintenance margin rate) of one round.
RateSink = Callable[[list[tuple[str, str, float]], int], Awaitable[object]]
ResponseSink = Callable[[str, int, str, object], Awaitable[object]]


def margin_path(spec: MarginTiers, asset: str) -> str:
    """How a margin-tier request is written in a recording."""
    return query_path(spec.path, spec.request(asset))


class MarginTierReader:
    """Reads the margin tiers of `config.levels.margin_venues` for `config.market.assets`."""

    def __init__(
        self,
        config: Any,
        client: httpx.AsyncClient,
        sink: RateSink,
        now_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        *,
        on_response: ResponseSink | None = None,
    ) -> None:
        self._assets = tuple(config.market.asset_list)
        self._venues = tuple(venue for venue in config.levels.margin_venues if getattr(config.feeds, venue).enabled)
        self._urls = {
            venue: getattr(getattr(config.feeds, venue), MARGINS[venue].rest_url_key).rstrip("/")
            for venue in self._venues
        }
        self._refresh_s = config.levels.margin_refresh_hours * 3600
        self._timeout = httpx.Timeout(config.market.request_timeout_s)
        fraction = config.market.budget_fraction
        self._budgets = {
            venue: RequestBudget(max(1.0, MARGINS[venue].limit * fraction), MARGINS[venue].window_ms)
            for venue in self._venues
        }
        self._client = client
        self._sink = sink
        self._now_ms = now_ms
        self._sleep = sleep
        self._on_response = on_response

    async def run(self) -> None:
        """Read every venue now and then every `margin_refresh_hours`, until cancelled."""
        while True:
            await self.read_all()
            await self._sleep(self._refresh_s)

    async def read_all(self) -> list[tuple[str, str, float]]:
        """One round: every venue's rates, handed to the sink together; never raises."""
        at_ms = self._now_ms()
        rates: list[tuple[str, str, float]] = []
        for venue in self._venues:
            rates += await self._read_venue(venue, at_ms)
        if rates:
            try:
                await self._sink(rates, at_ms)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("margin tiers: storing %d rates failed", len(rates))
        return rates

    async def _read_venue(self, venue: str, at_ms: int) -> list[tuple[str, str, float]]:
        spec = MARGINS[venue]
        rates = []
        for asset in self._assets:
            await take(self._budgets[venue], 1, self._now_ms, self._sleep)
            try:
                response = await self._client.get(self._urls[venue] + spec.path, params=spec.request(asset),
                                                  timeout=self._timeout)
            except httpx.HTTPError as error:
                log.warning("margin tiers %s %s: %s", venue, asset, type(error).__name__)
                continue
            if response.status_code in BLOCKING_STATUSES:
                log.warning("margin tiers %s: HTTP %d, trying again next round", venue, response.status_code)
                break
            if response.status_code >= 400:
                log.warning("margin tiers %s %s: HTTP %d", venue, asset, response.status_code)
                continue
            try:
                body = orjson.loads(response.content)
                rate = spec.lowest_rate(body, asset)
            except (orjson.JSONDecodeError, MarketDataError) as error:
                log.warning("margin tiers %s %s: malformed answer: %s", venue, asset, error)
                continue
            if self._on_response is not None:
                await self._on_response(venue, at_ms, margin_path(spec, asset), body)
            if rate is not None:
                rates.append((asset, venue, rate))
        return rates


def rates_of(
    venue: str, responses: Sequence[tuple[str, object]], assets: Sequence[str]
) -> list[tuple[str, str, float]]:
    """(asset, venue, rate) of recorded margin-tier responses ((recorded path, body) pairs); bodies
    that do not parse are left out, as live."""
    spec = MARGINS.get(venue)
    if spec is None:
        return []
    asked = {margin_path(spec, asset): asset for asset in assets}
    rates = []
    for path, body in responses:
        asset = asked.get(path)
        if asset is None:
            continue
        try:
            rate = spec.lowest_rate(body, asset)
        except MarketDataError:
            continue
        if rate is not None:
            rates.append((asset, venue, rate))
    return rates
