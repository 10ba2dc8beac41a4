"""Bitget (UTA v3): the public `liquidation` topic, streams `usdt-futures`,
`coin-futures` and `usdc-futures`.

Sources (Bitget's own documentation, read 2026-12-02):
- https://www.bitget.com/api-doc/uta/websocket/public/Liquidation-Channel
- https://www.bitget.com/api-doc/common/websocket-intro (heartbeat, limits)
- the official SDK, https://github.com/BitgetLimited/v3-bitget-api-sdk (pings every 25 s)

Stream `wss://ws.bitget.com/v3/ws/public` (the classic v2 API has no liquidation
channel), one connection per product type, subscribed with
`{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"}]}`.
Keepalive: the text `ping` every 30 s at most (Bitget drops a connection after
2 minutes without one), answered by `pong`.

Sampled: Bitget pushes once a second "only the record with the highest
liquidation quantity for long and short positions respectively per trading
pair", so at most 2 records per pair per second. (Another revision of the page
describes a push "every 20 seconds or every 10,000 records"; the parser does not
depend on the cadence.)

`data` is a list of `{"symbol","side","price","amount","ts"}`:
- side: the POSITION side, "`buy` Long position liquidation, `sell` Short
  position liquidation".
- `amount`: "Liquidation amount. Unit: quote coin." (USDT, USD for coin-futures,
  USDC): the quantity we keep, and the USD notional. No contract sizes needed.
  (The page's example amount, 37.722858, is the ticker page's volume24h pasted
  in: not a real value, but a valid frame.)
- `ts`: liquidation time, ms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.core.models import LiquidationEvent, Side
from bot.feeds.contract import Heartbeat, StreamSpec, dispatch
from bot.feeds.errors import MAX_NOTIONAL_USD, FrameError, shown
from bot.feeds.flat_orders import FlatOrders
from bot.feeds.instruments import USD, ContractBook

VENUE = "bitget"
TITLE = "Bitget"
TOPIC = "liquidation"
INST_TYPES = ("usdt-futures", "coin-futures", "usdc-futures")
HEARTBEAT_MESSAGE = "ping"
SAMPLED = "at most 2 records per pair per second (the largest long and short)"
# `amount` is the order's value in the quote (USDT/USDC): the notional itself.
_ORDERS = FlatOrders(
    VENUE, instrument="symbol", side="side", price="price", quantity="amount", time="ts",
    liquidated_by_side={"buy": Side.LONG, "sell": Side.SHORT}, quantity_cap=MAX_NOTIONAL_USD,
)


def _items_of(frame: object, inst_type: str) -> list | None:
    """The frame's liquidations, or None for a control frame."""
    if type(frame) is not dict:
        if frame == "pong":
            return None
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    if "event" in frame and "data" not in frame:
        # {"event": "subscribe" | "unsubscribe" | "error", ...}
        return None
    arg = frame.get("arg")
    if type(arg) is not dict:
        raise FrameError("no 'arg' object in frame")
    if arg.get("topic") != TOPIC:
        raise FrameError(f"unexpected topic {shown(arg.get('topic'))}")
    frame_type = arg.get("instType")
    if type(frame_type) is not str or frame_type.lower() != inst_type:
        raise FrameError(f"instType {shown(frame_type)} on the {inst_type} stream")
    items = frame.get("data")
    if type(items) is not list:
        raise FrameError("'data' is not a list")
    return items


def _parse(frame: object, inst_type: str) -> list[LiquidationEvent]:
    items = _items_of(frame, inst_type)
    return [] if items is None else _ORDERS.events(items, inst_type, USD)


def _parser(inst_type: str):
    def parse_stream(
        frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
    ) -> list[LiquidationEvent]:
        return _parse(frame, inst_type)

    parse_stream.__name__ = f"parse_{inst_type.replace('-', '_')}"
    return parse_stream


def error_message(frame: object) -> str | None:
    """A short description of a Bitget error frame (`event: error`), else None."""
    if type(frame) is not dict or frame.get("event") != "error":
        return None
    return f"error {shown(frame.get('code'))}: {shown(frame.get('msg'))}"


def subscribe_message(inst_type: str) -> str:
    return json.dumps(
        {"op": "subscribe", "args": [{"instType": inst_type, "topic": TOPIC}]}, separators=(",", ":")
    )


def _subscriber(inst_type: str):
    def subscribe(symbols: Sequence[str]) -> list[str]:
        return [subscribe_message(inst_type)]

    return subscribe


def _heartbeat(tuning) -> Heartbeat:
    return Heartbeat(HEARTBEAT_MESSAGE, tuning.ping_interval_s)


REST_URLS: dict[str, str] = {}  # nothing to fetch: amounts are already in the quote coin
STREAMS = tuple(
    StreamSpec(
        inst_type, f"{inst_type.replace('-', '_')}_ws_url", "wss://ws.bitget.com/v3/ws/public",
        _parser(inst_type), subscribe=_subscriber(inst_type), heartbeat=_heartbeat, caveat=SAMPLED,
    )
    for inst_type in INST_TYPES
)
METADATA: dict = {}
MARKET = None  # no market context from this venue yet
parse = dispatch(VENUE, STREAMS)
