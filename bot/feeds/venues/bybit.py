"""Bybit v5: `allLiquidation.{symbol}` streams (`linear`, `inverse`) and
market context.

Streams `wss://stream.bybit.com/v5/public/linear` and `/inverse`: subscribe per
trading symbol (symbols from `GET {rest_url}/v5/market/instruments-info`,
cursor paging, re-read daily; new symbols join the live connection), app
ping `{"op":"ping"}` every 20 s. The topic "pushes all liquidations that occur
on Bybit" every 500 ms (https://bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation):
not sampled.

Bybit's args limits (https://bybit-exchange.github.io/docs/v5/ws/connect,
"Public channel - Args limits"): the serialized "args" of one public
connection may not exceed 21,000 characters; spot takes at most 10 args per
subscribe request, and derivatives have "no args limit for now". We send at
most 10 args per message on every category, which satisfies both, and warn
when a connection's args approach the 21,000-character cap.

`data` is a list of `{"T","s","S","v","p"}`. Unlike Binance, `S` is the
POSITION side: "Buy" means a long position was liquidated. `p` is the
bankruptcy price.

- linear (USDT/USDC perpetuals and futures): quantity `v` in base coin,
  notional `v * p`.
- inverse (BTCUSD, BTCUSDZ25...): quantity `v` in USD, notional `v`.

Market context (`MARKET`, 600 requests / 5 s per IP): `tickers?category=linear`
(all symbols), N x `account-ratio`: 1 + N requests a poll.

Open-interest history (`MARKET.open_interest_history`, the backfill), verified on
https://bybit-exchange.github.io/docs/v5/market/open-interest:
`GET /v5/market/open-interest?category&symbol&intervalTime&startTime&endTime&limit&cursor`,
intervalTime 5min..1d (we ask 5min), limit [1, 200] default 50, paged by
`result.nextPageCursor` ("" on the last page), `result.list` of
`{openInterest, timestamp}` newest first, back to the symbol's launch. The page
does not name the unit; on linear contracts it is the base coin (the tickers'
`openInterest` x `markPrice` is their `openInterestValue`,
https://bybit-exchange.github.io/docs/v5/market/tickers). To value it in USD,
the mark price at the same instant comes from
https://bybit-exchange.github.io/docs/v5/market/mark-kline:
`GET /v5/market/mark-price-kline?category&symbol&interval=5&start&end&limit`,
limit [1, 200], no cursor (so each request spans at most 200 bars), `list` of
`[startTime, open, high, low, close]` newest first; a point is valued at the
open of the bar starting at its timestamp (points without one are left out).
Both count against the 600 / 5 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace

import msgspec

from bot.core.market import MarketSample
from bot.core.models import MINUTE_MS, LiquidationEvent, Side
from bot.feeds import marketdata as md
from bot.feeds.contract import (
    Heartbeat,
    OpenInterestResponse,
    OpenInterestHistory,
    MarketApi,
    MarketSpec,
    StreamSpec,
    SymbolPaging,
    TypedFrames,
    TypedOrder,
    dispatch,
)
from bot.feeds.errors import FrameError, shown
from bot.feeds.flat_orders import FlatOrders
from bot.feeds.instruments import BASE_COIN, USD, ContractBook, ContractSpec

VENUE = "bybit"
TITLE = "Bybit"
TOPIC_PREFIX = "allLiquidation."
TOPIC = TOPIC_PREFIX + "{symbol}"
INSTRUMENTS_PATH = "/v5/market/instruments-info"
MAX_ARGS_PER_MESSAGE = 10
MAX_ARGS_CHARS = 21_000
PAGE_LIMIT = 1000
TICKERS_PATH = "/v5/market/tickers"
ACCOUNT_RATIO_PATH = "/v5/market/account-ratio"
OPEN_INTEREST_PATH = "/v5/market/open-interest"
MARK_KLINE_PATH = "/v5/market/mark-price-kline"
HIST_PERIOD_MS = 5 * MINUTE_MS  # intervalTime=5min, interval=5
HIST_PAGE_POINTS = 200
DEFAULT_FUNDING_HOURS = 8.0
RATE_LIMIT_CODES = frozenset({10006, 10018})  # retCodes that mean "slow down"
# `S` is the side of the liquidated POSITION: Buy = a long was wiped out.
_LIQUIDATED_BY_SIDE = {"Buy": Side.LONG, "Sell": Side.SHORT}
_ORDERS = FlatOrders(
    VENUE, instrument="s", side="S", price="p", quantity="v", time="T", liquidated_by_side=_LIQUIDATED_BY_SIDE,
)


def _items_of(frame: object) -> list | None:
    """The frame's liquidation items, or None for a control frame."""
    if type(frame) is not dict:
        if frame == "pong":
            return None
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    topic = frame.get("topic")
    if topic is None:
        # Acks, pongs and errors carry op/success/ret_msg and no topic.
        if "op" in frame or "success" in frame or "ret_msg" in frame:
            return None
        raise FrameError("no topic in frame")
    if type(topic) is not str or not topic.startswith(TOPIC_PREFIX):
        raise FrameError(f"unexpected topic {shown(topic)}")
    items = frame.get("data")
    if type(items) is not list:
        raise FrameError("'data' is not a list")
    return items


