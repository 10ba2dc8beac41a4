"""dYdX v4: liquidations from the indexer's public trades channel (stream `v4`).

Sources (dYdX's docs and indexer code, read 2026-12-02):
- websocket: https://docs.dydx.exchange/api_integration-indexer/indexer_websocket and
  https://docs.dydx.xyz/indexer-client/websockets (dydxprotocol/v4-documentation);
- limits: https://docs.dydx.xyz/concepts/trading/limits/rate-limits;
- trade semantics: github.com/dydxprotocol/v4-chain, indexer/packages/postgres/src/types/
  fill-types.ts, trade-types.ts, websocket-message-types.ts, and indexer/services/ender/src/
  handlers/order-fills/abstract-order-fill-handler.ts; message types: indexer/services/socks/src/types.ts.

Stream `wss://indexer.dydx.trade/v4/ws`: `{"type":"subscribe","channel":"v4_trades",
"id":"BTC-USD","batched":true}` per market, markets from `GET {rest_url}/v4/perpetualMarkets`
(`{"markets": {ticker: {status, openInterest, oraclePrice, ...}}}`; INITIALIZING and
FINAL_SETTLEMENT markets are skipped). The indexer pings every 30 s and websockets
answers; no app-level heartbeat.

LIMIT: the indexer takes at most 32 `v4_trades` subscriptions per connection
(V4_TRADES_CHANNEL_LIMIT, rate-limits page; more are refused with an error frame).
The runner keeps one connection per stream, so we subscribe to the 32 markets with
the largest open interest in USD (openInterest x oraclePrice); liquidations on the
others are not recorded (the stream's caveat). The issue did not know this limit.

Frames: `subscribed` (contents.trades: the market's latest trades, OLD ones included:
repeated on every reconnect), `channel_data` (contents.trades) and, batched,
`channel_batch_data` (contents: a list of {trades}). A trade is `{id, size, price,
side, createdAt (ISO 8601), type}`; `id` is the taker fill's id, the same in the
snapshot and live, and the store keeps each (time, market, side, size, price) once,
so a snapshot's repeats are duplicates, not new liquidations.

Side: TradeType LIQUIDATED is "the trade type for a fill with a liquidated taker
order"; FillType LIQUIDATED "is for the taker side of the fill where the subaccount
was liquidated"; the trade message is built from the TAKER fill, `side: fill.side`.
So `side` is the liquidated account's order: SELL closes a long. DELEVERAGED
trades (auto-deleveraging) are not liquidation orders and are not counted (CHOICE).

Units: `size` is base coin, `price` USD(C): notional `size * price`. One liquidation
order that matches several makers is several trades; the docs' own example has a
0.000000004 BTC ($0.0001) fill next to a real one, so a fill worth less than half
a cent is dust of a liquidation and is skipped alone (CHOICE: elsewhere a sub-cent
notional is a bad frame; here it is documented traffic).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from bot.core.models import LiquidationEvent, Side
from bot.core.symbols import asset_of
from bot.feeds.contract import StreamSpec, SymbolPaging, dispatch
from bot.feeds.errors import (
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_AT_MS,
    MIN_AT_MS,
    FrameError,
    instrument_id,
    positive_number,
    shown,
)
from bot.feeds.instruments import BASE_COIN, ContractBook, positive_or_none

VENUE = "dydx"
TITLE = "dYdX v4"
CHANNEL = "v4_trades"
MARKETS_PATH = "/v4/perpetualMarkets"
MAX_MARKETS = 32  # V4_TRADES_CHANNEL_LIMIT: subscriptions per connection
LIQUIDATED = "LIQUIDATED"
_LIQUIDATED_BY_TAKER_SIDE = {"SELL": Side.LONG, "BUY": Side.SHORT}
_CONTROL_TYPES = frozenset({"connected", "unsubscribed", "error", "pong"})
_DATA_TYPES = frozenset({"subscribed", "channel_data", "channel_batch_data"})
_UNTRADED_STATUSES = frozenset({"INITIALIZING", "FINAL_SETTLEMENT"})
_DUST_USD = 0.005  # a fill under this rounds to $0.00
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def _trade_lists(frame: object) -> tuple[str, list[list]] | None:
    """(market, the frame's lists of trades), or None for a control frame."""
    if type(frame) is not dict:
        raise FrameError(f"expected a JSON object, got {type(frame).__name__}")
    kind = frame.get("type")
    if type(kind) is str and kind in _CONTROL_TYPES:
        return None
    if type(kind) is not str or kind not in _DATA_TYPES:
        raise FrameError(f"unexpected message type {shown(kind)}")
    if frame.get("channel") != CHANNEL:
        raise FrameError(f"unexpected channel {shown(frame.get('channel'))}")
    market = instrument_id(frame.get("id"), "id")
    contents = frame.get("contents")
    # A batched subscription sends a list of what an unbatched one sends alone.
    batches = contents if kind == "channel_batch_data" else [contents]
    if type(batches) is not list:
        raise FrameError("batched 'contents' is not a list")
    lists = []
    for batch in batches:
        trades = batch.get("trades") if type(batch) is dict else None
        if type(trades) is not list:
            raise FrameError("contents without a 'trades' list")
        lists.append(trades)
    return market, lists


def _created_ms(value: object) -> int:
    """`createdAt` (ISO 8601 with a zone, e.g. 2023-04-04T00:29:19.353Z) as epoch ms."""
    if type(value) is not str:
        raise FrameError(f"createdAt is not a timestamp: {shown(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FrameError(f"createdAt is not a timestamp: {shown(value)}") from None
    if moment.tzinfo is None:
        raise FrameError(f"createdAt has no time zone: {shown(value)}")
    at_ms = (moment - _EPOCH) // _MS
    if not MIN_AT_MS <= at_ms <= MAX_AT_MS:
        raise FrameError(f"createdAt out of range: {shown(value)}")
    return at_ms


def parse_v4(
    frame: object, contracts: ContractBook | None = None, received_ms: int | None = None
) -> list[LiquidationEvent]:
    """The LIQUIDATED trades of one v4_trades message (snapshot, data or batch)."""
    found = _trade_lists(frame)
    if found is None:
        return []
    market, lists = found
    asset = asset_of(market)
    events: list[LiquidationEvent] = []
    seen: set[str] = set()
    for trades in lists:
        for trade in trades:
            if type(trade) is not dict:
                raise FrameError(f"trade is not an object: {shown(trade)}")
            kind = trade.get("type")
            # The docs' 2023 snapshot example has no `type`: such trades are not liquidations.
            if kind is not None and type(kind) is not str:
                raise FrameError(f"trade type is not a string: {shown(kind)}")
            if kind != LIQUIDATED:
                continue
            try:
                trade_id = instrument_id(trade["id"], "id")
                side = trade["side"]
                price = positive_number(trade["price"], "price", MAX_PRICE)
                quantity = positive_number(trade["size"], "size", MAX_QUANTITY)
                at_ms = _created_ms(trade["createdAt"])
            except KeyError as missing:
                raise FrameError(f"missing field {missing.args[0]}") from None
            liquidated = _LIQUIDATED_BY_TAKER_SIDE.get(side) if type(side) is str else None
            if liquidated is None:
                raise FrameError(f"side is not BUY/SELL: {shown(side)}")
            if trade_id in seen or quantity * price < _DUST_USD:
                continue
            seen.add(trade_id)
            notional_usd = BASE_COIN.notional_usd(quantity, price, "size")
            events.append(
                LiquidationEvent(VENUE, "v4", market, asset, liquidated, price, quantity, notional_usd, at_ms)
            )
    return events


def error_message(frame: object) -> str | None:
    """`{"type":"error","message":..}` (a refused subscription, a rate limit), else None."""
    if type(frame) is not dict or frame.get("type") != "error":
        return None
    return f"error: {shown(frame.get('message'))}"


# -- markets ---------------------------------------------------------------------


def markets_page(body: object) -> tuple[list[str], str | None]:
    """The tradable markets of `GET /v4/perpetualMarkets`, largest open interest
    (USD) first; one page (the endpoint returns every market)."""
    markets = body.get("markets") if type(body) is dict else None
    if type(markets) is not dict:
        raise FrameError("dydx perpetualMarkets: no 'markets' object")
    ranked: list[tuple[float, str]] = []
    for ticker, market in markets.items():
        if type(market) is not dict:
            raise FrameError(f"dydx perpetualMarkets: {shown(ticker)} is not an object")
        status = market.get("status")
        if not ticker or (type(status) is str and status in _UNTRADED_STATUSES):
            continue
        open_interest = positive_or_none(market.get("openInterest")) or 0.0
        price = positive_or_none(market.get("oraclePrice")) or 0.0
        ranked.append((open_interest * price, ticker))
    ranked.sort(key=lambda pair: -pair[0])  # stable: equal interest keeps the venue's order
    return [ticker for _, ticker in ranked], None


def _capped_warning(markets: Sequence[str]) -> str | None:
    if len(markets) <= MAX_MARKETS:
        return None
    return f"{len(markets)} markets, {MAX_MARKETS} subscribed (the indexer's limit per connection)"


def subscribe_messages(markets: Sequence[str]) -> list[str]:
    return [
        json.dumps({"type": "subscribe", "channel": CHANNEL, "id": market, "batched": True}, separators=(",", ":"))
        for market in markets
    ]


REST_URLS = {"rest_url": "https://indexer.dydx.trade"}
STREAMS = (
    StreamSpec(
        "v4", "ws_url", "wss://indexer.dydx.trade/v4/ws", parse_v4,
        subscribe=subscribe_messages,
        symbols=SymbolPaging(
            MARKETS_PATH, lambda stream, cursor: {}, markets_page, max_pages=1,
            warning=_capped_warning, max_symbols=MAX_MARKETS,
        ),
        caveat=f"the {MAX_MARKETS} markets with the most open interest (the indexer's limit per connection)",
    ),
)
METADATA: dict = {}  # sizes are base coin: no contract sizes
MARKET = None
parse = dispatch(VENUE, STREAMS)
