"""Market context over the venues' public REST APIs: funding, open interest and
the account long/short ratio of each tracked asset's USDT-margined perpetual.

Two halves:

- Pure parsers, one per response, JSON in -> `MarketSample`s (or the numbers
  that make one). Anything that is not what the venue documents raises
  `MarketDataError`; a venue's error envelope raises `VenueError` (rate-limit
  codes flagged). Entries for untracked symbols are skipped without checks.
- `MarketPoller`: one task per venue, polling every `interval_s` through one
  shared `httpx.AsyncClient`. Each venue has its own request budget (a
  sliding window under the venue's published limit) and its own back-off:
  a 429 / 418 / 403 (or a rate-limit code in the body) parks that venue until
  `Retry-After` (or a default) has passed while the others keep polling.
  5xx, timeouts and connection errors are retried with exponential back-off
  and jitter. Nothing a venue sends crashes the poller: failures are counted
  in `stats` and logged.

Endpoints per poll (N tracked assets):

| venue | requests | cost |
| --- | --- | --- |
| Binance USD-M | `premiumIndex` (all symbols), N x `openInterest`, N x `globalLongShortAccountRatio`, `fundingInfo` hourly | 10 + 2N weight |
| Bybit v5 | `tickers?category=linear` (all symbols), N x `account-ratio` | 1 + N |
| OKX v5 | `mark-price` + `open-interest` (all SWAP), N x `funding-rate` | 2 + N |

Instruments are `{ASSET}USDT` (Binance, Bybit) and `{ASSET}-USDT-SWAP` (OKX):
the majors. Scaled contracts (1000PEPEUSDT) are not mapped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from bot.core.market import MarketSample
from bot.core.models import HOUR_MS
from bot.feeds.errors import FrameError, shown

log = logging.getLogger(__name__)

BINANCE = "binance"
BYBIT = "bybit"
OKX = "okx"
VENUES = (BINANCE, BYBIT, OKX)

BINANCE_PREMIUM_INDEX_PATH = "/fapi/v1/premiumIndex"
BINANCE_FUNDING_INFO_PATH = "/fapi/v1/fundingInfo"
BINANCE_OPEN_INTEREST_PATH = "/fapi/v1/openInterest"
BINANCE_LONG_SHORT_PATH = "/futures/data/globalLongShortAccountRatio"
BYBIT_TICKERS_PATH = "/v5/market/tickers"
BYBIT_ACCOUNT_RATIO_PATH = "/v5/market/account-ratio"
OKX_FUNDING_RATE_PATH = "/api/v5/public/funding-rate"
OKX_OPEN_INTEREST_PATH = "/api/v5/public/open-interest"
OKX_MARK_PRICE_PATH = "/api/v5/public/mark-price"

# Request weights (Binance) / counts, as documented. premiumIndex without a
# symbol weighs 10; fundingInfo and the /futures/data endpoints are counted as
# 1 to stay on the safe side.
BINANCE_WEIGHTS = {
    BINANCE_PREMIUM_INDEX_PATH: 10,
    BINANCE_FUNDING_INFO_PATH: 1,
    BINANCE_OPEN_INTEREST_PATH: 1,
    BINANCE_LONG_SHORT_PATH: 1,
}
# Published limits: (units, window in ms).
VENUE_LIMITS = {
    BINANCE: (2400, 60_000),  # request weight per minute per IP
    BYBIT: (600, 5_000),  # requests per 5 s per IP
    OKX: (20, 2_000),  # requests per 2 s per IP (per endpoint; we count them together)
}
BINANCE_FUNDING_INFO_REFRESH_MS = HOUR_MS
BINANCE_DEFAULT_FUNDING_HOURS = 8.0  # symbols absent from fundingInfo settle every 8 h
BYBIT_DEFAULT_FUNDING_HOURS = 8.0
# Venue error codes in a 200 body that mean "slow down".
BYBIT_RATE_LIMIT_CODES = frozenset({10006, 10018})
OKX_RATE_LIMIT_CODES = frozenset({"50011", "50061"})
BLOCKING_STATUSES = frozenset({403, 418, 429})
MAX_RETRY_AFTER_S = 86_400.0


# -- errors -------------------------------------------------------------


class MarketDataError(FrameError):
    """A market-data response that is not what the venue documents."""


class VenueError(MarketDataError):
    """The venue answered with an error envelope (retCode / code != 0)."""

    def __init__(self, venue: str, code: object, message: object, rate_limited: bool = False) -> None:
        self.venue = venue
        self.code = code
        self.rate_limited = rate_limited
        super().__init__(f"{venue} error {shown(code)}: {shown(message)}")


# -- field checks -------------------------------------------------------


def _number(value: object, what: str) -> float:
    """A JSON number or numeric string, finite."""
    if value is True or value is False or value is None:
        raise MarketDataError(f"{what} is not a number: {shown(value)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MarketDataError(f"{what} is not a number: {shown(value)}") from None
    if not math.isfinite(number):
        raise MarketDataError(f"{what} is not finite: {shown(value)}")
    return number


def _optional_number(value: object, what: str) -> float | None:
    """Like `_number`, but a missing or empty value (venues send "") is None."""
    if value is None or value == "":
        return None
    return _number(value, what)


def _positive(value: object, what: str) -> float:
    number = _number(value, what)
    if number <= 0:
        raise MarketDataError(f"{what} must be positive: {shown(value)}")
    return number


def _not_negative(value: object, what: str) -> float:
    number = _number(value, what)
    if number < 0:
        raise MarketDataError(f"{what} must not be negative: {shown(value)}")
    return number


def _funding(value: object, what: str) -> float:
    number = _number(value, what)
    if abs(number) >= 1:  # 100 % per interval: a corrupt field, not a funding rate
        raise MarketDataError(f"{what} out of range: {shown(value)}")
    return number


def _tracked(
    entries: Iterable[object], wanted: Mapping[str, str], key: str, what: str
) -> Iterator[tuple[str, str, dict]]:
    """(asset, instrument, entry) for the entries of tracked instruments; the rest
    are skipped. A non-string instrument id is untracked, never a crash."""
    for entry in entries:
        entry = _object(entry, what)
        instrument = entry.get(key)
        asset = wanted.get(instrument) if type(instrument) is str else None
        if asset is not None:
            yield asset, instrument, entry


def _object(value: object, what: str) -> dict:
    if type(value) is not dict:
        raise MarketDataError(f"{what} is not an object: {shown(value)}")
    return value


def _list(value: object, what: str) -> list:
    if type(value) is not list:
        raise MarketDataError(f"{what} is not a list: {shown(value)}")
    return value


def _latest_entry(entries: list, time_key: str, what: str) -> dict | None:
    """The entry with the largest `time_key` (venues differ in list order)."""
    best: dict | None = None
    best_at = -1.0
    for entry in entries:
        entry = _object(entry, what)
        at = _number(entry.get(time_key), f"{what}.{time_key}")
        if at > best_at:
            best, best_at = entry, at
    return best


def binance_symbol(asset: str) -> str:
    return f"{asset}USDT"


def bybit_symbol(asset: str) -> str:
    return f"{asset}USDT"


def okx_inst_id(asset: str) -> str:
    return f"{asset}-USDT-SWAP"


# -- Binance USD-M ------------------------------------------------------


def _binance_body(body: object, what: str) -> object:
    # Errors come as {"code": -1121, "msg": "Invalid symbol."}.
    if type(body) is dict and "code" in body and "msg" in body and "symbol" not in body:
        raise VenueError(BINANCE, body.get("code"), body.get("msg"), rate_limited=body.get("code") == -1003)
    return body


def parse_binance_premium_index(
    body: object,
    assets: Iterable[str],
    at_ms: int,
    interval_hours: Mapping[str, float] | None = None,
) -> dict[str, MarketSample]:
    """`GET /fapi/v1/premiumIndex` (all symbols: a list; one symbol: an object).

    Mark price and `lastFundingRate` (the rate of the running interval) per
    tracked asset. `interval_hours` maps symbols to their funding interval
    (from fundingInfo); others settle every 8 h.
    """
    body = _binance_body(body, "premiumIndex")
    if type(body) is dict:  # asked for one symbol
        if type(body.get("symbol")) is not str:
            raise MarketDataError(f"premiumIndex object without a symbol: {shown(body)}")
        entries = [body]
    else:
        entries = _list(body, "premiumIndex")
    wanted = {binance_symbol(asset): asset for asset in assets}
    intervals = interval_hours or {}
    samples: dict[str, MarketSample] = {}
    for asset, symbol, entry in _tracked(entries, wanted, "symbol", "premiumIndex entry"):
        samples[asset] = MarketSample(
            venue=BINANCE,
            asset=asset,
            at_ms=at_ms,
            mark_price=_positive(entry.get("markPrice"), f"{symbol} markPrice"),
            funding_rate=_funding(entry.get("lastFundingRate"), f"{symbol} lastFundingRate"),
            funding_interval_hours=intervals.get(symbol, BINANCE_DEFAULT_FUNDING_HOURS),
        )
    return samples


def parse_binance_funding_info(body: object) -> dict[str, float]:
    """`GET /fapi/v1/fundingInfo`: symbol -> funding interval in hours.

    Lists only symbols whose cap, floor or interval was adjusted.
    """
    intervals: dict[str, float] = {}
    for entry in _list(_binance_body(body, "fundingInfo"), "fundingInfo"):
        entry = _object(entry, "fundingInfo entry")
        symbol = entry.get("symbol")
        if type(symbol) is not str:
            raise MarketDataError(f"fundingInfo symbol is not a string: {shown(symbol)}")
        intervals[symbol] = _positive(entry.get("fundingIntervalHours"), f"{symbol} fundingIntervalHours")
    return intervals


def parse_binance_open_interest(body: object, symbol: str) -> float:
    """`GET /fapi/v1/openInterest?symbol=`: open interest in base coin."""
    entry = _object(_binance_body(body, "openInterest"), "openInterest")
    if entry.get("symbol") != symbol:
        raise MarketDataError(f"openInterest for {shown(entry.get('symbol'))}, asked {symbol}")
    return _not_negative(entry.get("openInterest"), f"{symbol} openInterest")


def parse_binance_long_short(body: object, symbol: str) -> float | None:
    """`GET /futures/data/globalLongShortAccountRatio`: the latest ratio (None if no data)."""
    entries = _list(_binance_body(body, "globalLongShortAccountRatio"), "globalLongShortAccountRatio")
    latest = _latest_entry(entries, "timestamp", "globalLongShortAccountRatio")
    if latest is None:
        return None
    if latest.get("symbol") != symbol:
        raise MarketDataError(f"long/short ratio for {shown(latest.get('symbol'))}, asked {symbol}")
    return _not_negative(latest.get("longShortRatio"), f"{symbol} longShortRatio")


# -- Bybit v5 -----------------------------------------------------------


def _bybit_result(body: object, what: str) -> dict:
    body = _object(body, what)
    code = body.get("retCode")
    if code != 0:
        raise VenueError(BYBIT, code, body.get("retMsg"), rate_limited=code in BYBIT_RATE_LIMIT_CODES)
    return _object(body.get("result"), f"{what} result")


def parse_bybit_tickers(body: object, assets: Iterable[str], at_ms: int) -> dict[str, MarketSample]:
    """`GET /v5/market/tickers?category=linear`: mark, funding and OI value, all symbols.

    `openInterestValue` is already in USD(T); `fundingIntervalHour` is used when
    the venue sends it, else 8 h.
    """
    entries = _list(_bybit_result(body, "tickers").get("list"), "tickers list")
    wanted = {bybit_symbol(asset): asset for asset in assets}
    samples: dict[str, MarketSample] = {}
    for asset, symbol, entry in _tracked(entries, wanted, "symbol", "tickers entry"):
        funding = _optional_number(entry.get("fundingRate"), f"{symbol} fundingRate")
        if funding is not None:
            funding = _funding(funding, f"{symbol} fundingRate")
        interval = _optional_number(entry.get("fundingIntervalHour"), f"{symbol} fundingIntervalHour")
        open_interest = _optional_number(entry.get("openInterestValue"), f"{symbol} openInterestValue")
        if open_interest is not None and open_interest < 0:
            raise MarketDataError(f"{symbol} openInterestValue must not be negative: {shown(open_interest)}")
        samples[asset] = MarketSample(
            venue=BYBIT,
            asset=asset,
            at_ms=at_ms,
            mark_price=_positive(entry.get("markPrice"), f"{symbol} markPrice"),
            funding_rate=funding,
            funding_interval_hours=interval if interval and interval > 0 else BYBIT_DEFAULT_FUNDING_HOURS,
            open_interest_usd=open_interest,
        )
    return samples


def parse_bybit_account_ratio(body: object, symbol: str) -> float | None:
    """`GET /v5/market/account-ratio`: buyRatio / sellRatio of the latest period."""
    entries = _list(_bybit_result(body, "account-ratio").get("list"), "account-ratio list")
    latest = _latest_entry(entries, "timestamp", "account-ratio")
    if latest is None:
        return None
    if latest.get("symbol") != symbol:
        raise MarketDataError(f"account-ratio for {shown(latest.get('symbol'))}, asked {symbol}")
    buy = _not_negative(latest.get("buyRatio"), f"{symbol} buyRatio")
    sell = _not_negative(latest.get("sellRatio"), f"{symbol} sellRatio")
    return buy / sell if sell > 0 else None


# -- OKX v5 -------------------------------------------------------------


def _okx_data(body: object, what: str) -> list:
    body = _object(body, what)
    code = body.get("code")
    if code != "0":
        raise VenueError(OKX, code, body.get("msg"), rate_limited=code in OKX_RATE_LIMIT_CODES)
    return _list(body.get("data"), f"{what} data")


def parse_okx_mark_price(body: object, assets: Iterable[str]) -> dict[str, float]:
    """`GET /api/v5/public/mark-price?instType=SWAP`: asset -> mark price."""
    wanted = {okx_inst_id(asset): asset for asset in assets}
    prices: dict[str, float] = {}
    for asset, inst_id, entry in _tracked(_okx_data(body, "mark-price"), wanted, "instId", "mark-price entry"):
        prices[asset] = _positive(entry.get("markPx"), f"{inst_id} markPx")
    return prices


def parse_okx_open_interest(
    body: object, assets: Iterable[str], mark_prices: Mapping[str, float] | None = None
) -> dict[str, float]:
    """`GET /api/v5/public/open-interest?instType=SWAP`: asset -> open interest in USD.

    `oiUsd` where the venue gives it, else `oiCcy` (= oi x ctVal, in base coin
    for linear swaps) x the mark price; assets with neither are left out.
    """
    wanted = {okx_inst_id(asset): asset for asset in assets}
    prices = mark_prices or {}
    values: dict[str, float] = {}
    entries = _okx_data(body, "open-interest")
    for asset, inst_id, entry in _tracked(entries, wanted, "instId", "open-interest entry"):
        usd = _optional_number(entry.get("oiUsd"), f"{inst_id} oiUsd")
        if usd is None:
            in_base = _optional_number(entry.get("oiCcy"), f"{inst_id} oiCcy")
            if in_base is None or asset not in prices:
                continue
            usd = in_base * prices[asset]
        if usd < 0:
            raise MarketDataError(f"{inst_id} open interest must not be negative: {shown(usd)}")
        values[asset] = usd
    return values


def parse_okx_funding_rate(body: object, inst_id: str) -> tuple[float, float | None]:
    """`GET /api/v5/public/funding-rate?instId=`: (rate, interval in hours or None).

    `fundingTime` is the coming settlement and `nextFundingTime` the one after:
    their distance is the interval.
    """
    entries = _okx_data(body, "funding-rate")
    for entry in entries:
        entry = _object(entry, "funding-rate entry")
        if entry.get("instId") != inst_id:
            continue
        rate = _funding(entry.get("fundingRate"), f"{inst_id} fundingRate")
        coming = _optional_number(entry.get("fundingTime"), f"{inst_id} fundingTime")
        after = _optional_number(entry.get("nextFundingTime"), f"{inst_id} nextFundingTime")
        interval = None
        if coming is not None and after is not None and after > coming:
            interval = (after - coming) / HOUR_MS
        return rate, interval
    raise MarketDataError(f"funding-rate has no entry for {inst_id}")


# -- request budget -----------------------------------------------------


class RequestBudget:
    """At most `limit` units spent in any sliding window of `window_ms`. Pure."""

    def __init__(self, limit: float, window_ms: int) -> None:
        if limit <= 0 or window_ms <= 0:
            raise ValueError("a budget needs a positive limit and window")
        self.limit = limit
        self.window_ms = window_ms
        self._spent: deque[tuple[int, float]] = deque()
        self._used = 0.0

    def _expire(self, now_ms: int) -> None:
        while self._spent and self._spent[0][0] <= now_ms - self.window_ms:
            self._used -= self._spent.popleft()[1]

    def used(self, now_ms: int) -> float:
        self._expire(now_ms)
        return self._used

    def wait_ms(self, cost: float, now_ms: int) -> int:
        """0 when `cost` fits now, else the milliseconds until it does."""
        cost = min(cost, self.limit)
        self._expire(now_ms)
        excess = self._used + cost - self.limit
        if excess <= 1e-9:
            return 0
        for at_ms, spent in self._spent:
            excess -= spent
            if excess <= 1e-9:
                return max(1, at_ms + self.window_ms - now_ms)
        return self.window_ms  # not reached: cost <= limit

    def spend(self, cost: float, now_ms: int) -> None:
        self._expire(now_ms)
        self._spent.append((now_ms, cost))
        self._used += cost


def retry_after_s(value: str | None, now_ms: int) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_ms / 1000
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


# -- poller -------------------------------------------------------------


@dataclass(frozen=True)
class MarketPollerSettings:
    """What the poller needs from `Config` (feeds.*.rest_url + [market])."""

    binance_url: str = "https://fapi.binance.com"
    bybit_url: str = "https://api.bybit.com"
    okx_url: str = "https://www.okx.com"
    enabled: bool = True
    venues: tuple[str, ...] = VENUES
    assets: tuple[str, ...] = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB")
    interval_s: float = 60.0
    request_timeout_s: float = 10.0
    retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    rate_limit_backoff_s: float = 60.0
    ban_backoff_s: float = 600.0
    budget_fraction: float = 0.5

    @classmethod
    def from_config(cls, config: Any) -> MarketPollerSettings:
        """From a `bot.config.Config` (duck-typed: feeds may not import config)."""
        if isinstance(config, MarketPollerSettings):
            return config
        market, feeds = config.market, config.feeds
        return cls(
            binance_url=feeds.binance.usdm_rest_url,
            bybit_url=feeds.bybit.rest_url,
            okx_url=feeds.okx.rest_url,
            enabled=market.enabled,
            venues=tuple(market.venue_list),
            assets=tuple(market.asset_list),
            interval_s=market.interval_s,
            request_timeout_s=market.request_timeout_s,
            retries=market.retries,
            backoff_base_s=market.backoff_base_s,
            backoff_max_s=market.backoff_max_s,
            rate_limit_backoff_s=market.rate_limit_backoff_s,
            ban_backoff_s=market.ban_backoff_s,
            budget_fraction=market.budget_fraction,
        )

    def base_url(self, venue: str) -> str:
        url = {BINANCE: self.binance_url, BYBIT: self.bybit_url, OKX: self.okx_url}[venue]
        return url.rstrip("/")


def make_client(config: Any) -> httpx.AsyncClient:
    """The one AsyncClient the poller shares across venues, with timeouts."""
    settings = MarketPollerSettings.from_config(config)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.request_timeout_s),
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
    sink_errors: int = 0
    blocked_until_ms: int = 0
    last_success_ms: int | None = None
    last_error: str | None = None


class _Blocked(Exception):
    """The venue told us to stop for a while: abandon the rest of this poll."""


class _RequestFailed(Exception):
    """One request failed for good (retries exhausted, or a client error).

    `venue_down`: 5xx / timeouts / connection errors outlasted the retries, so
    the rest of the poll is abandoned rather than retried request by request.
    """

    def __init__(self, message: str, venue_down: bool = False) -> None:
        super().__init__(message)
        self.venue_down = venue_down


Sink = Callable[[list[MarketSample]], Awaitable[object]]


class MarketPoller:
    """Polls funding, open interest and long/short ratios of every venue.

    `config` is a `bot.config.Config` (or `MarketPollerSettings`); `sink`
    receives each venue's samples of one poll (e.g. `MarketStore.add_samples`);
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
    ) -> None:
        self.settings = MarketPollerSettings.from_config(config)
        self._client = client
        self._sink = sink
        self._now_ms = now_ms
        self._sleep = sleep
        self._rng = rng
        self._timeout = httpx.Timeout(self.settings.request_timeout_s)
        self.stats: dict[str, VenueStats] = {venue: VenueStats() for venue in self.settings.venues}
        self._budgets: dict[str, RequestBudget] = {}
        for venue in self.settings.venues:
            limit, window_ms = VENUE_LIMITS[venue]
            given = (budgets or {}).get(venue)
            self._budgets[venue] = given or RequestBudget(max(1.0, limit * self.settings.budget_fraction), window_ms)
        self._binance_intervals: dict[str, float] = {}
        self._binance_intervals_at_ms: int | None = None

    # -- loop -------------------------------------------------------------

    async def run(self) -> None:
        """Poll every venue until cancelled; one task per venue."""
        if not self.settings.enabled or not self.settings.venues or not self.settings.assets:
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
        collect = {BINANCE: self._collect_binance, BYBIT: self._collect_bybit, OKX: self._collect_okx}[venue]
        try:
            await collect(at_ms, samples)
        except asyncio.CancelledError:
            raise
        except _Blocked:
            pass  # counted and logged where it happened
        except _RequestFailed as error:
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
        result = [sample for sample in samples.values() if _has_measure(sample)]
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

    # -- venues ----------------------------------------------------------

    async def _collect_binance(self, at_ms: int, samples: dict[str, MarketSample]) -> None:
        assets = self.settings.assets
        refresh_due = (
            self._binance_intervals_at_ms is None
            or at_ms - self._binance_intervals_at_ms >= BINANCE_FUNDING_INFO_REFRESH_MS
        )
        if refresh_due:
            self._binance_intervals_at_ms = at_ms  # also on failure: retry in an hour, not every poll
            try:
                intervals = await self._optional(
                    BINANCE, BINANCE_FUNDING_INFO_PATH, None, parse_binance_funding_info
                )
            except (_Blocked, _RequestFailed):
                self._binance_intervals_at_ms = None  # the venue is unreachable: ask again next poll
                raise
            if intervals is not None:
                self._binance_intervals = intervals
        body = await self._get(BINANCE, BINANCE_PREMIUM_INDEX_PATH, None)
        samples.update(parse_binance_premium_index(body, assets, at_ms, self._binance_intervals))
        for asset in assets:
            sample = samples.get(asset)
            if sample is None:
                continue
            symbol = binance_symbol(asset)
            in_base = await self._optional(
                BINANCE,
                BINANCE_OPEN_INTEREST_PATH,
                {"symbol": symbol},
                lambda body, s=symbol: parse_binance_open_interest(body, s),
            )
            if in_base is not None and sample.mark_price is not None:
                sample = samples[asset] = replace(sample, open_interest_usd=in_base * sample.mark_price)
            ratio = await self._optional(
                BINANCE,
                BINANCE_LONG_SHORT_PATH,
                {"symbol": symbol, "period": "5m", "limit": "1"},
                lambda body, s=symbol: parse_binance_long_short(body, s),
            )
            if ratio is not None:
                samples[asset] = replace(sample, long_short_ratio=ratio)

    async def _collect_bybit(self, at_ms: int, samples: dict[str, MarketSample]) -> None:
        body = await self._get(BYBIT, BYBIT_TICKERS_PATH, {"category": "linear"})
        samples.update(parse_bybit_tickers(body, self.settings.assets, at_ms))
        for asset in self.settings.assets:
            if asset not in samples:
                continue
            symbol = bybit_symbol(asset)
            ratio = await self._optional(
                BYBIT,
                BYBIT_ACCOUNT_RATIO_PATH,
                {"category": "linear", "symbol": symbol, "period": "5min", "limit": "1"},
                lambda body, s=symbol: parse_bybit_account_ratio(body, s),
            )
            if ratio is not None:
                samples[asset] = replace(samples[asset], long_short_ratio=ratio)

    async def _collect_okx(self, at_ms: int, samples: dict[str, MarketSample]) -> None:
        assets = self.settings.assets
        prices = await self._optional(
            OKX, OKX_MARK_PRICE_PATH, {"instType": "SWAP"}, lambda body: parse_okx_mark_price(body, assets)
        ) or {}
        for asset, price in prices.items():
            samples[asset] = MarketSample(venue=OKX, asset=asset, at_ms=at_ms, mark_price=price)
        open_interest = await self._optional(
            OKX,
            OKX_OPEN_INTEREST_PATH,
            {"instType": "SWAP"},
            lambda body: parse_okx_open_interest(body, assets, prices),
        ) or {}
        for asset, usd in open_interest.items():
            base = samples.get(asset) or MarketSample(venue=OKX, asset=asset, at_ms=at_ms)
            samples[asset] = replace(base, open_interest_usd=usd)
        for asset in assets:
            inst_id = okx_inst_id(asset)
            funding = await self._optional(
                OKX,
                OKX_FUNDING_RATE_PATH,
                {"instId": inst_id},
                lambda body, i=inst_id: parse_okx_funding_rate(body, i),
            )
            if funding is not None:
                rate, interval = funding
                base = samples.get(asset) or MarketSample(venue=OKX, asset=asset, at_ms=at_ms)
                samples[asset] = replace(base, funding_rate=rate, funding_interval_hours=interval or 8.0)

    # -- requests --------------------------------------------------------

    async def _optional(self, venue: str, path: str, params: dict | None, parse: Callable[[Any], Any]) -> Any:
        """Fetch and parse one secondary measure; None (counted, logged) when that fails.

        A rate-limit signal or a venue that is down still aborts the whole poll.
        """
        try:
            return parse(await self._get(venue, path, params))
        except _RequestFailed as error:
            if error.venue_down:
                raise
            self.stats[venue].last_error = str(error)
            return None
        except VenueError as error:
            if error.rate_limited:
                self._block(venue, 429, None, str(error))
                raise _Blocked from None
            self._malformed(venue, error)
            return None
        except MarketDataError as error:
            self._malformed(venue, error)
            return None

    async def _get(self, venue: str, path: str, params: dict | None) -> Any:
        """GET base_url + path as JSON, within the venue's budget, with retries."""
        stats = self.stats[venue]
        url = self.settings.base_url(venue) + path
        cost = BINANCE_WEIGHTS.get(path, 1) if venue == BINANCE else 1
        attempt = 0
        while True:
            if stats.blocked_until_ms > self._now_ms():
                raise _Blocked
            await self._take_budget(venue, cost)
            stats.requests += 1
            try:
                response = await self._client.get(url, params=params, timeout=self._timeout)
            except httpx.TransportError as error:  # timeouts, refused/reset connections
                problem = f"{path}: {type(error).__name__}"
            except httpx.HTTPError as error:
                stats.failures += 1
                raise _RequestFailed(f"{path}: {type(error).__name__}") from None
            else:
                status = response.status_code
                if status in BLOCKING_STATUSES:
                    self._block(venue, status, response.headers.get("Retry-After"), path)
                    raise _Blocked
                if status < 400:
                    return self._json(venue, path, response)
                if status < 500:
                    stats.failures += 1
                    error = f"{path}: HTTP {status} {shown(response.text)}"
                    log.warning("market %s: %s", venue, error)
                    raise _RequestFailed(error)
                problem = f"{path}: HTTP {status}"
            if attempt >= self.settings.retries:
                stats.failures += 1
                log.warning("market %s: %s, giving up after %d attempts", venue, problem, attempt + 1)
                raise _RequestFailed(problem, venue_down=True)
            delay = self._backoff_s(attempt)
            attempt += 1
            stats.retries += 1
            log.info("market %s: %s, retry %d in %.1fs", venue, problem, attempt, delay)
            await self._sleep(delay)

    def _json(self, venue: str, path: str, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise MarketDataError(f"{path}: not JSON: {shown(response.content[:60])}") from None

    async def _take_budget(self, venue: str, cost: float) -> None:
        budget = self._budgets[venue]
        while True:
            now = self._now_ms()
            wait_ms = budget.wait_ms(cost, now)
            if wait_ms == 0:
                budget.spend(cost, now)
                return
            await self._sleep(wait_ms / 1000)

    def _backoff_s(self, attempt: int) -> float:
        """Exponential, capped, with jitter over the upper half (never ~0)."""
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2**attempt)
        return ceiling * (0.5 + 0.5 * self._rng())

    def _block(self, venue: str, status: int, retry_after: str | None, what: str) -> None:
        stats = self.stats[venue]
        now = self._now_ms()
        delay_s = retry_after_s(retry_after, now)
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


def _has_measure(sample: MarketSample) -> bool:
    return any(
        value is not None
        for value in (sample.mark_price, sample.funding_rate, sample.open_interest_usd, sample.long_short_ratio)
    )
