"""The types a venue module declares itself with (see `bot.feeds.venues`).

Pure data and type aliases: a venue module imports these (and the generic
helpers of `errors`, `instruments`, `marketdata`), never the
runner, the recording format or the registry, so the registry can import
every venue module without a cycle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.bars import Kline
from bot.core.market import MarketSample
from bot.core.models import LiquidationEvent, Side
from bot.feeds.instruments import ContractBook, ContractSpec

# parse(frame, contracts, received_ms) -> events. `received_ms` is the receive
# time (the `at` of the recording line); parsers of venues whose frames carry a
# timestamp ignore it. None only when a test calls a parser without one.
FrameParser = Callable[[object, ContractBook | None, int | None], list[LiquidationEvent]]
# A metadata body -> the contract sizes it lists; FrameError when malformed.
BookLoader = Callable[[object], ContractBook]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """An app-level keepalive message: sent every `every_s`, or, when
    `idle_only`, only after `every_s` without any frame from the venue."""

    message: str
    every_s: float
    idle_only: bool = False


@dataclass(frozen=True, slots=True)
class MetadataRequest:
    """A REST GET whose body a `METADATA` loader of the venue turns into contract sizes."""

    path: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def recorded_path(self) -> str:
        """The path the recording's `rest` line carries (and replay looks up)."""
        query = "&".join(f"{key}={value}" for key, value in self.params)
        return f"{self.path}?{query}" if query else self.path


@dataclass(frozen=True, slots=True)
class SymbolPaging:
    """A stream subscribed per symbol: the symbol list comes from paged REST.

    `params(stream, cursor)` is the query of one page (cursor None: the first);
    `page(body)` gives that page's symbols and the next cursor (None: last
    page) and raises FrameError for a body that is not what the venue documents;
    `warning(symbols)` may name a problem worth a log line (a limit approached).
    `max_symbols`: the venue's cap on subscriptions per connection; the listing
    comes ranked (most worth recording first) and only its first `max_symbols`
    are subscribed (None: no cap).
    """

    path: str
    params: Callable[[str, str | None], dict[str, str]]
    page: Callable[[object], tuple[list[str], str | None]]
    max_pages: int = 100
    warning: Callable[[Sequence[str]], str | None] = lambda symbols: None
    max_symbols: int | None = None


# One order of a typed frame, its values as the venue sends them: instrument id,
# the position wiped out, price and quantity (numbers or numeric strings), time
# (epoch ms: an integer or an integer string).
TypedOrder = tuple[str, Side, str | float, str | float, int | str]


@dataclass(frozen=True, slots=True)
class TypedFrames:
    """A stream's liquidation frames as typed structs, for replay's fast path
    (`bot.feeds.typed_frames`).

    `frame`: a msgspec Struct of the frame as the venue documents it, only the
    fields the parser reads, each of the JSON types the parser takes for it (a
    price as a string or a number, never a bool; a time as an integer or an
    integer string, never a float); `orders(frame)`
    -> its `TypedOrder`s, raising ValueError or KeyError where the parser would
    read the frame differently (a channel or side it refuses, say); `unit`: what
    a quantity is worth (None: the venue's contract book prices it).
    """

    frame: type
    orders: Callable[[Any], Iterable[TypedOrder]]
    unit: ContractSpec | None


