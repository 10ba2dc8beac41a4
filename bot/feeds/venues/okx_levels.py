"""OKX v5: what the levels model takes from it (klines with the taker split,
margin tiers); the venue's own module is `bot.feeds.venues.okx`.

Klines: `GET /api/v5/market/history-candles?instId&bar&after&before&limit`
(https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-candlesticks-history),
"history candlestick charts from recent years", 20 requests / 2 s per IP;
`after` returns records earlier than the given ts, `before` newer (both
exclusive); rows `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`, ts the
opening time, `volCcyQuote` the volume in the quote currency ("USDT for
BTC-USDT and BTC-USDT-SWAP"), `confirm` 0 while the candle is not completed
(such rows are left out). The copies of the page we read differ on `limit`'s
maximum (100 or 300); we ask 100. No row order is promised; we rely on none.

The taker split: the candles carry none. OKX's closest equivalent is
`GET /api/v5/rubik/stat/taker-volume-contract?instId&period&unit&begin&end&limit`
(https://www.okx.com/docs-v5/en/#trading-statistics-rest-api-get-contract-taker-volume):
rows `[ts, sellVol, buyVol]`, `unit=2` in USD ("U"), `begin` / `end` exclusive
like the open-interest history, limit max 100, "the latest 1,440 data entries"
(5 days of 5-minute rows), 5 requests / 2 s per IP + instrument ID. A candle's
taker-buy USD is its quote volume x buyVol / (buyVol + sellVol) of the row with
its ts; candles older than the taker rows have no split. The issue's
`taker-volume` endpoint is per currency, spot or all contracts together
(`ccy`, `instType`): not the perpetual's flow.

Margin tiers: `GET /api/v5/public/position-tiers?instType=SWAP&tdMode=cross&instFamily=`
(https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers),
public, 10 requests / 2 s per IP, `instFamily` required for SWAP; rows
`{uly, instFamily, instId, tier, minSz, maxSz, mmr, imr, maxLever, ...}`, `mmr`
the "position maintenance margin requirement rate" (the docs' example: "0.03").
The lowest tier is the smallest `tier` of the USDT swap.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.bars import Kline
from bot.core.models import MINUTE_MS
from bot.feeds import marketdata as md
from bot.feeds.contract import KlineHistory, MarginTiers, MarketApi, OpenInterestResponse, PathLimit
from bot.feeds.errors import shown
from bot.feeds.venues.okx import VENUE, _market_data, market_inst_id

CANDLES_PATH = "/api/v5/market/history-candles"
TAKER_VOLUME_PATH = "/api/v5/rubik/stat/taker-volume-contract"
POSITION_TIERS_PATH = "/api/v5/public/position-tiers"
KLINE_BAR, KLINE_MS = "5m", 5 * MINUTE_MS
PAGE_ROWS = 100
TAKER_ENTRIES = 1440  # "the latest 1,440 data entries"
IN_USD = "2"


def parse_candles(body: object, inst_id: str) -> list[tuple[int, float, float, float, float, float]]:
    """`GET /api/v5/market/history-candles`: (ts, open, high, low, close, quote volume) of completed candles."""
    candles = []
    for row in _market_data(body, "history-candles"):
        row = md.json_list(row, "candle")
        if len(row) < 9:
            raise md.MarketDataError(f"{inst_id} candle is short: {shown(row)}")
        if row[8] != "1":
            continue  # not completed
        candles.append((md.instant_ms(row[0], f"{inst_id} candle ts"),
                        *(md.positive(row[i], f"{inst_id} candle price") for i in (1, 2, 3, 4)),
                        md.not_negative(row[7], f"{inst_id} volCcyQuote")))
    return candles


def parse_taker_volume(body: object, inst_id: str) -> dict[int, tuple[float, float]]:
    """`GET /api/v5/rubik/stat/taker-volume-contract`: ts -> (sell, buy) volume."""
    rows = {}
    for row in _market_data(body, "taker-volume-contract"):
        row = md.json_list(row, "taker-volume-contract row")
        if len(row) < 3:
            raise md.MarketDataError(f"{inst_id} taker-volume-contract row is short: {shown(row)}")
        rows[md.instant_ms(row[0], f"{inst_id} ts")] = (
            md.not_negative(row[1], f"{inst_id} sellVol"), md.not_negative(row[2], f"{inst_id} buyVol")
        )
    return rows


async def fetch_klines(
    api: MarketApi, asset: str, after_ms: int, before_ms: int, into: list[OpenInterestResponse]
) -> None:
    inst_id = market_inst_id(asset)
    for first, last in md.windows(after_ms, before_ms, PAGE_ROWS * KLINE_MS):
        # after / before are exclusive: "earlier than" / "newer than" the ts given.
        params = {"instId": inst_id, "bar": KLINE_BAR, "after": str(last + 1), "before": str(first - 1),
                  "limit": str(PAGE_ROWS)}
        body = await api.get(CANDLES_PATH, params)
        parse_candles(body, inst_id)
        into.append((CANDLES_PATH, params, body))
    served_from = before_ms - TAKER_ENTRIES * KLINE_MS
    for first, last in md.windows(max(after_ms, served_from), before_ms, PAGE_ROWS * KLINE_MS):
        params = {"instId": inst_id, "period": KLINE_BAR, "unit": IN_USD, "begin": str(first - 1),
                  "end": str(last + 1), "limit": str(PAGE_ROWS)}
        body = await api.get(TAKER_VOLUME_PATH, params)
        parse_taker_volume(body, inst_id)
        into.append((TAKER_VOLUME_PATH, params, body))


def klines_of(responses: Sequence[OpenInterestResponse]) -> list[Kline]:
    candles: dict[tuple[str, int], tuple] = {}
    flow: dict[tuple[str, int], tuple[float, float]] = {}
    for path, params, body in responses:
        inst_id = params.get("instId", "")
        if not inst_id.endswith("-USDT-SWAP"):
            continue
        asset = inst_id.removesuffix("-USDT-SWAP")
        if path == CANDLES_PATH:
            candles.update(((asset, candle[0]), candle) for candle in parse_candles(body, inst_id))
        elif path == TAKER_VOLUME_PATH:
            flow.update(((asset, at_ms), row) for at_ms, row in parse_taker_volume(body, inst_id).items())
    klines = []
    for (asset, open_ms), (_, open_, high, low, close, volume_usd) in sorted(candles.items()):
        sell, buy = flow.get((asset, open_ms), (0.0, 0.0))
        taker_buy = volume_usd * buy / (buy + sell) if buy + sell > 0 else None
        klines.append(Kline(VENUE, asset, open_ms, open_ms + KLINE_MS, open_, high, low, close, volume_usd, taker_buy))
    return klines


def family_of(asset: str) -> str:
    return f"{asset}-USDT"


def lowest_tier_rate(body: object, asset: str) -> float | None:
    """`GET /api/v5/public/position-tiers`: the `mmr` of the USDT swap's lowest tier."""
    inst_id = market_inst_id(asset)
    tiers = [md.json_object(row, "position-tiers row") for row in _market_data(body, "position-tiers")]
    # Swap tiers are the family's: rows name it in instFamily (instId may be empty).
    tiers = [tier for tier in tiers if tier.get("instFamily") == family_of(asset) or tier.get("instId") == inst_id]
    if not tiers:
        return None
    lowest = min(tiers, key=lambda tier: md.finite_number(tier.get("tier"), f"{inst_id} tier"))
    return md.not_negative(lowest.get("mmr"), f"{inst_id} mmr")


KLINES = KlineHistory(
    paths=(CANDLES_PATH, TAKER_VOLUME_PATH),
    interval_ms=KLINE_MS,
    reach_ms=None,
    taker_reach_ms=TAKER_ENTRIES * KLINE_MS,
    fetch=fetch_klines,
    klines=klines_of,
    limits={TAKER_VOLUME_PATH: PathLimit(5, 2_000, per_param="instId")},
)
MARGIN = MarginTiers(
    path=POSITION_TIERS_PATH,
    request=lambda asset: {"instType": "SWAP", "tdMode": "cross", "instFamily": family_of(asset)},
    lowest_rate=lowest_tier_rate,
    limit=10,
    window_ms=2_000,
)
