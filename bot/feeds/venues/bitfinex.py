"""Bitfinex: the `status` channel's global liquidation feed `liq:global`
(stream `public`).

Sources (Bitfinex's docs and official SDKs, read 2026-12-02):
- https://docs.bitfinex.com/reference/ws-public-status : subscribe
  `{"event":"subscribe","channel":"status","key":"liq:global"}`; updates
  `[CHANNEL_ID, [["pos", POS_ID, TIME_MS, null, SYMBOL, AMOUNT, BASE_PRICE, null, IS_MATCH,
  IS_MARKET_SOLD, null, LIQUIDATION_PRICE]]]`; "IS_MATCH: 0 -> initial liquidation trigger,
  1 market execution"; "LIQUIDATION_PRICE: Price at which the liquidation was triggered".
- https://docs.bitfinex.com/reference/rest-public-liquidations (the same record): "AMOUNT:
  Size of the position. Positive values means a long position, negative values means a
  short position."; "BASE_PRICE: The price at which user entered the position".
- https://docs.bitfinex.com/docs/ws-general : "Message (JSON array) lengths should never be
  hardcoded. New fields may be appended"; https://docs.bitfinex.com/docs/ws-public : 20
  connections a minute, 25 channels a connection.
- Official SDKs: bitfinexcom/bitfinex-api-py (`Liquidation` serializer labels, `"hb"`
  heartbeats, info code 20051 = reconnect) and bitfinexcom/bfx-api-node-models
  (`lib/liquidations.js` field indexes).

Rules:
- Only the trigger (IS_MATCH 0) counts: it carries the whole position; the market
  executions (IS_MATCH 1) that follow would count it again.
- AMOUNT > 0: a long was liquidated; the quantity is |AMOUNT| base coin.
- Price choice: LIQUIDATION_PRICE, where the position was liquidated, when it is a
  positive number; else BASE_PRICE. BASE_PRICE is the position's ENTRY price, so the
  issue's |AMOUNT| x BASE_PRICE would value the position where it was opened.
- TIME_MS is a float in the docs' own example (1574697680828.2002): taken to the ms.
- Symbols: `t` + pair (tBTCUSD) or `tBASE:QUOTE` (tBTCF0:USTF0 perpetuals). Choice: only
  pairs quoted in USD, UST (USDt) or USTF0 are priced; others (BTC, EUR, test pairs)
  are counted as unpriced.
- Heartbeat: the server sends `[CHANNEL_ID, "hb"]` on a quiet channel; we also send
  `{"event":"ping","cid":1}` after a quiet ping interval (answered `{"event":"pong"}`).

Backfill (`HISTORY`): `GET {rest_url}/v2/liquidations/hist`
(https://docs.bitfinex.com/reference/rest-public-liquidations), public, "Rate Limit:
3 reqs/min"; `sort`, `start`, `end`, `limit` as the official SDK sends them
(bitfinex-api-py `get_liquidations`), which also reads the body as `[[record], ...]`:
each item holds one "pos" record of the stream's layout, so the stream's rules above
price it and a backfilled row is the live one. We ask `sort=-1` (newest first),
`limit=500` (a public client observed 500-row pages; the page we read gives no
maximum) and page back with `end=<oldest MTS>` (inclusive: the boundary is read
twice, stored once). Errors come as `["error", CODE, "msg"]`; 11010 is the rate
limit. The docs name field 11 PRICE_ACQUIRED here and LIQUIDATION_PRICE on the
stream: same index, read the same way. The venue keeps more than a day; we fill
at most a day back (at 3 requests a minute a deep walk would take long).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from bot.core.models import DAY_MS, LiquidationEvent, Side
from bot.feeds import marketdata as md
from bot.feeds.contract import Heartbeat, HistoryPage, HistorySpec, StreamSpec, dispatch
from bot.feeds.errors import (
    MAX_PRICE,
    MAX_QUANTITY,
    FrameError,
    UnknownInstrument,
    Unpriced,
    instrument_id,
    positive_number,
    shown,
    timestamp_ms,
)
from bot.feeds.instruments import BASE_COIN, ContractBook

VENUE = "bitfinex"
TITLE = "Bitfinex"
KEY = "liq:global"
LIQUIDATIONS_PATH = "/v2/liquidations/hist"
HISTORY_PAGE_ROWS = 500
RATE_LIMIT_CODE = 11010  # ["error", 11010, "ratelimit: error"]
USD_QUOTES = frozenset({"USD", "UST", "USTF0"})
_CONTROL_EVENTS = frozenset({"info", "subscribed", "unsubscribed", "pong", "conf", "error"})
# Indexes in a "pos" record (docs order; later fields may be appended).
_MTS, _SYMBOL, _AMOUNT, _BASE_PRICE, _IS_MATCH, _LIQUIDATION_PRICE = 2, 4, 5, 6, 8, 11
_MIN_FIELDS = _IS_MATCH + 1


def _pair(symbol: str) -> tuple[str, str]:
    """(base, quote) of a trading symbol: tBTCUSD -> (BTC, USD); tBTCF0:USTF0 -> (BTCF0, USTF0)."""
    pair = symbol[1:]
    if ":" in pair:
        base, quote = pair.split(":", 1)
        return base, quote
    return pair[:-3], pair[-3:]


def asset_of_symbol(symbol: str) -> str:
    """tBTCUSD, tBTCF0:USTF0 -> BTC."""
    base = _pair(symbol)[0]
    return base[:-2] if base.endswith("F0") and len(base) > 2 else base


def _records_of(frame: object) -> list | None:
    """The liquidation records of an update, or None for a control frame."""
    if type(frame) is dict:
        event = frame.get("event")
        if type(event) is str and event in _CONTROL_EVENTS:
            return None
        raise FrameError(f"unexpected event {shown(event)}")
    if type(frame) is not list or len(frame) < 2 or type(frame[0]) is not int:
        raise FrameError(f"expected [CHANNEL_ID, payload], got {shown(frame)}")
    payload = frame[1]
    if payload == "hb":
        return None
    if type(payload) is not list:
        raise FrameError(f"payload is not a list: {shown(payload)}")
    return payload


def _time_ms(value: object) -> int:
    # The docs' example has fractional ms; a bool is not a time.
    if type(value) is float and math.isfinite(value):
        value = int(value)
    return timestamp_ms(value, "TIME_MS")


def _price(record: list) -> float:
    liquidation_price = record[_LIQUIDATION_PRICE] if len(record) > _LIQUIDATION_PRICE else None
    if liquidation_price is not None:
        return positive_number(liquidation_price, "LIQUIDATION_PRICE", MAX_PRICE)
    return positive_number(record[_BASE_PRICE], "BASE_PRICE", MAX_PRICE)


def parse_public(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    records = _records_of(frame)
    return [] if records is None else _liquidations(records)


def _liquidations(records: list) -> list[LiquidationEvent]:
    """The liquidations of "pos" records (the stream's and the REST history's)."""
    events: list[LiquidationEvent] = []
    unpriced = Unpriced()
    for record in records:
        if type(record) is not list or len(record) < _MIN_FIELDS or record[0] != "pos":
            raise FrameError(f"not a 'pos' record: {shown(record)}")
        is_match = record[_IS_MATCH]
        if type(is_match) is not int or is_match not in (0, 1):
            raise FrameError(f"IS_MATCH is not 0/1: {shown(is_match)}")
        symbol = instrument_id(record[_SYMBOL], "SYMBOL")
        if not symbol.startswith("t") or len(symbol) < 5:
            raise FrameError(f"SYMBOL is not a trading pair: {shown(symbol)}")
        amount = record[_AMOUNT]
        if type(amount) not in (int, float):
            raise FrameError(f"AMOUNT is not a number: {shown(amount)}")
        quantity = positive_number(abs(amount), "AMOUNT", MAX_QUANTITY)
        price = _price(record)
        at_ms = _time_ms(record[_MTS])
        if is_match == 1:
            continue  # a market execution of a trigger already counted
        if _pair(symbol)[1] not in USD_QUOTES:
            unpriced.add(symbol)
            continue
        events.append(
            LiquidationEvent(
                VENUE, "public", symbol, asset_of_symbol(symbol), Side.LONG if amount > 0 else Side.SHORT,
                price, quantity, BASE_COIN.notional_usd(quantity, price, "AMOUNT"), at_ms,
            )
        )
    return unpriced.checked(events)


# -- liquidation history (backfill) ----------------------------------------


def history_page(body: object, contracts: ContractBook | None = None) -> HistoryPage:
    """One `liquidations/hist` body: `[[record], ...]`, newest first; the stream's rules."""
    if type(body) is list and body[:1] == ["error"]:
        code = body[1] if len(body) > 1 else None
        raise md.VenueError(VENUE, code, body[2] if len(body) > 2 else None, rate_limited=code == RATE_LIMIT_CODE)
    if type(body) is not list or any(type(item) is not list or len(item) != 1 for item in body):
        raise FrameError(f"liquidations/hist: not a list of [record]: {shown(body)}")
    records = [item[0] for item in body]
    try:
        events, unpriced = _liquidations(records), 0
    except UnknownInstrument as unknown:
        events, unpriced = unknown.events, unknown.unpriced_count
    stamps = [_time_ms(record[_MTS]) for record in records]  # checked by _liquidations
    return HistoryPage(events, unpriced, min(stamps, default=None), len(records) >= HISTORY_PAGE_ROWS)


