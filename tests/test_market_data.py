"""Market context: core helpers, response parsers, the poller against a fake
of the venues' REST APIs on 127.0.0.1, and storage."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import orjson
import pytest

from bot.config import Config, FeedsConfig, MarketDataConfig
from bot.core.market import (
    Change,
    MarketSample,
    annualised_funding,
    change,
    change_of,
    percentile_rank,
    points,
)
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.feeds.http_policy import RequestBudget, retry_after_s
from bot.feeds.market import MAX_RETRY_AFTER_S, MarketPoller, make_client
from bot.feeds.marketdata import MarketDataError, VenueError
from bot.feeds.recording import rest_line
from bot.feeds.venues import SETTINGS
from bot.feeds.venues.binance import VENUE as BINANCE
from bot.feeds.venues.binance import parse_funding_info as parse_binance_funding_info
from bot.feeds.venues.binance import parse_long_short as parse_binance_long_short
from bot.feeds.venues.binance import parse_open_interest as parse_binance_open_interest
from bot.feeds.venues.binance import parse_premium_index as parse_binance_premium_index
from bot.feeds.venues.bybit import VENUE as BYBIT
from bot.feeds.venues.bybit import parse_account_ratio as parse_bybit_account_ratio
from bot.feeds.venues.bybit import parse_tickers as parse_bybit_tickers
from bot.feeds.venues.okx import VENUE as OKX
from bot.feeds.venues.okx import parse_funding_rate as parse_okx_funding_rate
from bot.feeds.venues.okx import parse_mark_price as parse_okx_mark_price
from bot.feeds.venues.okx import parse_open_interest as parse_okx_open_interest
from bot.storage.maintenance import RetentionPolicy, apply_retention
from bot.services.ingest import replay
from bot.storage.market_store import MarketStore
from bot.storage.store import Store
from tests.fakes.market_http import PRICES, FakeMarketVenues, Scripted
from tests.support import until
from tests.backends import backend  # noqa: F401,E402  (the store tests on both backends)

BinanceFeedConfig, BybitFeedConfig, OkxFeedConfig = SETTINGS[BINANCE], SETTINGS[BYBIT], SETTINGS[OKX]

T0 = 1_700_000_000_000
ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB")

# -- core -----------------------------------------------------------------


def test_annualised_funding():
    assert annualised_funding(0.0001, 8) == pytest.approx(0.1095)
    assert annualised_funding(0.0001, 1) == pytest.approx(0.876)
    assert annualised_funding(-0.0003, 4) == pytest.approx(-0.657)
    assert MarketSample("okx", "BTC", T0, funding_rate=0.0001, funding_interval_hours=4).annualised_funding == (
        pytest.approx(0.219)
    )
    # No interval known: the common 8 h.
    assert MarketSample("okx", "BTC", T0, funding_rate=0.0001).annualised_funding == pytest.approx(0.1095)
    assert MarketSample("okx", "BTC", T0).annualised_funding is None
    with pytest.raises(ValueError):
        annualised_funding(0.0001, 0)


def _oi_series(values_by_minutes_ago: dict[int, float], now_ms: int) -> list[MarketSample]:
    return [
        MarketSample("binance", "BTC", now_ms - minutes * MINUTE_MS, open_interest_usd=value)
        for minutes, value in values_by_minutes_ago.items()
    ]


def test_change_over_lookbacks():
    now = T0
    samples = _oi_series({0: 110.0, 1: 109.0, 60: 100.0, 61: 99.0, 24 * 60: 50.0}, now)
    one_hour = change_of(samples, "open_interest_usd", HOUR_MS, now)
    assert one_hour == Change(start=100.0, end=110.0, start_at_ms=now - HOUR_MS, end_at_ms=now)
    assert one_hour.absolute == 10.0
    assert one_hour.relative == pytest.approx(0.10)
    day = change_of(samples, "open_interest_usd", DAY_MS, now)
    assert day is not None and day.relative == pytest.approx(1.2)
    # History does not reach back 7 days: no answer, never a shorter span.
    assert change_of(samples, "open_interest_usd", 7 * DAY_MS, now) is None


def test_change_uses_latest_point_before_each_instant_within_tolerance():
    now = T0
    # A gap: nothing within 15 minutes before now - 1h, the last point 20 minutes earlier.
    samples = _oi_series({0: 10.0, 80: 8.0}, now)
    assert change_of(samples, "open_interest_usd", HOUR_MS, now) is None
    assert change_of(samples, "open_interest_usd", HOUR_MS, now, tolerance_ms=30 * MINUTE_MS) == Change(
        8.0, 10.0, now - 80 * MINUTE_MS, now
    )
    # The latest point is stale: no "now" value.
    stale = _oi_series({30: 10.0, 90: 8.0}, now)
    assert change_of(stale, "open_interest_usd", HOUR_MS, now) is None
    # Samples without the measure are skipped; order of input does not matter.
    mixed = list(reversed(_oi_series({0: 10.0, 60: 5.0}, now))) + [MarketSample("binance", "BTC", now - 30 * MINUTE_MS)]
    assert change_of(mixed, "open_interest_usd", HOUR_MS, now).relative == pytest.approx(1.0)
    assert change([(now - HOUR_MS, 0.0), (now, 3.0)], HOUR_MS, now).relative is None
    with pytest.raises(ValueError):
        change([], 0, now)


def test_points_and_percentile_rank():
    samples = [
        MarketSample("bybit", "ETH", T0 + 2, funding_rate=0.0003),
        MarketSample("bybit", "ETH", T0 + 1, funding_rate=0.0001, funding_interval_hours=8),
        MarketSample("bybit", "ETH", T0 + 3),
    ]
    assert points(samples, "funding_rate") == [(T0 + 1, 0.0001), (T0 + 2, 0.0003)]
    assert points(samples, "annualised_funding")[0][1] == pytest.approx(0.1095)
    with pytest.raises(ValueError):
        points(samples, "fundingRate")
    history = [0.0001, 0.0002, 0.0003, 0.0004]
    assert percentile_rank(0.0004, history) == 100.0
    assert percentile_rank(0.00025, history) == 50.0
    assert percentile_rank(0.0001, history) == 25.0
    assert percentile_rank(0.0, history) == 0.0
    assert percentile_rank(1.0, []) is None
    assert percentile_rank(1.0, [float("nan"), 0.5]) == 100.0


# -- parsers, against the venues' documented examples ----------------------

# https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Mark-Price
BINANCE_PREMIUM_INDEX_DOC = [
    {
        "symbol": "BTCUSDT",
        "markPrice": "11793.63104562",
        "indexPrice": "11781.80495970",
        "estimatedSettlePrice": "11781.16138815",
        "lastFundingRate": "0.00038246",
        "interestRate": "0.00010000",
        "nextFundingTime": 1597392000000,
        "time": 1597370495002,
    },
    # Other symbols of the all-symbols answer are ignored without checks.
    {"symbol": "ETHBTC", "markPrice": "", "lastFundingRate": None},
]
# https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Get-Funding-Rate-Info
BINANCE_FUNDING_INFO_DOC = [
    {
        "symbol": "BLZUSDT",
        "adjustedFundingRateCap": "0.02500000",
        "adjustedFundingRateFloor": "-0.02500000",
        "fundingIntervalHours": 8,
        "disclaimer": False,
    },
    {"symbol": "BTCUSDT", "adjustedFundingRateCap": "0.03", "adjustedFundingRateFloor": "-0.03",
     "fundingIntervalHours": 4, "disclaimer": False},
]
# https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Open-Interest
BINANCE_OPEN_INTEREST_DOC = {"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1589437530011}
# https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Long-Short-Ratio
BINANCE_LONG_SHORT_DOC = [
    {"symbol": "BTCUSDT", "longShortRatio": "0.1960", "longAccount": "0.6622", "shortAccount": "0.3378",
     "timestamp": "1583139600000"},
    {"symbol": "BTCUSDT", "longShortRatio": "1.9559", "longAccount": "0.6617", "shortAccount": "0.3382",
     "timestamp": "1583139900000"},
]
# https://bybit-exchange.github.io/docs/v5/market/tickers (linear: the fields of the
# documented example, values from the documented linear ticker of
# https://bybit-exchange.github.io/docs/v5/websocket/public/ticker).
BYBIT_TICKERS_DOC = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "category": "linear",
        "list": [
            {
                "symbol": "BTCUSDT",
                "lastPrice": "17216.00",
                "indexPrice": "17227.36",
                "markPrice": "17217.33",
                "prevPrice24h": "16926.50",
                "price24hPcnt": "0.017103",
                "highPrice24h": "17281.50",
                "lowPrice24h": "16915.00",
                "prevPrice1h": "17238.00",
                "openInterest": "68744.761",
                "openInterestValue": "1183601235.91",
                "turnover24h": "1570383121.943499",
                "volume24h": "91705.276",
                "fundingRate": "-0.000212",
                "nextFundingTime": "1673280000000",
                "predictedDeliveryPrice": "",
                "basisRate": "",
                "deliveryFeeRate": "",
                "deliveryTime": "0",
                "ask1Size": "0.001",
                "bid1Price": "17215.50",
                "ask1Price": "17216.00",
                "bid1Size": "84.489",
                "basis": "",
            },
            {"symbol": "ETHUSDT", "markPrice": "1250.10", "openInterestValue": "300000000",
             "fundingRate": "0.0001", "fundingIntervalHour": "4"},
            {"symbol": "BTCUSDT-26DEC25", "markPrice": "17300", "fundingRate": ""},
        ],
    },
    "retExtInfo": {},
    "time": 1673272861686,
}
# https://bybit-exchange.github.io/docs/v5/market/long-short-ratio
BYBIT_ACCOUNT_RATIO_DOC = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "list": [{"symbol": "BTCUSDT", "buyRatio": "0.49", "sellRatio": "0.51", "timestamp": "1696906800000"}],
        "nextPageCursor": "lastid%3D0%26lasttime%3D1696906800",
    },
    "retExtInfo": {},
    "time": 1697006823941,
}
# https://www.okx.com/docs-v5/en/#public-data-rest-api-get-mark-price
OKX_MARK_PRICE_DOC = {
    "code": "0",
    "msg": "",
    "data": [{"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "200", "ts": "1597026383085"}],
}
# https://www.okx.com/docs-v5/en/#public-data-rest-api-get-open-interest
OKX_OPEN_INTEREST_DOC = {
    "code": "0",
    "data": [
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "oi": "5000", "oiCcy": "555.55", "oiUsd": "50000",
         "ts": "1597026383085"},
        # Older answers had no oiUsd: oiCcy (base coin) x mark price.
        {"instId": "ETH-USDT-SWAP", "instType": "SWAP", "oi": "3000", "oiCcy": "300", "ts": "1597026383085"},
        {"instId": "BTC-USD-SWAP", "instType": "SWAP", "oi": "1", "oiCcy": "1", "oiUsd": "100",
         "ts": "1597026383085"},
    ],
    "msg": "",
}
# https://www.okx.com/docs-v5/en/#public-data-rest-api-get-funding-rate
OKX_FUNDING_RATE_DOC = {
    "code": "0",
    "data": [
        {
            "fundingRate": "0.0000792386885340",
            "fundingTime": "1703088000000",
            "impactValue": "",
            "instId": "BTC-USDT-SWAP",
            "instType": "SWAP",
            "interestRate": "0.0001",
            "maxFundingRate": "0.00375",
            "method": "current_period",
            "minFundingRate": "-0.00375",
            "nextFundingRate": "",
            "nextFundingTime": "1703116800000",
            "premium": "0.0001233824646391",
            "settFundingRate": "0.0000699174505363",
            "settState": "settled",
            "ts": "1703070685309",
        }
    ],
    "msg": "",
}


def test_binance_parsers_on_documented_examples():
    samples = parse_binance_premium_index(BINANCE_PREMIUM_INDEX_DOC, ["BTC", "ETH"], T0)
    assert samples == {
        "BTC": MarketSample(BINANCE, "BTC", T0, mark_price=11793.63104562, funding_rate=0.00038246,
                            funding_interval_hours=8.0)
    }
    # One symbol asked: an object, not a list.
    assert parse_binance_premium_index(BINANCE_PREMIUM_INDEX_DOC[0], ["BTC"], T0)["BTC"].mark_price == 11793.63104562
    intervals = parse_binance_funding_info(BINANCE_FUNDING_INFO_DOC)
    assert intervals == {"BLZUSDT": 8.0, "BTCUSDT": 4.0}
    assert parse_binance_premium_index(BINANCE_PREMIUM_INDEX_DOC, ["BTC"], T0, intervals)["BTC"].funding_interval_hours == 4
    assert parse_binance_open_interest(BINANCE_OPEN_INTEREST_DOC, "BTCUSDT") == 10659.509
    # The latest period, whatever the list order.
    assert parse_binance_long_short(BINANCE_LONG_SHORT_DOC, "BTCUSDT") == 1.9559
    assert parse_binance_long_short(list(reversed(BINANCE_LONG_SHORT_DOC)), "BTCUSDT") == 1.9559
    assert parse_binance_long_short([], "BTCUSDT") is None


def test_bybit_parsers_on_documented_examples():
    samples = parse_bybit_tickers(BYBIT_TICKERS_DOC, ["BTC", "ETH", "SOL"], T0)
    assert samples["BTC"] == MarketSample(BYBIT, "BTC", T0, mark_price=17217.33, funding_rate=-0.000212,
                                          funding_interval_hours=8.0, open_interest_usd=1183601235.91)
    assert samples["ETH"].funding_interval_hours == 4.0
    assert set(samples) == {"BTC", "ETH"}
    assert parse_bybit_account_ratio(BYBIT_ACCOUNT_RATIO_DOC, "BTCUSDT") == pytest.approx(0.49 / 0.51)


def test_okx_parsers_on_documented_examples():
    assert parse_okx_mark_price(OKX_MARK_PRICE_DOC, ["BTC", "ETH"]) == {"BTC": 200.0}
    assert parse_okx_open_interest(OKX_OPEN_INTEREST_DOC, ["BTC", "ETH"], {"ETH": 2000.0}) == {
        "BTC": 50000.0,
        "ETH": 600000.0,
    }
    # No price for the fallback: left out rather than guessed.
    assert parse_okx_open_interest(OKX_OPEN_INTEREST_DOC, ["ETH"]) == {}
    # An entry whose instId is not a string is an untracked instrument, not a crash.
    odd = {"code": "0", "msg": "", "data": [{"instId": ["BTC-USDT-SWAP"], "markPx": "1"}]}
    assert parse_okx_mark_price(odd, ["BTC"]) == {}
    rate, interval = parse_okx_funding_rate(OKX_FUNDING_RATE_DOC, "BTC-USDT-SWAP")
    assert rate == pytest.approx(0.0000792386885340)
    assert interval == 8.0


@pytest.mark.parametrize(
    "parse",
    [
        lambda body: parse_binance_premium_index(body, ["BTC"], T0),
        lambda body: parse_binance_open_interest(body, "BTCUSDT"),
        lambda body: parse_binance_long_short(body, "BTCUSDT"),
        lambda body: parse_binance_funding_info(body),
        lambda body: parse_bybit_tickers(body, ["BTC"], T0),
        lambda body: parse_bybit_account_ratio(body, "BTCUSDT"),
        lambda body: parse_okx_mark_price(body, ["BTC"]),
        lambda body: parse_okx_open_interest(body, ["BTC"]),
        lambda body: parse_okx_funding_rate(body, "BTC-USDT-SWAP"),
    ],
)
@pytest.mark.parametrize("body", [None, "oops", 3, [1], {"data": "x"}, {"result": []}, {}])
def test_parsers_raise_typed_errors_on_garbage(parse, body):
    with pytest.raises(MarketDataError):
        parse(body)


def test_parsers_reject_broken_fields():
    def premium(**fields):
        return [{**BINANCE_PREMIUM_INDEX_DOC[0], **fields}]

    for bad in ({"markPrice": "abc"}, {"markPrice": "-1"}, {"markPrice": "NaN"}, {"lastFundingRate": True},
                {"lastFundingRate": "1.5"}, {"markPrice": None}, {"markPrice": 10**400}):
        with pytest.raises(MarketDataError):
            parse_binance_premium_index(premium(**bad), ["BTC"], T0)
    with pytest.raises(MarketDataError):  # an answer for another symbol
        parse_binance_open_interest({**BINANCE_OPEN_INTEREST_DOC, "symbol": "ETHUSDT"}, "BTCUSDT")
    with pytest.raises(MarketDataError):
        parse_okx_funding_rate(OKX_FUNDING_RATE_DOC, "ETH-USDT-SWAP")
    broken_oi = {"code": "0", "msg": "", "data": [{"instId": "BTC-USDT-SWAP", "oiUsd": "-5"}]}
    with pytest.raises(MarketDataError):
        parse_okx_open_interest(broken_oi, ["BTC"])


def test_venue_error_envelopes():
    with pytest.raises(VenueError) as caught:
        parse_bybit_tickers({"retCode": 10006, "retMsg": "Too many visits!", "result": {}}, ["BTC"], T0)
    assert caught.value.rate_limited
    with pytest.raises(VenueError) as caught:
        parse_bybit_tickers({"retCode": 10001, "retMsg": "params error", "result": {}}, ["BTC"], T0)
    assert not caught.value.rate_limited
    with pytest.raises(VenueError) as caught:
        parse_okx_mark_price({"code": "50011", "msg": "Rate limit reached.", "data": []}, ["BTC"])
    assert caught.value.rate_limited
    with pytest.raises(VenueError) as caught:
        parse_binance_open_interest({"code": -1121, "msg": "Invalid symbol."}, "BTCUSDT")
    assert not caught.value.rate_limited


def test_retry_after_header():
    assert retry_after_s("120", T0, MAX_RETRY_AFTER_S) == 120.0
    assert retry_after_s(" 1.5 ", T0, MAX_RETRY_AFTER_S) == 1.5
    assert retry_after_s(None, T0, MAX_RETRY_AFTER_S) is None
    assert retry_after_s("soon", T0, MAX_RETRY_AFTER_S) is None
    # An HTTP date, relative to the injected clock (T0 = 2023-11-14T22:13:20Z).
    assert retry_after_s("Tue, 14 Nov 2023 22:14:20 GMT", T0, MAX_RETRY_AFTER_S) == 60.0
    assert retry_after_s("Tue, 14 Nov 2023 22:00:00 GMT", T0, MAX_RETRY_AFTER_S) == 0.0
    assert retry_after_s("99999999", T0, MAX_RETRY_AFTER_S) == 86_400.0


def test_request_budget_sliding_window():
    budget = RequestBudget(limit=10, window_ms=1000)
    assert budget.wait_ms(10, T0) == 0
    budget.spend(4, T0)
    budget.spend(6, T0 + 300)
    assert budget.wait_ms(1, T0 + 300) == 700  # the first 4 expire at T0 + 1000
    assert budget.wait_ms(5, T0 + 300) == 1000  # needs the 6 spent at T0 + 300 too
    assert budget.wait_ms(4, T0 + 1000) == 0
    assert budget.used(T0 + 1300) == 0
    assert budget.wait_ms(50, T0 + 1300) == 0  # more than the limit: waits for an empty window only


def test_the_poller_reads_the_market_section_and_each_venues_rest_url():
    config = Config()
    poller = MarketPoller(config, client=None, sink=None, now_ms=lambda: T0)  # type: ignore[arg-type]
    settings = poller.settings
    assert settings is config.market  # one definition of [market], loaded by bot.config
    assert settings.assets == ASSETS
    assert settings.venues == (BINANCE, BYBIT, OKX)
    assert poller.base_urls[BINANCE] == config.feeds.binance.usdm_rest_url
    assert settings.interval_s == 60.0


# -- the poller against a fake of the venues ---------------------------------


class VirtualClock:
    """Time that only moves when someone sleeps; records who slept how long."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[tuple[str, float]] = []

    def now_ms(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        self.sleeps.append((task.get_name() if task else "?", seconds))
        self.now += round(seconds * 1000)
        await asyncio.sleep(0)

    def slept(self, task_name: str) -> list[float]:
        return [s for name, s in self.sleeps if name == task_name]


@pytest.fixture
def clock():
    return VirtualClock()


@pytest.fixture
async def venues(clock):
    fake = FakeMarketVenues(ASSETS, clock.now_ms)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def make_config(url: str, **market) -> Config:
    defaults = dict(request_timeout_s=0.25, interval_s=60.0, backoff_base_s=1.0, backoff_max_s=8.0)
    return Config(
        feeds=FeedsConfig(
            binance=BinanceFeedConfig(usdm_rest_url=url),
            bybit=BybitFeedConfig(rest_url=url),
            okx=OkxFeedConfig(rest_url=url),
        ),
        market=MarketDataConfig(**{**defaults, **market}),
    )


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[MarketSample]] = []

    async def __call__(self, samples: list[MarketSample]) -> None:
        self.batches.append(samples)

    def of(self, venue: str) -> list[MarketSample]:
        return [s for batch in self.batches for s in batch if s.venue == venue]


