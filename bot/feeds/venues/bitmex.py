"""BitMEX: the `liquidation` table of the realtime websocket (stream `realtime`)
and the contract sizes that price it.

Sources (BitMEX's own material, read 2026-12-02):
- WebSocket API, https://www.bitmex.com/app/wsAPI: endpoint `wss://ws.bitmex.com/realtime`,
  topics in the connection string (`?subscribe=liquidation`), the topic list
  (`"liquidation", // Liquidation orders as they're entered into the book`), table
  diffing (`partial`, `insert`, `update`, `delete`) and #Heartbeats ("no messages received
  in 5 seconds ... send ... the literal string 'ping'. Expect ... the literal string 'pong'").
- Official connectors, https://github.com/BitMEX/api-connectors: `swagger.json`
  definition `Liquidation` ("Active Liquidations": `orderID`, `symbol`, `side`, `price`,
  `leavesQty`; no timestamp) and `Instrument`; the welcome / subscribe-ack frames of
  `official-ws/nodejs/test/fixtures/data.js`.
- Contract sizes, https://support.bitmex.com/hc/en-gb/articles/16797952159261 ("How Do I
  Calculate Contract Size ... Using the /instrument Endpoint"): inverse
  `multiplier / underlyingToSettleMultiplier` (XBTUSD: 1 USD), linear
  `1 / underlyingToPositionMultiplier` (underlying coin), quanto "multiplier in settlCurrency".
- Rate limits: 30 unauthenticated REST requests a minute; websocket connections 60 an hour
  (https://blog.bitmex.com/api_announcement/updates-to-rate-limits/).

Rules:
- Each liquidation order counts once, when it is inserted (`action: insert`), at its
  `leavesQty` then (the whole order). `update` (partial fills shrink `leavesQty`),
  `delete` (filled or pulled) and `partial` add nothing. Choice: `partial`, the orders
  already resting when we connect, is skipped, since it would count them again after
  every reconnect (without a venue timestamp the store cannot tell them apart).
- The rows carry no time: an event is dated by `received_ms`, the receive time
  (the recording line's `at`), so a replay dates it the same way.
- `side` is the liquidation ORDER's side (the docs do not spell it out; they are
  "liquidation orders"): a Sell closes a long, so "Sell" = long liquidated.
- Quantity: `leavesQty` contracts. Notional from `GET /api/v1/instrument/active`:
  inverse `contracts * multiplier / underlyingToSettleMultiplier` (USD); linear
  `contracts / underlyingToPositionMultiplier * price`; quanto `contracts * price *
  multiplier` in settlement units (XBt = 1e-8 XBT, USDt = 1e-6 USDT). Choice: a quanto
  settled in XBt is converted with the `markPrice` of XBTUSD in the same response, so
  its USD value is as fresh as the last metadata refresh. Choice: only instruments
  quoted in USD, USDT or USDC are priced; the others (XBTEUR, XBT-quoted futures)
  are counted as unpriced.
"""

from __future__ import annotations

import math
import re
from bot.core.models import LiquidationEvent, Side
from bot.feeds.contract import Heartbeat, MetadataRequest, StreamSpec, dispatch
from bot.feeds.errors import (
    MAX_PRICE,
    MAX_QUANTITY,
    FrameError,
    Unpriced,
    instrument_id,
    positive_number,
    shown,
    timestamp_ms,
)
from bot.feeds.instruments import ContractBook, ContractSpec, positive_or_none
from bot.core.symbols import asset_of

VENUE = "bitmex"
TITLE = "BitMEX"
TABLE = "liquidation"
INSTRUMENTS_PATH = "/api/v1/instrument/active"
IDLE_PING_S = 5.0  # wsAPI#Heartbeats: "no messages received in 5 seconds"
USD_QUOTES = frozenset({"USD", "USDT", "USDC"})
# Settlement units per whole coin: XBt is the satoshi, USDt a millionth of a USDT.
_SETTLE_UNITS = {"XBt": 1e8, "USDt": 1e6}
_XBT_PRICE_SYMBOL = "XBTUSD"
_LIQUIDATED_BY_ORDER_SIDE = {"Sell": Side.LONG, "Buy": Side.SHORT}
_IGNORED_ACTIONS = frozenset({"partial", "update", "delete"})
_FUTURE_SUFFIX = re.compile(r"[FGHJKMNQUVXZ]\d\d$")  # XBTZ25, XBTUSDTH26


def asset_of_symbol(symbol: str) -> str:
    """The asset of a BitMEX symbol: XBTUSD, XBTUSDT, XBTZ25 -> BTC; ETHUSD -> ETH."""
    base = asset_of(_FUTURE_SUFFIX.sub("", symbol) or symbol)
    return "BTC" if base == "XBT" else base


def _rows_of(frame: object) -> list | None:
    """The inserted rows of a frame, or None for anything that adds nothing."""
    if type(frame) is not dict:
        if frame == "pong":
            return None
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    table = frame.get("table")
    if table is None:
        # Welcome {"info": ...}, acks {"success": true, "subscribe": ...}, errors {"error": ...}.
        if "info" in frame or "success" in frame or "error" in frame or "subscribe" in frame:
            return None
        raise FrameError("no 'table' in frame")
    if table != TABLE:
        raise FrameError(f"unexpected table {shown(table)}")
    action = frame.get("action")
    if type(action) is str and action in _IGNORED_ACTIONS:
        return None
    if action != "insert":
        raise FrameError(f"unknown action {shown(action)}")
    rows = frame.get("data")
    if type(rows) is not list:
        raise FrameError("'data' is not a list")
    return rows


