"""Replay ingest throughput and /liq latency.

1. Generates a recording of N events (default 1M) in the venues' own frame
   formats (bot.sample), replays it through the real path (parse + normalise
   + store + rollups) and prints events/s next to a baseline measured in the
   same run: raw sqlite3 executemany of the same rows into a plain table,
   alternating with the replay for `--rounds` rounds (the machine's speed drifts).
   `--venues all` deals the day's liquidations round-robin over every stream
   of the venue registry (18 streams of 12 venues): the Binance, Bybit and OKX
   shares keep their generated frames, the other streams' shares are re-encoded
   as BTC frames of their own venue (tests.fakes.all_venues), priced by
   their metadata at the start of the recording.
2. Fills a store with M events (default 10M, over 7 days, written directly
   with Store.add_events) and prints p50/p95 latency of `/liq BTC 24h`,
   `/liq BTC 7d` and `/liq` (all assets, 24h) through the real dispatcher.

With a PostgreSQL server (--postgres URL, default $LIQBOT_TEST_POSTGRES_URL) both
run on PostgreSQL too, in a database the run creates and drops, the replay next
to its own baseline: asyncpg's binary COPY of the same rows into a plain table.

Run: python benchmarks/ingest.py [--events 1000000] [--rounds 3] [--venues three|all] [--workers N] [--latency-events 10000000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.commands.dispatch import Dispatcher  # noqa: E402
from bot.commands.ports import Caller  # noqa: E402
from bot.core.models import DAY_MS, HOUR_MS, LiquidationEvent, Side  # noqa: E402
from bot.feeds.recording import RecordingDecoder, frame_line  # noqa: E402
from bot.feeds.venues import ALL_STREAMS  # noqa: E402
from bot.sample import write_recording  # noqa: E402
from bot.services.ingest import REPLAY_BATCH_LINES, parse_workers, replay  # noqa: E402
from bot.services.queries import QueryService  # noqa: E402
from bot.storage.migrations import migrations  # noqa: E402
from bot.storage.rows import EVENT_COLUMNS  # noqa: E402
from bot.storage.store import Store  # noqa: E402
from tests.fakes.all_venues import liquidation_frame, metadata_lines  # noqa: E402

START_MS = 1_742_515_200_000
BATCH = REPLAY_BATCH_LINES  # the baseline commits as often as replay does
CALLER = Caller("console", "console:bench", "console:bench", rate_limited=False)


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def raw_executemany(path: Path, rows: list[tuple]) -> float:
    """Seconds to insert the rows into the same events table, same batching and pragmas."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(migrations("sqlite")[0][1].split("CREATE TABLE rollup_minute")[0])
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        db.execute("BEGIN")
        db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows[start : start + BATCH])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def spread_over_all_venues(generated: Path, recording: Path) -> None:
    """`generated` (Binance, Bybit, OKX) with its frames dealt round-robin over
    every stream of the registry; see the module docstring."""
    generated_venues = {"binance", "bybit", "okx"}
    with open(generated, encoding="utf-8") as source, open(recording, "w", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in metadata_lines(START_MS))
        n = 0
        for line in source:
            entry = json.loads(line)
            if "frame" not in entry:
                out.write(line)
                continue
            venue, stream = ALL_STREAMS[n % len(ALL_STREAMS)]
            n += 1
            if venue in generated_venues:
                out.write(line)
            else:
                out.write(frame_line(venue, stream, entry["at"], liquidation_frame(venue, stream, n, entry["at"])) + "\n")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def postgres_database(server_url: str, name: str):
    """A database of this run on the server (its URL), dropped afterwards."""
    admin = await asyncpg.connect(server_url, timeout=5)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
        yield with_database(server_url, name)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def raw_copy(url: str, rows: list[tuple]) -> float:
    """Seconds to COPY the rows into the same events table (no rollups), same batching."""
    db = await asyncpg.connect(url)
    await db.execute(migrations("postgresql")[0][1].split("CREATE TABLE rollup_minute")[0])
    columns = [column.strip() for column in EVENT_COLUMNS.split(",")]
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        async with db.transaction():
            await db.copy_records_to_table("events", records=rows[start : start + BATCH], columns=columns)
    elapsed = time.perf_counter() - started
    await db.close()
    return elapsed


