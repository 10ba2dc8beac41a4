"""A fake of the venues' metadata REST endpoints, as an httpx.MockTransport.

- Bybit `GET /v5/market/instruments-info?category=linear|inverse&limit=&cursor=`,
  paged `page_size` symbols at a time with `nextPageCursor`;
- OKX `GET /api/v5/public/instruments?instType=SWAP|FUTURES` (the real SWAP
  body shipped in bot/data, minus `okx_hidden` ids until a test reveals them);
- Binance `GET /dapi/v1/exchangeInfo` (the real COIN-M body).

Any other venue's metadata: `bodies[path] = body_of(params)`, set by its tests.

OKX's liquidation history, `GET /api/v5/public/liquidation-orders`: the orders
in `okx_liquidations` (data items of one detail each, as `bot.feeds.synthetic`
writes the stream's), those of the asked `instType` + `instFamily`, newest
first, `limit` at most (100 by default and at most, as documented), older than
`after` when given, grouped per instrument under the REST envelope; it refuses
a query without a family (code 51000), as the docs require one.

Every request is logged as (path, params). `fail_next[path] = n` answers the
next n requests of a path with HTTP 500; `scripted[path]` answers with its
responses first, one per request (a 429 with Retry-After, a broken body);
`bodies[path]` (any path) answers instead of the default body.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from bot.feeds.synthetic import (
    binance_coinm_exchange_info_body,
    okx_futures_instruments_body,
    okx_swap_instruments_body,
)

REST_BASE = "http://venue-rest.test"


class FakeVenueRest:
    def __init__(self, *, page_size: int = 7) -> None:
        self.page_size = page_size
        self.bybit_symbols: dict[str, list[str]] = {
            "linear": ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "1000PEPEUSDT", "BNBUSDT",
                       "ADAUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT", "LTCUSDT", "BCHUSDT", "TRXUSDT",
                       "NEARUSDT", "APTUSDT", "ARBUSDT", "OPUSDT", "SUIUSDT", "BTCUSDC", "ETHPERP",
                       "WIFUSDT", "TONUSDT"],
            "inverse": ["BTCUSD", "ETHUSD", "XRPUSD", "BTCUSDZ25", "EOSUSD"],
        }
        self.bybit_closed: dict[str, list[str]] = {"linear": ["LUNAUSDT"], "inverse": []}
        self.okx_futures: list[str] = ["BTC-USD-250328", "ETH-USDT-250328"]
        self.okx_hidden: set[str] = set()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.fail_next: dict[str, int] = {}
        self.scripted: dict[str, list[httpx.Response]] = {}
        self.bodies: dict[str, Callable[[dict[str, str]], object]] = {}
        self.okx_liquidations: list[dict] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport(), timeout=5)

    def count(self, path: str, **params: str) -> int:
        return sum(
            1 for p, q in self.requests if p == path and all(q.get(k) == v for k, v in params.items())
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        params = dict(request.url.params)
        self.requests.append((path, params))
        if self.fail_next.get(path, 0) > 0:
            self.fail_next[path] -= 1
            return httpx.Response(500, text="busy")
        if self.scripted.get(path):
            return self.scripted[path].pop(0)
        if path in self.bodies:  # a test's own body, over the defaults below too
            return httpx.Response(200, json=self.bodies[path](params))
        if path == "/v5/market/instruments-info":
            return httpx.Response(200, json=self._bybit(params))
        if path == "/api/v5/public/instruments":
            return httpx.Response(200, json=self._okx(params.get("instType", "")))
        if path == "/dapi/v1/exchangeInfo":
            return httpx.Response(200, json=binance_coinm_exchange_info_body())
        if path == "/api/v5/public/liquidation-orders":
            return httpx.Response(200, json=self._okx_liquidation_orders(params))
        return httpx.Response(404, json={"msg": "not found"})

    def _okx_liquidation_orders(self, params: dict[str, str]) -> dict:
        family, inst_type = params.get("instFamily") or params.get("uly"), params.get("instType")
        if not family or inst_type not in ("SWAP", "FUTURES"):
            return {"code": "51000", "msg": "Parameter instFamily error", "data": []}
        if params.get("state") != "filled":  # the default, unfilled, lists orders still queued
            return {"code": "0", "msg": "", "data": []}
        after = int(params["after"]) if "after" in params else None
        matching = [
            item for item in self.okx_liquidations
            if item["instType"] == inst_type and "-".join(item["instId"].split("-")[:2]) == family
            and (after is None or int(item["details"][0]["ts"]) < after)
        ]
        matching.sort(key=lambda item: -int(item["details"][0]["ts"]))
        groups: dict[str, dict] = {}
        for item in matching[: min(int(params.get("limit", "100")), 100)]:
            group = groups.setdefault(item["instId"], {**item, "details": []})
            group["details"].append(item["details"][0])
        return {"code": "0", "msg": "", "data": list(groups.values())}

    def _bybit(self, params: dict[str, str]) -> dict:
        category = params.get("category", "")
        limit = min(int(params.get("limit", "500")), self.page_size)
        entries = [{"symbol": s, "status": "Trading", "contractType": "LinearPerpetual"}
                   for s in self.bybit_symbols.get(category, [])]
        entries += [{"symbol": s, "status": "Closed"} for s in self.bybit_closed.get(category, [])]
        offset = int(params.get("cursor") or 0)
        page = entries[offset : offset + limit]
        next_offset = offset + limit
        cursor = str(next_offset) if next_offset < len(entries) else ""
        return {
            "retCode": 0,
            "retMsg": "OK",
            "result": {"category": category, "list": page, "nextPageCursor": cursor},
            "retExtInfo": {},
            "time": 1750000000000,
        }

    def _okx(self, inst_type: str) -> dict:
        if inst_type == "SWAP":
            body = okx_swap_instruments_body()
        elif inst_type == "FUTURES":
            body = okx_futures_instruments_body(self.okx_futures)
        else:
            return {"code": "51000", "msg": "Parameter instType error", "data": []}
        body["data"] = [entry for entry in body["data"] if entry["instId"] not in self.okx_hidden]
        return body


def kraken_instruments_body(*, lower_case: bool = False) -> dict:
    """`GET /derivatives/api/v3/instruments`, trimmed to the fields read, shaped
    like the docs' example (docs.kraken.com/api-reference/instrument-details/get-instruments)
    with real types: PF_ multi-collateral perpetuals are `flexible_futures` (1 base
    coin a contract), PI_/FI_ are `futures_inverse` (1 USD a contract); an
    expired future and an index (no contract size) too. `lower_case` spells the
    ids as older responses did (`pi_xbtusd`)."""

    def entry(symbol, kind, tradeable=True, **extra):
        symbol = symbol.lower() if lower_case else symbol
        return {"symbol": symbol, "type": kind, "tradeable": tradeable, **extra}

    linear = {"contractSize": 1, "tickSize": 0.5, "contractValueTradePrecision": 4}
    inverse = {"contractSize": 1, "tickSize": 0.5, "contractValueTradePrecision": 0}
    return {
        "result": "success",
        "instruments": [
            entry("PF_XBTUSD", "flexible_futures", base="XBT", quote="USD", **linear),
            entry("PF_ETHUSD", "flexible_futures", base="ETH", quote="USD", **linear),
            entry("PF_SOLUSD", "flexible_futures", base="SOL", quote="USD", **linear),
            entry("PI_XBTUSD", "futures_inverse", underlying="rr_xbtusd", **inverse),
            entry("PI_ETHUSD", "futures_inverse", underlying="rr_ethusd", **inverse),
            entry("FI_XBTUSD_210326", "futures_inverse", tradeable=False, underlying="rr_xbtusd",
                  lastTradingTime="2021-03-26T16:00:00.000Z", **inverse),
            entry("IN_XBTUSD", "spot index", tradeable=False),
        ],
        "serverTime": "2025-06-15T15:06:40.000Z",
    }