def _history_queries(contracts: ContractBook | None) -> list[dict[str, str]]:
    return [{"limit": str(HISTORY_PAGE_ROWS), "sort": "-1"}]  # one market-wide series, newest first


def _older_history(query: dict[str, str], page: HistoryPage) -> dict[str, str] | None:
    # `end` is inclusive: the boundary ms is read twice and stored once.
    if not page.full or page.oldest_ms is None:
        return None
    return {**query, "end": str(page.oldest_ms)}


def error_message(frame: object) -> str | None:
    """A short description of an error event (`{"event":"error","msg","code"}`), else None."""
    if type(frame) is not dict or frame.get("event") != "error":
        return None
    return f"error {shown(frame.get('code'))}: {shown(frame.get('msg'))}"


def _compact(message: object) -> str:
    return json.dumps(message, separators=(",", ":"))


SUBSCRIBE_MESSAGE = _compact({"event": "subscribe", "channel": "status", "key": KEY})
HEARTBEAT_MESSAGE = _compact({"event": "ping", "cid": 1})


def _subscribe(symbols: Sequence[str]) -> list[str]:
    return [SUBSCRIBE_MESSAGE]


def _heartbeat(tuning) -> Heartbeat:
    return Heartbeat(HEARTBEAT_MESSAGE, tuning.ping_interval_s, idle_only=True)


REST_URLS = {"rest_url": "https://api-pub.bitfinex.com"}  # the liquidation history (the feed needs no metadata)
STREAMS = (
    StreamSpec("public", "ws_url", "wss://api-pub.bitfinex.com/ws/2", parse_public,
               subscribe=_subscribe, heartbeat=_heartbeat),
)
HISTORY = HistorySpec(
    stream="public",
    path=LIQUIDATIONS_PATH,
    queries=_history_queries,
    older=_older_history,
    page=history_page,
    horizon_ms=DAY_MS,  # our choice: the venue keeps more, at 3 requests a minute
    limit=3,  # requests per minute
    window_ms=60_000,
)
METADATA: dict = {}
MARKET = None
parse = dispatch(VENUE, STREAMS)
