"""SQLite reads while another thread of the process computes.

sqlite3 steps a result row by row, and its thread takes the GIL back after each
step; while another thread runs Python, that takes up to the switch interval
(5 ms) a row. `Database.fetch_compact` packs a read of integers and text into one
row (bot.storage.sqlite_db). This prints the latency of the same read, the
per-venue-and-asset sums of a day of hour rollups (what `/liq` over all assets
reads), fetched row by row (the baseline) and packed, with the process idle and
with a thread busy in Python.

Then with the event loop never idle (a task computing 1 ms at a time, yielding
with `sleep(0)`): the packed read on a plain aiosqlite connection (the baseline)
and through the store, whose calls are `handed_over` (bot.plumbing.handover).

    python benchmarks/busy_reads.py [--events 300000] [--assets 200] [--repeats 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiosqlite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.models import DAY_MS, LiquidationEvent, Side  # noqa: E402
from bot.storage.sqlite_db import packed_read  # noqa: E402
from bot.storage.store import Store  # noqa: E402

START_MS = 1_742_515_200_000
VENUES = ("binance", "bybit", "okx")
READ = (
    "SELECT asset, venue, liquidated, SUM(usd_cents), SUM(events) FROM rollup_hour"
    " WHERE bucket_ms >= ? AND bucket_ms < ? GROUP BY asset, venue, liquidated"
)


async def fill(store: Store, events: int, assets: int, rng: random.Random) -> None:
    step_ms = DAY_MS / events
    batch = []
    for i in range(events):
        asset = f"A{rng.randrange(assets)}"
        usd = round(rng.lognormvariate(8, 1.6), 2)
        batch.append(LiquidationEvent(
            rng.choice(VENUES), "usdm", f"{asset}USDT", asset, rng.choice((Side.LONG, Side.SHORT)),
            100.0, usd / 100, usd, START_MS + int(i * step_ms),
        ))
        if len(batch) == 20_000:
            await store.add_events(batch)
            batch = []
    await store.add_events(batch)


def busy_python(stop: threading.Event) -> None:
    while not stop.is_set():
        busy_python_for(0.001)


async def busy_loop(stop: asyncio.Event) -> None:
    while not stop.is_set():
        busy_python_for(0.001)
        await asyncio.sleep(0)


def busy_python_for(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(100))


async def timed(read, repeats: int, bound_s: float = 120.0) -> str:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await asyncio.wait_for(read(), bound_s)
        samples.append((time.perf_counter() - started) * 1000)
    p95 = statistics.quantiles(samples, n=20)[18]
    return f"p50 {statistics.median(samples):6.1f} ms, p95 {p95:8.1f} ms, max {max(samples):8.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="liqbot-bench-") as folder:
        store = await Store.open(Path(folder) / "busy.sqlite")
        try:
            await fill(store, args.events, args.assets, random.Random(3))
            window = (START_MS, START_MS + DAY_MS)
            rows = len(await store.db.fetch(READ, window))
            print(f"{args.events:,} events over a day, {args.assets} assets: the read returns {rows:,} rows")
            reads = {
                "row by row (baseline)": lambda: store.db.fetch(READ, window),
                "packed (fetch_compact)": lambda: store.db.fetch_compact(READ, window, 5),
            }
            for label, read in reads.items():
                print(f"  {'idle':<24} {label:<26} {await timed(read, args.repeats)}")
            stop = threading.Event()
            thread = threading.Thread(target=busy_python, args=(stop,), daemon=True)
            thread.start()
            for label, read in reads.items():
                print(f"  {'a thread busy in Python':<24} {label:<26} {await timed(read, args.repeats)}")
            stop.set()
            thread.join()
            await loop_busy(store, window, args.repeats)
        finally:
            await store.close()


async def loop_busy(store: Store, window: tuple[int, int], repeats: int) -> None:
    packed = packed_read(READ, 5)
    async with aiosqlite.connect(str(store.db.path)) as plain:
        reads = {
            "plain aiosqlite (baseline)": lambda: plain.execute_fetchall(packed, window),
            "the store (handed over)": lambda: store.db.fetch_compact(READ, window, 5),
        }
        stop = asyncio.Event()
        work = asyncio.create_task(busy_loop(stop))
        for label, read in reads.items():
            print(f"  {'event loop busy':<24} {label:<26} {await timed(read, repeats)}")
        stop.set()
        await work


if __name__ == "__main__":
    asyncio.run(main())
