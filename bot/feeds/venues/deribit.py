"""Deribit: liquidation trades in the public `trades.future.{currency}.100ms`
channels (stream `public`) and the instrument types that price them.

Sources (Deribit's docs, read 2026-12-02):
- https://docs.deribit.com/subscriptions/trades/tradeskindcurrencyinterval : channel
  `trades.(kind).(currency).(interval)`, currency BTC / ETH / USDC / USDT / any, interval
  raw / 100ms / agg2 (`raw` is refused to unauthorized connections).
- https://docs.deribit.com/api-reference/market-data/public-get_last_trades_by_currency
  (the public trade schema): `direction` "Trade direction of the taker"; `amount` "For
  perpetual and inverse futures the amount is in USD units. For options and linear
  futures and it is the underlying base currency coin."; `liquidation` "Optional field
  (only for trades caused by liquidation): "M" when maker side of trade was under
  liquidation, "T" when taker side was under liquidation, "MT" when both sides of trade
  were under liquidation".
- https://docs.deribit.com/articles/notifications : `{"jsonrpc":"2.0","method":"subscription",
  "params":{"channel":..,"data":..}}`.
- https://docs.deribit.com/api-reference/market-data/public-get_instruments :
  `instrument_type` "linear or reversed" (`future_type` is its deprecated twin); rate limit
  "1 request per 10 seconds, with a burst of 5".
- https://docs.deribit.com/api-reference/session-management/public-set_heartbeat and
  .../supporting/public-test.

Rules:
- Only trades with a `liquidation` field count. The taker's side is `direction`, the
  maker's the opposite; the liquidated party sold (closed a long) or bought (closed
  a short): T gives the taker's, M the maker's, MT both (two events of the trade's
  size, one long, one short: both sides of the trade were liquidations).
- Notional from the instrument type (`GET /api/v2/public/get_instruments?currency=X&kind=future`):
  reversed (inverse, BTC-PERPETUAL) `amount` USD; linear (BTC_USDC-PERPETUAL) `amount`
  coin x `price`. Instruments missing from the book are counted as unpriced.
- Heartbeat: after subscribing we call `public/set_heartbeat` (30 s); the server then
  sends `heartbeat` messages, and `test_request`s that must be answered with
  `public/test` or it "will immediately close the connection": `answer` does that.
  Its heartbeats keep a quiet connection busy, so the runner's watchdog sees a dead one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.core.models import LiquidationEvent, Side
from bot.feeds.contract import MetadataRequest, StreamSpec, dispatch
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
from bot.feeds.instruments import ContractBook, ContractSpec

VENUE = "deribit"
TITLE = "Deribit"
CURRENCIES = ("BTC", "ETH", "USDC", "USDT")  # USDC/USDT carry the linear futures
CHANNEL = "trades.future.{currency}.100ms"
INSTRUMENTS_PATH = "/api/v2/public/get_instruments"
HEARTBEAT_INTERVAL_S = 30  # the docs' example; "not less than 10"
USD_QUOTES = frozenset({"USD", "USDC", "USDT"})
_TAKER_LIQUIDATED = {"sell": Side.LONG, "buy": Side.SHORT}  # a taker's sell closes a long
_MAKER_LIQUIDATED = {"sell": Side.SHORT, "buy": Side.LONG}  # the maker took the other side
_LIQUIDATED_PARTIES = {"T": (_TAKER_LIQUIDATED,), "M": (_MAKER_LIQUIDATED,),
                       "MT": (_TAKER_LIQUIDATED, _MAKER_LIQUIDATED)}


def asset_of_instrument(instrument: str) -> str:
    """BTC-PERPETUAL, BTC-27DEC24, BTC_USDC-PERPETUAL -> BTC."""
    return instrument.split("-", 1)[0].split("_", 1)[0]


def _trades_of(frame: object) -> list | None:
    """The trades of a `trades.*` notification, or None for a control frame."""
    if type(frame) is not dict:
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    method = frame.get("method")
    if method != "subscription":
        # Replies {"id", "result" | "error"} and server heartbeats {"method": "heartbeat"}.
        if method == "heartbeat" or "result" in frame or "error" in frame:
            return None
        raise FrameError(f"unexpected message {shown(method)}")
    params = frame.get("params")
    if type(params) is not dict:
        raise FrameError("'params' is not an object")
    channel = params.get("channel")
    if type(channel) is not str or not channel.startswith("trades."):
        raise FrameError(f"unexpected channel {shown(channel)}")
    trades = params.get("data")
    if type(trades) is not list:
        raise FrameError("params.data is not a list")
    return trades


def parse_public(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    trades = _trades_of(frame)
    if trades is None:
        return []
    events: list[LiquidationEvent] = []
    unpriced = Unpriced()
    for trade in trades:
        if type(trade) is not dict:
            raise FrameError(f"data item is not an object: {shown(trade)}")
        parties = trade.get("liquidation")
        if parties is None:
            continue  # an ordinary trade
        sides = _LIQUIDATED_PARTIES.get(parties) if type(parties) is str else None
        if sides is None:
            raise FrameError(f"data[].liquidation is not M/T/MT: {shown(parties)}")
        try:
            instrument = instrument_id(trade["instrument_name"], "data[].instrument_name")
            direction = trade["direction"]
            price = positive_number(trade["price"], "data[].price", MAX_PRICE)
            amount = positive_number(trade["amount"], "data[].amount", MAX_QUANTITY)
            at_ms = timestamp_ms(trade["timestamp"], "data[].timestamp")
        except KeyError as missing:
            raise FrameError(f"missing field data[].{missing.args[0]}") from None
        if type(direction) is not str or direction not in _TAKER_LIQUIDATED:
            raise FrameError(f"data[].direction is not buy/sell: {shown(direction)}")
        spec = unpriced.spec_of(contracts, instrument, len(sides))
        if spec is None:
            continue
        notional_usd = spec.notional_usd(amount, price, "data[].amount")
        asset = asset_of_instrument(instrument)
        for liquidated_by_direction in sides:
            events.append(
                LiquidationEvent(
                    VENUE, "public", instrument, asset, liquidated_by_direction[direction],
                    price, amount, notional_usd, at_ms,
                )
            )
    return unpriced.checked(events)


def error_message(frame: object) -> str | None:
    """A short description of a JSON-RPC error reply (`{"error": {"code", "message"}}`), else None."""
    if type(frame) is not dict or type(frame.get("error")) is not dict:
        return None
    error = frame["error"]
    return f"error {shown(error.get('code'))}: {shown(error.get('message'))}"


# -- instrument types ------------------------------------------------------


def instruments_book(body: object) -> ContractBook:
    """From `GET /api/v2/public/get_instruments?currency=X&kind=future`.

    A reversed (inverse) future's `amount` is USD: size 1 USD; a linear one's is
    coin: size 1 coin, priced at the trade price. Instruments of another type or
    not quoted in USD/USDC/USDT are left out.
    """
    if type(body) is not dict:
        raise FrameError("deribit get_instruments: body is not an object")
    if "error" in body:
        raise FrameError(f"deribit get_instruments: {error_message(body) or shown(body['error'])}")
    entries = body.get("result")
    if type(entries) is not list:
        raise FrameError("deribit get_instruments: no 'result' list")
    specs: dict[str, ContractSpec] = {}
    for entry in entries:
        if type(entry) is not dict:
            raise FrameError(f"deribit get_instruments: entry is not an object: {shown(entry)}")
        instrument = entry.get("instrument_name")
        instrument_type = entry.get("instrument_type", entry.get("future_type"))
        if type(instrument) is not str or not instrument or entry.get("quote_currency") not in USD_QUOTES:
            continue
        if instrument_type == "reversed":
            specs[instrument] = ContractSpec(1.0, inverse=True)
        elif instrument_type == "linear":
            specs[instrument] = ContractSpec(1.0, inverse=False)
    return ContractBook(specs)


METADATA = {INSTRUMENTS_PATH: instruments_book}


def _compact(message: object) -> str:
    return json.dumps(message, separators=(",", ":"))


def subscribe_messages() -> list[str]:
    """One `public/subscribe` per currency (so a channel Deribit refuses spoils no
    other), then `public/set_heartbeat`."""
    subscribes = [
        _compact({"jsonrpc": "2.0", "id": number, "method": "public/subscribe",
                  "params": {"channels": [CHANNEL.format(currency=currency)]}})
        for number, currency in enumerate(CURRENCIES, start=1)
    ]
    heartbeat = {"jsonrpc": "2.0", "id": 0, "method": "public/set_heartbeat",
                 "params": {"interval": HEARTBEAT_INTERVAL_S}}
    return [*subscribes, _compact(heartbeat)]


TEST_MESSAGE = _compact({"jsonrpc": "2.0", "id": 9, "method": "public/test", "params": {}})


def _subscribe(symbols: Sequence[str]) -> list[str]:
    return subscribe_messages()


def answer(frame: object) -> str | None:
    """`public/test` for the server's `test_request`, else None."""
    if type(frame) is not dict or frame.get("method") != "heartbeat":
        return None
    params = frame.get("params")
    return TEST_MESSAGE if type(params) is dict and params.get("type") == "test_request" else None


REST_URLS = {"rest_url": "https://www.deribit.com"}
STREAMS = (
    StreamSpec(
        "public", "ws_url", "wss://www.deribit.com/ws/api/v2", parse_public,
        subscribe=_subscribe, answer=answer,
        metadata=tuple(
            MetadataRequest(INSTRUMENTS_PATH, (("currency", currency), ("kind", "future"))) for currency in CURRENCIES
        ),
    ),
)
MARKET = None
parse = dispatch(VENUE, STREAMS)
