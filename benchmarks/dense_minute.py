"""A command's reads while the current minute is dense (a cascade recorded live).

`/liq` asks for windows that end now, so one edge of every window is the
current minute so far. This fills an hour of history and then the current
minute up to now (`--into-minute-s` seconds into it: 15 and 45) at `--minute-events`
liquidations a minute over `--assets` assets (the load benchmark's firehose
stores 180k-860k a minute), and times, with the window ending now:

- the breakdown `/liq` reads (all assets, and one), as the store plans it
  (the edge as the minute's rollup less the rest of the minute,
  `windows.minute_rest`), against the baseline: the same sums with the edge
  read from the raw events, in the same run;
- the largest order, as the store finds it (each rollup bucket's record of its
  largest order), against the baseline: the scan for it in the edge's raw
  events alone (before, the store scanned that edge and then the minute).

    python benchmarks/dense_minute.py [--minute-events 180000] [--assets 500] [--into-minute-s 15 45] [--repeats 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.models import HOUR_MS, MINUTE_MS, LiquidationEvent, Side, Window  # noqa: E402
from bot.storage.store import Store  # noqa: E402
from bot.storage.windows import asset_filter  # noqa: E402

MINUTE_START_MS = 1_742_558_400_000 + HOUR_MS  # 2025-03-21 13:00 UTC: an hour of history before it
VENUES = ("binance", "bybit", "okx")
# The baseline: the window's sums with the edge minute read from raw events (what the store did before).
RAW_EDGE_SUMS = (
    "SELECT venue, liquidated, SUM(cents), SUM(n) FROM ("
    "SELECT venue, liquidated, SUM(usd_cents) AS cents, SUM(events) AS n FROM rollup_minute"
    " WHERE bucket_ms >= ? AND bucket_ms < ?{asset} GROUP BY venue, liquidated"
    " UNION ALL SELECT venue, liquidated, SUM(notional_cents), COUNT(*) FROM events"
    " WHERE at_ms >= ? AND at_ms < ?{asset} GROUP BY venue, liquidated"
    ") AS parts GROUP BY venue, liquidated"
)
RAW_EDGE_LARGEST = "SELECT MAX(notional_cents) FROM events WHERE at_ms >= ? AND at_ms < ?{asset}"


def events_between(start_ms: int, end_ms: int, count: int, assets: int, rng: random.Random) -> list[LiquidationEvent]:
    step_ms = (end_ms - start_ms) / count
    events = []
    for i in range(count):
        asset = "BTC" if i % 10 == 0 else f"A{rng.randrange(assets)}"
        usd = round(rng.lognormvariate(8, 1.6), 2)
        events.append(LiquidationEvent(
            rng.choice(VENUES), "usdm", f"{asset}USDT", asset, rng.choice((Side.LONG, Side.SHORT)),
            100.0, usd / 100, usd, start_ms + int(i * step_ms),
        ))
    return events


async def timed(read: Callable[[], Awaitable], repeats: int) -> str:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await read()
        samples.append((time.perf_counter() - started) * 1000)
    q = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples):7.1f} ms, p95 {q[18]:7.1f} ms"


async def main(args: argparse.Namespace) -> None:
    for into_minute_s in args.into_minute_s:
        with tempfile.TemporaryDirectory() as folder:
            store = await Store.open(Path(folder) / "dense.db")
            try:
                await measure(store, args, into_minute_s)
            finally:
                await store.close()


async def measure(store: Store, args: argparse.Namespace, into_minute_s: float) -> None:
    rng = random.Random(5)
    history = events_between(MINUTE_START_MS - HOUR_MS, MINUTE_START_MS, 20_000, args.assets, rng)
    end_ms = MINUTE_START_MS + int(into_minute_s * 1000)
    so_far = args.minute_events * (end_ms - MINUTE_START_MS) // MINUTE_MS
    dense = events_between(MINUTE_START_MS, end_ms, so_far, args.assets, rng)
    for first in range(0, len(history) + len(dense), 20_000):
        await store.add_events((history + dense)[first:first + 20_000])
    window = Window(end_ms - HOUR_MS, end_ms)
    print(f"{so_far:,} liquidations over {args.assets} assets in the {into_minute_s:g} s of the"
          f" current minute; a 1h window ending now; {args.repeats} reads each")
    for asset in (None, "BTC"):
        where, asset_args = asset_filter(asset)
        plain_args = (window.start_ms - window.start_ms % MINUTE_MS + MINUTE_MS, MINUTE_START_MS,
                      *asset_args, MINUTE_START_MS, end_ms, *asset_args)
        baseline = await timed(
            lambda: store.db.fetch_compact(RAW_EDGE_SUMS.format(asset=where), plain_args, 4), args.repeats
        )
        planned = await timed(lambda: store.breakdown(asset, window, 5), args.repeats)
        edge_args = (MINUTE_START_MS, end_ms, *asset_args)
        scanned = await timed(lambda: store.db.fetchone(RAW_EDGE_LARGEST.format(asset=where), edge_args), args.repeats)
        largest = await timed(lambda: store.largest(asset, window, 1), args.repeats)
        print(f"  {asset or 'all assets'}:")
        print(f"    sums, edge from raw events (baseline): {baseline}")
        print(f"    breakdown, as the store reads it:      {planned}")
        print(f"    largest, the edge scanned (baseline):  {scanned}")
        print(f"    largest order, as the store finds it:  {largest}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minute-events", type=int, default=180_000)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--into-minute-s", type=float, nargs="+", default=[15.0, 45.0])
    parser.add_argument("--repeats", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
