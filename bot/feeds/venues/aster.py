"""Aster (asterdex) perpetual futures: the `!forceOrder@arr` stream (`futures`).

Aster's futures API copies Binance USD-M, and so does its liquidation stream
(source: https://github.com/asterdex/api-docs/blob/master/V3(Recommended)/EN/aster-finance-futures-api-v3.md,
"Websocket Market Streams" and "All Market Liquidation Order Streams"):

- `wss://fstream.asterdex.com/ws/!forceOrder@arr` (raw streams at `/ws/<streamName>`);
  a connection "is only valid for 24 hours", so we reconnect before, like Binance.
- The payload is Binance's `{"e":"forceOrder","E":..,"o":{"s","S","o","f","q","p","ap","X","l","z","T"}}`:
  `o.S` is the liquidation ORDER's side (a SELL closes a long), `o.z` the filled
  quantity in base coin, `o.ap` the average price; notional `z * ap`. Parsed by
  Binance's own USD-M parser, under venue `aster`.
- "For each symbol, only the latest one liquidation order within 1000ms will be
  pushed": a sample, like Binance.
- The server pings every 5 minutes; websockets answers.

Aster's liquidation history (`GET /fapi/v3/forceOrders`) is USER_DATA (signed,
own orders only): there is nothing public to backfill from.
"""

from __future__ import annotations

from bot.feeds.contract import StreamSpec, dispatch
from bot.feeds.instruments import BASE_COIN
from bot.feeds.venues import binance

VENUE = "aster"
TITLE = "Aster"
REST_URLS: dict[str, str] = {}  # no metadata: quantities are in base coin
STREAMS = (
    StreamSpec(
        "futures", "ws_url", "wss://fstream.asterdex.com/ws/!forceOrder@arr",
        binance.base_quantity_parser(VENUE, "futures"),
        max_connection_s=binance.reconnect_before_cutoff, caveat=binance.SAMPLED,
        typed=binance.typed_force_orders(BASE_COIN),
    ),
)
METADATA: dict = {}
MARKET = None
error_message = binance.error_message
parse = dispatch(VENUE, STREAMS)
