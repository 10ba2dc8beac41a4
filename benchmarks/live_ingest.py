"""Live ingest throughput: loopback websocket -> FeedRunner -> LiveIngest -> Store.

A fake Binance USD-M endpoint, in a child process (so it does not share the
event loop or the GIL with what is measured), sends N synthetic forceOrder
frames as fast as it can. Measured in the same run:

1. transport only: a bare websockets client receiving the N frames;
2. live: the real runner (decode + parse + sink) feeding LiveIngest (batched
   Store.add_events, spans) until every event is stored;
3. baseline: `bot.services.ingest.replay` of the same frames written as a
   recording (parse + store, no network).

    python benchmarks/live_ingest.py [--frames 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402

from bot.core.models import Side  # noqa: E402
from bot.feeds.recording import frame_line  # noqa: E402
from bot.feeds.runner import FeedRunner  # noqa: E402
from bot.feeds.synthetic import LiquidationSpec, frame_for  # noqa: E402
from bot.feeds.sources import VenueStream  # noqa: E402
from bot.services.ingest import replay  # noqa: E402
from bot.services.live import LiveIngest  # noqa: E402
from bot.storage.store import Store  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "1000PEPEUSDT", "BNBUSDT", "SUIUSDT")
START_MS = 1_750_000_000_000


def frames(count: int) -> list[dict]:
    rng = random.Random(42)
    return [
        frame_for(
            LiquidationSpec(
                "binance", "usdm", SYMBOLS[n % len(SYMBOLS)], rng.choice((Side.LONG, Side.SHORT)),
                round(rng.uniform(0.1, 70_000), 2), round(0.001 * (n + 1), 3), START_MS + n * 7,
            )
        )
        for n in range(count)
    ]


# -- the fake venue (child process) ------------------------------------------------


async def _serve(count: int) -> None:
    texts = [json.dumps(frame, separators=(",", ":")) for frame in frames(count)]

    async def handler(ws) -> None:
        for text in texts:
            await ws.send(text)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ping_interval=None, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


class _Venue:
    def __init__(self, count: int) -> None:
        self.count = count
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def __aenter__(self) -> _Venue:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", str(self.count), stdout=asyncio.subprocess.PIPE
        )
        port = int((await self.process.stdout.readline()).decode())
        self.url = f"ws://127.0.0.1:{port}/market/ws/!forceOrder@arr"
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.process.kill()
        await self.process.wait()


# -- measurements -------------------------------------------------------------------


async def transport_only(count: int) -> float:
    async with _Venue(count) as venue, connect(venue.url, ping_interval=None) as ws:
        started = time.perf_counter()
        for _ in range(count):
            await ws.recv()
        return count / (time.perf_counter() - started)


async def live(count: int, batch: int, db: Path) -> tuple[float, int]:
    store = await Store.open(db)
    try:
        ingest = LiveIngest(store, batch_events=batch, batch_ms=1000)
        async with _Venue(count) as venue:
            runner = FeedRunner(VenueStream("binance", "usdm", venue.url), ingest)
            timer = asyncio.create_task(ingest.run())
            task = asyncio.create_task(runner.run())
            while runner.status.frames == 0:
                await asyncio.sleep(0.001)
            started = time.perf_counter()
            while ingest.stats.events_received < count:
                await asyncio.sleep(0.005)
            await ingest.flush()
            elapsed = time.perf_counter() - started
            task.cancel()
            timer.cancel()
            await asyncio.gather(task, timer, return_exceptions=True)
            await ingest.close()
        return count / elapsed, ingest.stats.events_stored
    finally:
        await store.close()


async def replay_baseline(count: int, directory: Path) -> tuple[float, int]:
    recording = directory / "frames.jsonl"
    with open(recording, "w", encoding="utf-8") as out:
        for n, frame in enumerate(frames(count)):
            out.write(frame_line("binance", "usdm", START_MS + n * 7 + 5, frame) + "\n")
    store = await Store.open(directory / "replay.sqlite")
    try:
        started = time.perf_counter()
        report = await replay(store, [recording])
        return count / (time.perf_counter() - started), report.stored
    finally:
        await store.close()


async def main(count: int, batch: int) -> None:
    print(f"{count:,} synthetic Binance USD-M frames (one liquidation each), loopback websocket")
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        transport = await transport_only(count)
        live_rate, live_stored = await live(count, batch, directory / "live.sqlite")
        replay_rate, replay_stored = await replay_baseline(count, directory)
    print(f"  transport only (websockets recv)       {transport:>10,.0f} frames/s")
    print(f"  live: runner + LiveIngest + Store      {live_rate:>10,.0f} events/s  ({live_stored:,} stored)")
    print(f"  baseline: replay of the same frames    {replay_rate:>10,.0f} events/s  ({replay_stored:,} stored)")
    print(f"  live / replay                          {live_rate / replay_rate:>10.0%}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(_serve(int(sys.argv[2])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames to send (default 100000)")
    parser.add_argument("--batch", type=int, default=500, help="LiveIngest batch size (default 500)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.frames, arguments.batch))