async def bench_replay(folder: Path, events: int, venues: str, postgres: str, workers: int | None, rounds: int) -> None:
    hours = 24
    recording = folder / "bench.jsonl"
    print(f"generating a recording of ~{events:,} events ({venues} venues) ...", flush=True)
    if venues == "all":
        generated = folder / "generated.jsonl"
        write_recording(generated, START_MS, hours, seed=1, events_per_hour=events / hours / 1.62)
        spread_over_all_venues(generated, recording)
        generated.unlink()
    else:
        write_recording(recording, START_MS, hours, seed=1, events_per_hour=events / hours / 1.62)
    workers = parse_workers(recording.stat().st_size) if workers is None else workers
    # Replay and baseline alternate, round after round: on a machine whose speed
    # drifts (a shared VM), each round's ratio compares neighbours in time, and
    # the best of each side compares both at the machine's best.
    ratios, rates, raw_rates = [], [], []
    for round_number in range(1, rounds + 1):
        print(f"round {round_number} of {rounds}:")
        sqlite = await bench_replay_into(folder / f"replay{round_number}.sqlite", recording, "SQLite", workers)
        rows = sqlite.rows
        raw_cpu_before = cpu_s(resource.RUSAGE_SELF)
        raw_s = raw_executemany(folder / f"raw{round_number}.sqlite", rows)
        raw_cpu_s = cpu_s(resource.RUSAGE_SELF) - raw_cpu_before
        print(f"  baseline raw sqlite3 executemany, same rows, same table:  {len(rows):,} rows in {raw_s:.2f} s = {len(rows) / raw_s:,.0f} rows/s")
        print(
            f"  replay / baseline: {sqlite.rate / (len(rows) / raw_s):.0%};"
            f" CPU: parse workers {sqlite.parser_cpu_s:.2f} s, writer (and parser of its share) {sqlite.writer_cpu_s:.2f} s,"
            f" baseline {raw_cpu_s:.2f} s"
        )
        ratios.append(sqlite.rate / (len(rows) / raw_s))
        rates.append(sqlite.rate)
        raw_rates.append(len(rows) / raw_s)
        for path in folder.glob(f"*{round_number}.sqlite*"):
            path.unlink()
    print(
        f"SQLite replay / baseline over {rounds} rounds: median {statistics.median(ratios):.0%}"
        f" (each round: {', '.join(f'{ratio:.0%}' for ratio in ratios)});"
        f" best replay {max(rates):,.0f} events/s / best baseline {max(raw_rates):,.0f} rows/s = {max(rates) / max(raw_rates):.0%}"
    )
    if not postgres:
        return
    async with postgres_database(postgres, "liqbot_bench_replay") as url:
        pg = await bench_replay_into(url, recording, "PostgreSQL", workers)
    async with postgres_database(postgres, "liqbot_bench_raw") as url:
        raw_s = await raw_copy(url, rows)
    print(f"baseline raw asyncpg COPY, same rows, same table: {len(rows):,} rows in {raw_s:.2f} s = {len(rows) / raw_s:,.0f} rows/s")
    print(f"PostgreSQL replay / baseline: {pg.rate / (len(rows) / raw_s):.0%}")


@dataclass
class Replayed:
    rows: list[tuple]  # the recording's events as rows, for the baselines
    rate: float  # events stored per second
    parser_cpu_s: float
    writer_cpu_s: float


