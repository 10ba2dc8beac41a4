"""Market context: core helpers, and the venues' response parsers and error envelopes
(the poller and storage: test_market_poller.py)."""

from __future__ import annotations

import pytest

from bot.core.market import Change, MarketSample, annualised_funding, change, change_of, percentile_rank, points
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.feeds.http_policy import RequestBudget, retry_after_s
from bot.feeds.market import MAX_RETRY_AFTER_S
from bot.feeds.marketdata import MarketDataError, VenueError
from bot.feeds.venues.binance import VENUE as BINANCE
from bot.feeds.venues.binance import parse_funding_info as parse_binance_funding_info
from bot.feeds.venues.binance import parse_long_short as parse_binance_long_short
from bot.feeds.venues.binance import parse_open_interest as parse_binance_open_interest
from bot.feeds.venues.binance import parse_premium_index as parse_binance_premium_index
from bot.feeds.venues.bybit import VENUE as BYBIT
from bot.feeds.venues.bybit import parse_account_ratio as parse_bybit_account_ratio
from bot.feeds.venues.bybit import parse_tickers as parse_bybit_tickers
from bot.feeds.venues.okx import parse_funding_rate as parse_okx_funding_rate
from bot.feeds.venues.okx import parse_mark_price as parse_okx_mark_price
from bot.feeds.venues.okx import parse_open_interest as parse_okx_open_interest


T0 = 1_700_000_000_000

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