@pytest.fixture
async def poller_parts(venues, clock):
    config = make_config(venues.base_url)
    async with make_client(config) as client:
        sink = Sink()
        yield config, client, sink


def new_poller(parts, clock, **kwargs) -> MarketPoller:
    config, client, sink = parts
    return MarketPoller(config, client, sink, clock.now_ms, clock.sleep, rng=lambda: 0.5, **kwargs)


async def test_one_poll_of_each_venue(poller_parts, clock, venues):
    poller = new_poller(poller_parts, clock)
    binance = {s.asset: s for s in await poller.poll_once(BINANCE)}
    assert set(binance) == set(ASSETS)
    btc = binance["BTC"]
    assert btc == MarketSample(BINANCE, "BTC", T0, mark_price=64000.0, funding_rate=0.0001,
                               funding_interval_hours=8.0, open_interest_usd=1000.5 * 64000.0,
                               long_short_ratio=1.5)
    assert binance["DOGE"].funding_interval_hours == 4.0  # from fundingInfo
    bybit = {s.asset: s for s in await poller.poll_once(BYBIT)}
    assert bybit["ETH"].open_interest_usd == 1000 * PRICES["ETH"]
    assert bybit["ETH"].long_short_ratio == pytest.approx(0.55 / 0.45)
    okx = {s.asset: s for s in await poller.poll_once(OKX)}
    assert okx["SOL"] == MarketSample(OKX, "SOL", T0, mark_price=145.0, funding_rate=0.0001,
                                      funding_interval_hours=8.0, open_interest_usd=200 * 145.0)
    # The sink got one batch per venue poll; requests asked what the venues document.
    assert [len(batch) for batch in poller_parts[2].batches] == [6, 6, 6]
    queries = {(hit.path, tuple(sorted(hit.query.items()))) for hit in venues.hits}
    assert ("/futures/data/globalLongShortAccountRatio", (("limit", "1"), ("period", "5m"), ("symbol", "BTCUSDT"))) in queries
    assert ("/v5/market/account-ratio", (("category", "linear"), ("limit", "1"), ("period", "5min"), ("symbol", "XRPUSDT"))) in queries
    assert ("/api/v5/public/open-interest", (("instType", "SWAP"),)) in queries
    # Binance weight: fundingInfo 1 + premiumIndex 10 + 6 x (openInterest 1 + ratio 1).
    assert poller._budgets[BINANCE].used(clock.now) == 23
    assert clock.sleeps == []  # nothing failed, no budget pressure


