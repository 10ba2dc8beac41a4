"""HTX (Huobi DM): `public.*.liquidation_orders` streams (`linear-swap`, `swap`)
and the coin-margined contract sizes.

Sources (HTX's own documentation, read 2026-12-02):
- USDT-M: https://www.htx.com/en-us/opend/newApiPages/?id=8cb7e25d-77b5-11ed-9966-0242ac110003
  ("[General] Subscribe Liquidation Orders (no authentication)")
- Coin-M: https://www.htx.com/en-us/opend/newApiPages/?id=5d51592a-77b6-11ed-9966-0242ac110003
- Heartbeat ("Order Push Heartbeat"): https://huobiapi.github.io/docs/usdt_swap/v1/en/#websocket-heartbeat-and-authentication-interface
- Trade types (official demos, e.g. https://github.com/huobiapi/Futures-Python-demo):
  "4: 卖出平多 (sell, close long) ... 5: 卖出强平 (forced sell), 6: 买入强平 (forced buy)"

Streams `wss://api.hbdm.com/linear-swap-notification` (USDT-margined swaps) and
`wss://api.hbdm.com/swap-notification` (coin-margined swaps), subscribed with
`{"op":"sub","cid":"liqbot","topic":"public.*.liquidation_orders"}` (`*`: every
contract; without `business_type` the USDT-M endpoint sends swaps only). Every
frame is gzip-compressed: `inflate` (the streams' `unwrap`) runs before decoding,
so recordings hold the JSON. HTX pings `{"op":"ping","ts":"..."}` every 5 s and drops a client that
ignores 5 of them: `answer` returns the `{"op":"pong","ts":<the same ts>}`.

`data` is a list of liquidation orders:
- side: `direction` is the ORDER's direction (buy/sell; the English table says
  "Long or short"). A forced sell closes a long, so `sell`: the long was
  liquidated, `buy`: the short. `offset` is `close` (`both` in one-way mode);
  a liquidation that would `open` is refused as a malformed frame.
- linear-swap: `volume` contracts, `amount` base coin, `trade_turnover` the
  value in USDT ("liquidation amount (quotation token)"): the notional, no
  contract sizes needed (documented example: 432 x 0.7858 = 339.4656).
- swap (coin-margined): `volume` contracts of `contract_size` USD each (BTC-USD
  100, most others 10) from `GET {rest_url}/swap-api/v1/swap_contract_info`:
  notional = volume x contract_size (documented example: 173 contracts of BTC-USD
  at 17102.9 = 1.0115 BTC = 17,300 USD). No `trade_turnover` on this endpoint.
- `created_at`: the order's creation time, ms.

Public REST market data: 800 requests/s per IP; we read contract info once per refresh.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

from bot.core.models import LiquidationEvent, Side
from bot.feeds.contract import MetadataRequest, StreamSpec, dispatch
from bot.feeds.errors import (
    MAX_NOTIONAL_USD,
    MAX_PRICE,
    MAX_QUANTITY,
    FrameError,
    Unpriced,
    instrument_id,
    positive_number,
    shown,
    timestamp_ms,
)
from bot.feeds.instruments import USD, ContractBook, ContractSpec, positive_or_none
from bot.core.symbols import asset_of

VENUE = "htx"
TITLE = "HTX"
TOPIC = "public.*.liquidation_orders"
TOPIC_PREFIX = "public."
TOPIC_SUFFIX = ".liquidation_orders"
CONTRACT_INFO_PATH = "/swap-api/v1/swap_contract_info"
MAX_INFLATED_BYTES = 8 * 2**20  # a compressed frame must not page in unbounded memory
_LIQUIDATED_BY_ORDER_DIRECTION = {"sell": Side.LONG, "buy": Side.SHORT}
_CLOSING_OFFSETS = frozenset({"close", "both"})


def inflate(message: str | bytes) -> str | bytes:
    """A received websocket message as JSON text: HTX gzips every binary frame."""
    if isinstance(message, str):
        return message
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(message, MAX_INFLATED_BYTES)
    except zlib.error as error:
        raise FrameError(f"not gzip: {error}") from None
    if inflater.unconsumed_tail:
        raise FrameError(f"inflates to more than {MAX_INFLATED_BYTES} bytes")
    return text


def answer(frame: object) -> str | None:
    """The pong HTX expects for its ping frame (the same `ts`, as sent), else None."""
    if type(frame) is not dict or frame.get("op") != "ping" or "ts" not in frame:
        return None
    return json.dumps({"op": "pong", "ts": frame["ts"]}, separators=(",", ":"))


def _items_of(frame: object) -> list | None:
    """The frame's liquidation orders, or None for a control frame."""
    if type(frame) is not dict:
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    op = frame.get("op")
    if op != "notify":
        # ping, sub/unsub acks, close, error: no liquidations.
        if type(op) is str:
            return None
        raise FrameError(f"unexpected op {shown(op)}")
    topic = frame.get("topic")
    if type(topic) is not str or not (topic.startswith(TOPIC_PREFIX) and topic.endswith(TOPIC_SUFFIX)):
        raise FrameError(f"unexpected topic {shown(topic)}")
    items = frame.get("data")
    if type(items) is not list:
        raise FrameError("'data' is not a list")
    return items


