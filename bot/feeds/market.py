"""Market context over the venues' public REST APIs: funding, open interest and
the account long/short ratio of each tracked asset's USDT-margined perpetual.

What to ask each venue and how to read its answers is the venue module's
`MARKET` (`bot.feeds.venues`: a collector over pure parsers, the published
request limit, path weights); what they share is in `bot.feeds.marketdata`.

- `MarketPoller`: one task per venue, polling every `interval_s` through one
  shared `httpx.AsyncClient`. Each venue has its own request budget (a
  sliding window under the venue's published limit) and its own back-off:
  a 429 / 418 / 403 (or a rate-limit code in the body) parks that venue until
  `Retry-After` (or a default) has passed while the others keep polling.
  5xx, timeouts and connection errors are retried with exponential back-off
  and jitter. Nothing a venue sends crashes the poller: failures are counted
  in `stats` and logged.

- Backfill: on start, and before the first poll after a gap longer than
  `backfill_gap_s` (a restart, a venue's back-off), each venue with an
  open-interest history (`MARKET.open_interest_history`) is asked for what
  the store lacks: the holes longer than `backfill_gap_s` in the stored open
  interest of the last `backfill_days` (`HistoryStore.open_interest_gaps`).
  A restart asks only for what is missing; backfilled points never overwrite
  polled samples (`add_backfill`), and they fall strictly inside holes,
  between polls. The venue's own per-endpoint limits
  (`OpenInterestHistory.limits`) get a budget each, on top of the venue-wide
  one. A rate limit or a venue that is down leaves the backfill due for the
  next cycle; a malformed response is counted and skips that asset.
  Responses are recorded like a poll's (`on_response`, stamped with the
  backfill's start), and replay turns them into the same samples.

- Klines (`follow_klines`, for the levels model): each cycle, once a kline has
  closed, the venue's klines the `klines` sink lacks, the same way (holes in
  the store, budgets, recorded); the whole backfill window on start and after
  a gap (`bot.feeds.market_history`).

Endpoints per poll (N tracked assets) are listed in each venue module's
docstring. Instruments are `{ASSET}USDT` (Binance, Bybit) and
`{ASSET}-USDT-SWAP` (OKX): the majors. Scaled contracts (1000PEPEUSDT) are not mapped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from bot.core.market import MarketSample
from bot.feeds.contract import PathLimit
from bot.feeds.errors import shown
from bot.feeds.http_policy import BLOCKING_STATUSES, RequestBudget, backoff_delay, retry_after_s, take
from bot.feeds.market_history import Blocked, HistoryFills, RequestFailed
from bot.feeds.marketdata import MarketDataError, VenueError
from bot.feeds.oi_history import HistoryStore, KlineSink
from bot.feeds.settings import MarketDataConfig
from bot.feeds.venues import BY_NAME, KLINES, MARKET_VENUES

log = logging.getLogger(__name__)

# A Retry-After longer than a day is treated as a day.
MAX_RETRY_AFTER_S = 86_400.0


# -- poller -------------------------------------------------------------


def rest_urls(feeds: Any) -> dict[str, str]:
    """Venue -> the REST base URL its `MARKET` polls, from `[feeds.<venue>]`."""
    return {
        venue: getattr(getattr(feeds, venue), BY_NAME[venue].MARKET.rest_url_key).rstrip("/")
        for venue in MARKET_VENUES
    }


def make_client(config: Any) -> httpx.AsyncClient:
    """The one AsyncClient the poller shares across venues, with timeouts."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.market.request_timeout_s),
        limits=httpx.Limits(max_connections=10, max_keepalive_connections=6),
        headers={"User-Agent": "liqbot (market data)", "Accept": "application/json"},
        follow_redirects=False,
    )


@dataclass
class VenueStats:
    """Counters of one venue since the poller started."""

    polls: int = 0
    requests: int = 0
    retries: int = 0
    failures: int = 0  # requests given up on: retries exhausted, or a 4xx
    malformed: int = 0  # responses that are not what the venue documents
    rate_limited: int = 0  # 429 / 418 / 403 or a rate-limit code in the body
    samples: int = 0
    backfilled: int = 0  # open-interest history points stored by backfills
    klines: int = 0  # klines stored
    sink_errors: int = 0
    blocked_until_ms: int = 0
    last_success_ms: int | None = None
    last_error: str | None = None