async def test_5xx_then_success_is_retried_with_backoff(poller_parts, clock, venues):
    venues.script("/fapi/v1/premiumIndex", Scripted(status=503), Scripted(status=502))
    poller = new_poller(poller_parts, clock)
    samples = await poller.poll_once(BINANCE)
    assert len(samples) == len(ASSETS)
    # base 1 s doubling, jitter fixed at the middle of the upper half.
    assert [s for _, s in clock.sleeps] == [0.75, 1.5]
    assert poller.stats[BINANCE].retries == 2
    assert poller.stats[BINANCE].failures == 0


async def test_5xx_until_retries_run_out(poller_parts, clock, venues):
    venues.script("/v5/market/tickers", *[Scripted(status=500)] * 4)
    poller = new_poller(poller_parts, clock)
    assert await poller.poll_once(BYBIT) == []
    assert [s for _, s in clock.sleeps] == [0.75, 1.5, 3.0]
    assert poller.stats[BYBIT].failures == 1
    assert len(venues.hits_of(BYBIT)) == 4
    assert len(await poller.poll_once(BYBIT)) == len(ASSETS)  # the next poll is fine


async def test_slow_response_times_out_and_is_retried(poller_parts, clock, venues):
    venues.script("/v5/market/tickers", Scripted(delay_s=0.6))
    poller = new_poller(poller_parts, clock)
    samples = await poller.poll_once(BYBIT)
    assert len(samples) == len(ASSETS)
    assert poller.stats[BYBIT].retries == 1
    assert [s for _, s in clock.sleeps] == [0.75]


