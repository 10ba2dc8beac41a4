"""Venue frames made from liquidation specs: the inverse of the parsers.

Used by tests, the benchmark and the demo sample generator. A spec is anything
with venue, stream, instrument, liquidated, price, quantity and at_ms (a
LiquidationSpec, or a LiquidationEvent), quantity in the venue's own unit
(base coin, contracts or USD; see each parser). Round trip:
`parse(frame_for(spec))` gives back the spec's side, price, quantity and time.

Contract metadata comes from real venue responses shipped in `bot/data/`
(trimmed to the fields parsers read): OKX SWAP instruments recorded
2022-05-13 and Binance COIN-M exchangeInfo recorded 2021-07-22 (both from the
cryptofeed project's public sample data). OKX FUTURES entries are derived from
the SWAP entry of the same underlying, as OKX sizes them alike (BTC-USD-*:
100 USD, BTC-USDT-*: 0.01 BTC).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Protocol

from bot.core.models import Side
from bot.feeds.instruments import ContractBook
from bot.feeds.recording import rest_line
from bot.feeds.venues import binance, okx

OKX_SWAP_INSTRUMENTS_FILE = "okx-instruments-swap-2022-05-13.json"
BINANCE_COINM_EXCHANGE_INFO_FILE = "binance-coinm-exchangeinfo-2021-07-22.json"


class SpecLike(Protocol):
    @property
    def venue(self) -> str: ...
    @property
    def stream(self) -> str: ...
    @property
    def instrument(self) -> str: ...
    @property
    def liquidated(self) -> Side: ...
    @property
    def price(self) -> float: ...
    @property
    def quantity(self) -> float: ...
    @property
    def at_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LiquidationSpec:
    """One liquidation to encode; `quantity` in the venue's unit."""

    venue: str
    stream: str
    instrument: str
    liquidated: Side
    price: float
    quantity: float
    at_ms: int


def frame_for(spec: SpecLike, *, okx_net_mode: bool = False) -> dict:
    """The frame the venue would send for this one liquidation.

    `okx_net_mode` writes OKX's net position mode (posSide "net" + order side)
    instead of hedge mode (posSide "long"/"short").
    """
    return batch_frame_for([spec], okx_net_mode=okx_net_mode)


def batch_frame_for(specs: Sequence[SpecLike], *, okx_net_mode: bool = False) -> dict:
    """One frame carrying several liquidations, as Bybit and OKX batch them.

    All specs share venue and stream; Bybit frames are per symbol, OKX frames
    per instType, and Binance sends one order per frame (ValueError otherwise).
    """
    if not specs:
        raise ValueError("no specs")
    venue, stream = specs[0].venue, specs[0].stream
    if any(spec.venue != venue or spec.stream != stream for spec in specs):
        raise ValueError("specs of one frame share venue and stream")
    if venue == "binance":
        if len(specs) != 1:
            raise ValueError("Binance sends one liquidation order per frame")
        return _binance_frame(specs[0])
    if venue == "bybit":
        return _bybit_frame(specs)
    if venue == "okx":
        return _okx_frame(specs, okx_net_mode)
    raise ValueError(f"unknown venue {venue!r}")


def _binance_frame(spec: SpecLike) -> dict:
    long_liquidated = spec.liquidated is Side.LONG
    # The liquidation order's limit sits beyond the fill: below it for the
    # SELL that closes a long, above for the BUY that closes a short.
    limit_price = spec.price * (0.99 if long_liquidated else 1.01)
    quantity = _decimal_text(spec.quantity)
    order = {
        "s": spec.instrument,
        "S": "SELL" if long_liquidated else "BUY",
        "o": "LIMIT",
        "f": "IOC",
        "q": quantity,
        "p": _decimal_text(limit_price),
        "ap": _decimal_text(spec.price),
        "X": "FILLED",
        "l": quantity,
        "z": quantity,
        "T": spec.at_ms,
    }
    if spec.stream == "coinm":
        order = {"s": order["s"], "ps": spec.instrument.split("_", 1)[0], **order}
    return {"e": "forceOrder", "E": spec.at_ms + 2, "o": order}


def _bybit_frame(specs: Sequence[SpecLike]) -> dict:
    symbol = specs[0].instrument
    if any(spec.instrument != symbol for spec in specs):
        raise ValueError("a Bybit allLiquidation frame carries one symbol")
    return {
        "topic": f"allLiquidation.{symbol}",
        "type": "snapshot",
        "ts": max(spec.at_ms for spec in specs) + 1,
        "data": [
            {
                "T": spec.at_ms,
                "s": spec.instrument,
                # Position side: Buy = a long was liquidated.
                "S": "Buy" if spec.liquidated is Side.LONG else "Sell",
                "v": _decimal_text(spec.quantity),
                "p": _decimal_text(spec.price),
            }
            for spec in specs
        ],
    }


