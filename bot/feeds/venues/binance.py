"""Binance futures: liquidation streams (USD-M `usdm`, COIN-M `coinm`), COIN-M
contract sizes, and USD-M market context.

Streams (the URL is the subscription; websockets answers the server's pings;
Binance drops every connection after 24 h, so we reconnect before):
- usdm `wss://fstream.binance.com/market/ws/!forceOrder@arr`: Binance split the
  USD-M websocket into `/public`, `/market` and `/private` and retired the legacy
  `/ws` path on 2026-04-23 (it still accepts a connection and sends nothing);
  `forceOrder` is a `/market` stream.
  https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice
- coinm `wss://dstream.binance.com/ws/!forceOrder@arr`: that notice covers USD-M
  only, and the COIN-M docs still give base `wss://dstream.binance.com` with raw
  streams at `/ws/<streamName>` (checked 2026-12-02); one third-party report
  (Tucsky/aggr#444, unmerged) says dstream `/ws` also went quiet. If Binance
  moves it too, the silent-stream watchdog flags the stream and the URL is the
  `coinm_ws_url` key.
  https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams
  https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams/All-Market-Liquidation-Order-Streams
- Binance pushes at most one liquidation per symbol per 1000 ms: a sample.

Each frame carries one liquidation order, raw (`{"e":"forceOrder","o":{..}}`)
or wrapped by a combined stream (`{"stream":..,"data":{..}}`). `o.S` is the
side of the liquidation ORDER: a SELL closes a long, so the long was wiped out.
The event's price is `o.ap` (average fill), never `o.p` (the order's limit).

- usdm: quantity `o.z` in base coin; notional `z * ap`.
- coinm: quantity `o.z` in contracts; notional `z * contractSize` USD, the
  size coming from `/dapi/v1/exchangeInfo` (a ContractBook).

Undocumented extra fields (`o.ps`, `o.st`...) are ignored.

Market context (`MARKET`, USD-M, 2400 weight/min per IP): `premiumIndex` (all
symbols, weight 10), N x `openInterest`, N x `globalLongShortAccountRatio`,
`fundingInfo` hourly: 10 + 2N weight a poll.

Open-interest history (`MARKET.open_interest_history`, the backfill), verified on
https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Open-Interest-Statistics:
`GET /futures/data/openInterestHist?symbol&period&limit&startTime&endTime`,
period one of 5m..1d (we ask 5m), limit default 30 max 500, "only the data of
the latest 30 days is available"; each entry `{symbol, sumOpenInterest (base
coin), sumOpenInterestValue (USD), timestamp}`. The page lists request weight 0
and "IP rate limit 1000 requests/5min" (older copies: weight 1); we count weight
1 against the 2400/min and keep a 1000 / 5 min budget of the path's own. The
docs do not say which `limit` points a longer [startTime, endTime] returns, so
each request spans at most 500 periods. The price of a point is
sumOpenInterestValue / sumOpenInterest (what Binance valued it at).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import msgspec

from bot.core.market import MarketSample
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, LiquidationEvent, Side
from bot.feeds import marketdata as md
from bot.feeds.contract import (
    FrameParser,
    OpenInterestResponse,
    OpenInterestHistory,
    MarketApi,
    MarketSpec,
    MetadataRequest,
    PathLimit,
    StreamSpec,
    TypedFrames,
    TypedOrder,
    dispatch,
)
from bot.feeds.errors import (
    MAX_PRICE,
    MAX_QUANTITY,
    FrameError,
    UnknownInstrument,
    instrument_id,
    positive_number,
    shown,
    timestamp_ms,
)
from bot.feeds.instruments import BASE_COIN, ContractBook, ContractSpec, positive_or_none
from bot.core.symbols import asset_of

VENUE = "binance"
TITLE = "Binance"
COINM_EXCHANGE_INFO_PATH = "/dapi/v1/exchangeInfo"
PREMIUM_INDEX_PATH = "/fapi/v1/premiumIndex"
FUNDING_INFO_PATH = "/fapi/v1/fundingInfo"
OPEN_INTEREST_PATH = "/fapi/v1/openInterest"
LONG_SHORT_PATH = "/futures/data/globalLongShortAccountRatio"
OPEN_INTEREST_HIST_PATH = "/futures/data/openInterestHist"
HIST_PERIOD, HIST_PERIOD_MS = "5m", 5 * MINUTE_MS
HIST_PAGE_POINTS = 500
HIST_REACH_MS = 30 * DAY_MS
FUNDING_INFO_REFRESH_MS = HOUR_MS
DEFAULT_FUNDING_HOURS = 8.0  # symbols absent from fundingInfo settle every 8 h
SAMPLED = "one order per symbol per second"
_LIQUIDATED_BY_ORDER_SIDE = {"SELL": Side.LONG, "BUY": Side.SHORT}


def _order_of(frame: object) -> dict | None:
    """The frame's order object, or None for a control frame."""
    if type(frame) is not dict:
        if frame == "pong":
            return None
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    if "o" not in frame and "stream" in frame:
        frame = frame.get("data")
        if type(frame) is not dict:
            raise FrameError("combined-stream 'data' is not an object")
    order = frame.get("o")
    if order is None:
        if _is_control(frame):
            return None
        raise FrameError("no order ('o') in frame")
    if frame.get("e") != "forceOrder":
        raise FrameError(f"unexpected event type {shown(frame.get('e'))}")
    if type(order) is not dict:
        raise FrameError("'o' is not an object")
    return order