async def test_connection_refused_is_retried_then_given_up(clock):
    config = make_config("http://127.0.0.1:9", retries=2)  # discard port: nothing listens
    async with make_client(config) as client:
        poller = MarketPoller(config, client, Sink(), clock.now_ms, clock.sleep, rng=lambda: 0.0)
        assert await poller.poll_once(OKX) == []
    # The first request outlasted its retries: the rest of the poll is skipped.
    assert poller.stats[OKX].failures == 1
    assert poller.stats[OKX].retries == 2
    assert poller.stats[OKX].requests == 3


async def test_malformed_json_is_counted_logged_and_survived(poller_parts, clock, venues, caplog):
    venues.script("/fapi/v1/premiumIndex", Scripted(body=b"{not json"))
    venues.script("/api/v5/public/mark-price", Scripted(body=b'{"code":"0","data":[{"instId":"BTC-USDT-SWAP","markPx":"x"}]}'))
    venues.script("/fapi/v1/openInterest", Scripted(body=orjson.dumps({"symbol": "BTCUSDT", "openInterest": []})))
    poller = new_poller(poller_parts, clock)
    with caplog.at_level(logging.WARNING, logger="bot.feeds.market"):
        assert await poller.poll_once(BINANCE) == []
        okx = {s.asset: s for s in await poller.poll_once(OKX)}
        binance = {s.asset: s for s in await poller.poll_once(BINANCE)}
    assert poller.stats[BINANCE].malformed == 2
    assert poller.stats[OKX].malformed == 1
    assert "malformed response" in caplog.text and "not JSON" in caplog.text
    # OKX: no mark prices this time, but OI (oiUsd) and funding still arrive.
    assert okx["BTC"].mark_price is None and okx["BTC"].open_interest_usd == 200 * PRICES["BTC"]
    assert okx["BTC"].funding_rate == 0.0001
    # Binance: one asset's OI was broken; that measure alone is missing.
    assert binance["BTC"].open_interest_usd is None and binance["BTC"].funding_rate == 0.0001
    assert binance["ETH"].open_interest_usd is not None


