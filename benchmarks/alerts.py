"""Alert matching and digest composition.

1. Per-event matching cost of the AlertEngine with 100 rules and with 100k
   rules (big / total / skew mixed over 20 assets, realistic thresholds),
   printed side by side: the cost should stay flat.
2. The live feed's per-event matching cost with 10 and with 10k subscribed
   channels (thresholds no order reaches, so matching alone is timed; what
   does match costs one grouped line per chat, by design).
3. Daily digests for 10k chats (two locales, a handful of send times): time to
   decide what is due and compose, with a store holding 31 days of events
   (the notifier is a null destination, unpaced).

    python benchmarks/alerts.py [--events 200000] [--chats 10000]
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

from bot.core.alerts import AlertEngine, AlertRule, EngineSettings, RuleKind  # noqa: E402
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, LiquidationEvent, Side  # noqa: E402
from bot.services.digests import DigestService  # noqa: E402
from bot.services.notifier import Notifier, NotifierSettings  # noqa: E402
from bot.services.outbox import Outbox  # noqa: E402
from bot.core.feed import FeedMatcher, FeedSubscription  # noqa: E402
from bot.storage.digests_store import DigestsStore  # noqa: E402
from bot.core.digest import DigestSchedule  # noqa: E402
from bot.storage.store import Store  # noqa: E402

ASSETS = [f"A{i}" for i in range(18)] + ["BTC", "ETH"]
START = 1_742_558_400_000


def make_rules(n: int, rng: random.Random, scale: float = 1.0) -> list[AlertRule]:
    rules = []
    windows = [15 * MINUTE_MS, HOUR_MS, 4 * HOUR_MS, DAY_MS]
    for i in range(n):
        asset = rng.choice(ASSETS)
        kind = rng.random()
        chat = f"telegram:{i % 5000}"
        if kind < 0.4:
            rules.append(AlertRule(i + 1, chat, chat, RuleKind.BIG, asset if rng.random() < 0.9 else None,
                                   rng.choice([250e3, 500e3, 1e6, 2e6, 5e6]) * rng.uniform(1, 3) * scale))
        elif kind < 0.8:
            rules.append(AlertRule(i + 1, chat, chat, RuleKind.TOTAL, asset, rng.uniform(5e6, 500e6) * scale,
                                   rng.choice(windows)))
        else:
            rules.append(AlertRule(i + 1, chat, chat, RuleKind.SKEW, asset, rng.uniform(5e6, 100e6) * scale,
                                   rng.choice(windows), rng.choice([0.7, 0.8, 0.9, 0.95])))
    return rules


def make_events(n: int, rng: random.Random, per_second: int = 200) -> list[LiquidationEvent]:
    events = []
    for i in range(n):
        asset = rng.choice(ASSETS)
        usd = round(rng.lognormvariate(8.5, 1.6), 2)  # median ~5K, a long tail into the millions
        side = Side.LONG if rng.random() < 0.6 else Side.SHORT
        events.append(LiquidationEvent("binance", "usdm", asset + "USDT", asset, side, 100.0, usd / 100, usd,
                                       START + i * 1000 // per_second))
    return events


def bench_matching(rule_count: int, events: list[LiquidationEvent], batch: int = 20, scale: float = 1.0) -> tuple[float, int]:
    rng = random.Random(1)
    engine = AlertEngine(EngineSettings(cooldown_ms=15 * MINUTE_MS, group_ms=5_000))
    for rule in make_rules(rule_count, rng, scale):
        engine.add(rule)
    fired = 0
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        chunk = events[i : i + batch]
        now = chunk[-1].at_ms
        fired += len(engine.on_events(chunk, now))
        if i % 200 == 0:  # the service ticks once a second (200 events/s here)
            fired += len(engine.tick(now))
        engine.take_dirty()
    elapsed = time.perf_counter() - started
    return elapsed / len(events) * 1e6, fired


def bench_feed(channels: int, events: list[LiquidationEvent]) -> float:
    """Microseconds per event to match `channels` feed subscriptions (a fifth name one asset)."""
    rng = random.Random(3)
    matcher = FeedMatcher()
    for i in range(channels):
        assets = (rng.choice(ASSETS),) if i % 5 == 0 else ()
        matcher.set(FeedSubscription(f"telegram:-{i}", rng.uniform(1e9, 1e10), assets))
    started = time.perf_counter()
    for i in range(0, len(events), 20):
        matcher.on_events(events[i : i + 20], events[i].at_ms)
    return (time.perf_counter() - started) / len(events) * 1e6


async def bench_digests(chats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = await Store.open(Path(folder) / "bench.sqlite")
        try:
            end = START
            await store.add_span("binance", "usdm", end - 32 * DAY_MS, end)
            rng = random.Random(2)
            events = [
                LiquidationEvent("binance", "usdm", a + "USDT", a, rng.choice(list(Side)), 100.0, 1.0,
                                 round(rng.lognormvariate(9, 1.5), 2), end - 31 * DAY_MS + k * 9_000)
                for k, a in enumerate(rng.choice(ASSETS) for _ in range(31 * DAY_MS // 9_000))
            ]
            await store.add_events(events)
            schedules = DigestsStore(store)
            times = ["08:00"]  # all at the same UTC moment: the worst case for one firing
            for i in range(chats):
                schedule = DigestSchedule(f"telegram:{i}", times[0], "UTC", True, None, "zh" if i % 3 else "en")
                await schedules.set_digest(schedule, 0)

            class Null:
                async def send(self, chat_key, reply):
                    pass

            notifier = Notifier({"telegram": Null()}, settings=NotifierSettings(rate_per_s=0))
            outbox = Outbox(store, notifier)
            service = DigestService(store, outbox)
            started = time.perf_counter()
            due_and_composed = await service.send_due(end + 8 * HOUR_MS - (end % DAY_MS))
            elapsed = time.perf_counter() - started
            await outbox.close()
            await notifier.close()
            print(f"digests: {chats:,} chats ({len(events):,} events stored), {service.compositions} compositions,"
                  f" {due_and_composed:,} delivered to a null destination in {elapsed:.2f} s"
                  f" (includes writing each chat's send to the outbox, claiming it and recording it sent)")
            compose_started = time.perf_counter()
            fresh = DigestService(store, outbox)  # nothing cached
            await fresh.compose("en", end, "2025-03-21")
            await fresh.compose("zh", end, "2025-03-21")
            print(f"digests: composing both locales from the store: {(time.perf_counter() - compose_started) * 1000:.1f} ms")
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--chats", type=int, default=10_000)
    args = parser.parse_args()
    events = make_events(args.events, random.Random(0))
    small_us, small_fired = bench_matching(100, events)
    large_us, large_fired = bench_matching(100_000, events)
    print(f"matching: {args.events:,} events   100 rules: {small_us:.2f} us/event ({small_fired} alerts)"
          f"   100k rules: {large_us:.2f} us/event ({large_fired} alerts)   ratio {large_us / small_us:.2f}x")
    # The same with thresholds no event reaches: pure matching, no alert output.
    # Beyond a few thousand rules every (asset, window, share level) is in use and
    # the cost stops moving: compare 10k with 100k too.
    small_us, _ = bench_matching(100, events, scale=1000)
    mid_us, _ = bench_matching(10_000, events, scale=1000)
    large_us, _ = bench_matching(100_000, events, scale=1000)
    print(f"matching, nothing fires:   100 rules: {small_us:.2f} us/event   10k rules: {mid_us:.2f} us/event"
          f"   100k rules: {large_us:.2f} us/event   ratio 100k/100 {large_us / small_us:.2f}x,"
          f" 100k/10k {large_us / mid_us:.2f}x")
    few_us, many_us = bench_feed(10, events), bench_feed(10_000, events)
    print(f"feed matching, nothing matches:   10 channels: {few_us:.2f} us/event   10k channels: {many_us:.2f} us/event"
          f"   ratio {many_us / few_us:.2f}x")
    asyncio.run(bench_digests(args.chats))


if __name__ == "__main__":
    main()