def _is_control(frame: dict) -> bool:
    # {"result": null, "id": 1} acks a (un)subscribe; errors come as
    # {"error": {...}, "id": 1} or, from older gateways, {"code": .., "msg": ..}.
    return "result" in frame or "error" in frame or ("code" in frame and "msg" in frame)


def _liquidated(order: dict) -> Side:
    side = order["S"]
    liquidated = _LIQUIDATED_BY_ORDER_SIDE.get(side) if type(side) is str else None
    if liquidated is None:
        raise FrameError(f"o.S is not BUY/SELL: {shown(side)}")
    return liquidated


def _order_fields(order: dict) -> tuple[str, Side, float, float, int]:
    """instrument, liquidated side, price (avg fill), quantity (filled), at_ms."""
    try:
        return (
            instrument_id(order["s"], "o.s"),
            _liquidated(order),
            positive_number(order["ap"], "o.ap", MAX_PRICE),
            positive_number(order["z"], "o.z", MAX_QUANTITY),
            timestamp_ms(order["T"], "o.T"),
        )
    except KeyError as missing:
        raise FrameError(f"missing field o.{missing.args[0]}") from None


def base_quantity_parser(venue: str, stream: str) -> FrameParser:
    """The parser of a forceOrder stream whose `o.z` is in base coin (USD-M, and
    the venues that copy its format): notional `z * ap`."""

    def parse_base_quantity(
        frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
    ) -> list[LiquidationEvent]:
        order = _order_of(frame)
        if order is None:
            return []
        instrument, liquidated, price, quantity, at_ms = _order_fields(order)
        notional_usd = BASE_COIN.notional_usd(quantity, price, "o.z")
        return [
            LiquidationEvent(
                venue, stream, instrument, asset_of(instrument), liquidated,
                price, quantity, notional_usd, at_ms,
            )
        ]

    return parse_base_quantity


parse_usdm = base_quantity_parser(VENUE, "usdm")


# -- replay's fast path (`bot.feeds.typed_frames`): a raw forceOrder frame, typed


class _TypedOrder(msgspec.Struct):
    s: str
    S: str
    ap: str | float
    z: str | float
    T: int | str


class _TypedFrame(msgspec.Struct):
    e: str
    o: _TypedOrder


def _typed_orders(frame: _TypedFrame) -> tuple[TypedOrder]:
    if frame.e != "forceOrder":
        raise ValueError(frame.e)
    order = frame.o
    return ((order.s, _LIQUIDATED_BY_ORDER_SIDE[order.S], order.ap, order.z, order.T),)


