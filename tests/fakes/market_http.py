"""A fake of the three venues' public market-data REST APIs on 127.0.0.1.

One aiohttp server answers every venue's paths (they do not overlap), so the
three base URLs can all point at it. Each path answers a plausible body for
the tracked assets, shaped like the venues' documented examples; a test
scripts exceptions per path: a status, Retry-After, a delay, a broken body.
Every request is recorded with the virtual time (`clock`) it arrived at.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
from aiohttp import web

# Plausible prices per asset (USDT), for generated bodies.
PRICES = {"BTC": 64_000.0, "ETH": 3_100.0, "SOL": 145.0, "XRP": 0.52, "DOGE": 0.12, "BNB": 580.0}


@dataclass
class Scripted:
    """One scripted answer: used once, in order, before the default body."""

    status: int = 200
    body: bytes | None = None  # None: the default body of the path
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Hit:
    path: str
    query: dict[str, str]
    at_ms: int


def venue_of(path: str) -> str:
    if path.startswith(("/fapi/", "/futures/")):
        return "binance"
    if path.startswith("/v5/"):
        return "bybit"
    return "okx"


class FakeMarketVenues:
    def __init__(self, assets: Sequence[str], clock: Callable[[], int] = lambda: 0) -> None:
        self.assets = list(assets)
        self.clock = clock
        self.hits: list[Hit] = []
        self._scripts: dict[str, deque[Scripted]] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def script(self, path: str, *answers: Scripted) -> None:
        self._scripts.setdefault(path, deque()).extend(answers)

    def hits_of(self, venue: str) -> list[Hit]:
        return [hit for hit in self.hits if venue_of(hit.path) == venue]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.hits.append(Hit(path, dict(request.query), self.clock()))
        queue = self._scripts.get(path)
        answer = queue.popleft() if queue else Scripted()
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        body = answer.body if answer.body is not None else self._default(path, request.query)
        if body is None:
            return web.Response(status=404, text="no such path")
        return web.Response(
            status=answer.status, body=body, headers=answer.headers, content_type="application/json"
        )

    # -- default bodies, shaped like the documented examples ------------

    def _default(self, path: str, query) -> bytes | None:
        maker = {
            "/fapi/v1/premiumIndex": self._binance_premium,
            "/fapi/v1/fundingInfo": lambda q: [
                {"symbol": "DOGEUSDT", "adjustedFundingRateCap": "0.02", "adjustedFundingRateFloor": "-0.02",
                 "fundingIntervalHours": 4, "disclaimer": False}
            ],
            "/fapi/v1/openInterest": lambda q: {
                "openInterest": "1000.5", "symbol": q["symbol"], "time": 1_700_000_000_000
            },
            "/futures/data/globalLongShortAccountRatio": lambda q: [
                {"symbol": q["symbol"], "longShortRatio": "1.5", "longAccount": "0.6",
                 "shortAccount": "0.4", "timestamp": "1700000000000"}
            ],
            "/v5/market/tickers": self._bybit_tickers,
            "/v5/market/account-ratio": lambda q: {
                "retCode": 0, "retMsg": "OK",
                "result": {"list": [{"symbol": q["symbol"], "buyRatio": "0.55", "sellRatio": "0.45",
                                     "timestamp": "1700000000000"}], "nextPageCursor": ""},
                "retExtInfo": {}, "time": 1_700_000_000_000,
            },
            "/api/v5/public/mark-price": self._okx_mark,
            "/api/v5/public/open-interest": self._okx_open_interest,
            "/api/v5/public/funding-rate": lambda q: {
                "code": "0", "msg": "",
                "data": [{"instId": q["instId"], "instType": "SWAP", "fundingRate": "0.0001",
                          "fundingTime": "1700006400000", "nextFundingTime": "1700035200000",
                          "ts": "1700000000000"}],
            },
        }.get(path)
        return None if maker is None else orjson.dumps(maker(query))

    def _binance_premium(self, query) -> list:
        return [
            {"symbol": f"{a}USDT", "markPrice": str(PRICES.get(a, 1.0)), "indexPrice": str(PRICES.get(a, 1.0)),
             "estimatedSettlePrice": str(PRICES.get(a, 1.0)), "lastFundingRate": "0.00010000",
             "interestRate": "0.00010000", "nextFundingTime": 1_700_006_400_000, "time": 1_700_000_000_000}
            for a in self.assets
        ] + [{"symbol": "ETHBTC", "markPrice": "0.05", "lastFundingRate": "0.0001"}]

    def _bybit_tickers(self, query) -> dict:
        rows = [
            {"symbol": f"{a}USDT", "lastPrice": str(PRICES.get(a, 1.0)), "markPrice": str(PRICES.get(a, 1.0)),
             "openInterest": "1000", "openInterestValue": str(1000 * PRICES.get(a, 1.0)),
             "fundingRate": "0.0002", "nextFundingTime": "1700006400000", "fundingIntervalHour": "8"}
            for a in self.assets
        ]
        return {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": rows},
                "retExtInfo": {}, "time": 1_700_000_000_000}

    def _okx_mark(self, query) -> dict:
        return {"code": "0", "msg": "", "data": [
            {"instType": "SWAP", "instId": f"{a}-USDT-SWAP", "markPx": str(PRICES.get(a, 1.0)),
             "ts": "1700000000000"} for a in self.assets]}

    def _okx_open_interest(self, query) -> dict:
        return {"code": "0", "msg": "", "data": [
            {"instType": "SWAP", "instId": f"{a}-USDT-SWAP", "oi": "20000", "oiCcy": "200",
             "oiUsd": str(200 * PRICES.get(a, 1.0)), "ts": "1700000000000"} for a in self.assets]}
