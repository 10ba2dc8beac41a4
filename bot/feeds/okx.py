"""OKX v5 `liquidation-orders` frames (stream `public`, instType SWAP/FUTURES).

`data` lists instruments, each with a `details` list of liquidations. The
long was liquidated when `posSide == "long"` (hedge mode), or when
`posSide == "net"` and the liquidation order `side == "sell"` (net mode).
`sz` is in contracts; a contract is worth ctVal (x ctMult) from
`GET /api/v5/public/instruments`, held in a ContractBook:

- linear (BTC-USDT-SWAP, ctVal in BTC): notional `sz * ctVal * bkPx`.
- inverse (BTC-USD-SWAP, ctVal in USD): notional `sz * ctVal`.

Instruments missing from the book do not spoil the frame: the priced events
come back inside UnknownInstrument, which names the missing ids.
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

VENUE = "okx"
CHANNEL = "liquidation-orders"
INST_TYPES = frozenset({"SWAP", "FUTURES"})
_LIQUIDATED_BY_POS_SIDE = {"long": Side.LONG, "short": Side.SHORT}
# Net mode has no position side: a sell order closes a long.
_LIQUIDATED_BY_NET_ORDER_SIDE = {"sell": Side.LONG, "buy": Side.SHORT}


def _instruments_of(frame: object) -> list | None:
    """The frame's per-instrument entries, or None for a control frame."""
    if type(frame) is not dict:
        if frame == "pong":
            return None
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    entries = frame.get("data")
    if entries is None:
        # {"event": "subscribe" | "error" | "notice" | ...}
        if "event" in frame:
            return None
        raise FrameError("no 'data' in frame")
    arg = frame.get("arg")
    if type(arg) is dict and arg.get("channel") != CHANNEL:
        raise FrameError(f"unexpected channel {shown(arg.get('channel'))}")
    if type(entries) is not list:
        raise FrameError("'data' is not a list")
    return entries


def _liquidated(detail: dict) -> Side:
    pos_side = detail["posSide"]
    if pos_side == "net":
        side = detail["side"]
        liquidated = _LIQUIDATED_BY_NET_ORDER_SIDE.get(side) if type(side) is str else None
        if liquidated is None:
            raise FrameError(f"details[].side is not buy/sell: {shown(side)}")
        return liquidated
    liquidated = _LIQUIDATED_BY_POS_SIDE.get(pos_side) if type(pos_side) is str else None
    if liquidated is None:
        raise FrameError(f"details[].posSide is not long/short/net: {shown(pos_side)}")
    return liquidated


def parse_public(frame: object, contracts: ContractBook | None = None) -> list[LiquidationEvent]:
    entries = _instruments_of(frame)
    if entries is None:
        return []
    events: list[LiquidationEvent] = []
    unknown: list[str] = []
    unpriced_count = 0
    for entry in entries:
        if type(entry) is not dict:
            raise FrameError(f"data item is not an object: {shown(entry)}")
        try:
            instrument = instrument_id(entry["instId"], "data[].instId")
            details = entry["details"]
        except KeyError as missing:
            raise FrameError(f"missing field data[].{missing.args[0]}") from None
        inst_type = entry.get("instType")
        # MARGIN/OPTION liquidations are in other units; we never subscribe to them.
        if inst_type is not None and (type(inst_type) is not str or inst_type not in INST_TYPES):
            raise FrameError(f"unsupported instType {shown(inst_type)}")
        if type(details) is not list:
            raise FrameError("data[].details is not a list")
        spec = contracts.get(instrument) if contracts is not None else None
        asset = asset_of(instrument)
        for detail in details:
            if type(detail) is not dict:
                raise FrameError(f"details item is not an object: {shown(detail)}")
            try:
                liquidated = _liquidated(detail)
                price = positive_number(detail["bkPx"], "details[].bkPx", MAX_PRICE)
                quantity = positive_number(detail["sz"], "details[].sz", MAX_QUANTITY)
                at_ms = timestamp_ms(detail["ts"], "details[].ts")
            except KeyError as missing:
                raise FrameError(f"missing field details[].{missing.args[0]}") from None
            if spec is None:
                unpriced_count += 1
                continue
            if spec.inverse:
                notional_usd = checked_notional(quantity * spec.size, "details[].sz*ctVal")
            else:
                notional_usd = checked_notional(
                    quantity * spec.size * price, "details[].sz*ctVal*bkPx"
                )
            events.append(
                LiquidationEvent(
                    VENUE, "public", instrument, asset, liquidated,
                    price, quantity, notional_usd, at_ms,
                )
            )
        if spec is None and details and instrument not in unknown:
            unknown.append(instrument)
    if unknown:
        raise UnknownInstrument(unknown, events=events, unpriced_count=unpriced_count)
    return events


PARSERS: dict[str, Callable[[object, ContractBook | None], list[LiquidationEvent]]] = {
    "public": parse_public,
}


def parse(
    frame: object, contracts: ContractBook | None = None, *, stream: str = "public"
) -> list[LiquidationEvent]:
    """Events of one decoded `liquidation-orders` frame.

    Control frames give []; malformed ones raise FrameError (the whole frame:
    a venue does not send half-valid frames). Instruments without a contract
    size in `contracts` raise UnknownInstrument carrying the priced events.
    """
    parser = PARSERS.get(stream)
    if parser is None:
        raise ValueError(f"unknown {VENUE} stream {stream!r}")
    return parser(frame, contracts)


def error_message(frame: object) -> str | None:
    """A short description of an OKX error frame (`event: error`), else None."""
    if type(frame) is not dict or frame.get("event") != "error":
        return None
    return f"error {shown(frame.get('code'))}: {shown(frame.get('msg'))}"