async def bench_replay_into(location: str | Path, recording: Path, label: str, workers: int) -> Replayed:
    store = await Store.open(location)
    # CPU seconds as well as wall time: on a loaded machine the wall ratio follows the CPU one.
    cpu_before = cpu_s(resource.RUSAGE_SELF), cpu_s(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    report = await replay(store, [recording], workers=workers)
    replay_s = time.perf_counter() - started
    writer_cpu_s = cpu_s(resource.RUSAGE_SELF) - cpu_before[0]
    parser_cpu_s = cpu_s(resource.RUSAGE_CHILDREN) - cpu_before[1]  # the workers, joined when replay returns
    await store.close()
    stored = report.stored
    decoder = RecordingDecoder()
    with open(recording, "rb") as lines:
        rows = decoder.feed_rows(lines)
    print(
        f"  {label} replay ingest (parse+normalise+store+rollup, {workers} parse workers):"
        f" {stored:,} events in {replay_s:.2f} s = {stored / replay_s:,.0f} events/s"
    )
    return Replayed(rows, stored / replay_s, parser_cpu_s, writer_cpu_s)


def synthetic_events(count: int, span_ms: int, rng: random.Random):
    assets = ["BTC"] * 40 + ["ETH"] * 25 + ["SOL"] * 10 + [f"ALT{i}" for i in range(25)]
    venues = ("binance", "bybit", "okx")
    step = span_ms / count
    for i in range(count):
        asset = rng.choice(assets)
        usd = round(rng.lognormvariate(8, 1.6), 2)
        yield LiquidationEvent(
            rng.choice(venues), "usdm", f"{asset}USDT", asset, Side.LONG if rng.random() < 0.6 else Side.SHORT,
            100.0, usd / 100.0, usd, START_MS + int(i * step),
        )


async def fill_store(store: Store, count: int, span_ms: int, rng: random.Random) -> None:
    """Write `count` synthetic events over `span_ms`, in batches."""
    batch: list[LiquidationEvent] = []
    for event in synthetic_events(count, span_ms, rng):
        batch.append(event)
        if len(batch) == 20_000:
            await store.add_events(batch)
            batch = []
    if batch:
        await store.add_events(batch)


def percentile(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100)[p - 1] if len(samples) > 1 else samples[0]


async def bench_latency(folder: Path, events: int, repeats: int, postgres: str) -> None:
    await bench_latency_on(folder / "latency.sqlite", "SQLite", events, repeats)
    if postgres:
        async with postgres_database(postgres, "liqbot_bench_latency") as url:
            await bench_latency_on(url, "PostgreSQL", events, repeats)


async def bench_latency_on(location: str | Path, label: str, events: int, repeats: int) -> None:
    store = await Store.open(location)
    try:
        await _latency_of(store, location, label, events, repeats)
    finally:
        await store.close()


async def _latency_of(store: Store, location: str | Path, label: str, events: int, repeats: int) -> None:
    span_ms = 7 * DAY_MS
    print(f"filling a {label} store with {events:,} events over 7 days ...", flush=True)
    rng = random.Random(2)
    started = time.perf_counter()
    await fill_store(store, events, span_ms, rng)
    print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)
    await store.add_span("binance", "usdm", START_MS, START_MS + span_ms)
    if store.db.backend == "postgresql":
        # What autovacuum does soon after a bulk load (the visibility map that index-only
        # scans need, fresh statistics), done now rather than waited for.
        connection = await asyncpg.connect(str(location))
        await connection.execute("VACUUM ANALYZE")
        await connection.close()
        print("  VACUUM ANALYZE done", flush=True)
    end_ms = START_MS + span_ms
    dispatcher = Dispatcher(QueryService(store), clock_ms=lambda: end_ms - rng.randrange(0, HOUR_MS))
    for command in ("/liq BTC 24h", "/liq BTC 7d", "/liq", "/big BTC 24h"):
        await dispatcher.handle(command, CALLER)  # warm the page cache
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            await dispatcher.handle(command, CALLER)
            samples.append((time.perf_counter() - started) * 1000)
        print(
            f"{label:<10} {command:<14} over {events:,} events: p50 {statistics.median(samples):.2f} ms,"
            f" p95 {percentile(samples, 95):.2f} ms ({repeats} runs, reply composed)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the replayed recording")
    parser.add_argument(
        "--venues", choices=("three", "all"), default="three",
        help="the replayed venues: Binance, Bybit and OKX, or every stream of the registry",
    )
    parser.add_argument("--workers", type=int, default=None, help="parse workers (default: as replay chooses; 0: the writer parses all)")
    parser.add_argument("--latency-events", type=int, default=10_000_000, help="events stored for the latency run (0: no latency run)")
    parser.add_argument("--rounds", type=int, default=3, help="SQLite replay and baseline, alternating, this many times each")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument(
        "--postgres", default=os.environ.get("LIQBOT_TEST_POSTGRES_URL", ""), metavar="URL",
        help="PostgreSQL server to run on too (a database is created and dropped); empty: SQLite only",
    )
    args = parser.parse_args()
    if not args.postgres:
        print("SQLite only (no --postgres URL and no LIQBOT_TEST_POSTGRES_URL)")
    with tempfile.TemporaryDirectory(prefix="liqbot-bench-") as folder:
        await bench_replay(Path(folder), args.events, args.venues, args.postgres, args.workers, args.rounds)
        if args.latency_events:
            await bench_latency(Path(folder), args.latency_events, args.repeats, args.postgres)


if __name__ == "__main__":
    asyncio.run(main())
