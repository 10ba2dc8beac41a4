"""Every venue of the registry at once (or some of them), on loopback: one `FakeVenueServer` per
stream, one HTTP server answering every venue's metadata REST paths (the
`FakeVenueRest` bodies, served for real so a `liqbot run` process can fetch
them), and `liquidation_frame(venue, stream, n, at_ms)`: a frame carrying one BTC
liquidation that the stream's parser prices, distinct for every `n` (its size
cycles through 997 steps, its order/trade id is `n`), and `metadata_lines`: the
recording lines of the metadata that prices them (for replays).

`FRAMES` must cover `ALL_STREAMS`: a new venue module fails `check_covered()`
until it is added here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
from aiohttp import web

from bot.config import FeedsConfig
from bot.core.models import Side
from bot.feeds.recording import rest_line
from bot.feeds.synthetic import LiquidationSpec, frame_for
from bot.feeds.venues import ALL_STREAMS, BY_NAME, bitmex, deribit, dydx, gate, htx, kraken
from tests.fakes.venue_rest import REST_BASE, FakeVenueRest, kraken_instruments_body
from tests.fakes.venue_ws import BITFINEX_CHANNEL_ID, FakeVenueServer

# Metadata bodies, trimmed to the fields the parsers read (the venue tests pin their shapes).
GATE_CONTRACTS = {
    "usdt": [{"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001", "order_size_min": 1}],
    "btc": [{"name": "BTC_USD", "type": "inverse", "quanto_multiplier": "0", "order_size_min": 1}],
}
HTX_CONTRACT_INFO = {
    "status": "ok", "ts": 1742558400000,
    "data": [{"symbol": "BTC", "contract_code": "BTC-USD", "contract_size": 100.0, "contract_status": 1}],
}
BITMEX_INSTRUMENTS = [
    {"symbol": "XBTUSD", "typ": "FFWCSX", "quoteCurrency": "USD", "settlCurrency": "XBt",
     "multiplier": -100000000, "underlyingToSettleMultiplier": -100000000, "isQuanto": False, "isInverse": True,
     "lotSize": 100, "markPrice": 65000.0},
]
DERIBIT_BTC_INSTRUMENTS = {
    "jsonrpc": "2.0", "id": 1,
    "result": [{"kind": "future", "instrument_name": "BTC-PERPETUAL", "instrument_type": "reversed",
                "quote_currency": "USD", "counter_currency": "USD", "settlement_currency": "BTC",
                "base_currency": "BTC", "contract_size": 10, "settlement_period": "perpetual", "is_active": True}],
}
DYDX_MARKETS = {"markets": {"BTC-USD": {"clobPairId": "0", "ticker": "BTC-USD", "status": "ACTIVE",
                                        "oraclePrice": "65000", "openInterest": "100", "atomicResolution": -10,
                                        "marketType": "CROSS"}}}


def metadata_rest() -> FakeVenueRest:
    """A FakeVenueRest that answers every venue's metadata paths."""
    rest = FakeVenueRest()
    for settle, contracts in GATE_CONTRACTS.items():
        rest.bodies[gate.CONTRACTS_PATH.format(settle=settle)] = lambda params, c=contracts: c
    rest.bodies[htx.CONTRACT_INFO_PATH] = lambda params: HTX_CONTRACT_INFO
    rest.bodies[bitmex.INSTRUMENTS_PATH] = lambda params: BITMEX_INSTRUMENTS
    rest.bodies[deribit.INSTRUMENTS_PATH] = lambda params: (
        DERIBIT_BTC_INSTRUMENTS if params.get("currency") == "BTC" else {"jsonrpc": "2.0", "id": 1, "result": []}
    )
    rest.bodies[dydx.MARKETS_PATH] = lambda params: DYDX_MARKETS
    rest.bodies[kraken.INSTRUMENTS_PATH] = lambda params: kraken_instruments_body()
    return rest


# -- one liquidation per frame, distinct by n -------------------------------------------


def _size(n: int) -> int:
    """1..997: sizes stay plausible however many frames a replay benchmark makes."""
    return 1 + n % 997


