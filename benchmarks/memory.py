"""Resident memory of a bot process holding a large store and many alert rules.

Fills a store with N events (default 10M, written with Store.add_events), then
opens it the way `liqbot run` does (App.open: store, queries, alert engine),
loads R alert rules (default 100k) into the engine, answers a few /liq
commands, and prints the peak resident set size. Baseline in the same run:
the RSS of this interpreter right after importing the bot.

Run: python benchmarks/memory.py [--events 10000000] [--rules 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from alerts import make_rules  # noqa: E402
from ingest import CALLER, START_MS, fill_store  # noqa: E402

from bot.app import App  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.core.models import DAY_MS  # noqa: E402
from bot.storage.store import Store  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rules", type=int, default=100_000)
    args = parser.parse_args()
    baseline = peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="liqbot-mem-") as folder:
        path = Path(folder) / "mem.sqlite"
        store = await Store.open(path)
        await fill_store(store, args.events, 7 * DAY_MS, random.Random(3))
        await store.close()
        filled = peak_rss_mb()
        end_ms = START_MS + 7 * DAY_MS
        app = await App.open(Config(), db_path=path, clock_ms=lambda: end_ms)
        for rule in make_rules(args.rules, random.Random(4)):
            app.alerts.engine.add(rule)
        for command in ("/liq BTC 24h", "/liq", "/big", "/status"):
            await app.dispatcher.handle(command, CALLER)
        serving = peak_rss_mb()
        await app.close()
    print(f"baseline (interpreter + bot imported): {baseline:.0f} MB peak RSS")
    print(f"after writing {args.events:,} events: {filled:.0f} MB peak RSS (generation batches included)")
    print(f"serving with {args.rules:,} alert rules loaded: {serving:.0f} MB peak RSS")


if __name__ == "__main__":
    asyncio.run(main())
