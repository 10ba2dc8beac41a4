"""A fake of the three venues' public market-data REST APIs on 127.0.0.1.

One aiohttp server answers every venue's paths (they do not overlap), so the
three base URLs can all point at it. Each path answers a plausible body for
the tracked assets, shaped like the venues' documented examples; a test
scripts exceptions per path: a status, Retry-After, a delay, a broken body.
Every request is recorded with the virtual time (`clock`) it arrived at.

`market` sets what the venues say (funding, long/short ratio) and how much
open-interest history they serve: 5-minute points over the last
`history_ms`, growing linearly by `oi_growth_24h` a day up to the current
open interest, at a flat price; each history endpoint honours its documented
window, limit and paging parameters. The klines of the same stretch sit at that
flat price (a 0.1 % wick each way), $1M a kline of which `taker_buy_share` was
bought by takers (Binance, OKX; Bybit publishes no split); the margin tiers
(Bybit, OKX, Gate) give `lowest_mmr` of each venue for the lowest tier.
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


HISTORY_STEP_MS = 300_000  # 5-minute points
DAY_MS = 86_400_000


@dataclass
class FakeMarket:
    """What every fake venue says about every asset (None: each venue's default)."""

    funding_rate: float | None = None
    long_short_ratio: float | None = None
    oi_growth_24h: float = 0.0  # open interest now / a day ago - 1
    history_ms: int = 0  # open-interest history (and klines) served (0: none)
    taker_buy_share: float = 0.5  # of each kline's volume
    lowest_mmr: dict[str, float] = field(default_factory=lambda: {"bybit": 0.005, "okx": 0.004, "gate": 0.003})


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


KLINE_MS = 300_000
KLINE_USD = 1e6


def venue_of(path: str) -> str:
    if path.startswith(("/fapi/", "/futures/")):
        return "binance"
    if path.startswith("/v5/"):
        return "bybit"
    if path.startswith("/api/v4/"):
        return "gate"
    return "okx"


class FakeMarketVenues:
    """The venues' REST APIs on 127.0.0.1 (`start()`/`stop()`, or `async with`), answering
    from `market` unless a path is scripted."""

    def __init__(
        self, assets: Sequence[str], clock: Callable[[], int] = lambda: 0, market: FakeMarket | None = None
    ) -> None:
        self.assets = list(assets)
        self.clock = clock
        self.hits: list[Hit] = []
        self.market = market or FakeMarket()
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

    async def __aenter__(self) -> FakeMarketVenues:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

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

    # -- what the venues say ---------------------------------------------

    def _funding(self, default: str) -> str:
        return default if self.market.funding_rate is None else str(self.market.funding_rate)

    def _long_short(self, default: float) -> float:
        return default if self.market.long_short_ratio is None else self.market.long_short_ratio

    @staticmethod
    def current_oi_usd(venue: str, asset: str) -> float:
        price = PRICES.get(asset, 1.0)
        return {"binance": 1000.5, "bybit": 1000.0, "okx": 200.0}[venue] * price

    def oi_history(self, venue: str, asset: str, first_ms: int, last_ms: int) -> list[tuple[int, float]]:
        """(at_ms, open interest in USD) of the 5-minute points in [first, last] the venue serves, oldest first."""
        now = self.clock()
        grow = self.market.oi_growth_24h
        now_usd = self.current_oi_usd(venue, asset)
        start = max(first_ms, now - self.market.history_ms + 1)
        at = -(-start // HISTORY_STEP_MS) * HISTORY_STEP_MS
        found = []
        while at <= min(last_ms, now) and self.market.history_ms > 0:
            found.append((at, now_usd * (1 - grow / (1 + grow) * (now - at) / DAY_MS)))
            at += HISTORY_STEP_MS
        return found

    def _binance_oi_hist(self, q) -> list:
        symbol = q["symbol"]
        asset = symbol.removesuffix("USDT")
        points = self.oi_history("binance", asset, int(q.get("startTime", 0)), int(q.get("endTime", 2**62)))
        price = PRICES.get(asset, 1.0)
        return [{"symbol": symbol, "sumOpenInterest": f"{usd / price:.8f}", "sumOpenInterestValue": f"{usd:.8f}",
                 "timestamp": str(at)} for at, usd in points[: int(q.get("limit", 30))]]

    def _bybit_oi(self, q) -> dict:
        symbol = q["symbol"]
        asset = symbol.removesuffix("USDT")
        points = self.oi_history("bybit", asset, int(q.get("startTime", 0)), int(q.get("endTime", 2**62)))[::-1]
        offset, limit = int(q.get("cursor", 0)), int(q.get("limit", 50))
        page = points[offset : offset + limit]
        price = PRICES.get(asset, 1.0)
        more = offset + limit < len(points)
        return {"retCode": 0, "retMsg": "OK",
                "result": {"symbol": symbol, "category": "linear",
                           "list": [{"openInterest": f"{usd / price:.8f}", "timestamp": str(at)} for at, usd in page],
                           "nextPageCursor": str(offset + limit) if more else ""},
                "retExtInfo": {}, "time": self.clock()}

    def _bybit_mark_kline(self, q) -> dict:
        symbol = q["symbol"]
        asset = symbol.removesuffix("USDT")
        bars = self.oi_history("bybit", asset, int(q.get("start", 0)), int(q.get("end", 2**62)))[::-1]
        price = str(PRICES.get(asset, 1.0))
        return {"retCode": 0, "retMsg": "OK",
                "result": {"symbol": symbol, "category": "linear",
                           "list": [[str(at), price, price, price, price] for at, _ in bars[: int(q.get("limit", 200))]]},
                "retExtInfo": {}, "time": self.clock()}

    def _okx_oi_history(self, q) -> dict:
        asset = q["instId"].split("-")[0]
        points = self.oi_history("okx", asset, int(q.get("begin", -1)) + 1, int(q.get("end", 2**62)) - 1)[::-1]
        price = PRICES.get(asset, 1.0)
        rows = [[str(at), f"{usd / price * 100:.2f}", f"{usd / price:.6f}", f"{usd:.4f}"] for at, usd in points]
        return {"code": "0", "msg": "", "data": rows[: int(q.get("limit", 100))]}

    def kline_opens(self, first_ms: int, last_ms: int) -> list[int]:
        """The closed 5-minute klines opening in [first, last] within the history served, oldest first."""
        now = self.clock()
        start = max(first_ms, now - self.market.history_ms + 1)
        at = -(-start // KLINE_MS) * KLINE_MS
        return list(range(at, min(last_ms, now - KLINE_MS) + 1, KLINE_MS)) if self.market.history_ms else []

    def _prices(self, asset: str) -> list[str]:
        price = PRICES.get(asset, 1.0)
        return [str(price), str(price * 1.001), str(price * 0.999), str(price)]

    def _binance_klines(self, q) -> list:
        asset = q["symbol"].removesuffix("USDT")
        buy = KLINE_USD * self.market.taker_buy_share
        return [[at, *self._prices(asset), "1.0", at + KLINE_MS - 1, str(KLINE_USD), 100, "0.5", str(buy), "0"]
                for at in self.kline_opens(int(q["startTime"]), int(q["endTime"]))[: int(q.get("limit", 500))]]

    def _bybit_klines(self, q) -> dict:
        symbol = q["symbol"]
        opens = self.kline_opens(int(q["start"]), int(q["end"]))[::-1][: int(q.get("limit", 200))]
        rows = [[str(at), *self._prices(symbol.removesuffix("USDT")), "1.0", str(KLINE_USD)] for at in opens]
        return {"retCode": 0, "retMsg": "OK", "result": {"symbol": symbol, "category": "linear", "list": rows},
                "retExtInfo": {}, "time": self.clock()}

    def _okx_candles(self, q) -> dict:
        asset = q["instId"].split("-")[0]
        opens = self.kline_opens(int(q["before"]) + 1, int(q["after"]) - 1)[::-1][: int(q.get("limit", 100))]
        return {"code": "0", "msg": "", "data": [
            [str(at), *self._prices(asset), "100", "1.0", str(KLINE_USD), "1"] for at in opens]}

    def _okx_taker_volume(self, q) -> dict:
        share = self.market.taker_buy_share
        opens = self.kline_opens(int(q["begin"]) + 1, int(q["end"]) - 1)[::-1][: int(q.get("limit", 100))]
        return {"code": "0", "msg": "", "data": [
            [str(at), str(KLINE_USD * (1 - share)), str(KLINE_USD * share)] for at in opens]}

    def _bybit_risk_limit(self, q) -> dict:
        mmr = self.market.lowest_mmr["bybit"]
        tiers = [{"id": 1, "symbol": q["symbol"], "riskLimitValue": "2000000", "maintenanceMargin": str(mmr),
                  "initialMargin": "0.01", "isLowestRisk": 1, "maxLeverage": "100.00", "mmDeduction": ""},
                 {"id": 2, "symbol": q["symbol"], "riskLimitValue": "4000000", "maintenanceMargin": str(mmr * 2),
                  "initialMargin": "0.02", "isLowestRisk": 0, "maxLeverage": "50.00", "mmDeduction": "10000"}]
        return {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": tiers, "nextPageCursor": ""},
                "retExtInfo": {}, "time": self.clock()}

    def _okx_position_tiers(self, q) -> dict:
        mmr = self.market.lowest_mmr["okx"]
        return {"code": "0", "msg": "", "data": [
            {"uly": q["instFamily"], "instFamily": q["instFamily"], "instId": "", "tier": str(tier),
             "minSz": "0", "maxSz": "500", "mmr": str(mmr * tier), "imr": str(0.01 * tier),
             "maxLever": str(100 // tier), "optMgnFactor": "0", "quoteMaxLoan": "", "baseMaxLoan": ""}
            for tier in (2, 1)]}

    def _gate_tiers(self, q) -> list:
        mmr = self.market.lowest_mmr["gate"]
        return [{"tier": tier, "risk_limit": str(500_000 * tier), "initial_rate": str(0.005 * tier),
                 "maintenance_rate": str(mmr * tier), "leverage_max": str(200 // tier), "contract": q["contract"],
                 "deduction": "0"} for tier in (1, 2)]

    # -- default bodies, shaped like the documented examples ------------

    def _default(self, path: str, query) -> bytes | None:
        ratio = self._long_short(1.5)
        bybit_ratio = self._long_short(0.55 / 0.45)
        maker = {
            "/futures/data/openInterestHist": self._binance_oi_hist,
            "/v5/market/open-interest": self._bybit_oi,
            "/v5/market/mark-price-kline": self._bybit_mark_kline,
            "/api/v5/rubik/stat/contracts/open-interest-history": self._okx_oi_history,
            "/fapi/v1/klines": self._binance_klines,
            "/v5/market/kline": self._bybit_klines,
            "/api/v5/market/history-candles": self._okx_candles,
            "/api/v5/rubik/stat/taker-volume-contract": self._okx_taker_volume,
            "/v5/market/risk-limit": self._bybit_risk_limit,
            "/api/v5/public/position-tiers": self._okx_position_tiers,
            "/api/v4/futures/usdt/risk_limit_tiers": self._gate_tiers,
            "/fapi/v1/premiumIndex": self._binance_premium,
            "/fapi/v1/fundingInfo": lambda q: [
                {"symbol": "DOGEUSDT", "adjustedFundingRateCap": "0.02", "adjustedFundingRateFloor": "-0.02",
                 "fundingIntervalHours": 4, "disclaimer": False}
            ],
            "/fapi/v1/openInterest": lambda q: {
                "openInterest": "1000.5", "symbol": q["symbol"], "time": 1_700_000_000_000
            },
            "/futures/data/globalLongShortAccountRatio": lambda q: [
                {"symbol": q["symbol"], "longShortRatio": str(ratio), "longAccount": str(ratio / (1 + ratio)),
                 "shortAccount": str(1 / (1 + ratio)), "timestamp": "1700000000000"}
            ],
            "/v5/market/tickers": self._bybit_tickers,
            "/v5/market/account-ratio": lambda q: {
                "retCode": 0, "retMsg": "OK",
                "result": {"list": [{"symbol": q["symbol"], "buyRatio": _share(bybit_ratio),
                                     "sellRatio": _share(1 / bybit_ratio),
                                     "timestamp": "1700000000000"}], "nextPageCursor": ""},
                "retExtInfo": {}, "time": 1_700_000_000_000,
            },
            "/api/v5/public/mark-price": self._okx_mark,
            "/api/v5/public/open-interest": self._okx_open_interest,
            "/api/v5/public/funding-rate": lambda q: {
                "code": "0", "msg": "",
                "data": [{"instId": q["instId"], "instType": "SWAP", "fundingRate": self._funding("0.0001"),
                          "fundingTime": "1700006400000", "nextFundingTime": "1700035200000",
                          "ts": "1700000000000"}],
            },
        }.get(path)
        return None if maker is None else orjson.dumps(maker(query))

    def _binance_premium(self, query) -> list:
        return [
            {"symbol": f"{a}USDT", "markPrice": str(PRICES.get(a, 1.0)), "indexPrice": str(PRICES.get(a, 1.0)),
             "estimatedSettlePrice": str(PRICES.get(a, 1.0)), "lastFundingRate": self._funding("0.00010000"),
             "interestRate": "0.00010000", "nextFundingTime": 1_700_006_400_000, "time": 1_700_000_000_000}
            for a in self.assets
        ] + [{"symbol": "ETHBTC", "markPrice": "0.05", "lastFundingRate": "0.0001"}]

    def _bybit_tickers(self, query) -> dict:
        rows = [
            {"symbol": f"{a}USDT", "lastPrice": str(PRICES.get(a, 1.0)), "markPrice": str(PRICES.get(a, 1.0)),
             "openInterest": "1000", "openInterestValue": str(self.current_oi_usd("bybit", a)),
             "fundingRate": self._funding("0.0002"), "nextFundingTime": "1700006400000", "fundingIntervalHour": "8"}
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
             "oiUsd": str(self.current_oi_usd("okx", a)), "ts": "1700000000000"} for a in self.assets]}


def _share(ratio: float) -> str:
    """The buy (or sell) share of accounts that makes buy / sell = `ratio`."""
    return str(round(ratio / (1 + ratio), 6))
