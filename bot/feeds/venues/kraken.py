"""Kraken Futures (Kraken Derivatives): liquidations from the public `trade`
feed (stream `futures`), priced with the instruments' contract sizes.

Sources (Kraken's docs, read 2026-12-02):
- trade feed: https://docs.kraken.com/exchange/api-reference/futures-websocket/trade
  (older copy https://docs.kraken.com/api/docs/futures-api/websocket/trade);
- heartbeat feed: https://docs.kraken.com/api/docs/futures-api/websocket/heartbeat;
- keep-alive: https://docs.kraken.com/exchange/api-reference/futures-websocket ("Send a
  ping at least every 60 seconds");
- instruments: https://docs.kraken.com/api-reference/instrument-details/get-instruments;
- liquidation mechanism: https://support.kraken.com/hc/en-us/articles/360022835671-Equity-Protection-Process;
- units: https://support.kraken.com/hc/en-us/articles/4844429542676-Trading-Multi-Collateral-Futures.

Stream `wss://futures.kraken.com/ws/v1`. There is no wildcard: we subscribe
`{"event":"subscribe","feed":"trade","product_ids":[...]}` with every tradeable
product of `GET {rest_url}/derivatives/api/v3/instruments` (at most
`PRODUCTS_PER_MESSAGE` ids a message), plus the `heartbeat` feed, whose frames
keep a quiet connection visibly alive; the runner's websocket pings (every
20 s) meet the 60 s ping rule. The same instruments body gives the contract
sizes (one request for both; recorded, so a replay prices alike).

Frames: on subscribe, `{"feed":"trade_snapshot","product_id":..,"trades":[..]}`
(recent history: it repeats on every reconnect; the store keeps each trade
once), then one `{"feed":"trade",...}` per trade, each with `uid, side, type,
seq, time (ms), qty, price`. A trade is a liquidation when `type ==
"liquidation"` ("a result of a user being liquidated from their position");
`termination` and `block` trades are not counted (CHOICE: a termination is not
a liquidation order on the book).

Side: `side` is "the classification of the taker side in the matched trade".
The docs do not say in so many words that the liquidated account is the
taker, but the Equity Protection Process does: liquidation "begins by
submitting an Immediate-or-Cancel order to the market" on the account's
behalf (a long is liquidated by an IOC sell), and an IOC order never rests,
so it is always the taker. Hence `sell` = a long was liquidated.

Units and notional (`contractSize` from the instruments):
- multi-collateral PF_/FF_ (`flexible_futures`, linear): qty in base coin
  ("the quantity is denominated in the base asset"), contractSize 1; notional
  `qty * contractSize * price`;
- inverse PI_/FI_ (`futures_inverse`): 1 contract = contractSize USD (1);
  notional `qty * contractSize`.
The instruments page's own example types PF_XBTUSD as `futures_inverse`, a doc
slip (PF_ is the linear `flexible_futures` in real responses); we go by `type`.
Older metadata spells ids in lower case (`pi_xbtusd`); ids are matched
case-insensitively (upper-cased on both sides). Kraken calls bitcoin XBT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.core.models import LiquidationEvent, Side
from bot.core.symbols import asset_of
from bot.feeds.contract import MetadataRequest, StreamSpec, SymbolPaging, dispatch
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

VENUE = "kraken"
TITLE = "Kraken Futures"
INSTRUMENTS_PATH = "/derivatives/api/v3/instruments"
PRODUCTS_PER_MESSAGE = 100  # the docs set no limit; keeps each message small
LIQUIDATION = "liquidation"
HEARTBEAT_SUBSCRIBE = json.dumps({"event": "subscribe", "feed": "heartbeat"}, separators=(",", ":"))
_LIQUIDATED_BY_TAKER_SIDE = {"sell": Side.LONG, "buy": Side.SHORT}
_INVERSE_TYPES = frozenset({"futures_inverse", "perpetual_inverse"})
_LINEAR_TYPES = frozenset({"flexible_futures", "futures_vanilla", "perpetual_vanilla"})
_ASSET_NAMES = {"XBT": "BTC", "XDG": "DOGE"}  # Kraken's tickers for the assets users name otherwise


def product_key(product_id: str) -> str:
    """The id we store and look up: Kraken's ids compare case-insensitively."""
    return product_id.upper()


def asset_of_product(product_id: str) -> str:
    """PF_XBTUSD, pi_ethusd, FI_XBTUSD_220930 -> BTC, ETH, BTC."""
    _, _, rest = product_id.upper().partition("_")
    asset = asset_of(rest or product_id.upper())
    return _ASSET_NAMES.get(asset, asset)


def _trades_of(frame: object) -> list | None:
    """The frame's trades, or None for a control frame."""
    if type(frame) is not dict:
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    if "event" in frame:
        # {"event": "info" | "subscribed" | "subscribed_failed" | "error", ...}: acks name a feed too
        return None
    feed = frame.get("feed")
    if feed == "trade":
        return [frame]
    if feed == "trade_snapshot":
        trades = frame.get("trades")
        if type(trades) is not list:
            raise FrameError("trade_snapshot 'trades' is not a list")
        return trades
    if feed == "heartbeat":
        return None
    raise FrameError(f"unexpected feed {shown(feed)}")