def _liquidated(item: dict) -> Side:
    direction = item["direction"]
    liquidated = _LIQUIDATED_BY_ORDER_DIRECTION.get(direction) if type(direction) is str else None
    if liquidated is None:
        raise FrameError(f"data[].direction is not buy/sell: {shown(direction)}")
    offset = item["offset"]
    if type(offset) is not str or offset not in _CLOSING_OFFSETS:
        raise FrameError(f"data[].offset is not close/both: {shown(offset)}")
    return liquidated


def _parse(frame: object, contracts: ContractBook | None, stream: str, linear: bool) -> list[LiquidationEvent]:
    items = _items_of(frame)
    if items is None:
        return []
    events: list[LiquidationEvent] = []
    unpriced = Unpriced()
    for item in items:
        if type(item) is not dict:
            raise FrameError(f"data item is not an object: {shown(item)}")
        try:
            instrument = instrument_id(item["contract_code"], "data[].contract_code")
            liquidated = _liquidated(item)
            price = positive_number(item["price"], "data[].price", MAX_PRICE)
            volume = positive_number(item["volume"], "data[].volume", MAX_QUANTITY)
            at_ms = timestamp_ms(item["created_at"], "data[].created_at")
            turnover = (
                positive_number(item["trade_turnover"], "data[].trade_turnover", MAX_NOTIONAL_USD)
                if linear else None
            )
        except KeyError as missing:
            raise FrameError(f"missing field data[].{missing.args[0]}") from None
        if turnover is not None:
            notional_usd = USD.notional_usd(turnover, price, "data[].trade_turnover")
        else:
            spec = contracts.get(instrument) if contracts is not None else None
            if spec is None or not spec.inverse:
                unpriced.add(instrument)
                continue
            notional_usd = spec.notional_usd(volume, price, "data[].volume")
        events.append(
            LiquidationEvent(
                VENUE, stream, instrument, asset_of(instrument), liquidated,
                price, volume, notional_usd, at_ms,
            )
        )
    return unpriced.checked(events)


def parse_linear_swap(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    return _parse(frame, contracts, "linear-swap", linear=True)


def parse_swap(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    return _parse(frame, contracts, "swap", linear=False)


def error_message(frame: object) -> str | None:
    """A short description of an HTX error reply (`err-code` other than 0), else None."""
    if type(frame) is not dict:
        return None
    code = frame.get("err-code")
    if code is None or code == 0:
        return None
    return f"{shown(frame.get('op'))} error {shown(code)}: {shown(frame.get('err-msg'))}"


# -- contract sizes ---------------------------------------------------------


def contract_info_book(body: object) -> ContractBook:
    """From `GET /swap-api/v1/swap_contract_info`: every coin-margined swap is
    worth `contract_size` USD a contract."""
    if type(body) is not dict:
        raise FrameError("htx contract info: body is not an object")
    if body.get("status") != "ok":
        raise FrameError(
            f"htx contract info: status {shown(body.get('status'))}: {shown(body.get('err-msg'))}"
        )
    entries = body.get("data")
    if type(entries) is not list:
        raise FrameError("htx contract info: no 'data' list")
    specs: dict[str, ContractSpec] = {}
    for entry in entries:
        if type(entry) is not dict:
            raise FrameError(f"htx contract info: entry is not an object: {shown(entry)}")
        code = entry.get("contract_code")
        size = positive_or_none(entry.get("contract_size"))
        if type(code) is str and code and size is not None:
            specs[code] = ContractSpec(size, inverse=True)
    return ContractBook(specs)


METADATA = {CONTRACT_INFO_PATH: contract_info_book}


# -- stream specs -----------------------------------------------------------

SUBSCRIBE_MESSAGE = json.dumps({"op": "sub", "cid": "liqbot", "topic": TOPIC}, separators=(",", ":"))


def _subscribe(symbols: Sequence[str]) -> list[str]:
    return [SUBSCRIBE_MESSAGE]


REST_URLS = {"rest_url": "https://api.hbdm.com"}
STREAMS = (
    StreamSpec(
        "linear-swap", "linear_swap_ws_url", "wss://api.hbdm.com/linear-swap-notification",
        parse_linear_swap, subscribe=_subscribe, unwrap=inflate, answer=answer,
    ),
    StreamSpec(
        "swap", "swap_ws_url", "wss://api.hbdm.com/swap-notification", parse_swap,
        subscribe=_subscribe, metadata=(MetadataRequest(CONTRACT_INFO_PATH),), unwrap=inflate, answer=answer,
    ),
)
MARKET = None  # no market context from this venue yet
parse = dispatch(VENUE, STREAMS)
