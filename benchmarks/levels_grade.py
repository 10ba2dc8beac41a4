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
estimate was liquidated within 0.5 % during that bar. The baseline is the same
model with one naive leverage tier (all positions at 10x), in the same run.

Run: python benchmarks/levels_grade.py [--days 30] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.levels import LevelSettings, LeverageTier, liquidation_price  # noqa: E402
from bot.core.market import MarketSample  # noqa: E402
from bot.core.models import DAY_MS, MINUTE_MS, LiquidationEvent, Side  # noqa: E402
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
    positions: list[list] = []  # [liquidation price, side, usd]
    samples, orders = [], []
    daily_vol = 0.03
    for minute in range(days * 1440):
        at_ms = START_MS + minute * MINUTE_MS
        if minute % 1440 == 0:
            daily_vol = rng.choice((0.015, 0.025, 0.035, 0.06))
        move = rng.gauss(0, daily_vol / math.sqrt(1440))
        price *= math.exp(move)
        still_open = []
        for position in positions:  # the liquidation engine
            liq_price, side, usd = position
            if (side is Side.LONG and price <= liq_price) or (side is Side.SHORT and price >= liq_price):
                fill = liq_price * (1 + rng.uniform(-0.001, 0.001))
                orders.append(LiquidationEvent("binance", "usdm", "BTCUSDT", "BTC", side, fill, usd / fill,
                                               round(usd, 2), at_ms + rng.randrange(MINUTE_MS)))
                open_interest -= usd
            else:
                still_open.append(position)
        positions = still_open
        change = open_interest * rng.gauss(0.00002 + 2 * abs(move), 0.0004)
        if change > 0:  # new positions: the buyers' share follows the move
            long_share = min(0.9, max(0.1, 0.5 + 40 * move))
            for leverage, weight in TRUE_TIERS:
                for side, share in ((Side.LONG, long_share), (Side.SHORT, 1 - long_share)):
                    usd = change * weight * share
                    if usd >= 1_000:
                        positions.append([liquidation_price(price, leverage, side, TRUE_MMR), side, usd])
        else:  # voluntary closes: every position alike
            kept = max(0.0, 1 + change / open_interest)
            for position in positions:
                position[2] *= kept
            positions = [p for p in positions if p[2] >= 1_000]
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
        grade = await LevelsStore(store).grade("BTC", end_ms - window_days * DAY_MS, end_ms + 1)
        share = f"{grade.realized_share:.1%}" if grade.realized_share is not None else "n/a"
        hits = f"{grade.hit_rate:.0%}" if grade.hit_rate is not None else "n/a"
        print(f"  {label:<24} last {window_days:>2} days: {grade.crossings:>5} bands crossed, "
              f"${grade.estimated_usd / 1e6:>9,.1f}M estimated, ${grade.realized_usd / 1e6:>8,.1f}M liquidated "
              f"within 0.5% ({share}), bands hit {hits}")
    print(f"  {label:<24} {bars} bars folded in {elapsed:.2f} s ({elapsed / bars * 1000:.2f} ms a bar)")


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