def typed_force_orders(unit: ContractSpec | None) -> TypedFrames:
    """A forceOrder stream's frames typed, quantities in `unit` (None: contracts, from the book)."""
    return TypedFrames(_TypedFrame, _typed_orders, unit)


def parse_coinm(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    order = _order_of(frame)
    if order is None:
        return []
    instrument, liquidated, price, quantity, at_ms = _order_fields(order)
    spec = contracts.get(instrument) if contracts is not None else None
    if spec is None:
        raise UnknownInstrument([instrument], events=[], unpriced_count=1)
    notional_usd = spec.notional_usd(quantity, price, "o.z")
    return [
        LiquidationEvent(
            VENUE, "coinm", instrument, asset_of(instrument), liquidated,
            price, quantity, notional_usd, at_ms,
        )
    ]


# -- contract sizes ------------------------------------------------------


def coinm_exchange_info_book(body: object) -> ContractBook:
    """From `GET /dapi/v1/exchangeInfo`: every COIN-M contract is worth
    `contractSize` USD (100 for BTC, 10 for the others at the time of writing)."""
    if type(body) is not dict or type(body.get("symbols")) is not list:
        raise FrameError("binance exchangeInfo: no 'symbols' list")
    specs: dict[str, ContractSpec] = {}
    for entry in body["symbols"]:
        if type(entry) is not dict:
            raise FrameError(f"binance exchangeInfo: entry is not an object: {shown(entry)}")
        instrument = entry.get("symbol")
        size = positive_or_none(entry.get("contractSize"))
        if type(instrument) is str and size is not None:
            specs[instrument] = ContractSpec(size, inverse=True)
    return ContractBook(specs)


METADATA = {COINM_EXCHANGE_INFO_PATH: coinm_exchange_info_book}


# -- market context (USD-M) ------------------------------------------------


def _market_body(body: object, what: str) -> object:
    # Errors come as {"code": -1121, "msg": "Invalid symbol."}.
    if type(body) is dict and "code" in body and "msg" in body and "symbol" not in body:
        raise md.VenueError(VENUE, body.get("code"), body.get("msg"), rate_limited=body.get("code") == -1003)
    return body


def parse_premium_index(
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
    body = _market_body(body, "premiumIndex")
    if type(body) is dict:  # asked for one symbol
        if type(body.get("symbol")) is not str:
            raise md.MarketDataError(f"premiumIndex object without a symbol: {shown(body)}")
        entries = [body]
    else:
        entries = md.json_list(body, "premiumIndex")
    wanted = {market_symbol(asset): asset for asset in assets}
    intervals = interval_hours or {}
    samples: dict[str, MarketSample] = {}
    for asset, symbol, entry in md.tracked(entries, wanted, "symbol", "premiumIndex entry"):
        samples[asset] = MarketSample(
            venue=VENUE,
            asset=asset,
            at_ms=at_ms,
            mark_price=md.positive(entry.get("markPrice"), f"{symbol} markPrice"),
            funding_rate=md.funding(entry.get("lastFundingRate"), f"{symbol} lastFundingRate"),
            funding_interval_hours=intervals.get(symbol, DEFAULT_FUNDING_HOURS),
        )
    return samples


def parse_funding_info(body: object) -> dict[str, float]:
    """`GET /fapi/v1/fundingInfo`: symbol -> funding interval in hours.

    Lists only symbols whose cap, floor or interval was adjusted.
    """
    intervals: dict[str, float] = {}
    for entry in md.json_list(_market_body(body, "fundingInfo"), "fundingInfo"):
        entry = md.json_object(entry, "fundingInfo entry")
        symbol = entry.get("symbol")
        if type(symbol) is not str:
            raise md.MarketDataError(f"fundingInfo symbol is not a string: {shown(symbol)}")
        intervals[symbol] = md.positive(entry.get("fundingIntervalHours"), f"{symbol} fundingIntervalHours")
    return intervals


def parse_open_interest(body: object, symbol: str) -> float:
    """`GET /fapi/v1/openInterest?symbol=`: open interest in base coin."""
    entry = md.json_object(_market_body(body, "openInterest"), "openInterest")
    if entry.get("symbol") != symbol:
        raise md.MarketDataError(f"openInterest for {shown(entry.get('symbol'))}, asked {symbol}")
    return md.not_negative(entry.get("openInterest"), f"{symbol} openInterest")


def parse_long_short(body: object, symbol: str) -> float | None:
    """`GET /futures/data/globalLongShortAccountRatio`: the latest ratio (None if no data)."""
    entries = md.json_list(_market_body(body, "globalLongShortAccountRatio"), "globalLongShortAccountRatio")
    latest = md.latest_entry(entries, "timestamp", "globalLongShortAccountRatio")
    if latest is None:
        return None
    if latest.get("symbol") != symbol:
        raise md.MarketDataError(f"long/short ratio for {shown(latest.get('symbol'))}, asked {symbol}")
    return md.not_negative(latest.get("longShortRatio"), f"{symbol} longShortRatio")


def parse_open_interest_hist(body: object, symbol: str) -> list[tuple[int, float, float | None]]:
    """`GET /futures/data/openInterestHist`: (at_ms, open interest in USD, price) per point.

    The price is sumOpenInterestValue / sumOpenInterest (None when the OI is 0).
    """
    points = []
    for entry in md.json_list(_market_body(body, "openInterestHist"), "openInterestHist"):
        entry = md.json_object(entry, "openInterestHist entry")
        if entry.get("symbol") != symbol:
            raise md.MarketDataError(f"openInterestHist for {shown(entry.get('symbol'))}, asked {symbol}")
        in_base = md.not_negative(entry.get("sumOpenInterest"), f"{symbol} sumOpenInterest")
        usd = md.not_negative(entry.get("sumOpenInterestValue"), f"{symbol} sumOpenInterestValue")
        at_ms = md.instant_ms(entry.get("timestamp"), f"{symbol} timestamp")
        points.append((at_ms, usd, usd / in_base if in_base > 0 else None))
    return points


async def fetch_open_interest_history(
    api: MarketApi, asset: str, after_ms: int, before_ms: int, into: list[OpenInterestResponse]
) -> None:
    symbol = market_symbol(asset)

    def params_of(first: int, last: int) -> dict[str, str]:
        return {"symbol": symbol, "period": HIST_PERIOD, "limit": str(HIST_PAGE_POINTS),
                "startTime": str(first), "endTime": str(last)}

    await md.fetch_windows(api, OPEN_INTEREST_HIST_PATH, params_of, lambda body: parse_open_interest_hist(body, symbol),
                           after_ms, before_ms, HIST_PAGE_POINTS * HIST_PERIOD_MS, into)


def open_interest_history_samples(responses: Sequence[OpenInterestResponse]) -> list[MarketSample]:
    samples = []
    for path, params, body in responses:
        symbol = params.get("symbol", "")
        if path != OPEN_INTEREST_HIST_PATH or not symbol.endswith("USDT"):
            continue
        for at_ms, usd, price in parse_open_interest_hist(body, symbol):
            samples.append(MarketSample(VENUE, symbol.removesuffix("USDT"), at_ms, mark_price=price,
                                        open_interest_usd=usd))
    return samples


def market_symbol(asset: str) -> str:
    return f"{asset}USDT"


class _MarketCollector:
    """Polls USD-M; keeps the funding intervals of fundingInfo for an hour."""

    def __init__(self) -> None:
        self._intervals: dict[str, float] = {}
        self._intervals_at_ms: int | None = None

    async def __call__(
        self, api: MarketApi, assets: Sequence[str], at_ms: int, samples: dict[str, MarketSample]
    ) -> None:
        refresh_due = self._intervals_at_ms is None or at_ms - self._intervals_at_ms >= FUNDING_INFO_REFRESH_MS
        if refresh_due:
            self._intervals_at_ms = at_ms  # also on failure: retry in an hour, not every poll
            try:
                intervals = await api.optional(FUNDING_INFO_PATH, None, parse_funding_info)
            except Exception:  # blocked or down: ask again next poll
                self._intervals_at_ms = None
                raise
            if intervals is not None:
                self._intervals = intervals
        body = await api.get(PREMIUM_INDEX_PATH, None)
        samples.update(parse_premium_index(body, assets, at_ms, self._intervals))
        for asset in assets:
            sample = samples.get(asset)
            if sample is None:
                continue
            symbol = market_symbol(asset)
            in_base = await api.optional(
                OPEN_INTEREST_PATH, {"symbol": symbol}, lambda body, s=symbol: parse_open_interest(body, s)
            )
            if in_base is not None and sample.mark_price is not None:
                sample = samples[asset] = replace(sample, open_interest_usd=in_base * sample.mark_price)
            ratio = await api.optional(
                LONG_SHORT_PATH,
                {"symbol": symbol, "period": "5m", "limit": "1"},
                lambda body, s=symbol: parse_long_short(body, s),
            )
            if ratio is not None:
                samples[asset] = replace(sample, long_short_ratio=ratio)


def reconnect_before_cutoff(tuning) -> float:
    """Binance (and Aster) drop every connection after 24 h: reconnect before, when we choose."""
    return tuning.binance_reconnect_after_s


def error_message(frame: object) -> str | None:
    """A short description of a Binance error frame, None for any other frame."""
    if type(frame) is not dict or "o" in frame:
        return None
    error = frame.get("error")
    if type(error) is dict:
        return f"error {shown(error.get('code'))}: {shown(error.get('msg'))}"
    if error is not None:
        return f"error: {shown(error)}"
    if "code" in frame and "msg" in frame:
        return f"error {shown(frame['code'])}: {shown(frame['msg'])}"
    return None


REST_URLS = {"usdm_rest_url": "https://fapi.binance.com", "coinm_rest_url": "https://dapi.binance.com"}
STREAMS = (
    StreamSpec(
        "usdm", "usdm_ws_url", "wss://fstream.binance.com/market/ws/!forceOrder@arr", parse_usdm,
        max_connection_s=reconnect_before_cutoff, rest_url_key="usdm_rest_url", caveat=SAMPLED,
        typed=typed_force_orders(BASE_COIN),
    ),
    StreamSpec(
        "coinm", "coinm_ws_url", "wss://dstream.binance.com/ws/!forceOrder@arr", parse_coinm,
        max_connection_s=reconnect_before_cutoff, rest_url_key="coinm_rest_url",
        metadata=(MetadataRequest(COINM_EXCHANGE_INFO_PATH),), caveat=SAMPLED,
        typed=typed_force_orders(None),
    ),
)
# Request weights as documented: premiumIndex without a symbol weighs 10;
# fundingInfo and the /futures/data endpoints are counted as 1 to be safe.
MARKET = MarketSpec(
    rest_url_key="usdm_rest_url",
    limit=2400,  # request weight per minute per IP
    window_ms=60_000,
    collector=_MarketCollector,
    weights={PREMIUM_INDEX_PATH: 10, FUNDING_INFO_PATH: 1, OPEN_INTEREST_PATH: 1, LONG_SHORT_PATH: 1,
             OPEN_INTEREST_HIST_PATH: 1},
    open_interest_history=OpenInterestHistory(
        paths=(OPEN_INTEREST_HIST_PATH,),
        period_ms=HIST_PERIOD_MS,
        reach_ms=HIST_REACH_MS,
        fetch=fetch_open_interest_history,
        samples=open_interest_history_samples,
        limits={OPEN_INTEREST_HIST_PATH: PathLimit(1000, 5 * MINUTE_MS)},
    ),
)
parse = dispatch(VENUE, STREAMS)
