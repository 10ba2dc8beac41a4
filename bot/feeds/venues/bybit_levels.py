"""Bybit v5: what the levels model takes from it (klines, margin tiers); the
venue's own module is `bot.feeds.venues.bybit`.

Klines, verified on https://bybit-exchange.github.io/docs/v5/market/kline:
`GET /v5/market/kline?category&symbol&interval&start&end&limit`, limit [1,
1000] default 200, `list` of `[startTime, openPrice, highPrice, lowPrice,
closePrice, volume, turnover]` "sort in reverse by startTime"; turnover is in
the quote coin (USDT on linear contracts). We ask 5-minute klines, at most 1000
a request. Bybit publishes no taker split: neither the kline nor any v5 market
endpoint (tickers, account-ratio counts accounts, not flow) has one, so a
Bybit kline carries volume only and the bar takes the other venues' taker
share, or its direction.

Margin tiers, verified on https://bybit-exchange.github.io/docs/v5/market/risk-limit:
`GET /v5/market/risk-limit?category=linear&symbol=`, public, `list` of tiers
`{id, symbol, riskLimitValue, maintenanceMargin, initialMargin, isLowestRisk,
maxLeverage, mmDeduction}`; the lowest tier is the one with `isLowestRisk`
1 (else the smallest `riskLimitValue`). The docs disagree with themselves on
the unit: the field table says "Maintain margin rate" (a fraction, which is
what clients that quote live answers report, 0.005 for BTCUSDT), while the
page's example (inverse BTCUSD) shows `"maintenanceMargin": "0.5"` with
`"initialMargin": "1"` and `"maxLeverage": "100.00"`, percent. Since the
initial margin is 1 / max leverage, initialMargin x maxLeverage tells them
apart (about 1: fractions; about 100: percent), and we read both forms.
Counted against the 600 requests / 5 s.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.bars import Kline
from bot.core.models import MINUTE_MS
from bot.feeds import marketdata as md
from bot.feeds.contract import KlineHistory, MarginTiers, MarketApi, OpenInterestResponse
from bot.feeds.errors import shown
from bot.feeds.venues.bybit import VENUE, _listed, _market_result, market_symbol

KLINES_PATH = "/v5/market/kline"
KLINE_INTERVAL, KLINE_MS = "5", 5 * MINUTE_MS
KLINE_PAGE = 1000
RISK_LIMIT_PATH = "/v5/market/risk-limit"
PERCENT_ABOVE = 10.0  # initialMargin x maxLeverage: ~1 when rates are fractions, ~100 when percent


def parse_klines(body: object, symbol: str) -> list[Kline]:
    """`GET /v5/market/kline`: the klines of `symbol`, in the order given."""
    asset = symbol.removesuffix("USDT")
    entries, _ = _listed(body, symbol, "kline")
    klines = []
    for row in entries:
        row = md.json_list(row, "kline")
        if len(row) < 7:
            raise md.MarketDataError(f"{symbol} kline is short: {shown(row)}")
        open_ms = md.instant_ms(row[0], f"{symbol} kline startTime")
        klines.append(Kline(
            VENUE, asset, open_ms, open_ms + KLINE_MS,
            *(md.positive(row[i], f"{symbol} kline price") for i in (1, 2, 3, 4)),
            volume_usd=md.not_negative(row[6], f"{symbol} kline turnover"),
        ))
    return klines


async def fetch_klines(
    api: MarketApi, asset: str, after_ms: int, before_ms: int, into: list[OpenInterestResponse]
) -> None:
    symbol = market_symbol(asset)

    def params_of(first: int, last: int) -> dict[str, str]:
        return {"category": "linear", "symbol": symbol, "interval": KLINE_INTERVAL,
                "start": str(first), "end": str(last), "limit": str(KLINE_PAGE)}

    await md.fetch_windows(api, KLINES_PATH, params_of, lambda body: parse_klines(body, symbol),
                           after_ms, before_ms, KLINE_PAGE * KLINE_MS, into)


def klines_of(responses: Sequence[OpenInterestResponse]) -> list[Kline]:
    return md.parsed_responses(responses, KLINES_PATH, parse_klines)


def lowest_tier_rate(body: object, asset: str) -> float | None:
    """`GET /v5/market/risk-limit`: the maintenance margin rate of `asset`'s lowest tier, a fraction."""
    symbol = market_symbol(asset)
    tiers = [md.json_object(entry, "risk-limit entry")
             for entry in md.json_list(_market_result(body, "risk-limit").get("list"), "risk-limit list")]
    tiers = [tier for tier in tiers if tier.get("symbol") == symbol]
    if not tiers:
        return None
    lowest = next((tier for tier in tiers if tier.get("isLowestRisk") == 1), None) or min(
        tiers, key=lambda tier: md.finite_number(tier.get("riskLimitValue"), f"{symbol} riskLimitValue")
    )
    rate = md.not_negative(lowest.get("maintenanceMargin"), f"{symbol} maintenanceMargin")
    initial = md.positive(lowest.get("initialMargin"), f"{symbol} initialMargin")
    leverage = md.positive(lowest.get("maxLeverage"), f"{symbol} maxLeverage")
    return rate / 100 if initial * leverage > PERCENT_ABOVE else rate


KLINES = KlineHistory(
    paths=(KLINES_PATH,),
    interval_ms=KLINE_MS,
    reach_ms=None,
    taker_reach_ms=0,
    fetch=fetch_klines,
    klines=klines_of,
)
MARGIN = MarginTiers(
    path=RISK_LIMIT_PATH,
    request=lambda asset: {"category": "linear", "symbol": market_symbol(asset)},
    lowest_rate=lowest_tier_rate,
    limit=600,
    window_ms=5_000,
)
