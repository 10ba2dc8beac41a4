"""Gate futures: `futures.public_liquidates` streams (`usdt`, `btc`) and contract sizes.

Sources (Gate's own documentation, read 2026-12-02):
- https://www.gate.com/docs/developers/futures/ws/en/#public-liquidates-order-api
- https://www.gate.io/docs/developers/futures/ws/zh_CN/ (changelog 2026-08-20: the
  channel now pushes every liquidation of a contract in a 1 s cycle as one array,
  early when 20 are cached; it used to drop all but one per contract per second)
- https://www.gate.com/docs/developers/apiv4/en/#list-all-futures-contracts and the
  Contract model of the official SDK, https://github.com/gateio/gateapi-python/blob/master/docs/Contract.md

Streams `wss://fx-ws.gateio.ws/v4/ws/usdt` (USDT-settled) and `/btc` (BTC-settled),
both subscribed to every contract with
`{"time":T,"channel":"futures.public_liquidates","event":"subscribe","payload":["!all"]}`.
Every request carries `time`, the send time in seconds ("must not exceed 60 seconds"
from the server's), so messages are stamped when sent. App-level keepalive
`{"time":T,"channel":"futures.ping"}` (answered by `futures.pong`). We connect with
the header `X-Gate-Size-Decimal: 1`: without it Gate sends sizes as integers.

`result` is a list of `{"price","size","time","contract"}`; `time` is in ms (the
older English page names it `time_ms`, which is read first when present).

- side: the docs do not say which sign is which on this channel. Gate's order
  model says "Specify positive number to make a bid, and negative number to ask":
  a liquidation ORDER with `size < 0` sells, which closes a long. So `size < 0`:
  the long was liquidated; `size > 0`: the short. (An inference, pinned in tests.)
- quantity: `abs(size)` contracts.
- usdt (contract `type: direct`): a contract is `quanto_multiplier` base coin,
  notional `contracts x quanto_multiplier x price`.
- btc (contract `type: inverse`, BTC_USD): the docs give no face value; we take
  Gate's BTC-margined perpetual as 1 USD a contract, whatever `quanto_multiplier`
  says (it is 0 or 1 in responses other projects recorded). Notional = contracts.

Contract sizes from `GET {rest_url}/api/v4/futures/{settle}/contracts` (public
REST, 200 requests / 10 s per endpoint; we make one call per settle per refresh).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

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

VENUE = "gate"
TITLE = "Gate"
CHANNEL = "futures.public_liquidates"
PING_CHANNEL = "futures.ping"
PONG_CHANNEL = "futures.pong"
ALL_CONTRACTS = "!all"
CONTRACTS_PATH = "/api/v4/futures/{settle}/contracts"
SETTLES = ("usdt", "btc")
SIZE_DECIMAL_HEADER = ("X-Gate-Size-Decimal", "1")
INVERSE_CONTRACT_USD = 1.0  # BTC_USD: one contract is one USD (see the docstring)


def _items_of(frame: object) -> list | None:
    """The frame's liquidations, or None for a control frame."""
    if type(frame) is not dict:
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    channel = frame.get("channel")
    if channel is None:
        # {"type": "upgrade", "msg": "The connection will soon be closed..."}: a notice.
        if "type" in frame and "msg" in frame:
            return None
        raise FrameError("no channel in frame")
    if channel == PONG_CHANNEL:
        return None
    if channel != CHANNEL:
        raise FrameError(f"unexpected channel {shown(channel)}")
    event = frame.get("event")
    if event in ("subscribe", "unsubscribe"):
        return None
    if event != "update":
        raise FrameError(f"unexpected event {shown(event)}")
    items = frame.get("result")
    if type(items) is not list:
        raise FrameError("'result' is not a list")
    return items


def _signed_size(value: object) -> float:
    """`size` (an integer, or a decimal string with X-Gate-Size-Decimal) as a non-zero float."""
    if value is True or value is False or type(value) not in (int, float, str):
        raise FrameError(f"result[].size is not a number: {shown(value)}")
    try:
        size = float(value)
    except (ValueError, OverflowError):  # OverflowError: an int above 1.8e308
        raise FrameError(f"result[].size is not a number: {shown(value)}") from None
    # Written so that NaN fails too.
    if not 0.0 < abs(size) <= MAX_QUANTITY:
        raise FrameError(f"result[].size out of range: {shown(value)}")
    return size