Sink = Callable[[list[MarketSample]], Awaitable[object]]
# on_response(venue, poll_at_ms, query_path, body): every body a poll received (`liqbot record`).
ResponseSink = Callable[[str, int, str, object], Awaitable[object]]


def query_path(path: str, params: Mapping[str, str] | None) -> str:
    """How a market request is written in a recording: the path and its query, in the order asked."""
    return f"{path}?{urlencode(params)}" if params else path


class MarketPoller(HistoryFills):
    """Polls funding, open interest and long/short ratios of every venue.

    `config` is a `bot.config.Config`: its `[market]` section (`settings`, a
    `bot.feeds.settings.MarketDataConfig`) and the venues' REST URLs; `sink`
    receives each venue's samples of one poll (e.g. `MarketStore.add_samples`);
    `history` (e.g. the `MarketStore`) says what open interest is missing and
    takes the backfilled points (None: no backfill); `klines` (e.g. the
    `KlineStore`) says which klines are missing and takes them (None: none fetched);
    `now_ms` and `sleep` are the clock, injected so tests run in virtual time.
    `run()` returns only when cancelled.
    """

    def __init__(
        self,
        config: Any,
        client: httpx.AsyncClient,
        sink: Sink,
        now_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        *,
        rng: Callable[[], float] = random.random,
        budgets: Mapping[str, RequestBudget] | None = None,
        on_response: ResponseSink | None = None,
        history: HistoryStore | None = None,
        klines: KlineSink | None = None,
    ) -> None:
        self.settings: MarketDataConfig = config.market
        self.base_urls = rest_urls(config.feeds)
        self._assets = tuple(self.settings.asset_list)
        self._client = client
        self._sink = sink
        self._on_response = on_response
        self._now_ms = now_ms
        self._sleep = sleep
        self._rng = rng
        self._timeout = httpx.Timeout(self.settings.request_timeout_s)
        self.stats: dict[str, VenueStats] = {venue: VenueStats() for venue in self.settings.venues}
        self._budgets: dict[str, RequestBudget] = {}
        self._path_budgets: dict[tuple[str, str, str | None], RequestBudget] = {}
        self._history = history
        self._backfill_due = {venue: history is not None for venue in self.settings.venues}
        self._klines = klines
        self._klines_full_due: dict[str, bool] = {}  # venue -> the whole window's holes are due
        self._klines_seen: dict[str, int] = {}  # venue -> the last closed kline (index) filled up to
        self._collectors = {}
        for venue in self.settings.venues:
            spec = BY_NAME[venue].MARKET
            given = (budgets or {}).get(venue)
            self._budgets[venue] = given or RequestBudget(
                max(1.0, spec.limit * self.settings.budget_fraction), spec.window_ms
            )
            self._collectors[venue] = spec.collector()

    # -- loop -------------------------------------------------------------

    async def run(self) -> None:
        """Poll every venue until cancelled; one task per venue."""
        if not self.settings.enabled or not self.settings.venues or not self._assets:
            log.info("market data polling is disabled")
            return
        async with asyncio.TaskGroup() as group:
            for venue in self.settings.venues:
                group.create_task(self._run_venue(venue), name=f"market-{venue}")

    async def _run_venue(self, venue: str) -> None:
        interval_ms = round(self.settings.interval_s * 1000)
        stats = self.stats[venue]
        while True:
            now = self._now_ms()
            if stats.blocked_until_ms > now:
                await self._sleep((stats.blocked_until_ms - now) / 1000)
                continue
            started = now
            last = stats.last_success_ms
            if last is not None and now - last > self.settings.backfill_gap_s * 1000:
                self._backfill_due[venue] = self._history is not None
                self._klines_full_due[venue] = True
            if self._backfill_due[venue]:
                await self.backfill(venue)
                if stats.blocked_until_ms > self._now_ms():
                    continue
            await self.follow_klines(venue)
            if stats.blocked_until_ms > self._now_ms():
                continue
            await self.poll_once(venue)
            now = self._now_ms()
            wait_ms = max(started + interval_ms - now, stats.blocked_until_ms - now, 0)
            await self._sleep(wait_ms / 1000)

    async def poll_once(self, venue: str) -> list[MarketSample]:
        """One poll of one venue: fetch, parse, hand to the sink. Never raises.

        Returns the samples handed to the sink (possibly partial: a measure
        whose request failed is None; nothing when the main request failed).
        """
        stats = self.stats[venue]
        stats.polls += 1
        at_ms = self._now_ms()
        samples: dict[str, MarketSample] = {}
        try:
            await self._collectors[venue](self._venue_api(venue, at_ms), self._assets, at_ms, samples)
        except asyncio.CancelledError:
            raise
        except Blocked:
            pass  # counted and logged where it happened
        except RequestFailed as error:
            stats.last_error = str(error)
        except VenueError as error:
            if error.rate_limited:
                self._block(venue, 429, None, str(error))
            else:
                self._malformed(venue, error)
        except MarketDataError as error:
            self._malformed(venue, error)
        except Exception as error:  # a bug, not a venue: keep polling, loudly
            stats.last_error = f"{type(error).__name__}: {error}"
            log.exception("market %s: poll failed", venue)
        result = [sample for sample in samples.values() if has_measure(sample)]
        if not result:
            return []
        stats.samples += len(result)
        stats.last_success_ms = at_ms
        try:
            await self._sink(result)
        except asyncio.CancelledError:
            raise
        except Exception:
            stats.sink_errors += 1
            log.exception("market %s: storing %d samples failed", venue, len(result))
        return result

    # -- requests --------------------------------------------------------

    def _venue_api(self, venue: str, at_ms: int) -> _VenueApi:
        """The requests of one poll (or fill) of `venue`, recorded as made at `at_ms`."""
        return _VenueApi(self, venue, at_ms)

    async def _optional(
        self, venue: str, path: str, params: dict | None, parse: Callable[[Any], Any], poll_at_ms: int
    ) -> Any:
        """Fetch and parse one secondary measure; None (counted, logged) when that fails.

        A rate-limit signal or a venue that is down still aborts the whole poll.
        """
        try:
            return parse(await self._get(venue, path, params, poll_at_ms))
        except RequestFailed as error:
            if error.venue_down:
                raise
            self.stats[venue].last_error = str(error)
            return None
        except VenueError as error:
            if error.rate_limited:
                self._block(venue, 429, None, str(error))
                raise Blocked from None
            self._malformed(venue, error)
            return None
        except MarketDataError as error:
            self._malformed(venue, error)
            return None

    async def _get(self, venue: str, path: str, params: dict | None, poll_at_ms: int) -> Any:
        """GET base_url + path as JSON, within the venue's budget, with retries;
        the body goes to `on_response` (a recorder) stamped with the poll's instant."""
        stats = self.stats[venue]
        url = self.base_urls[venue] + path
        klines = KLINES.get(venue)
        cost = BY_NAME[venue].MARKET.weights.get(path) or (klines.weights.get(path, 1) if klines else 1)
        attempt = 0
        while True:
            if stats.blocked_until_ms > self._now_ms():
                raise Blocked
            path_budget = self._path_budget(venue, path, params)
            if path_budget is not None:
                await self._take(path_budget, 1)
            await self._take(self._budgets[venue], cost)
            stats.requests += 1
            try:
                response = await self._client.get(url, params=params, timeout=self._timeout)
            except httpx.TransportError as error:  # timeouts, refused/reset connections
                problem = f"{path}: {type(error).__name__}"
            except httpx.HTTPError as error:
                stats.failures += 1
                raise RequestFailed(f"{path}: {type(error).__name__}") from None
            else:
                status = response.status_code
                if status in BLOCKING_STATUSES:
                    self._block(venue, status, response.headers.get("Retry-After"), path)
                    raise Blocked
                if status < 400:
                    body = self._json(venue, path, response)
                    if self._on_response is not None:
                        await self._on_response(venue, poll_at_ms, query_path(path, params), body)
                    return body
                if status < 500:
                    stats.failures += 1
                    error = f"{path}: HTTP {status} {shown(response.text)}"
                    log.warning("market %s: %s", venue, error)
                    raise RequestFailed(error)
                problem = f"{path}: HTTP {status}"
            if attempt >= self.settings.retries:
                stats.failures += 1
                log.warning("market %s: %s, giving up after %d attempts", venue, problem, attempt + 1)
                raise RequestFailed(problem, venue_down=True)
            delay = backoff_delay(attempt + 1, self.settings.backoff_base_s, self.settings.backoff_max_s, self._rng())
            attempt += 1
            stats.retries += 1
            log.info("market %s: %s, retry %d in %.1fs", venue, problem, attempt, delay)
            await self._sleep(delay)

    def _json(self, venue: str, path: str, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise MarketDataError(f"{path}: not JSON: {shown(response.content[:60])}") from None

    def _path_budget(self, venue: str, path: str, params: Mapping[str, str] | None) -> RequestBudget | None:
        """The budget of an endpoint the venue limits on its own (per instrument, where it says so)."""
        limit = _path_limit(venue, path)
        if limit is None:
            return None
        key = (venue, path, (params or {}).get(limit.per_param) if limit.per_param else None)
        budget = self._path_budgets.get(key)
        if budget is None:
            budget = self._path_budgets[key] = RequestBudget(
                max(1.0, limit.limit * self.settings.budget_fraction), limit.window_ms
            )
        return budget

    async def _take(self, budget: RequestBudget, cost: float) -> None:
        await take(budget, cost, self._now_ms, self._sleep)

    def _block(self, venue: str, status: int, retry_after: str | None, what: str) -> None:
        stats = self.stats[venue]
        now = self._now_ms()
        delay_s = retry_after_s(retry_after, now, MAX_RETRY_AFTER_S)
        if delay_s is None:
            delay_s = self.settings.rate_limit_backoff_s if status == 429 else self.settings.ban_backoff_s
        stats.rate_limited += 1
        stats.blocked_until_ms = max(stats.blocked_until_ms, now + round(delay_s * 1000))
        stats.last_error = f"{what}: HTTP {status}"
        log.warning("market %s: rate limited (HTTP %d on %s), pausing this venue %.0fs", venue, status, what, delay_s)

    def _malformed(self, venue: str, error: Exception) -> None:
        stats = self.stats[venue]
        stats.malformed += 1
        stats.last_error = str(error)
        log.warning("market %s: malformed response: %s", venue, error)


def _path_limit(venue: str, path: str) -> PathLimit | None:
    """The venue's own limit on `path`, where its history specs name one."""
    specs = (BY_NAME[venue].MARKET.open_interest_history, KLINES.get(venue))
    return next((spec.limits[path] for spec in specs if spec is not None and path in spec.limits), None)


def has_measure(sample: MarketSample) -> bool:
    return any(
        value is not None
        for value in (sample.mark_price, sample.funding_rate, sample.open_interest_usd, sample.long_short_ratio)
    )


class _VenueApi:
    """The `MarketApi` a venue's collector calls: the poller's requests, bound to
    one venue and one poll (whose instant stamps the recorded responses)."""

    __slots__ = ("_poller", "_venue", "_at_ms")

    def __init__(self, poller: MarketPoller, venue: str, at_ms: int) -> None:
        self._poller = poller
        self._venue = venue
        self._at_ms = at_ms

    async def get(self, path: str, params: dict[str, str] | None) -> Any:
        return await self._poller._get(self._venue, path, params, self._at_ms)

    async def optional(self, path: str, params: dict[str, str] | None, parse: Callable[[Any], Any]) -> Any:
        return await self._poller._optional(self._venue, path, params, parse, self._at_ms)
