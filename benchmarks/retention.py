"""A year of traffic into one database with retention on: the size stays bounded.

Simulates `--days` days (default 365): quiet days of ~30k liquidations, a
volatile day of ~300k every `--volatile-every` days (default 20), over 100
assets and 11 venues. After each day the retention pass of `liqbot run`
deletes what the default policy no longer keeps (raw events and minute
rollups after 90 days; hour rollups forever). No VACUUM, ever. Prints the
database size (file + WAL) every 30 days; the baseline is the size the same
database reaches at the end of the first retention period, before any
deletion, so "bounded" reads as the ratio to it. Past that point the file
grows only by the hour rollups (kept forever by design: a few bytes per
asset, venue and side an hour); deleted pages are reused (the "free MB"
column stays small).

`--scale 0.1` runs a tenth of the traffic (same shape) in a tenth of the time.

Run: python benchmarks/retention.py [--days 365] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.models import DAY_MS, LiquidationEvent, Side  # noqa: E402
from bot.storage.maintenance import RetentionPolicy, apply_retention  # noqa: E402
from bot.storage.store import Store  # noqa: E402

START_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
ASSETS = ["BTC"] * 30 + ["ETH"] * 20 + ["SOL"] * 8 + [f"ALT{i}" for i in range(97)]
VENUES = ("binance", "bybit", "okx", "gate", "bitget", "htx", "bitmex", "deribit", "bitfinex", "dydx", "kraken")


def day_of_events(day: int, count: int, rng: random.Random) -> list[LiquidationEvent]:
    start = START_MS + day * DAY_MS
    events = []
    for _ in range(count):
        asset = rng.choice(ASSETS)
        usd = round(rng.lognormvariate(8, 1.6), 2)
        price = round(rng.uniform(0.5, 100_000), 4)
        events.append(LiquidationEvent(
            rng.choice(VENUES), "usdm", f"{asset}USDT", asset, Side.LONG if rng.random() < 0.55 else Side.SHORT,
            price, round(usd / price, 6), usd, start + rng.randrange(DAY_MS),
        ))
    events.sort(key=lambda e: e.at_ms)
    return events


async def rows(store: Store, table: str) -> int:
    return (await store.db.fetchone(f"SELECT COUNT(*) FROM {table}"))[0]


async def free_mb(store: Store) -> float:
    return (await store.db.fetchone("SELECT freelist_count * page_size FROM pragma_freelist_count, pragma_page_size"))[0] / 1e6


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--volatile-every", type=int, default=20)
    args = parser.parse_args()
    quiet, volatile = round(30_000 * args.scale), round(300_000 * args.scale)
    rng = random.Random(5)
    policy = RetentionPolicy()
    with tempfile.TemporaryDirectory(prefix="liqbot-year-") as folder:
        path = Path(folder) / "year.sqlite"
        store = await Store.open(path)
        started, total, baseline_mb = time.perf_counter(), 0, None
        print(f"{'day':>5} {'received':>11} {'raw rows':>10} {'minute rows':>12} {'hour rows':>10}"
              f" {'file MB':>8} {'free MB':>8} {'retention s':>12}")
        for day in range(args.days):
            events = day_of_events(day, volatile if day % args.volatile_every == args.volatile_every - 1 else quiet, rng)
            for at in range(0, len(events), 20_000):
                await store.add_events(events[at : at + 20_000])
            total += len(events)
            pass_started = time.perf_counter()
            await apply_retention(store, policy, START_MS + (day + 1) * DAY_MS)
            retention_s = time.perf_counter() - pass_started
            if day + 1 == policy.events_days:
                baseline_mb = size_mb(path)
            if (day + 1) % 30 == 0 or day + 1 == args.days:
                print(
                    f"{day + 1:>5} {total:>11,} {await rows(store, 'events'):>10,}"
                    f" {await rows(store, 'rollup_minute'):>12,} {await rows(store, 'rollup_hour'):>10,}"
                    f" {size_mb(path):>8.1f} {await free_mb(store):>8.1f} {retention_s:>12.2f}",
                    flush=True,
                )
        await store.close()
        final_mb = size_mb(path)
    print(f"{total:,} events in {time.perf_counter() - started:.0f} s")
    if baseline_mb:
        print(f"baseline: {baseline_mb:.1f} MB after the first {policy.events_days:.0f} days (nothing deleted yet);"
              f" after {args.days} days: {final_mb:.1f} MB = {final_mb / baseline_mb:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