def parse_realtime(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    rows = _rows_of(frame)
    if rows is None:
        return []
    if received_ms is None:
        raise FrameError("bitmex rows carry no time: a receive time is needed")
    at_ms = timestamp_ms(received_ms, "received_ms")
    events: list[LiquidationEvent] = []
    unpriced = Unpriced()
    for row in rows:
        if type(row) is not dict:
            raise FrameError(f"data item is not an object: {shown(row)}")
        try:
            instrument_id(row["orderID"], "data[].orderID")
            symbol = instrument_id(row["symbol"], "data[].symbol")
            side = row["side"]
            price = positive_number(row["price"], "data[].price", MAX_PRICE)
            quantity = positive_number(row["leavesQty"], "data[].leavesQty", MAX_QUANTITY)
        except KeyError as missing:
            raise FrameError(f"missing field data[].{missing.args[0]}") from None
        liquidated = _LIQUIDATED_BY_ORDER_SIDE.get(side) if type(side) is str else None
        if liquidated is None:
            raise FrameError(f"data[].side is not Buy/Sell: {shown(side)}")
        spec = unpriced.spec_of(contracts, symbol)
        if spec is None:
            continue
        events.append(
            LiquidationEvent(
                VENUE, "realtime", symbol, asset_of_symbol(symbol), liquidated,
                price, quantity, spec.notional_usd(quantity, price, "data[].leavesQty"), at_ms,
            )
        )
    return unpriced.checked(events)


def error_message(frame: object) -> str | None:
    """A short description of a BitMEX error frame (`{"status": 400, "error": ...}`), else None."""
    if type(frame) is not dict or "error" not in frame or "table" in frame:
        return None
    return f"error {shown(frame.get('status'))}: {shown(frame['error'])}"


# -- contract sizes --------------------------------------------------------


def _finite(value: object) -> float | None:
    """A signed metadata number (BitMEX inverse multipliers are negative), None if not one."""
    if type(value) not in (int, float):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int above 1.8e308
        return None
    return number if math.isfinite(number) and number != 0.0 else None


def _spec(entry: dict, xbt_usd: float | None) -> ContractSpec | None:
    """What one contract of `entry` is worth, None when it cannot be priced in USD."""
    if entry.get("quoteCurrency") not in USD_QUOTES:
        return None
    if entry.get("isInverse") is True:
        multiplier = _finite(entry.get("multiplier"))
        to_settle = _finite(entry.get("underlyingToSettleMultiplier"))
        size = multiplier / to_settle if multiplier is not None and to_settle is not None else 0.0
        return ContractSpec(size, inverse=True) if size > 0.0 else None
    if entry.get("isQuanto") is True:
        multiplier = positive_or_none(entry.get("multiplier"))
        units = _SETTLE_UNITS.get(entry.get("settlCurrency"))  # type: ignore[arg-type]
        settle_usd = xbt_usd if entry.get("settlCurrency") == "XBt" else 1.0
        if multiplier is None or units is None or settle_usd is None:
            return None
        return ContractSpec(multiplier / units * settle_usd, inverse=False)
    per_coin = positive_or_none(entry.get("underlyingToPositionMultiplier"))
    return ContractSpec(1.0 / per_coin, inverse=False) if per_coin is not None else None


def instruments_book(body: object) -> ContractBook:
    """From `GET /api/v1/instrument/active` (a JSON list of instruments).

    Instruments that cannot be priced in USD (indices, non-USD quotes, missing
    multipliers) are left out; a frame that names them raises UnknownInstrument.
    """
    if type(body) is not list:
        raise FrameError("bitmex instrument/active: body is not a list")
    for entry in body:
        if type(entry) is not dict:
            raise FrameError(f"bitmex instrument/active: entry is not an object: {shown(entry)}")
    xbt_usd = next(
        (positive_or_none(e.get("markPrice")) for e in body if e.get("symbol") == _XBT_PRICE_SYMBOL), None
    )
    specs: dict[str, ContractSpec] = {}
    for entry in body:
        symbol = entry.get("symbol")
        spec = _spec(entry, xbt_usd) if type(symbol) is str and symbol else None
        if spec is not None:
            specs[symbol] = spec  # type: ignore[index]
    return ContractBook(specs)


METADATA = {INSTRUMENTS_PATH: instruments_book}


def _heartbeat(tuning) -> Heartbeat:
    return Heartbeat("ping", IDLE_PING_S, idle_only=True)


REST_URLS = {"rest_url": "https://www.bitmex.com"}
STREAMS = (
    StreamSpec(
        "realtime", "ws_url", "wss://ws.bitmex.com/realtime?subscribe=liquidation", parse_realtime,
        heartbeat=_heartbeat, metadata=(MetadataRequest(INSTRUMENTS_PATH),),
    ),
)
MARKET = None
parse = dispatch(VENUE, STREAMS)