def _parse(frame: object, contracts: ContractBook | None, stream: str) -> list[LiquidationEvent]:
    items = _items_of(frame)
    if items is None:
        return []
    events: list[LiquidationEvent] = []
    unpriced = Unpriced()
    for item in items:
        if type(item) is not dict:
            raise FrameError(f"result item is not an object: {shown(item)}")
        try:
            instrument = instrument_id(item["contract"], "result[].contract")
            size = _signed_size(item["size"])
            price = positive_number(item["price"], "result[].price", MAX_PRICE)
            at_ms = timestamp_ms(item["time_ms"] if "time_ms" in item else item["time"], "result[].time")
        except KeyError as missing:
            raise FrameError(f"missing field result[].{missing.args[0]}") from None
        spec = unpriced.spec_of(contracts, instrument)
        if spec is None:
            continue
        quantity = abs(size)
        events.append(
            LiquidationEvent(
                VENUE, stream, instrument, asset_of(instrument),
                Side.LONG if size < 0 else Side.SHORT,
                price, quantity, spec.notional_usd(quantity, price, "result[].size"), at_ms,
            )
        )
    return unpriced.checked(events)


def parse_usdt(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    return _parse(frame, contracts, "usdt")


def parse_btc(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    return _parse(frame, contracts, "btc")


def error_message(frame: object) -> str | None:
    """A short description of a Gate error reply (`"error": {"code", "message"}`), else None."""
    if type(frame) is not dict:
        return None
    error = frame.get("error")
    if error is None:
        return None
    if type(error) is dict:
        return f"{shown(frame.get('event'))} error {shown(error.get('code'))}: {shown(error.get('message'))}"
    return f"error: {shown(error)}"


# -- contract sizes ---------------------------------------------------------


def contracts_book(body: object) -> ContractBook:
    """From `GET /api/v4/futures/{settle}/contracts` (a JSON list of contracts).

    `type: direct`: `quanto_multiplier` base coin a contract; `type: inverse`: one
    USD a contract. Entries without a usable size are left out (a frame naming
    them raises UnknownInstrument).
    """
    if type(body) is dict and "label" in body:
        raise FrameError(f"gate contracts: {shown(body.get('label'))}: {shown(body.get('message'))}")
    if type(body) is not list:
        raise FrameError("gate contracts: body is not a list")
    specs: dict[str, ContractSpec] = {}
    for entry in body:
        if type(entry) is not dict:
            raise FrameError(f"gate contracts: entry is not an object: {shown(entry)}")
        name = entry.get("name")
        if type(name) is not str or not name:
            continue
        contract_type = entry.get("type")
        if contract_type == "inverse":
            specs[name] = ContractSpec(INVERSE_CONTRACT_USD, inverse=True)
        elif contract_type == "direct":
            multiplier = positive_or_none(entry.get("quanto_multiplier"))
            if multiplier is not None:
                specs[name] = ContractSpec(multiplier, inverse=False)
    return ContractBook(specs)


METADATA = {CONTRACTS_PATH.format(settle=settle): contracts_book for settle in SETTLES}


# -- stream specs -----------------------------------------------------------


def _request(channel: str, **fields: object) -> str:
    # `time` is a placeholder here: `stamp` writes the send time into it.
    return json.dumps({"time": 0, "channel": channel, **fields}, separators=(",", ":"))


def stamp(message: str, now_ms: int) -> str:
    """`message` with its `time` set to `now_ms`, in seconds (Gate checks it)."""
    request = json.loads(message)
    request["time"] = now_ms // 1000
    return json.dumps(request, separators=(",", ":"))


SUBSCRIBE_MESSAGE = _request(CHANNEL, event="subscribe", payload=[ALL_CONTRACTS])
PING_MESSAGE = _request(PING_CHANNEL)


def _subscribe(symbols: Sequence[str]) -> list[str]:
    return [SUBSCRIBE_MESSAGE]


def _heartbeat(tuning) -> Heartbeat:
    return Heartbeat(PING_MESSAGE, tuning.ping_interval_s)


REST_URLS = {"rest_url": "https://api.gateio.ws"}
STREAMS = tuple(
    StreamSpec(
        settle, f"{settle}_ws_url", f"wss://fx-ws.gateio.ws/v4/ws/{settle}", parser,
        subscribe=_subscribe, heartbeat=_heartbeat,
        metadata=(MetadataRequest(CONTRACTS_PATH.format(settle=settle)),),
        headers=(SIZE_DECIMAL_HEADER,), stamp=stamp,
    )
    for settle, parser in (("usdt", parse_usdt), ("btc", parse_btc))
)
MARKET = None  # no market context from this venue yet
parse = dispatch(VENUE, STREAMS)