async def test_418_and_403_park_the_venue_for_long(poller_parts, clock, venues):
    venues.script("/fapi/v1/premiumIndex", Scripted(status=418))
    venues.script("/v5/market/tickers", Scripted(status=403))
    poller = new_poller(poller_parts, clock)
    assert await poller.poll_once(BINANCE) == []
    assert await poller.poll_once(BYBIT) == []
    assert poller.stats[BINANCE].blocked_until_ms == T0 + 600_000  # ban_backoff_s
    assert poller.stats[BYBIT].blocked_until_ms == T0 + 600_000
    hits = len(venues.hits)
    assert await poller.poll_once(BINANCE) == []  # still parked: not even asked
    assert len(venues.hits) == hits
    assert len(await poller.poll_once(OKX)) == len(ASSETS)  # OKX unaffected
    clock.now = T0 + 600_000
    assert len(await poller.poll_once(BINANCE)) == len(ASSETS)


async def test_429_mid_poll_keeps_what_was_fetched(poller_parts, clock, venues):
    venues.script("/fapi/v1/openInterest", Scripted(status=429, headers={"Retry-After": "30"}))
    poller = new_poller(poller_parts, clock)
    samples = await poller.poll_once(BINANCE)
    assert {s.asset for s in samples} == set(ASSETS)  # funding and mark from premiumIndex
    assert all(s.open_interest_usd is None and s.long_short_ratio is None for s in samples)
    assert poller.stats[BINANCE].blocked_until_ms == T0 + 30_000
    assert len(venues.hits_of(BINANCE)) == 3  # fundingInfo, premiumIndex, the refused openInterest


