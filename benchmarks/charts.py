"""Chart render time (/chart), next to a baseline measured in the same run.

1. Baseline: saving an empty matplotlib figure of the same size to PNG.
2. `series_png`: 24 h of BTC as 48 mirrored bars + a mark price line of 1440 points.
3. `top_png`: 10 assets split long/short.
4. `/chart BTC 24h` end to end through the real dispatcher over a store of
   N events (query + render off the loop), with a new minute each time so the
   cache never answers, then once more in the same minute (a cache hit).

Prints median and p95 in milliseconds. With --save DIR, writes the two
sample charts there (liqbot-chart-btc.png, liqbot-chart-top.png).

Run: python benchmarks/charts.py [--repeats 30] [--events 200000] [--save /tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.commands.dispatch import Dispatcher  # noqa: E402
from bot.commands.ports import Caller  # noqa: E402
from bot.commands.risk import risk_handlers  # noqa: E402
from bot.core.market import MarketSample  # noqa: E402
from bot.core.models import DAY_MS, MINUTE_MS, LiquidationEvent, Side, Window  # noqa: E402
from bot.replies import charts  # noqa: E402
from bot.services.charts import ChartService, step_for  # noqa: E402
from bot.services.queries import QueryService  # noqa: E402
from bot.storage.market_store import MarketStore  # noqa: E402
from bot.storage.series import liquidation_bars  # noqa: E402
from bot.storage.store import Store  # noqa: E402

NOW_MS = 1_742_515_200_000
ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "PEPE", "SUI", "LINK", "AVAX")
CALLER = Caller("console", "console:bench", "console:bench", rate_limited=False)


def stats(name: str, samples_s: list[float], baseline_ms: float | None = None) -> None:
    ordered = sorted(samples_s)
    median = statistics.median(ordered) * 1000
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] * 1000
    ratio = f"  ({median / baseline_ms:.1f}x baseline)" if baseline_ms else ""
    print(f"{name:<44} median {median:8.1f} ms   p95 {p95:8.1f} ms{ratio}")


def timed(fn, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


async def fill(store: Store, events: int, rng: random.Random) -> None:
    batch = []
    for _ in range(events):
        asset = rng.choices(ASSETS, weights=(40, 25, 10, 6, 5, 4, 3, 3, 2, 2))[0]
        at = NOW_MS - rng.randrange(0, 2 * DAY_MS)
        side = Side.LONG if rng.random() < 0.68 else Side.SHORT
        usd = round(rng.lognormvariate(8.5, 1.6), 2)
        batch.append(LiquidationEvent("binance", "usdm", f"{asset}USDT", asset, side, 1.0, usd, usd, at))
        if len(batch) == 20_000:
            await store.add_events(batch)
            batch = []
    await store.add_events(batch)
    await store.add_span("binance", "usdm", NOW_MS - 3 * DAY_MS, NOW_MS + DAY_MS)
    price, samples = 84_000.0, []
    for k in range(2 * 24 * 60, -1, -1):
        price *= 1 + rng.gauss(0, 0.0008)
        samples.append(MarketSample("binance", "BTC", NOW_MS - k * MINUTE_MS, mark_price=round(price, 1)))
    await MarketStore(store).add_samples(samples)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--theme", default="dark", choices=("dark", "light"))
    parser.add_argument("--save", type=Path, default=None, help="write sample charts into this directory")
    args = parser.parse_args()
    rng = random.Random(42)

    with tempfile.TemporaryDirectory() as folder:
        store = await Store.open(Path(folder) / "bench.sqlite")
        try:
            await fill(store, args.events, rng)
            queries = QueryService(store)
            window = Window.trailing(DAY_MS, NOW_MS)
            bars = await liquidation_bars(store, "BTC", window, step_for(DAY_MS))
            prices = await MarketStore(store).points("BTC", "binance", "mark_price", window.start_ms, window.end_ms)
            summary = await queries.summary(None, window)

            charts.empty_png(args.theme)  # warm up fonts and the Agg renderer
            baseline = timed(lambda: charts.empty_png(args.theme), args.repeats)
            baseline_ms = statistics.median(baseline) * 1000
            print(f"{len(bars)} bars, {len(prices)} price points, {len(summary.by_asset)} assets, {args.events:,} events")
            stats("baseline: empty figure saved as PNG", baseline)
            title = charts.chart_title("BTC", DAY_MS, NOW_MS)
            series_png = charts.series_png(title, bars, prices, args.theme)
            stats("series_png (48 bars + price line)", timed(lambda: charts.series_png(title, bars, prices, args.theme), args.repeats), baseline_ms)
            top_title = charts.top_title(DAY_MS, NOW_MS)
            top_png = charts.top_png(top_title, summary.by_asset, args.theme)
            stats("top_png (10 assets)", timed(lambda: charts.top_png(top_title, summary.by_asset, args.theme), args.repeats), baseline_ms)

            minute = [0]

            def clock() -> int:
                return NOW_MS + minute[0] * MINUTE_MS

            service = ChartService(store, queries, MarketStore(store), theme=args.theme)
            dispatcher = Dispatcher(queries, clock, features=risk_handlers(None, service))
            cold = []
            for k in range(args.repeats):
                minute[0] = k + 1  # a new minute: no cache
                start = time.perf_counter()
                reply = await dispatcher.handle("/chart BTC 24h", CALLER)
                cold.append(time.perf_counter() - start)
                assert reply.image is not None
            stats("/chart BTC 24h end to end (cache miss)", cold, baseline_ms)
            warm = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                await dispatcher.handle("/chart BTC 24h", CALLER)
                warm.append(time.perf_counter() - start)
            stats("/chart BTC 24h end to end (cache hit)", warm, baseline_ms)
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / "liqbot-chart-btc.png").write_bytes(series_png)
                (args.save / "liqbot-chart-top.png").write_bytes(top_png)
                print(f"saved {args.save / 'liqbot-chart-btc.png'} and {args.save / 'liqbot-chart-top.png'}")
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