def _binance_shaped(venue: str, stream: str, instrument: str, unit: float) -> Callable[[int, int], object]:
    """Binance, Bybit and OKX frames from `bot.feeds.synthetic`; `unit` x size is the quantity."""
    return lambda n, at_ms: frame_for(
        LiquidationSpec(venue, stream, instrument, Side.LONG, 65_000.0, round(unit * _size(n), 3), at_ms)
    )


def _aster(n: int, at_ms: int) -> dict:
    quantity = f"{0.001 * _size(n):.3f}"
    order = {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": quantity, "p": "64900", "ap": "65000",
             "X": "FILLED", "l": quantity, "z": quantity, "T": at_ms}
    return {"e": "forceOrder", "E": at_ms, "o": order}


def _bitget(inst_type: str, symbol: str) -> Callable[[int, int], dict]:
    def frame(n: int, at_ms: int) -> dict:
        item = {"symbol": symbol, "side": "buy", "price": "65000", "amount": str(65 * _size(n)), "ts": str(at_ms)}
        return {"data": [item], "arg": {"instType": inst_type, "topic": "liquidation"}, "action": "update", "ts": at_ms}

    return frame


def _gate(contract: str) -> Callable[[int, int], dict]:
    def frame(n: int, at_ms: int) -> dict:
        item = {"price": "65000", "size": -_size(n), "time": at_ms, "contract": contract}
        return {"channel": "futures.public_liquidates", "event": "update", "time": at_ms // 1000, "time_ms": at_ms,
                "result": [item]}

    return frame


def _htx(code: str, linear: bool) -> Callable[[int, int], dict]:
    def frame(n: int, at_ms: int) -> dict:
        size = _size(n)
        order = {"contract_code": code, "symbol": "BTC", "direction": "sell", "offset": "close", "volume": size,
                 "price": 65000.0, "created_at": at_ms, "amount": size}
        if linear:
            order["trade_turnover"] = 65.0 * size
        return {"op": "notify", "topic": f"public.{code}.liquidation_orders", "ts": at_ms, "data": [order]}

    return frame


def _bitmex(n: int, at_ms: int) -> dict:
    row = {"orderID": f"6b9a5b4e-0000-4000-8000-{n:012d}", "symbol": "XBTUSD", "side": "Sell", "price": 65000.0,
           "leavesQty": 100 * _size(n)}
    return {"table": "liquidation", "action": "insert", "data": [row]}


def _deribit(n: int, at_ms: int) -> dict:
    trade = {"trade_seq": n, "trade_id": f"liq-{n}", "timestamp": at_ms, "tick_direction": 2, "price": 65000.0,
             "mark_price": 65000.0, "instrument_name": "BTC-PERPETUAL", "index_price": 65000.0,
             "direction": "sell", "amount": 10 * _size(n), "liquidation": "T"}
    return {"jsonrpc": "2.0", "method": "subscription",
            "params": {"channel": "trades.future.BTC.100ms", "data": [trade]}}


def _bitfinex(n: int, at_ms: int) -> list:
    record = ["pos", 160000000 + n, at_ms, None, "tBTCF0:USTF0", 0.001 * _size(n), 65000.0, None, 0, 1, None, 64000.0]
    return [BITFINEX_CHANNEL_ID, [record]]


def _dydx(n: int, at_ms: int) -> dict:
    trade = {"id": f"liq-{n}", "size": f"{0.001 * _size(n):.3f}", "price": "65000", "side": "SELL",
             "createdAt": _iso(at_ms), "type": "LIQUIDATED"}
    return {"type": "channel_data", "connection_id": "c1", "message_id": n, "id": "BTC-USD", "channel": "v4_trades",
            "version": "1.1.0", "contents": {"trades": [trade]}}


def _kraken(n: int, at_ms: int) -> dict:
    return {"feed": "trade", "product_id": "PF_XBTUSD", "uid": f"liq-{n}", "side": "sell", "type": "liquidation",
            "seq": n, "time": at_ms, "qty": round(0.001 * _size(n), 3), "price": 65000.0}