def no_messages(symbols: Sequence[str]) -> list[str]:
    """`StreamSpec.subscribe` of a stream whose URL is the subscription."""
    return []


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One websocket stream of a venue; see the contract in `bot.feeds.venues`."""

    name: str  # the recording's `stream`
    url_key: str  # key of its websocket URL in [feeds.<venue>]
    default_url: str
    parse: FrameParser
    # Messages sent after each connect: symbols are the paged symbols (`symbols`),
    # or () for a stream without paging. Also called with the symbols a refresh added.
    subscribe: Callable[[Sequence[str]], list[str]] = no_messages
    # From the runner tuning ([feeds.runner]); None: no app-level heartbeat.
    heartbeat: Callable[[Any], Heartbeat] | None = None
    # Planned reconnect after this long (from the tuning); None: never.
    max_connection_s: Callable[[Any], float] | None = None
    rest_url_key: str = "rest_url"  # which REST_URLS entry metadata requests go to
    metadata: tuple[MetadataRequest, ...] = ()  # contract sizes needed to price frames
    symbols: SymbolPaging | None = None
    caveat: str = ""  # how the venue samples this feed, for /status, /liq and the README
    # Live only: the raw message -> the text to decode (HTX gzips every frame);
    # raises FrameError when it cannot. Recordings hold the decoded frame.
    unwrap: Callable[[str | bytes], str | bytes] | None = None
    # A frame the venue wants answered (HTX `{"op":"ping","ts":T}`): the reply to
    # send, else None. An answered frame is a control frame and is not parsed.
    answer: Callable[[object], str | None] | None = None
    # Extra HTTP headers of the websocket handshake (Gate's X-Gate-Size-Decimal: 1).
    headers: tuple[tuple[str, str], ...] = ()
    # A message about to be sent and the time (ms) -> the message as sent (Gate
    # wants the send time in every request); None: messages go as they are.
    stamp: Callable[[str, int], str] | None = None
    # The liquidation frames typed, for replay's fast path; None: replay parses
    # every frame with `parse` (as it does any frame the typed path declines).
    typed: TypedFrames | None = None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a venue's REST history of liquidations, read by `HistorySpec.page`.

    `events`: the liquidations it priced; `unpriced`: those without a contract
    size; `oldest_ms`: the oldest order's time on the page (None: an empty page);
    `full`: the page holds as many orders as asked for, so an older page may follow.
    """

    events: list[LiquidationEvent]
    unpriced: int
    oldest_ms: int | None
    full: bool


@dataclass(frozen=True, slots=True)
class HistorySpec:
    """A public REST history of liquidations, newest first, that fills a stream's
    gaps (`bot.feeds.backfill`): the same orders the stream carries, priced by the
    same parser, so a backfilled row and a live one share the store's dedup key.

    `queries(contracts)`: the first page's query of each series to ask
    (OKX: one per instrument family); `older(query, page)`: the query of the
    page before `page`, None when there is none; `page(body, contracts)` reads
    a body (FrameError when it is not as documented, `marketdata.VenueError`
    for the venue's error codes). `horizon_ms`: how far back the venue keeps
    it; `limit` requests per `window_ms`: its published rate limit.
    """

    stream: str  # the stream whose gaps it fills (and whose name its events carry)
    path: str
    queries: Callable[[ContractBook | None], list[dict[str, str]]]
    older: Callable[[dict[str, str], HistoryPage], dict[str, str] | None]
    page: Callable[[object, ContractBook | None], HistoryPage]
    horizon_ms: int
    limit: float
    window_ms: int
    rest_url_key: str = "rest_url"


class MarketApi(Protocol):
    """What a market collector may call (`bot.feeds.market.MarketPoller`)."""

    async def get(self, path: str, params: dict[str, str] | None) -> Any:
        """A JSON body, within the venue's request budget, with retries. Raises
        when the venue is down or rate limits us (the poll ends there)."""
        ...

    async def optional(
        self, path: str, params: dict[str, str] | None, parse: Callable[[Any], Any]
    ) -> Any:
        """`parse(body)`, or None (counted, logged) when that one request or
        its body failed; still raises when the venue is down or rate limits us."""
        ...


