"""Replies while the event loop is busy (a cascade being ingested), on SQLite.

aiosqlite runs statements on a thread per connection, and sqlite3 releases the
GIL around every row it steps; a thread that wants the GIL back waits up to
the interpreter's switch interval while the event loop's thread runs Python.
So with the loop busy, a reply's reads cost about a switch interval per row.
The bot sets the interval to `bot.app.SQLITE_SWITCH_INTERVAL_S` (0.2 ms);
Python's default is 5 ms. Printed for both, in one run: `/liq` (every asset:
one row per asset) and `/liq BTC 1h` through the real Dispatcher over a store
of `--assets` assets, while a task keeps the loop busy in 10 ms slices, and
how much of that task's work got done (the cost of switching more often).

    python benchmarks/busy_replies.py [--assets 500] [--asks 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import SQLITE_SWITCH_INTERVAL_S  # noqa: E402
from bot.commands.dispatch import Dispatcher  # noqa: E402
from bot.commands.ports import Caller  # noqa: E402
from bot.core.models import MINUTE_MS, LiquidationEvent, Side  # noqa: E402
from bot.services.queries import QueryService  # noqa: E402
from bot.storage.store import Store  # noqa: E402

CALLER = Caller("console", "console:bench", "console:bench")
DEFAULT_SWITCH_INTERVAL_S = 0.005


def events(assets: int, now_ms: int) -> list[LiquidationEvent]:
    found = []
    for n in range(assets):
        asset = "BTC" if n == 0 else f"A{n}"
        for k in range(20):
            at_ms = now_ms - (k + 1) * 3 * MINUTE_MS
            found.append(LiquidationEvent("binance", "usdm", f"{asset}USDT", asset, Side.LONG if k % 2 else Side.SHORT,
                                          100.0, 10.0 + k, round(100.0 * (10.0 + k), 2), at_ms))
    return found


async def busy(slices: list[int], stop: asyncio.Event) -> None:
    """The loop's own work: pure Python in ~10 ms slices, as ingest under a cascade."""
    while not stop.is_set():
        total = 0
        for i in range(200_000):
            total += i
        slices[0] += 1
        await asyncio.sleep(0)


async def measure(dispatcher: Dispatcher, command: str, asks: int, interval_s: float) -> tuple[list[float], float]:
    sys.setswitchinterval(interval_s)
    slices, stop = [0], asyncio.Event()
    worker = asyncio.create_task(busy(slices, stop))
    started = time.perf_counter()
    latencies = []
    for _ in range(asks):
        asked = time.perf_counter()
        await dispatcher.handle(command, CALLER)
        latencies.append((time.perf_counter() - asked) * 1000)
    stop.set()
    await worker
    return latencies, slices[0] / (time.perf_counter() - started)


def figures(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    return f"p50 {statistics.median(ordered):.0f} ms, p95 {ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = await Store.open(Path(folder) / "busy.sqlite")
        now_ms = int(time.time() * 1000)
        await store.add_events(events(args.assets, now_ms))
        dispatcher = Dispatcher(QueryService(store), lambda: now_ms)
        try:
            for command in ("/liq", "/liq BTC 1h"):
                for interval_s in (DEFAULT_SWITCH_INTERVAL_S, SQLITE_SWITCH_INTERVAL_S):
                    latencies, slices_per_s = await measure(dispatcher, command, args.asks, interval_s)
                    print(f"{command:<12} switch interval {interval_s * 1000:g} ms: {figures(latencies)};"
                          f" the busy task meanwhile {slices_per_s:.0f} slices/s")
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--asks", type=int, default=30)
    asyncio.run(main(parser.parse_args()))