def _okx_frame(specs: Sequence[SpecLike], net_mode: bool) -> dict:
    inst_type = _okx_inst_type(specs[0].instrument)
    if any(_okx_inst_type(spec.instrument) != inst_type for spec in specs):
        raise ValueError("an OKX liquidation-orders frame carries one instType")
    entries: dict[str, dict] = {}
    for spec in specs:
        entry = entries.get(spec.instrument)
        if entry is None:
            underlying = "-".join(spec.instrument.split("-")[:2])
            entry = entries[spec.instrument] = {
                "details": [],
                "instFamily": underlying,
                "instId": spec.instrument,
                "instType": inst_type,
                "uly": underlying,
            }
        long_liquidated = spec.liquidated is Side.LONG
        entry["details"].append(
            {
                "bkLoss": "0",
                "bkPx": _decimal_text(spec.price),
                "ccy": "",
                "posSide": "net" if net_mode else ("long" if long_liquidated else "short"),
                # The liquidation order closes the position: a long is sold.
                "side": "sell" if long_liquidated else "buy",
                "sz": _decimal_text(spec.quantity),
                "ts": str(spec.at_ms),
            }
        )
    return {
        "arg": {"channel": "liquidation-orders", "instType": inst_type},
        "data": list(entries.values()),
    }


def _okx_inst_type(instrument: str) -> str:
    return "SWAP" if instrument.endswith("-SWAP") else "FUTURES"


def _decimal_text(number: float) -> str:
    """A float as venues write it: plain decimal, no exponent, no trailing .0."""
    text = repr(float(number))
    if "e" in text or "E" in text:
        text = f"{number:.12f}".rstrip("0")
    return text.removesuffix(".0").rstrip(".")


def okx_swap_instruments_body() -> dict:
    """The real `GET /api/v5/public/instruments?instType=SWAP` body (166 swaps)."""
    return _load(OKX_SWAP_INSTRUMENTS_FILE)


def okx_futures_instruments_body(instruments: Iterable[str]) -> dict:
    """A `?instType=FUTURES` body for `instruments` (e.g. BTC-USD-250328),
    each sized like the SWAP of its underlying. ValueError if there is none."""
    swaps = {entry["uly"]: entry for entry in okx_swap_instruments_body()["data"]}
    data = []
    for instrument in instruments:
        underlying = "-".join(instrument.split("-")[:2])
        swap = swaps.get(underlying)
        if swap is None:
            raise ValueError(f"no OKX swap to size {instrument!r} from")
        data.append({**swap, "instId": instrument, "instType": "FUTURES"})
    return {"code": "0", "msg": "", "data": data}


def binance_coinm_exchange_info_body() -> dict:
    """The real `GET /dapi/v1/exchangeInfo` body (36 COIN-M contracts)."""
    return _load(BINANCE_COINM_EXCHANGE_INFO_FILE)


def metadata_lines(at_ms: int, okx_futures: Iterable[str] = ()) -> list[str]:
    """Recording REST lines that give every parser the contract sizes it needs."""
    okx_futures = list(okx_futures)
    lines = [
        rest_line("okx", at_ms, f"{okx.INSTRUMENTS_PATH}?instType=SWAP", okx_swap_instruments_body())
    ]
    if okx_futures:
        lines.append(
            rest_line(
                "okx",
                at_ms,
                f"{okx.INSTRUMENTS_PATH}?instType=FUTURES",
                okx_futures_instruments_body(okx_futures),
            )
        )
    lines.append(
        rest_line("binance", at_ms, binance.COINM_EXCHANGE_INFO_PATH, binance_coinm_exchange_info_body())
    )
    return lines


def reference_books(okx_futures: Iterable[str] = ()) -> dict[str, ContractBook]:
    """Contract books by venue, as `metadata_lines` would build them."""
    okx_book = okx.instruments_book(okx_swap_instruments_body())
    okx_futures = list(okx_futures)
    if okx_futures:
        okx_book = okx_book.merged(
            okx.instruments_book(okx_futures_instruments_body(okx_futures))
        )
    return {
        "okx": okx_book,
        "binance": binance.coinm_exchange_info_book(binance_coinm_exchange_info_body()),
    }


def _load(name: str) -> dict:
    return json.loads(files("bot").joinpath("data", name).read_text(encoding="utf-8"))