# collect(api, assets, at_ms, samples): fills `samples` (asset -> sample) as it
# goes, so what was collected before a failure is kept.
Collector = Callable[[MarketApi, Sequence[str], int, dict[str, MarketSample]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PathLimit:
    """A venue's own limit on one endpoint, on top of its venue-wide one: at most
    `limit` requests per `window_ms`, counted per value of the query parameter
    `per_param` when the venue counts per instrument (OKX: "IP + Instrument ID")."""

    limit: float
    window_ms: int
    per_param: str | None = None


# One response of an open-interest history request: (path, query as asked, decoded body).
OpenInterestResponse = tuple[str, Mapping[str, str], object]


@dataclass(frozen=True, slots=True)
class OpenInterestHistory:
    """Open-interest history a venue's REST API serves, to backfill a gap in the
    polled samples (`bot.feeds.market`).

    `fetch(api, asset, after_ms, before_ms, into)` asks for the points strictly
    between the two instants, appending each response to `into` as it arrives
    (so what came before a failure is kept) after checking it parses; it raises
    like `MarketApi.get`. `samples(responses)` is pure: the `MarketSample`s
    (open interest in USD and a price) those responses hold, the same live and
    in a replay of their recording.
    """

    paths: tuple[str, ...]  # every path `fetch` asks (a recording's history lines)
    period_ms: int  # spacing of the points asked for
    reach_ms: int | None  # how far back the venue serves them (None: as far as asked)
    fetch: Callable[[MarketApi, str, int, int, list[OpenInterestResponse]], Awaitable[None]]
    samples: Callable[[Sequence[OpenInterestResponse]], list[MarketSample]]
    limits: Mapping[str, PathLimit] = field(default_factory=dict)  # path -> its own limit


@dataclass(frozen=True, slots=True)
class KlineHistory:
    """Closed klines (candles) a venue's REST API serves for the levels model's
    bars: prices, volume and, where the venue has one, the taker split
    (`bot.core.bars.Kline`).

    `fetch(api, asset, after_ms, before_ms, into)` asks for the klines opening
    strictly between the two instants, appending each checked response to
    `into` like `OpenInterestHistory.fetch`; `before_ms` is never later than
    the last kline that has closed, so no kline comes back half-formed.
    `klines(responses)` is pure: the `Kline`s those responses hold.
    """

    paths: tuple[str, ...]  # every path `fetch` asks (a recording's kline lines)
    interval_ms: int  # one kline's length
    reach_ms: int | None  # how far back the venue serves them (None: as far as asked)
    taker_reach_ms: int | None  # ...and their taker split (None: as far as the klines; 0: none)
    fetch: Callable[[MarketApi, str, int, int, list[OpenInterestResponse]], Awaitable[None]]
    klines: Callable[[Sequence[OpenInterestResponse]], list[Kline]]
    limits: Mapping[str, PathLimit] = field(default_factory=dict)  # path -> its own limit
    weights: Mapping[str, float] = field(default_factory=dict)  # path -> cost in the venue's budget; others 1


@dataclass(frozen=True, slots=True)
class MarginTiers:
    """A venue's public margin tiers: the maintenance margin rate of its lowest
    tier per tracked asset, for the levels model's liquidation prices.

    `request(asset)` is the (path, query) to ask; `lowest_rate(body, asset)`
    reads the lowest tier's rate (a fraction, 0.005 = 0.5 %) from the answer:
    None when the venue lists no tier for it, MarketDataError / VenueError for a
    body that is not as documented. `limit` requests per `window_ms`: the
    venue's published limit for the path.
    """

    path: str
    request: Callable[[str], dict[str, str]]
    lowest_rate: Callable[[object, str], float | None]
    limit: float
    window_ms: int
    rest_url_key: str = "rest_url"


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Market context (funding, open interest, long/short) a venue's REST API gives."""

    rest_url_key: str  # which REST_URLS entry the poller calls
    limit: float  # the published request limit...
    window_ms: int  # ...per this sliding window
    collector: Callable[[], Collector]  # a fresh collector per poller (it may keep state)
    weights: Mapping[str, float] = field(default_factory=dict)  # path -> cost; others cost 1
    open_interest_history: OpenInterestHistory | None = None  # for backfills (bot.feeds.market)


def dispatch(venue: str, streams: Sequence[StreamSpec]) -> Callable[..., list[LiquidationEvent]]:
    """A venue module's `parse(frame, contracts=None, received_ms=None, *, stream)`:
    the parser of `stream` (the only one's by default). ValueError for an unknown stream."""
    parsers = {spec.name: spec.parse for spec in streams}
    only = streams[0].name if len(streams) == 1 else None

    def parse(
        frame: object,
        contracts: ContractBook | None = None,
        received_ms: int | None = None,
        *,
        stream: str | None = only,
    ) -> list[LiquidationEvent]:
        parser = parsers.get(stream) if stream is not None else None
        if parser is None:
            raise ValueError(f"unknown {venue} stream {stream!r}")
        return parser(frame, contracts, received_ms)

    return parse