def _iso(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


FRAMES: dict[tuple[str, str], Callable[[int, int], object]] = {
    ("binance", "usdm"): _binance_shaped("binance", "usdm", "BTCUSDT", 0.001),
    ("binance", "coinm"): _binance_shaped("binance", "coinm", "BTCUSD_PERP", 1),
    ("bybit", "linear"): _binance_shaped("bybit", "linear", "BTCUSDT", 0.001),
    ("bybit", "inverse"): _binance_shaped("bybit", "inverse", "BTCUSD", 100),
    ("okx", "public"): _binance_shaped("okx", "public", "BTC-USDT-SWAP", 1),
    ("kraken", "futures"): _kraken,
    ("dydx", "v4"): _dydx,
    ("aster", "futures"): _aster,
    ("bitget", "usdt-futures"): _bitget("usdt-futures", "BTCUSDT"),
    ("bitget", "coin-futures"): _bitget("coin-futures", "BTCUSD"),
    ("bitget", "usdc-futures"): _bitget("usdc-futures", "BTCPERP"),
    ("gate", "usdt"): _gate("BTC_USDT"),
    ("gate", "btc"): _gate("BTC_USD"),
    ("bitmex", "realtime"): _bitmex,
    ("htx", "linear-swap"): _htx("BTC-USDT", linear=True),
    ("htx", "swap"): _htx("BTC-USD", linear=False),
    ("deribit", "public"): _deribit,
    ("bitfinex", "public"): _bitfinex,
}


def check_covered() -> None:
    assert set(FRAMES) == set(ALL_STREAMS), "add the new venue's streams to tests/fakes/all_venues.FRAMES"


def liquidation_frame(venue: str, stream: str, n: int, at_ms: int) -> object:
    return FRAMES[venue, stream](n, at_ms)


def metadata_lines(at_ms: int) -> list[str]:
    """Recording REST lines with every stream's metadata, as `metadata_rest` answers it."""
    rest = metadata_rest()
    lines = []
    for venue, module in BY_NAME.items():
        for request in dict.fromkeys(r for spec in module.STREAMS for r in spec.metadata):
            url = httpx.URL(f"{REST_BASE}{request.path}", params=dict(request.params))
            body = rest.handle(httpx.Request("GET", url)).json()
            lines.append(rest_line(venue, at_ms, request.recorded_path, body))
    return lines


# -- serving ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def rest_server(rest: FakeVenueRest) -> AsyncIterator[str]:
    """`rest` served over HTTP on 127.0.0.1; yields its base URL."""

    async def answer(request: web.Request) -> web.Response:
        response = rest.handle(httpx.Request(request.method, str(request.url)))
        return web.Response(status=response.status_code, body=response.content, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def all_venue_servers() -> AsyncIterator[dict[tuple[str, str], FakeVenueServer]]:
    """A started FakeVenueServer for every stream of the registry."""
    servers = {key: FakeVenueServer(*key) for key in ALL_STREAMS}
    try:
        for server in servers.values():
            await server.start()
        yield servers
    finally:
        for server in servers.values():
            await server.stop()


def config_sections(servers: dict[tuple[str, str], FakeVenueServer], rest_url: str) -> str:
    """The `[feeds.<venue>]` sections of a config file pointing every stream and REST URL at the fakes."""
    sections = []
    for venue, module in BY_NAME.items():
        lines = [f"[feeds.{venue}]"]
        lines += [f'{spec.url_key} = "{servers[venue, spec.name].url}"' for spec in module.STREAMS]
        lines += [f'{key} = "{rest_url}"' for key in module.REST_URLS]
        sections.append("\n".join(lines))
    return "\n".join(sections)


def feeds_config(servers: dict[tuple[str, str], FakeVenueServer], rest_url: str = REST_BASE) -> FeedsConfig:
    """The default feeds config with only the venues of `servers` enabled (all
    their streams must be there), their streams at the fakes, REST at `rest_url`."""
    config = FeedsConfig()
    sections = {}
    for venue, module in BY_NAME.items():
        urls = {spec.url_key: servers[venue, spec.name].url for spec in module.STREAMS if (venue, spec.name) in servers}
        if urls:
            urls.update({key: rest_url for key in module.REST_URLS})
        sections[venue] = dataclasses.replace(getattr(config, venue), enabled=bool(urls), **urls)
    return dataclasses.replace(config, **sections)
