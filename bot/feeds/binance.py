"""Binance futures `forceOrder` frames (USD-M `usdm` and COIN-M `coinm`).

Each frame carries one liquidation order, raw (`{"e":"forceOrder","o":{..}}`)
or wrapped by a combined stream (`{"stream":..,"data":{..}}`). `o.S` is the
side of the liquidation ORDER: a SELL closes a long, so the long was wiped out.
The event's price is `o.ap` (average fill), never `o.p` (the order's limit).

- usdm: quantity `o.z` in base coin; notional `z * ap`.
- coinm: quantity `o.z` in contracts; notional `z * contractSize` USD, the
  size coming from `/dapi/v1/exchangeInfo` (a ContractBook).

Undocumented extra fields (`o.ps`, `o.st`...) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.core.models import LiquidationEvent, Side
from bot.feeds.errors import (
    MAX_PRICE,
    MAX_QUANTITY,
    FrameError,
    UnknownInstrument,
    checked_notional,
    instrument_id,
    positive_number,
    shown,
    timestamp_ms,
)
from bot.feeds.instruments import ContractBook
from bot.core.symbols import asset_of

VENUE = "binance"
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


def parse_usdm(frame: object, contracts: ContractBook | None = None) -> list[LiquidationEvent]:
    order = _order_of(frame)
    if order is None:
        return []
    instrument, liquidated, price, quantity, at_ms = _order_fields(order)
    notional_usd = checked_notional(quantity * price, "o.z*o.ap")
    return [
        LiquidationEvent(
            VENUE, "usdm", instrument, asset_of(instrument), liquidated,
            price, quantity, notional_usd, at_ms,
        )
    ]


def parse_coinm(frame: object, contracts: ContractBook | None = None) -> list[LiquidationEvent]:
    order = _order_of(frame)
    if order is None:
        return []
    instrument, liquidated, price, quantity, at_ms = _order_fields(order)
    spec = contracts.get(instrument) if contracts is not None else None
    if spec is None:
        raise UnknownInstrument([instrument], events=[], unpriced_count=1)
    notional_usd = checked_notional(quantity * spec.size, "o.z*contractSize")
    return [
        LiquidationEvent(
            VENUE, "coinm", instrument, asset_of(instrument), liquidated,
            price, quantity, notional_usd, at_ms,
        )
    ]


PARSERS: dict[str, Callable[[object, ContractBook | None], list[LiquidationEvent]]] = {
    "usdm": parse_usdm,
    "coinm": parse_coinm,
}


def parse(
    frame: object, contracts: ContractBook | None = None, *, stream: str
) -> list[LiquidationEvent]:
    """Events of one decoded frame of `stream` ("usdm" or "coinm").

    Control frames (acks, errors) give []. Raises FrameError for a malformed
    frame, UnknownInstrument for a COIN-M contract missing from `contracts`.
    """
    parser = PARSERS.get(stream)
    if parser is None:
        raise ValueError(f"unknown {VENUE} stream {stream!r}")
    return parser(frame, contracts)


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