async def test_rate_limit_code_in_a_200_body_parks_the_venue(poller_parts, clock, venues):
    body = orjson.dumps({"retCode": 10006, "retMsg": "Too many visits!", "result": {}})
    venues.script("/v5/market/tickers", Scripted(body=body))
    poller = new_poller(poller_parts, clock)
    assert await poller.poll_once(BYBIT) == []
    assert poller.stats[BYBIT].rate_limited == 1
    assert poller.stats[BYBIT].blocked_until_ms == T0 + 60_000  # rate_limit_backoff_s


async def test_budget_spreads_requests_over_windows(poller_parts, clock, venues):
    poller = new_poller(poller_parts, clock, budgets={OKX: RequestBudget(3, 2_000)})
    assert len(await poller.poll_once(OKX)) == len(ASSETS)
    times = [hit.at_ms for hit in venues.hits_of(OKX)]
    assert len(times) == 8  # mark-price, open-interest, 6 x funding-rate
    for start in times:
        assert sum(1 for t in times if start <= t < start + 2_000) <= 3
    assert all(0 < s <= 2.0 for _, s in clock.sleeps)


async def test_run_backs_off_one_venue_while_the_others_keep_polling(poller_parts, clock, venues):
    # Binance: 429 with Retry-After 120 s. Bybit: 403 without one (ban_backoff_s, 600 s).
    venues.script("/fapi/v1/premiumIndex", Scripted(status=429, headers={"Retry-After": "120"}))
    venues.script("/v5/market/tickers", Scripted(status=403))
    config, client, sink = poller_parts
    poller = new_poller(poller_parts, clock)
    task = asyncio.create_task(poller.run())
    try:
        await until(lambda: sink.of(BINANCE) and sink.of(BYBIT) and len({s.at_ms for s in sink.of(OKX)}) >= 3, 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert clock.slept("market-binance")[0] == 120.0
    assert clock.slept("market-bybit")[0] == 600.0
    assert 120.0 not in clock.slept("market-okx") and 600.0 not in clock.slept("market-okx")
    assert poller.stats[BINANCE].rate_limited == 1 and poller.stats[BYBIT].rate_limited == 1
    # OKX polled on while the others waited; each resumed after its pause.
    first_binance = min(s.at_ms for s in sink.of(BINANCE))
    assert first_binance >= T0 + 120_000
    assert min(s.at_ms for s in sink.of(BYBIT)) >= T0 + 600_000
    assert poller.stats[OKX].polls >= 3 and poller.stats[OKX].rate_limited == 0


async def test_run_survives_a_failing_sink_and_garbage(poller_parts, clock, venues):
    config, client, _ = poller_parts
    calls = []

    async def flaky_sink(samples):
        calls.append(samples)
        if len(calls) == 1:
            raise RuntimeError("disk full")

    venues.script("/api/v5/public/open-interest", Scripted(body=b"<html>502 Bad Gateway</html>"))
    only_okx = dataclasses.replace(config, market=dataclasses.replace(config.market, venues=(OKX,)))
    poller = MarketPoller(only_okx, client, flaky_sink, clock.now_ms, clock.sleep, rng=lambda: 0.5)
    task = asyncio.create_task(poller.run())
    try:
        await until(lambda: len(calls) >= 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert poller.stats[OKX].sink_errors == 1
    assert poller.stats[OKX].malformed == 1
    # Polls are interval_s apart in virtual time.
    assert [batch[0].at_ms for batch in calls[:3]] == [T0, T0 + 60_000, T0 + 120_000]


async def test_disabled_poller_returns_at_once(poller_parts, clock):
    config, client, sink = poller_parts
    off = make_config("http://127.0.0.1:9", enabled=False)
    await asyncio.wait_for(MarketPoller(off, client, sink, clock.now_ms, clock.sleep).run(), 1)


# -- storage -----------------------------------------------------------------


async def test_store_round_trip_latest_series_and_retention(store):
    market = MarketStore(store)
    assert await market.latest("BTC") == {}
    samples = [
        MarketSample(venue, "BTC", T0 + minute * MINUTE_MS, mark_price=60000.0 + minute,
                     funding_rate=0.0001 * (minute + 1), funding_interval_hours=8.0,
                     open_interest_usd=1e9 + minute, long_short_ratio=None if venue == OKX else 1.2)
        for minute in range(5)
        for venue in (BINANCE, BYBIT, OKX)
    ]
    samples.append(MarketSample(BINANCE, "ETH", T0 + 9 * MINUTE_MS, mark_price=3000.0))
    assert await market.add_samples(samples) == len(samples)
    assert await market.add_samples([]) == 0
    latest = await market.latest("BTC")
    assert set(latest) == {BINANCE, BYBIT, OKX}
    assert latest[OKX] == samples[-2]
    assert latest[BINANCE].at_ms == T0 + 4 * MINUTE_MS and latest[OKX].long_short_ratio is None
    assert set(await market.latest("ETH")) == {BINANCE}
    assert await market.latest("BTC", since_ms=T0 + 5 * MINUTE_MS) == {}
    series = await market.series("BTC", BYBIT, T0 + MINUTE_MS)
    assert [s.at_ms for s in series] == [T0 + m * MINUTE_MS for m in range(1, 5)]
    assert series == [s for s in samples if s.venue == BYBIT and s.asset == "BTC"][1:]
    assert len(await market.series("BTC", BYBIT, T0, until_ms=T0 + 2 * MINUTE_MS)) == 2
    assert await market.points("BTC", OKX, "long_short_ratio", T0) == []
    assert await market.points("BTC", BINANCE, "funding_rate", T0 + 3 * MINUTE_MS) == [
        (T0 + 3 * MINUTE_MS, pytest.approx(0.0004)),
        (T0 + 4 * MINUTE_MS, pytest.approx(0.0005)),
    ]
    with pytest.raises(ValueError):
        await market.points("BTC", OKX, "asset; DROP TABLE market_samples", T0)
    # The same key again keeps the latest write.
    await market.add_samples([MarketSample(BYBIT, "BTC", T0, mark_price=1.0)])
    assert (await market.series("BTC", BYBIT, T0))[0].mark_price == 1.0
    pruned = await apply_retention(store, RetentionPolicy(market_days=1), now_ms=T0 + 3 * MINUTE_MS + DAY_MS)
    assert pruned.market_samples == 9
    assert [s.at_ms for s in await market.series("BTC", BINANCE, 0)] == [T0 + 3 * MINUTE_MS, T0 + 4 * MINUTE_MS]
    assert set(await market.latest("ETH")) == {BINANCE}


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's query plan; PostgreSQL plans by its statistics
async def test_store_latest_uses_the_key(store):
    rows = await store.db.fetch(
        "EXPLAIN QUERY PLAN SELECT * FROM market_samples WHERE asset = ? AND venue = ? AND at_ms >= ?",
        ("BTC", "okx", 0),
    )
    plan = " ".join(str(row[-1]) for row in rows)
    assert "PRIMARY KEY" in plan or "USING" in plan


async def test_poller_into_store(poller_parts, clock, store):
    config, client, _ = poller_parts
    market = MarketStore(store)
    poller = MarketPoller(config, client, market.add_samples, clock.now_ms, clock.sleep, rng=lambda: 0.5)
    await poller.poll_once(BYBIT)
    clock.now += HOUR_MS
    await poller.poll_once(BYBIT)
    series = await market.series("BTC", BYBIT, T0)
    assert len(series) == 2
    assert change_of(series, "open_interest_usd", HOUR_MS, clock.now) == Change(
        series[0].open_interest_usd, series[1].open_interest_usd, T0, T0 + HOUR_MS
    )


async def test_recorded_polls_replay_to_the_same_samples(poller_parts, clock, venues, tmp_path):
    """What the poller received, written as recording lines, replays through the
    same collectors into the same samples; a response missing from a poll leaves
    only its measure empty; frames and old recordings are untouched."""
    lines: list[str] = []

    async def record(venue: str, at_ms: int, path: str, body: object) -> None:
        lines.append(rest_line(venue, at_ms, path, body))

    poller = new_poller(poller_parts, clock, on_response=record)
    live = []
    for venue in (BINANCE, BYBIT, OKX):
        live += await poller.poll_once(venue)
        clock.now += 60_000
    assert lines and all(json.loads(line)["at"] in (T0, T0 + 60_000, T0 + 120_000) for line in lines)
    path = tmp_path / "polls.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = await Store.open(tmp_path / "replayed.sqlite")
    try:
        report = await replay(store, [path], market_assets=ASSETS)
        assert report.market_samples == len(live) and report.decode.bad_lines == 0
        market = MarketStore(store)
        replayed = [s for asset in ASSETS for venue in (BINANCE, BYBIT, OKX)
                    for s in await market.series(asset, venue, 0)]
        assert sorted(replayed, key=repr) == sorted(live, key=repr)
    finally:
        await store.close()

    ratio_free = [line for line in lines if "globalLongShortAccountRatio" not in line]
    path.write_text("\n".join(ratio_free) + "\n", encoding="utf-8")
    store = await Store.open(tmp_path / "partial.sqlite")
    try:
        await replay(store, [path], market_assets=["BTC"])
        (btc,) = await MarketStore(store).series("BTC", BINANCE, 0)
        assert btc.long_short_ratio is None and btc.open_interest_usd == 1000.5 * 64000.0
    finally:
        await store.close()
