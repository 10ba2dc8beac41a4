"""The stream sources the runner connects with, built from the venue registry.

`build_sources` makes one source per stream of every enabled venue, from its
`StreamSpec` (`bot.feeds.venues`): a stream that needs nothing (`VenueStream`),
one priced with contract sizes from REST (`ContractsStream`), or one
subscribed per symbol, the symbols paged from REST (`SymbolsStream`).

Config objects are read by attribute (`[feeds.<venue>]` keys named by the
venue modules) so this layer does not import `bot.config`. REST goes through
one shared `httpx.AsyncClient`; every response a parser needs is also handed
to the sink (`on_rest`) so a recording carries it, under the same path
`bot.feeds.venues.apply_rest` replays.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from bot.feeds.contract import Heartbeat, MetadataRequest
from bot.feeds.errors import FrameError, MetadataError
from bot.feeds.instruments import EMPTY_BOOK, ContractBook
from bot.feeds.session import NowMs
from bot.feeds.settings import RunnerTuning
from bot.feeds.sinks import FeedSink
from bot.plumbing.clock import wall_clock_ms
from bot.feeds.venues import ALL_STREAMS, VENUES, apply_rest, stream_spec

log = logging.getLogger(__name__)

# What `bot.config.FeedsConfig` provides: one section per venue (attribute =
# VENUE) with `enabled` and the modules' URL keys, and `runner`.
FeedsSettings = Any


def stream_urls(feeds: FeedsSettings) -> dict[tuple[str, str], str]:
    """Websocket URL of every (venue, stream), enabled or not."""
    return {
        (module.VENUE, spec.name): getattr(getattr(feeds, module.VENUE), spec.url_key)
        for module in VENUES
        for spec in module.STREAMS
    }


def disabled_streams(feeds: FeedsSettings) -> list[tuple[str, str]]:
    """The (venue, stream) pairs whose venue is disabled in the config."""
    return [key for key in ALL_STREAMS if not getattr(feeds, key[0]).enabled]


def enabled_streams(feeds: FeedsSettings) -> list[tuple[str, str]]:
    """The (venue, stream) pairs whose venue is enabled in the config."""
    return [key for key in ALL_STREAMS if getattr(feeds, key[0]).enabled]


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


class VenueStream:
    """A stream that needs no metadata: its URL, and the fixed messages (if any)
    that subscribe it (Binance USD-M sends none)."""

    heartbeat: Heartbeat | None = None
    max_connection_s: float | None = None
    refresh_s: float | None = None
    unwrap: Callable[[str | bytes], str | bytes] | None = None
    answer: Callable[[object], str | None] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    stamp: Callable[[str, int], str] | None = None

    def __init__(self, venue: str, stream: str, url: str, subscribe: Sequence[str] = ()) -> None:
        self.venue = venue
        self.stream = stream
        self.url = url
        self._subscribe = list(subscribe)

    def contracts(self) -> ContractBook | None:
        return None

    async def prepare(self) -> None:
        pass

    def subscribe_messages(self) -> list[str]:
        return list(self._subscribe)

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
        super().__init__(venue, stream, url, subscribe)
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

    async def load(self) -> ContractBook:
        """Fetch every metadata request and merge it over the current book."""
        async with self._loading:
            book = self._book or EMPTY_BOOK
            fetched: list[tuple[int, str, object]] = []
            for url, params, path in self._requests:
                body = await get_json(self._http, url, params, self._tuning.rest_timeout_s)
                try:
                    book = apply_rest(book, path, body, self.venue)
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


class SymbolsStream(VenueStream):
    """A stream subscribed per symbol (Bybit's `allLiquidation.{symbol}`): the
    symbols come from the paged REST listing of the stream's `SymbolPaging`, are
    re-read every `symbols_refresh_s`, and new ones join the live connection.

    When the listing also prices the frames (its path is one of the stream's
    `metadata` requests, as Kraken's instruments are), each page body is applied
    to the contract book with `apply_rest` and handed to the sink, like a
    `ContractsStream`'s: one request gives both, and a recording replays it.
    """

    def __init__(
        self,
        venue: str,
        stream: str,
        url: str,
        rest_url: str,
        http: httpx.AsyncClient,
        tuning: RunnerTuning,
        now_ms: NowMs,
        sink: FeedSink | None = None,
    ) -> None:
        super().__init__(venue, stream, url)
        self._spec = stream_spec(venue, stream)
        if self._spec.symbols is None:
            raise ValueError(f"{venue}/{stream} is not subscribed per symbol")
        self._paging = self._spec.symbols
        self._prices = self._paging.path in {request.path for request in self._spec.metadata}
        self._sink = sink
        self._book: ContractBook | None = None
        self.heartbeat = self._spec.heartbeat(tuning) if self._spec.heartbeat else None
        self.refresh_s = tuning.symbols_refresh_s
        self._rest_url = rest_url.rstrip("/")
        self._http = http
        self._tuning = tuning
        self._now_ms = now_ms
        self.symbols: list[str] | None = None
        self._loaded_ms: int | None = None
        self._subscribed: set[str] = set()

    async def fetch_symbols(self) -> list[str]:
        """Every symbol of the stream, following the cursor."""
        paging = self._paging
        symbols: list[str] = []
        cursor: str | None = None
        seen_cursors: set[str] = set()
        book = self._book or EMPTY_BOOK
        priced: list[tuple[int, str, object]] = []  # bodies that price frames, for the sink
        for _ in range(paging.max_pages):
            params = paging.params(self.stream, cursor)
            body = await get_json(self._http, self._rest_url + paging.path, params, self._tuning.rest_timeout_s)
            try:
                page, cursor = paging.page(body)
                if self._prices:
                    path = MetadataRequest(paging.path, tuple(params.items())).recorded_path
                    book = apply_rest(book, path, body, self.venue)
                    priced.append((self._now_ms(), path, body))
            except FrameError as error:
                raise MetadataError(str(error)) from None
            symbols += page
            if cursor is None or cursor in seen_cursors:
                break
            seen_cursors.add(cursor)
        unique = list(dict.fromkeys(symbols))
        if not unique:
            raise MetadataError(f"{self.venue} {paging.path}: no {self.stream} symbols")
        warning = paging.warning(unique)
        if warning is not None:
            log.warning("%s/%s: %s", self.venue, self.stream, warning)
        self.symbols = unique
        self._loaded_ms = self._now_ms()
        if self._prices:
            self._book = book
            if self._sink is not None:
                for at_ms, path, body in priced:
                    await self._sink.on_rest(self.venue, at_ms, path, body)
        return unique

    def contracts(self) -> ContractBook | None:
        return self._book

    async def prepare(self) -> None:
        if self._loaded_ms is not None and self._now_ms() - self._loaded_ms < self.refresh_s * 1000:
            return
        try:
            await self.fetch_symbols()
        except MetadataError as error:
            if self.symbols is None:
                raise
            log.warning("%s/%s: keeping the symbol list we have: %s", self.venue, self.stream, error)

    def subscribe_messages(self) -> list[str]:
        symbols = (self.symbols or [])[: self._paging.max_symbols]
        self._subscribed = set(symbols)
        return self._spec.subscribe(symbols) if symbols else []

    async def refresh(self) -> list[str]:
        symbols = await self.fetch_symbols()
        new = [symbol for symbol in symbols if symbol not in self._subscribed]
        cap = self._paging.max_symbols
        if cap is not None:  # the connection's room; a re-ranked list takes effect on the next connect
            new = new[: max(0, cap - len(self._subscribed))]
        self._subscribed.update(new)
        if not new:
            return []
        log.info("%s/%s: %d new symbol(s): %s", self.venue, self.stream, len(new), ", ".join(new[:10]))
        return self._spec.subscribe(new)


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
    for module in VENUES:
        settings = getattr(feeds, module.VENUE)
        if not settings.enabled:
            continue
        for spec in module.STREAMS:
            url = getattr(settings, spec.url_key)
            rest_url = getattr(settings, spec.rest_url_key, "").rstrip("/")
            source: VenueStream
            if spec.symbols is not None:
                source = SymbolsStream(module.VENUE, spec.name, url, rest_url, http, tuning, now_ms, sink)
            elif spec.metadata:
                requests = [
                    (rest_url + request.path, dict(request.params) or None, request.recorded_path)
                    for request in spec.metadata
                ]
                source = ContractsStream(
                    module.VENUE, spec.name, url, requests, http, sink, tuning, now_ms,
                    subscribe=spec.subscribe(()),
                )
            else:
                source = VenueStream(module.VENUE, spec.name, url, subscribe=spec.subscribe(()))
            if spec.heartbeat is not None:
                source.heartbeat = spec.heartbeat(tuning)
            if spec.max_connection_s is not None:
                source.max_connection_s = spec.max_connection_s(tuning)
            source.unwrap, source.answer = spec.unwrap, spec.answer
            source.headers, source.stamp = spec.headers, spec.stamp
            sources.append(source)
    return sources
