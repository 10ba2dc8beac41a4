"""The liquidation-levels model graded over a generated month, against a naive baseline.

A month of one asset is simulated from the traders' side, independently of the
model: every minute the price moves (a random walk whose volatility changes from
day to day), traders open positions when open interest rises (longs the share
of taker buys, which follows the move), with a *true* leverage mix that is not
the model's default (more 20x, fewer 100x), and a true maintenance margin of
0.4 %. A position is liquidated the minute the price reaches its liquidation
price, which the simulation records as a liquidation order there; open interest
falls by it. Voluntary closes shrink every position alike.

liqbot sees only what a venue publishes: one market sample a minute (mark price
and open interest) and the liquidation orders. The levels service folds the
month in, bar by bar, and grades every band the price crossed: how much of its
estimate was matched by liquidations within 0.5 % during that bar (each band
counting at most its estimate), how many bands saw any, and what share of all
the month's liquidations fell near a crossed band (what the map caught). The
baseline is the same model with one naive leverage tier (all positions at 10x),
in the same run.

Run: python benchmarks/levels_grade.py [--days 30] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import math
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.levels import LevelSettings, LeverageTier, liquidation_price  # noqa: E402
from bot.core.market import MarketSample  # noqa: E402
from bot.core.models import DAY_MS, MINUTE_MS, LiquidationEvent, Side, Window  # noqa: E402
from bot.services.levels import LevelsService, LevelsSettings  # noqa: E402
from bot.storage.levels_store import LevelsStore  # noqa: E402
from bot.storage.market_store import MarketStore  # noqa: E402
from bot.storage.store import Store  # noqa: E402

START_MS = 1_761_955_200_000  # 2025-11-01 00:00 UTC
TRUE_TIERS = ((3, 0.10), (10, 0.25), (20, 0.35), (50, 0.20), (100, 0.10))
TRUE_MMR = 0.004
NAIVE = LevelSettings(tiers=(LeverageTier(10, 1.0),))


def simulate(days: int, seed: int) -> tuple[list[MarketSample], list[LiquidationEvent]]:
    rng = random.Random(seed)
    price, open_interest = 90_000.0, 8e9
    # Open positions by side as heaps of (key, liquidation price, usd / shrink at opening): longs
    # go first at the highest liquidation price, shorts at the lowest. Voluntary closes shrink
    # every position alike, kept as one factor rather than a pass over all of them.
    longs: list[tuple[float, float, float]] = []
    shorts: list[tuple[float, float, float]] = []
    shrink = 1.0
    samples, orders = [], []
    daily_vol = 0.03
    for minute in range(days * 1440):
        at_ms = START_MS + minute * MINUTE_MS
        if minute % 1440 == 0:
            daily_vol = rng.choice((0.015, 0.025, 0.035, 0.06))
        move = rng.gauss(0, daily_vol / math.sqrt(1440))
        price *= math.exp(move)
        for book, side, hit in ((longs, Side.LONG, lambda liq: price <= liq), (shorts, Side.SHORT, lambda liq: price >= liq)):
            while book and hit(book[0][1]):  # the liquidation engine
                _, liq_price, scaled = heapq.heappop(book)
                usd = scaled * shrink
                fill = liq_price * (1 + rng.uniform(-0.001, 0.001))
                if usd >= 1_000:
                    orders.append(LiquidationEvent("binance", "usdm", "BTCUSDT", "BTC", side, fill, usd / fill,
                                                   round(usd, 2), at_ms + rng.randrange(MINUTE_MS)))
                open_interest -= usd
        # Open interest builds in moves and drifts back toward its usual level between them.
        change = open_interest * (rng.gauss(0, 0.0001) + 0.05 * abs(move)) + 0.0005 * (8e9 - open_interest)
        if change > 0:  # new positions: the buyers' share follows the move
            long_share = min(0.9, max(0.1, 0.5 + 40 * move))
            for leverage, weight in TRUE_TIERS:
                long_liq = liquidation_price(price, leverage, Side.LONG, TRUE_MMR)
                short_liq = liquidation_price(price, leverage, Side.SHORT, TRUE_MMR)
                heapq.heappush(longs, (-long_liq, long_liq, change * weight * long_share / shrink))
                heapq.heappush(shorts, (short_liq, short_liq, change * weight * (1 - long_share) / shrink))
        else:  # voluntary closes: every position alike
            shrink *= max(0.0, 1 + change / open_interest)
        open_interest = max(1e9, open_interest + change)
        samples.append(MarketSample("binance", "BTC", at_ms, mark_price=round(price, 1), open_interest_usd=open_interest))
    return samples, orders


async def grade_with(store: Store, model: LevelSettings, days: int, label: str) -> None:
    levels = LevelsService(store, MarketStore(store), LevelsStore(store), ["binance"],
                           LevelsSettings(model=model, warmup_days=days + 1))
    end_ms = START_MS + days * DAY_MS
    started = time.perf_counter()
    for day in range(1, days + 1):  # a day at a time, as a running bot would catch up after a restart
        await levels.update("BTC", START_MS + day * DAY_MS)
    elapsed = time.perf_counter() - started
    bars = days * 96
    for window_days in (7, days):
        window = Window(end_ms - window_days * DAY_MS, end_ms)
        grade = await LevelsStore(store).grade("BTC", window.start_ms, window.end_ms)
        liquidated = sum(row.usd for row in await store.totals("BTC", window))
        matched = f"{grade.matched_share:.0%}" if grade.matched_share is not None else "n/a"
        hits = f"{grade.hit_rate:.0%}" if grade.hit_rate is not None else "n/a"
        print(f"  {label:<22} last {window_days:>2} days: {grade.crossings:>5} bands crossed holding "
              f"${grade.estimated_usd / 1e9:,.2f}B; matched {matched} of it, bands hit {hits}; "
              f"{grade.near_usd / liquidated:.0%} of the ${liquidated / 1e9:,.2f}B liquidated fell near a crossed band")
    print(f"  {label:<22} {bars} bars folded in {elapsed:.2f} s ({elapsed / bars * 1000:.2f} ms a bar)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    samples, orders = simulate(args.days, args.seed)
    print(f"simulated {args.days} days: {len(samples):,} market samples, {len(orders):,} liquidations "
          f"(${sum(o.notional_usd for o in orders) / 1e9:,.2f}B) in {time.perf_counter() - started:.1f} s")
    for label, model in (("model (default tiers)", LevelSettings()), ("baseline (all at 10x)", NAIVE)):
        with tempfile.TemporaryDirectory() as folder:
            store = await Store.open(Path(folder) / "grade.sqlite")
            try:
                await MarketStore(store).add_samples(samples)
                await store.add_events(orders)
                await grade_with(store, model, args.days, label)
            finally:
                await store.close()


if __name__ == "__main__":
    asyncio.run(main())