def parse_futures(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    """Liquidation trades of one trade / trade_snapshot frame."""
    trades = _trades_of(frame)
    if trades is None:
        return []
    events: list[LiquidationEvent] = []
    unpriced = Unpriced()
    for trade in trades:
        if type(trade) is not dict:
            raise FrameError(f"trade is not an object: {shown(trade)}")
        kind = trade.get("type")
        if type(kind) is not str:
            raise FrameError(f"trade type is not a string: {shown(kind)}")
        if kind != LIQUIDATION:
            continue
        try:
            product = product_key(instrument_id(trade["product_id"], "product_id"))
            side = trade["side"]
            price = positive_number(trade["price"], "price", MAX_PRICE)
            quantity = positive_number(trade["qty"], "qty", MAX_QUANTITY)
            at_ms = timestamp_ms(trade["time"], "time")
        except KeyError as missing:
            raise FrameError(f"missing field {missing.args[0]}") from None
        liquidated = _LIQUIDATED_BY_TAKER_SIDE.get(side) if type(side) is str else None
        if liquidated is None:
            raise FrameError(f"side is not buy/sell: {shown(side)}")
        spec = unpriced.spec_of(contracts, product)
        if spec is None:
            continue
        events.append(
            LiquidationEvent(
                VENUE, "futures", product, asset_of_product(product), liquidated,
                price, quantity, spec.notional_usd(quantity, price, "qty"), at_ms,
            )
        )
    return unpriced.checked(events)


def error_message(frame: object) -> str | None:
    """`{"event":"error","message":..}` and failed (un)subscriptions, else None."""
    if type(frame) is not dict:
        return None
    event = frame.get("event")
    if event == "error":
        return f"error: {shown(frame.get('message'))}"
    if event in ("subscribed_failed", "unsubscribed_failed"):
        return f"{event}: {shown(frame.get('product_ids'))}"
    return None


# -- instruments: the product list and the contract sizes -------------------------


def _instruments(body: object) -> list:
    if type(body) is not dict:
        raise FrameError("kraken instruments: body is not an object")
    if body.get("result") != "success":
        raise FrameError(f"kraken instruments: result {shown(body.get('result'))}: {shown(body.get('error'))}")
    entries = body.get("instruments")
    if type(entries) is not list:
        raise FrameError("kraken instruments: no 'instruments' list")
    return entries


def _priced_entries(body: object):
    """(product key, ContractSpec, tradeable) of every entry we can price."""
    for entry in _instruments(body):
        if type(entry) is not dict:
            raise FrameError(f"kraken instruments: entry is not an object: {shown(entry)}")
        symbol, kind = entry.get("symbol"), entry.get("type")
        size = positive_or_none(entry.get("contractSize"))
        if type(symbol) is not str or not symbol or size is None:
            continue  # indices and odd entries carry no contract size
        if kind in _INVERSE_TYPES:
            yield product_key(symbol), ContractSpec(size, inverse=True), entry.get("tradeable") is True
        elif kind in _LINEAR_TYPES:
            yield product_key(symbol), ContractSpec(size, inverse=False), entry.get("tradeable") is True


def instruments_book(body: object) -> ContractBook:
    """Contract sizes from `GET /derivatives/api/v3/instruments`, tradeable or not
    (recorded frames of a delisted product keep their size)."""
    return ContractBook({product: spec for product, spec, _ in _priced_entries(body)})


def instruments_page(body: object) -> tuple[list[str], str | None]:
    """The tradeable products to subscribe (one page: the endpoint is not paged)."""
    return [product for product, _, tradeable in _priced_entries(body) if tradeable], None


def subscribe_messages(products: Sequence[str]) -> list[str]:
    """The heartbeat feed, then the trade feed of `products` in chunks."""
    ids = list(products)
    chunks = [
        json.dumps({"event": "subscribe", "feed": "trade", "product_ids": ids[start : start + PRODUCTS_PER_MESSAGE]},
                   separators=(",", ":"))
        for start in range(0, len(ids), PRODUCTS_PER_MESSAGE)
    ]
    return [HEARTBEAT_SUBSCRIBE, *chunks] if chunks else []


REST_URLS = {"rest_url": "https://futures.kraken.com"}
STREAMS = (
    StreamSpec(
        "futures", "ws_url", "wss://futures.kraken.com/ws/v1", parse_futures,
        subscribe=subscribe_messages,
        metadata=(MetadataRequest(INSTRUMENTS_PATH),),
        symbols=SymbolPaging(INSTRUMENTS_PATH, lambda stream, cursor: {}, instruments_page, max_pages=1),
    ),
)
METADATA = {INSTRUMENTS_PATH: instruments_book}
MARKET = None
parse = dispatch(VENUE, STREAMS)