def _parse(frame: object, stream: str, unit: ContractSpec) -> list[LiquidationEvent]:
    items = _items_of(frame)
    return [] if items is None else _ORDERS.events(items, stream, unit)


def parse_linear(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    return _parse(frame, "linear", BASE_COIN)


def parse_inverse(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    return _parse(frame, "inverse", USD)


# -- replay's fast path (`bot.feeds.typed_frames`): a liquidation frame, typed


class _TypedItem(msgspec.Struct):
    s: str
    S: str
    p: str | float
    v: str | float
    T: int | str


class _TypedFrame(msgspec.Struct):
    topic: str
    data: list[_TypedItem]


def _typed_orders(frame: _TypedFrame) -> list[TypedOrder]:
    if not frame.topic.startswith(TOPIC_PREFIX):
        raise ValueError(frame.topic)
    return [(item.s, _LIQUIDATED_BY_SIDE[item.S], item.p, item.v, item.T) for item in frame.data]


def error_message(frame: object) -> str | None:
    """A short description of a Bybit error frame (`success: false`), else None."""
    if type(frame) is not dict or frame.get("success") is not False:
        return None
    return f"{shown(frame.get('op'))} failed: {shown(frame.get('ret_msg'))}"


# -- subscriptions ---------------------------------------------------------


def _compact(message: object) -> str:
    return json.dumps(message, separators=(",", ":"))


def subscribe_messages(
    symbols: Iterable[str], per_message: int = MAX_ARGS_PER_MESSAGE
) -> list[str]:
    """`{"op":"subscribe","args":[...]}` messages for `allLiquidation.{symbol}`,
    each with at most `per_message` args, in the given order."""
    topics = [TOPIC.format(symbol=symbol) for symbol in symbols]
    return [
        _compact({"op": "subscribe", "args": topics[start : start + per_message]})
        for start in range(0, len(topics), per_message)
    ]


def args_chars(symbols: Iterable[str]) -> int:
    """How long the JSON "args" array of all these topics would be."""
    return len(_compact([TOPIC.format(symbol=symbol) for symbol in symbols]))


HEARTBEAT_MESSAGE = _compact({"op": "ping"})


def symbols_page(body: object) -> tuple[list[str], str | None]:
    """The trading symbols of one instruments-info page, and the next cursor (None: last page)."""
    if type(body) is not dict:
        raise FrameError("bybit instruments-info: body is not an object")
    if body.get("retCode") != 0:
        raise FrameError(
            f"bybit instruments-info: retCode {body.get('retCode')!r}: {str(body.get('retMsg'))[:80]}"
        )
    result = body.get("result")
    entries = result.get("list") if type(result) is dict else None
    if type(entries) is not list:
        raise FrameError("bybit instruments-info: no result.list")
    symbols = [
        entry["symbol"]
        for entry in entries
        if type(entry) is dict and type(entry.get("symbol")) is str and entry.get("status") == "Trading"
    ]
    cursor = result.get("nextPageCursor")
    return symbols, (cursor if type(cursor) is str and cursor else None)


# -- market context --------------------------------------------------------


def _market_result(body: object, what: str) -> dict:
    body = md.json_object(body, what)
    code = body.get("retCode")
    if code != 0:
        raise md.VenueError(VENUE, code, body.get("retMsg"), rate_limited=code in RATE_LIMIT_CODES)
    return md.json_object(body.get("result"), f"{what} result")


def parse_tickers(body: object, assets: Iterable[str], at_ms: int) -> dict[str, MarketSample]:
    """`GET /v5/market/tickers?category=linear`: mark, funding and OI value, all symbols.

    `openInterestValue` is already in USD(T); `fundingIntervalHour` is used when
    the venue sends it, else 8 h.
    """
    entries = md.json_list(_market_result(body, "tickers").get("list"), "tickers list")
    wanted = {market_symbol(asset): asset for asset in assets}
    samples: dict[str, MarketSample] = {}
    for asset, symbol, entry in md.tracked(entries, wanted, "symbol", "tickers entry"):
        funding = md.optional_number(entry.get("fundingRate"), f"{symbol} fundingRate")
        if funding is not None:
            funding = md.funding(funding, f"{symbol} fundingRate")
        interval = md.optional_number(entry.get("fundingIntervalHour"), f"{symbol} fundingIntervalHour")
        open_interest = md.optional_number(entry.get("openInterestValue"), f"{symbol} openInterestValue")
        if open_interest is not None and open_interest < 0:
            raise md.MarketDataError(f"{symbol} openInterestValue must not be negative: {shown(open_interest)}")
        samples[asset] = MarketSample(
            venue=VENUE,
            asset=asset,
            at_ms=at_ms,
            mark_price=md.positive(entry.get("markPrice"), f"{symbol} markPrice"),
            funding_rate=funding,
            funding_interval_hours=interval if interval and interval > 0 else DEFAULT_FUNDING_HOURS,
            open_interest_usd=open_interest,
        )
    return samples


def parse_account_ratio(body: object, symbol: str) -> float | None:
    """`GET /v5/market/account-ratio`: buyRatio / sellRatio of the latest period."""
    entries = md.json_list(_market_result(body, "account-ratio").get("list"), "account-ratio list")
    latest = md.latest_entry(entries, "timestamp", "account-ratio")
    if latest is None:
        return None
    if latest.get("symbol") != symbol:
        raise md.MarketDataError(f"account-ratio for {shown(latest.get('symbol'))}, asked {symbol}")
    buy = md.not_negative(latest.get("buyRatio"), f"{symbol} buyRatio")
    sell = md.not_negative(latest.get("sellRatio"), f"{symbol} sellRatio")
    return buy / sell if sell > 0 else None


def _listed(body: object, symbol: str, what: str) -> tuple[list, dict]:
    result = _market_result(body, what)
    if result.get("symbol") != symbol:
        raise md.MarketDataError(f"{what} for {shown(result.get('symbol'))}, asked {symbol}")
    return md.json_list(result.get("list"), f"{what} list"), result


def parse_open_interest_page(body: object, symbol: str) -> tuple[list[tuple[int, float]], str | None]:
    """`GET /v5/market/open-interest`: (at_ms, open interest in base coin) per point, and the next cursor."""
    entries, result = _listed(body, symbol, "open-interest")
    points = []
    for entry in entries:
        entry = md.json_object(entry, "open-interest entry")
        at_ms = md.instant_ms(entry.get("timestamp"), f"{symbol} open-interest timestamp")
        points.append((at_ms, md.not_negative(entry.get("openInterest"), f"{symbol} openInterest")))
    cursor = result.get("nextPageCursor")
    return points, (cursor if type(cursor) is str and cursor else None)


def parse_mark_kline(body: object, symbol: str) -> dict[int, float]:
    """`GET /v5/market/mark-price-kline`: bar start (ms) -> open mark price."""
    entries, _ = _listed(body, symbol, "mark-price-kline")
    opens = {}
    for bar in entries:
        bar = md.json_list(bar, "mark-price-kline bar")
        if len(bar) < 5:
            raise md.MarketDataError(f"{symbol} mark-price-kline bar is short: {shown(bar)}")
        opens[md.instant_ms(bar[0], f"{symbol} startTime")] = md.positive(bar[1], f"{symbol} openPrice")
    return opens


async def fetch_open_interest_history(
    api: MarketApi, asset: str, after_ms: int, before_ms: int, into: list[OpenInterestResponse]
) -> None:
    symbol = market_symbol(asset)
    window = {"category": "linear", "symbol": symbol, "intervalTime": "5min",
              "startTime": str(after_ms + 1), "endTime": str(before_ms - 1), "limit": str(HIST_PAGE_POINTS)}
    cursor: str | None = None
    found = 0
    # Bounded even if the venue kept answering with new cursors.
    for _ in range((before_ms - after_ms) // (HIST_PAGE_POINTS * HIST_PERIOD_MS) + 2):
        params = window if cursor is None else {**window, "cursor": cursor}
        body = await api.get(OPEN_INTEREST_PATH, params)
        points, next_cursor = parse_open_interest_page(body, symbol)
        into.append((OPEN_INTEREST_PATH, params, body))
        found += len(points)
        if next_cursor is None or next_cursor == cursor:
            break
        cursor = next_cursor
    if not found:
        return  # nothing to value
    for first, last in md.windows(after_ms, before_ms, HIST_PAGE_POINTS * HIST_PERIOD_MS):
        params = {"category": "linear", "symbol": symbol, "interval": "5",
                  "start": str(first), "end": str(last), "limit": str(HIST_PAGE_POINTS)}
        body = await api.get(MARK_KLINE_PATH, params)
        parse_mark_kline(body, symbol)
        into.append((MARK_KLINE_PATH, params, body))


def open_interest_history_samples(responses: Sequence[OpenInterestResponse]) -> list[MarketSample]:
    in_base: dict[tuple[str, int], float] = {}
    opens: dict[tuple[str, int], float] = {}
    for path, params, body in responses:
        symbol = params.get("symbol", "")
        if not symbol.endswith("USDT"):
            continue
        asset = symbol.removesuffix("USDT")
        if path == OPEN_INTEREST_PATH:
            for at_ms, amount in parse_open_interest_page(body, symbol)[0]:
                in_base[asset, at_ms] = amount
        elif path == MARK_KLINE_PATH:
            for at_ms, price in parse_mark_kline(body, symbol).items():
                opens[asset, at_ms] = price
    return [
        MarketSample(VENUE, asset, at_ms, mark_price=opens[asset, at_ms],
                     open_interest_usd=amount * opens[asset, at_ms])
        for (asset, at_ms), amount in sorted(in_base.items())
        if (asset, at_ms) in opens
    ]


def market_symbol(asset: str) -> str:
    return f"{asset}USDT"


async def collect_market(
    api: MarketApi, assets: Sequence[str], at_ms: int, samples: dict[str, MarketSample]
) -> None:
    body = await api.get(TICKERS_PATH, {"category": "linear"})
    samples.update(parse_tickers(body, assets, at_ms))
    for asset in assets:
        if asset not in samples:
            continue
        symbol = market_symbol(asset)
        ratio = await api.optional(
            ACCOUNT_RATIO_PATH,
            {"category": "linear", "symbol": symbol, "period": "5min", "limit": "1"},
            lambda body, s=symbol: parse_account_ratio(body, s),
        )
        if ratio is not None:
            samples[asset] = replace(samples[asset], long_short_ratio=ratio)


def _page_params(stream: str, cursor: str | None) -> dict[str, str]:
    params = {"category": stream, "limit": str(PAGE_LIMIT)}
    if cursor is not None:
        params["cursor"] = cursor
    return params


def _args_warning(symbols: Sequence[str]) -> str | None:
    chars = args_chars(symbols)
    if chars <= MAX_ARGS_CHARS * 0.9:
        return None
    return f"{len(symbols)} symbols make {chars} characters of args, near Bybit's {MAX_ARGS_CHARS} per connection"


def _heartbeat(tuning) -> Heartbeat:
    return Heartbeat(HEARTBEAT_MESSAGE, tuning.ping_interval_s)


_PAGING = SymbolPaging(INSTRUMENTS_PATH, _page_params, symbols_page, warning=_args_warning)
REST_URLS = {"rest_url": "https://api.bybit.com"}
STREAMS = tuple(
    StreamSpec(
        category, f"{category}_ws_url", f"wss://stream.bybit.com/v5/public/{category}", parser,
        subscribe=subscribe_messages, heartbeat=_heartbeat, symbols=_PAGING,
        typed=TypedFrames(_TypedFrame, _typed_orders, unit),
    )
    for category, parser, unit in (("linear", parse_linear, BASE_COIN), ("inverse", parse_inverse, USD))
)
METADATA: dict = {}  # quantities need no contract sizes
MARKET = MarketSpec(
    rest_url_key="rest_url",
    limit=600,  # requests per 5 s per IP
    window_ms=5_000,
    collector=lambda: collect_market,
    open_interest_history=OpenInterestHistory(
        paths=(OPEN_INTEREST_PATH, MARK_KLINE_PATH),
        period_ms=HIST_PERIOD_MS,
        reach_ms=None,  # back to the symbol's launch
        fetch=fetch_open_interest_history,
        samples=open_interest_history_samples,
    ),
)
parse = dispatch(VENUE, STREAMS)
