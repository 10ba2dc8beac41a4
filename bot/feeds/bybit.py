"""Bybit v5 `allLiquidation.{symbol}` frames (streams `linear` and `inverse`).

`data` is a list of `{"T","s","S","v","p"}`. Unlike Binance, `S` is the
POSITION side: "Buy" means a long position was liquidated. `p` is the
bankruptcy price.

- linear (USDT/USDC perpetuals and futures): quantity `v` in base coin,
  notional `v * p`.
- inverse (BTCUSD, BTCUSDZ25...): quantity `v` in USD, notional `v`.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.core.models import LiquidationEvent, Side
from bot.feeds.errors import (
    MAX_PRICE,
    MAX_QUANTITY,
    FrameError,
    checked_notional,
    instrument_id,
    positive_number,
    shown,
    timestamp_ms,
)
from bot.feeds.instruments import ContractBook
from bot.core.symbols import asset_of

VENUE = "bybit"
TOPIC_PREFIX = "allLiquidation."
_LIQUIDATED_BY_POSITION_SIDE = {"Buy": Side.LONG, "Sell": Side.SHORT}


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


def _parse(frame: object, stream: str, inverse: bool) -> list[LiquidationEvent]:
    items = _items_of(frame)
    if items is None:
        return []
    events = []
    for item in items:
        if type(item) is not dict:
            raise FrameError(f"data item is not an object: {shown(item)}")
        try:
            instrument = instrument_id(item["s"], "data[].s")
            side = item["S"]
            price = positive_number(item["p"], "data[].p", MAX_PRICE)
            quantity = positive_number(item["v"], "data[].v", MAX_QUANTITY)
            at_ms = timestamp_ms(item["T"], "data[].T")
        except KeyError as missing:
            raise FrameError(f"missing field data[].{missing.args[0]}") from None
        liquidated = _LIQUIDATED_BY_POSITION_SIDE.get(side) if type(side) is str else None
        if liquidated is None:
            raise FrameError(f"data[].S is not Buy/Sell: {shown(side)}")
        if inverse:
            notional_usd = checked_notional(quantity, "data[].v")
        else:
            notional_usd = checked_notional(quantity * price, "data[].v*p")
        events.append(
            LiquidationEvent(
                VENUE, stream, instrument, asset_of(instrument), liquidated,
                price, quantity, notional_usd, at_ms,
            )
        )
    return events


def parse_linear(frame: object, contracts: ContractBook | None = None) -> list[LiquidationEvent]:
    return _parse(frame, "linear", inverse=False)


def parse_inverse(frame: object, contracts: ContractBook | None = None) -> list[LiquidationEvent]:
    return _parse(frame, "inverse", inverse=True)


PARSERS: dict[str, Callable[[object, ContractBook | None], list[LiquidationEvent]]] = {
    "linear": parse_linear,
    "inverse": parse_inverse,
}


def parse(
    frame: object, contracts: ContractBook | None = None, *, stream: str
) -> list[LiquidationEvent]:
    """Events of one decoded frame of `stream` ("linear" or "inverse").

    Bybit quantities need no contract sizes; `contracts` is accepted for a
    uniform signature. Control frames give []; malformed ones raise FrameError.
    """
    parser = PARSERS.get(stream)
    if parser is None:
        raise ValueError(f"unknown {VENUE} stream {stream!r}")
    return parser(frame, contracts)


def error_message(frame: object) -> str | None:
    """A short description of a Bybit error frame (`success: false`), else None."""
    if type(frame) is not dict or frame.get("success") is not False:
        return None
    return f"{shown(frame.get('op'))} failed: {shown(frame.get('ret_msg'))}"
