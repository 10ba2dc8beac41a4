"""Per venue-stream specifics for the runner: URLs, subscriptions, heartbeats,
and the REST metadata the parsers need.

| stream | subscribe | heartbeat | metadata |
| --- | --- | --- | --- |
| binance usdm | none (the URL is the stream) | answer server pings (websockets does) | none |
| binance coinm | none | idem | contractSize from `GET {coinm_rest_url}/dapi/v1/exchangeInfo` |
| bybit linear / inverse | `allLiquidation.{symbol}` for every trading symbol, at most 10 args a message | `{"op":"ping"}` every 20 s | symbols from `GET {rest_url}/v5/market/instruments-info` (cursor paging), re-read daily; new symbols are subscribed on the live connection |
| okx public | `liquidation-orders` for instType SWAP and FUTURES | text `ping` after 25 s without a frame | ctVal from `GET {rest_url}/api/v5/public/instruments?instType=SWAP` and `FUTURES`, re-read periodically and (rate-limited) when a frame names an unknown instrument |

Bybit's args limits (https://bybit-exchange.github.io/docs/v5/ws/connect,
"Public channel - Args limits"): the serialized "args" of one public
connection may not exceed 21,000 characters; spot takes at most 10 args per
subscribe request, and derivatives have "no args limit for now". We send at
most 10 args per message on every category, which satisfies both, and warn
when a connection's args approach the 21,000-character cap.

Config objects are read by attribute (Protocols below) so this layer does not
import `bot.config`. REST goes through one shared `httpx.AsyncClient`; every
response a parser needs is also handed to the sink (`on_rest`) so a recording
carries it, under the same path `bot.feeds.instruments.apply_rest` replays.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Iterable, Sequence
from typing import Protocol

import httpx

from bot.feeds.errors import FrameError
from bot.feeds.instruments import (
    BINANCE_COINM_EXCHANGE_INFO_PATH,
    EMPTY_BOOK,
    OKX_INSTRUMENTS_PATH,
    ContractBook,
    apply_rest,
)
from bot.feeds.runner import FeedSink, Heartbeat, NowMs, RunnerTuning, wall_clock_ms

log = logging.getLogger(__name__)

BYBIT_INSTRUMENTS_PATH = "/v5/market/instruments-info"
BYBIT_TOPIC = "allLiquidation.{symbol}"
BYBIT_MAX_ARGS_PER_MESSAGE = 10
BYBIT_MAX_ARGS_CHARS = 21_000
BYBIT_PAGE_LIMIT = 1000
BYBIT_MAX_PAGES = 100
OKX_CHANNEL = "liquidation-orders"
OKX_INST_TYPES = ("SWAP", "FUTURES")

ALL_STREAMS: tuple[tuple[str, str], ...] = (
    ("binance", "usdm"),
    ("binance", "coinm"),
    ("bybit", "linear"),
    ("bybit", "inverse"),
    ("okx", "public"),
)


class MetadataError(Exception):
    """A metadata REST call failed (network, HTTP status, unexpected body)."""


# -- config, read by attribute -----------------------------------------------


class BinanceSettings(Protocol):
    enabled: bool
    usdm_ws_url: str
    coinm_ws_url: str
    coinm_rest_url: str


class BybitSettings(Protocol):
    enabled: bool
    linear_ws_url: str
    inverse_ws_url: str
    rest_url: str


class OkxSettings(Protocol):
    enabled: bool
    ws_url: str
    rest_url: str


class FeedsSettings(Protocol):
    """What `bot.config.FeedsConfig` provides."""

    binance: BinanceSettings
    bybit: BybitSettings
    okx: OkxSettings


def stream_urls(feeds: FeedsSettings) -> dict[tuple[str, str], str]:
    """Websocket URL of every (venue, stream), enabled or not."""
    return {
        ("binance", "usdm"): feeds.binance.usdm_ws_url,
        ("binance", "coinm"): feeds.binance.coinm_ws_url,
        ("bybit", "linear"): feeds.bybit.linear_ws_url,
        ("bybit", "inverse"): feeds.bybit.inverse_ws_url,
        ("okx", "public"): feeds.okx.ws_url,
    }


def disabled_streams(feeds: FeedsSettings) -> list[tuple[str, str]]:
    """The (venue, stream) pairs whose venue is disabled in the config."""
    enabled = {
        "binance": feeds.binance.enabled,
        "bybit": feeds.bybit.enabled,
        "okx": feeds.okx.enabled,
    }
    return [key for key in ALL_STREAMS if not enabled[key[0]]]


# -- pure helpers ---------------------------------------------------------------


def _compact(message: object) -> str:
    return json.dumps(message, separators=(",", ":"))


def bybit_subscribe_messages(
    symbols: Iterable[str], per_message: int = BYBIT_MAX_ARGS_PER_MESSAGE
) -> list[str]:
    """`{"op":"subscribe","args":[...]}` messages for `allLiquidation.{symbol}`,
    each with at most `per_message` args, in the given order."""
    topics = [BYBIT_TOPIC.format(symbol=symbol) for symbol in symbols]
    return [
        _compact({"op": "subscribe", "args": topics[start : start + per_message]})
        for start in range(0, len(topics), per_message)
    ]


def bybit_args_chars(symbols: Iterable[str]) -> int:
    """How long the JSON "args" array of all these topics would be."""
    return len(_compact([BYBIT_TOPIC.format(symbol=symbol) for symbol in symbols]))


def okx_subscribe_message() -> str:
    return _compact(
        {"op": "subscribe", "args": [{"channel": OKX_CHANNEL, "instType": t} for t in OKX_INST_TYPES]}
    )


BYBIT_HEARTBEAT_MESSAGE = _compact({"op": "ping"})
OKX_HEARTBEAT_MESSAGE = "ping"


def bybit_symbols_page(body: object) -> tuple[list[str], str | None]:
    """The trading symbols of one instruments-info page, and the next cursor (None: last page)."""
    if type(body) is not dict:
        raise MetadataError("bybit instruments-info: body is not an object")
    if body.get("retCode") != 0:
        raise MetadataError(
            f"bybit instruments-info: retCode {body.get('retCode')!r}: {str(body.get('retMsg'))[:80]}"
        )
    result = body.get("result")
    entries = result.get("list") if type(result) is dict else None
    if type(entries) is not list:
        raise MetadataError("bybit instruments-info: no result.list")
    symbols = [
        entry["symbol"]
        for entry in entries
        if type(entry) is dict and type(entry.get("symbol")) is str and entry.get("status") == "Trading"
    ]
    cursor = result.get("nextPageCursor")
    return symbols, (cursor if type(cursor) is str and cursor else None)


async def get_json(http: httpx.AsyncClient, url: str, params: dict[str, str] | None, timeout_s: float) -> object:
    """GET a JSON body; MetadataError for anything but a 200 with JSON."""
    try:
        response = await http.get(url, params=params, timeout=timeout_s)
    except httpx.HTTPError as error:
        raise MetadataError(f"GET {url}: {type(error).__name__}: {error}") from None
    if response.status_code != 200:
        raise MetadataError(f"GET {url}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise MetadataError(f"GET {url}: body is not JSON") from None


# -- stream sources -------------------------------------------------------------


class VenueStream:
    """A stream that needs no metadata and sends nothing (Binance USD-M)."""

    heartbeat: Heartbeat | None = None
    max_connection_s: float | None = None
    refresh_s: float | None = None

    def __init__(self, venue: str, stream: str, url: str) -> None:
        self.venue = venue
        self.stream = stream
        self.url = url

    def contracts(self) -> ContractBook | None:
        return None

    async def prepare(self) -> None:
        pass

    def subscribe_messages(self) -> list[str]:
        return []

    async def refresh(self) -> list[str]:
        return []

    def unknown_instruments(self, instruments: Sequence[str]) -> Awaitable[None] | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.venue}/{self.stream} {self.url})"


class ContractsStream(VenueStream):
    """A stream priced with contract sizes from REST (OKX, Binance COIN-M).

    `requests` are (url, params, recorded path) triples; each body is applied
    with `apply_rest(book, path, body)`, the function a replay uses.
    """

    def __init__(
        self,
        venue: str,
        stream: str,
        url: str,
        requests: Sequence[tuple[str, dict[str, str] | None, str]],
        http: httpx.AsyncClient,
        sink: FeedSink,
        tuning: RunnerTuning,
        now_ms: NowMs,
        subscribe: Sequence[str] = (),
    ) -> None:
        super().__init__(venue, stream, url)
        self._subscribe = list(subscribe)
        self._requests = tuple(requests)
        self._http = http
        self._sink = sink
        self._tuning = tuning
        self._now_ms = now_ms
        self.refresh_s = tuning.contracts_refresh_s
        self._book: ContractBook | None = None
        self._loaded_ms: int | None = None
        self._loading: asyncio.Lock = asyncio.Lock()
        self._last_unknown_refresh_ms: int | None = None
        self._unknown_refresh_running = False
        # Instruments a refresh did not resolve: not worth another refresh for a while.
        self._unresolved: dict[str, int] = {}
        self.refreshes = 0

    def contracts(self) -> ContractBook | None:
        return self._book

    def subscribe_messages(self) -> list[str]:
        return list(self._subscribe)

    async def load(self) -> ContractBook:
        """Fetch every metadata request and merge it over the current book."""
        async with self._loading:
            book = self._book or EMPTY_BOOK
            fetched: list[tuple[int, str, object]] = []
            for url, params, path in self._requests:
                body = await get_json(self._http, url, params, self._tuning.rest_timeout_s)
                try:
                    book = apply_rest(book, path, body)
                except FrameError as error:
                    raise MetadataError(f"{self.venue} {path}: {error}") from None
                fetched.append((self._now_ms(), path, body))
            self._book = book
            self._loaded_ms = self._now_ms()
            self.refreshes += 1
            for at_ms, path, body in fetched:
                await self._sink.on_rest(self.venue, at_ms, path, body)
            log.info("%s/%s: %d contract sizes loaded", self.venue, self.stream, len(book))
            return book

    def _stale(self) -> bool:
        return self._loaded_ms is None or self._now_ms() - self._loaded_ms >= self.refresh_s * 1000

    async def prepare(self) -> None:
        if not self._stale():
            return
        try:
            await self.load()
        except MetadataError as error:
            if self._book is None:
                raise
            log.warning("%s/%s: keeping the contract sizes we have: %s", self.venue, self.stream, error)

    async def refresh(self) -> list[str]:
        await self.load()
        return []

    def unknown_instruments(self, instruments: Sequence[str]) -> Awaitable[None] | None:
        now = self._now_ms()
        quiet_ms = self._tuning.contracts_refresh_s * 1000
        fresh = [i for i in instruments if now - self._unresolved.get(i, -quiet_ms) >= quiet_ms]
        if not fresh or self._unknown_refresh_running:
            return None
        last = self._last_unknown_refresh_ms
        if last is not None and now - last < self._tuning.unknown_refresh_min_s * 1000:
            return None
        self._last_unknown_refresh_ms = now
        self._unknown_refresh_running = True
        return self._refresh_for(tuple(fresh))

    async def _refresh_for(self, instruments: tuple[str, ...]) -> None:
        try:
            book = await self.load()
        finally:
            self._unknown_refresh_running = False
        missing = [i for i in instruments if book.get(i) is None]
        now = self._now_ms()
        for instrument in missing:
            self._unresolved[instrument] = now
        if missing:
            log.warning(
                "%s/%s: still no contract size for %s after a refresh; their liquidations are counted, not stored",
                self.venue, self.stream, ", ".join(missing[:5]),
            )


class BybitStream(VenueStream):
    """`allLiquidation.{symbol}` for every trading symbol of one category."""

    def __init__(
        self,
        category: str,
        url: str,
        rest_url: str,
        http: httpx.AsyncClient,
        tuning: RunnerTuning,
        now_ms: NowMs,
    ) -> None:
        super().__init__("bybit", category, url)
        self.heartbeat = Heartbeat(BYBIT_HEARTBEAT_MESSAGE, tuning.ping_interval_s)
        self.refresh_s = tuning.symbols_refresh_s
        self._rest_url = rest_url.rstrip("/")
        self._http = http
        self._tuning = tuning
        self._now_ms = now_ms
        self.symbols: list[str] | None = None
        self._loaded_ms: int | None = None
        self._subscribed: set[str] = set()

    async def fetch_symbols(self) -> list[str]:
        """Every trading symbol of the category, following nextPageCursor."""
        symbols: list[str] = []
        cursor: str | None = None
        seen_cursors: set[str] = set()
        for _ in range(BYBIT_MAX_PAGES):
            params = {"category": self.stream, "limit": str(BYBIT_PAGE_LIMIT)}
            if cursor is not None:
                params["cursor"] = cursor
            body = await get_json(
                self._http, self._rest_url + BYBIT_INSTRUMENTS_PATH, params, self._tuning.rest_timeout_s
            )
            page, cursor = bybit_symbols_page(body)
            symbols += page
            if cursor is None or cursor in seen_cursors:
                break
            seen_cursors.add(cursor)
        unique = list(dict.fromkeys(symbols))
        if not unique:
            raise MetadataError(f"bybit instruments-info: no trading {self.stream} symbols")
        chars = bybit_args_chars(unique)
        if chars > BYBIT_MAX_ARGS_CHARS * 0.9:
            log.warning(
                "bybit/%s: %d symbols make %d characters of args, near Bybit's %d per connection",
                self.stream, len(unique), chars, BYBIT_MAX_ARGS_CHARS,
            )
        self.symbols = unique
        self._loaded_ms = self._now_ms()
        return unique

    async def prepare(self) -> None:
        if self._loaded_ms is not None and self._now_ms() - self._loaded_ms < self.refresh_s * 1000:
            return
        try:
            await self.fetch_symbols()
        except MetadataError as error:
            if self.symbols is None:
                raise
            log.warning("bybit/%s: keeping the symbol list we have: %s", self.stream, error)

    def subscribe_messages(self) -> list[str]:
        symbols = self.symbols or []
        self._subscribed = set(symbols)
        return bybit_subscribe_messages(symbols)

    async def refresh(self) -> list[str]:
        symbols = await self.fetch_symbols()
        new = [symbol for symbol in symbols if symbol not in self._subscribed]
        self._subscribed.update(new)
        if new:
            log.info("bybit/%s: %d new symbol(s): %s", self.stream, len(new), ", ".join(new[:10]))
        return bybit_subscribe_messages(new)


def build_sources(
    feeds: FeedsSettings,
    http: httpx.AsyncClient,
    sink: FeedSink,
    *,
    tuning: object | None = None,
    now_ms: NowMs = wall_clock_ms,
) -> list[VenueStream]:
    """A source per stream of every enabled venue, in ALL_STREAMS order."""
    tuning = RunnerTuning.of(tuning if tuning is not None else getattr(feeds, "runner", None))
    sources: list[VenueStream] = []
    if feeds.binance.enabled:
        usdm = VenueStream("binance", "usdm", feeds.binance.usdm_ws_url)
        usdm.max_connection_s = tuning.binance_reconnect_after_s
        coinm = ContractsStream(
            "binance",
            "coinm",
            feeds.binance.coinm_ws_url,
            [(feeds.binance.coinm_rest_url.rstrip("/") + BINANCE_COINM_EXCHANGE_INFO_PATH, None,
              BINANCE_COINM_EXCHANGE_INFO_PATH)],
            http, sink, tuning, now_ms,
        )
        coinm.max_connection_s = tuning.binance_reconnect_after_s
        sources += [usdm, coinm]
    if feeds.bybit.enabled:
        for category, url in (("linear", feeds.bybit.linear_ws_url), ("inverse", feeds.bybit.inverse_ws_url)):
            sources.append(BybitStream(category, url, feeds.bybit.rest_url, http, tuning, now_ms))
    if feeds.okx.enabled:
        base = feeds.okx.rest_url.rstrip("/") + OKX_INSTRUMENTS_PATH
        okx = ContractsStream(
            "okx",
            "public",
            feeds.okx.ws_url,
            [(base, {"instType": t}, f"{OKX_INSTRUMENTS_PATH}?instType={t}") for t in OKX_INST_TYPES],
            http, sink, tuning, now_ms,
            subscribe=[okx_subscribe_message()],
        )
        okx.heartbeat = Heartbeat(OKX_HEARTBEAT_MESSAGE, tuning.okx_idle_ping_s, idle_only=True)
        sources.append(okx)
    return sources
