"""Market polls made from a market state: the inverse of the market parsers.

The demo sample carries a poll of Binance USD-M and Bybit linear every few
minutes, as recording lines exactly like those `liqbot record` writes (see
`bot.feeds.market_replay`), so `/risk` and the charts' price line have data.
The bodies follow the venues' documented responses (fields the parsers read,
plus a few they ignore, as the venues send them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from bot.feeds.market import query_path
from bot.feeds.recording import rest_line
from bot.feeds.venues import binance, bybit

# Open interest of each asset's USDT perpetual at the day's start (USD), and each venue's share of it.
BASE_OPEN_INTEREST_USD = {
    "BTC": 20e9, "ETH": 11e9, "SOL": 3.2e9, "XRP": 2.3e9, "DOGE": 1.6e9, "PEPE": 0.5e9, "LTC": 0.45e9,
}
VENUE_SHARES = (("binance", 0.6), ("bybit", 0.4))


class LeverageLike(Protocol):
    @property
    def open_interest(self) -> float: ...  # relative to the day's start
    @property
    def funding_rate(self) -> float: ...  # per 8 h
    @property
    def long_short_ratio(self) -> float: ...


def _text(number: float) -> str:
    return f"{number:.8g}"


def _binance_lines(at_ms: int, prices: Mapping[str, float], state: LeverageLike) -> Iterator[str]:
    premium = [
        {"symbol": binance.market_symbol(asset), "markPrice": _text(price), "indexPrice": _text(price),
         "lastFundingRate": _text(state.funding_rate), "nextFundingTime": at_ms + 3_600_000, "time": at_ms}
        for asset, price in prices.items()
    ]
    yield rest_line("binance", at_ms, query_path(binance.PREMIUM_INDEX_PATH, None), premium)
    for asset, price in prices.items():
        symbol, share = binance.market_symbol(asset), dict(VENUE_SHARES)["binance"]
        in_base = BASE_OPEN_INTEREST_USD[asset] * share * state.open_interest / price
        yield rest_line(
            "binance", at_ms, query_path(binance.OPEN_INTEREST_PATH, {"symbol": symbol}),
            {"openInterest": _text(in_base), "symbol": symbol, "time": at_ms},
        )
        long_share = state.long_short_ratio / (1 + state.long_short_ratio)
        yield rest_line(
            "binance", at_ms,
            query_path(binance.LONG_SHORT_PATH, {"symbol": symbol, "period": "5m", "limit": "1"}),
            [{"symbol": symbol, "longShortRatio": _text(state.long_short_ratio), "longAccount": _text(long_share),
              "shortAccount": _text(1 - long_share), "timestamp": str(at_ms)}],
        )


def _bybit_lines(at_ms: int, prices: Mapping[str, float], state: LeverageLike) -> Iterator[str]:
    share = dict(VENUE_SHARES)["bybit"]
    tickers = [
        {"symbol": bybit.market_symbol(asset), "markPrice": _text(price), "indexPrice": _text(price),
         "fundingRate": _text(state.funding_rate), "fundingIntervalHour": "8",
         "openInterestValue": _text(BASE_OPEN_INTEREST_USD[asset] * share * state.open_interest)}
        for asset, price in prices.items()
    ]
    ok = {"retCode": 0, "retMsg": "OK", "retExtInfo": {}, "time": at_ms}
    yield rest_line(
        "bybit", at_ms, query_path(bybit.TICKERS_PATH, {"category": "linear"}),
        {**ok, "result": {"category": "linear", "list": tickers}},
    )
    buy = state.long_short_ratio / (1 + state.long_short_ratio)
    for asset in prices:
        symbol = bybit.market_symbol(asset)
        yield rest_line(
            "bybit", at_ms,
            query_path(bybit.ACCOUNT_RATIO_PATH, {"category": "linear", "symbol": symbol, "period": "5min", "limit": "1"}),
            {**ok, "result": {"list": [{"symbol": symbol, "buyRatio": _text(buy), "sellRatio": _text(1 - buy),
                                        "timestamp": str(at_ms)}]}},
        )


def market_poll_lines(at_ms: int, prices: Mapping[str, float], state: LeverageLike) -> Iterator[str]:
    """One poll of each venue at `at_ms`: the recording lines of its responses."""
    tracked = {asset: price for asset, price in prices.items() if asset in BASE_OPEN_INTEREST_USD}
    yield from _binance_lines(at_ms, tracked, state)
    yield from _bybit_lines(at_ms, tracked, state)
