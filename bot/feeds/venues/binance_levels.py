"""Binance USD-M: what the levels model takes from it (klines with the taker
split); the venue's own module is `bot.feeds.venues.binance`.

Klines, verified on
https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Kline-Candlestick-Data:
`GET /fapi/v1/klines?symbol&interval&startTime&endTime&limit`, limit default
500 max 1500, "Klines are uniquely identified by their open time"; each kline
an array `[open time, open, high, low, close, volume (base), close time, quote
asset volume, number of trades, taker buy base asset volume, taker buy quote
asset volume, ignore]`. The request weight depends on `limit`: [1, 100) 1,
[100, 500) 2, [500, 1000] 5, over 1000 10; we ask at most 499 a request (weight
2, counted as such against the 2400 / min) and 5-minute klines. The quote asset
of a USDT perpetual is USDT: the volume and the taker-buy volume in USD are
fields 7 and 10. The close time is the last millisecond of the kline, so a
kline ends at close time + 1.

Margin tiers: the maintenance margin rates of USD-M are in `GET
/fapi/v1/leverageBracket` ("Notional and Leverage Brackets (USER_DATA)",
https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Notional-and-Leverage-Brackets),
a signed request: liqbot holds no keys, so Binance contributes no rate and the
configured `[levels] maintenance_margin_rate` stands in where no venue gives one.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.bars import Kline
from bot.core.models import MINUTE_MS
from bot.feeds import marketdata as md
from bot.feeds.contract import KlineHistory, MarketApi, OpenInterestResponse
from bot.feeds.errors import shown
from bot.feeds.venues.binance import VENUE, _market_body, market_symbol

KLINES_PATH = "/fapi/v1/klines"
KLINE_INTERVAL, KLINE_MS = "5m", 5 * MINUTE_MS
KLINE_PAGE = 499  # the most a request of weight 2 returns
KLINES_WEIGHT = 2


def parse_klines(body: object, symbol: str) -> list[Kline]:
    """`GET /fapi/v1/klines`: the klines of `symbol`, in the order given."""
    asset = symbol.removesuffix("USDT")
    klines = []
    for row in md.json_list(_market_body(body, "klines"), "klines"):
        row = md.json_list(row, "kline")
        if len(row) < 11:
            raise md.MarketDataError(f"{symbol} kline is short: {shown(row)}")
        open_ms = md.instant_ms(row[0], f"{symbol} kline open time")
        close_ms = md.instant_ms(row[6], f"{symbol} kline close time") + 1
        if close_ms <= open_ms:
            raise md.MarketDataError(f"{symbol} kline closes before it opens: {shown(row)}")
        klines.append(Kline(
            VENUE, asset, open_ms, close_ms,
            *(md.positive(row[i], f"{symbol} kline price") for i in (1, 2, 3, 4)),
            volume_usd=md.not_negative(row[7], f"{symbol} quote asset volume"),
            taker_buy_usd=md.not_negative(row[10], f"{symbol} taker buy quote asset volume"),
        ))
    return klines


async def fetch_klines(
    api: MarketApi, asset: str, after_ms: int, before_ms: int, into: list[OpenInterestResponse]
) -> None:
    symbol = market_symbol(asset)

    def params_of(first: int, last: int) -> dict[str, str]:
        return {"symbol": symbol, "interval": KLINE_INTERVAL, "startTime": str(first), "endTime": str(last),
                "limit": str(KLINE_PAGE)}

    await md.fetch_windows(api, KLINES_PATH, params_of, lambda body: parse_klines(body, symbol),
                           after_ms, before_ms, KLINE_PAGE * KLINE_MS, into)


def klines_of(responses: Sequence[OpenInterestResponse]) -> list[Kline]:
    return md.parsed_responses(responses, KLINES_PATH, parse_klines)


KLINES = KlineHistory(
    paths=(KLINES_PATH,),
    interval_ms=KLINE_MS,
    reach_ms=None,
    taker_reach_ms=None,
    fetch=fetch_klines,
    klines=klines_of,
    weights={KLINES_PATH: KLINES_WEIGHT},
)
MARGIN = None  # signed (see the docstring)
