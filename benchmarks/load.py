"""Load: a liquidation cascade into a running bot while 1,000 chats ask it things.

What runs, all on 127.0.0.1:
- a fake Binance USD-M websocket in a child process (its own CPU and GIL) sends
  `--events` forceOrder frames over `--instruments` symbols as fast as the bot
  takes them; every `--events // --markers`-th frame is a $40M "marker" order
  on its own asset, stamped with the wall clock when it is sent;
- the bot as `liqbot run` composes it (`App.open` with the default config):
  the real FeedRunner and Binance parser, LiveIngest into SQLite, the
  AlertService with `--rules` rules (loaded from the database at start) and the
  Notifier, `--digests` digest schedules stored (none due during the run), the Dispatcher;
- Telegram: the real TelegramAdapter (python-telegram-bot, default pacing:
  AIORateLimiter) against tests/fakes/telegram_api.py, which answers one
  sendMessage in `--throttle-every` with 429 retry_after=1. Commands arrive as
  Telegram updates (getUpdates) from `--chats` private chats at
  `--commands-per-s`; alerts go to the same chats through the Notifier.
  Discord is not in this run (its fake needs a gateway session per channel;
  left undone).

Alert latency is measured on `total` rules (asset window over a threshold),
which fire as the event is ingested: marker sent (venue clock) -> sendMessage
received by the fake Telegram server. `big` alerts are held `alerts.group_s`
(5 s) by design to group orders, so they are not a latency measure.

Printed in one run: events/s, alert latency p50/p95/p99, command latency
p50/p95/p99 (update queued -> answer received by the fake), peak RSS of this
process (bot + fake Telegram), events lost (received - stored, must be 0).

    python benchmarks/load.py [--events 1000000] [--rules 100000] [--chats 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.server import serve  # noqa: E402

from bot.adapters.telegram import TelegramAdapter, default_rate_limiter  # noqa: E402
from bot.app import App  # noqa: E402
from bot.config import TelegramConfig, parse_config  # noqa: E402
from bot.core.alerts import RuleKind  # noqa: E402
from bot.core.models import HOUR_MS, Side  # noqa: E402
from bot.feeds.runner import FeedRunner  # noqa: E402
from bot.feeds.sinks import FanOutSink  # noqa: E402
from bot.feeds.sources import VenueStream  # noqa: E402
from bot.feeds.synthetic import LiquidationSpec, frame_for  # noqa: E402
from bot.services.live import LiveIngest  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

MARKER_USD = 40_000_000
FIRST_USER_ID = 500_000
COMMANDS = ("/liq BTC 1h", "/liq", "/alert list", "/liq A7 24h", "/help")


def asset_of(index: int) -> str:
    return "BTC" if index == 0 else f"A{index}"


# -- the fake venue (child process) ----------------------------------------------


async def _serve(count: int, instruments: int, markers: int) -> None:
    rng = random.Random(7)
    every = max(1, count // max(1, markers))
    position = [0, 0]  # frames sent, markers sent: a reconnecting bot resumes, as from a live venue

    async def handler(ws) -> None:
        try:
            while position[0] < count:
                n, at_ms = position[0], int(time.time() * 1000)
                if n % every == every - 1 and position[1] < markers:
                    # markers use the last assets, each once: one crossing per asset's rules
                    asset = asset_of(instruments - 1 - position[1])
                    symbol, price, quantity = f"{asset}USDT", 40_000.0, 1_000.0
                    print(f"marker {asset} {at_ms}", flush=True)
                    position[1] += 1
                else:
                    symbol = f"{asset_of(rng.randrange(instruments - markers))}USDT"
                    price, quantity = round(rng.uniform(0.5, 60_000), 2), round(rng.uniform(0.001, 0.5), 3)
                side = Side.LONG if rng.random() < 0.6 else Side.SHORT
                frame = frame_for(LiquidationSpec("binance", "usdm", symbol, side, price, quantity, at_ms))
                frame["o"]["T"] = at_ms + n % 1000  # distinct orders even within one millisecond
                await ws.send(json.dumps(frame, separators=(",", ":")))
                position[0] += 1
            await ws.wait_closed()
        finally:
            print(f"sent {position[0]}", flush=True)

    async with serve(handler, "127.0.0.1", 0, ping_interval=None, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


# -- seeding ----------------------------------------------------------------------


async def seed(app: App, rules: int, digests: int, chats: int, instruments: int, now_ms: int) -> None:
    """Rules in one transaction (the INSERT of AlertsStore.add_rule, batched to keep set-up short)."""
    rng = random.Random(3)
    rows = []
    for n in range(rules):
        chat = f"telegram:{FIRST_USER_ID + n % chats}"
        asset = asset_of(rng.randrange(instruments))
        if rng.random() < 0.5:
            kind, threshold, window_ms = RuleKind.BIG, rng.uniform(50e6, 500e6), 0
        else:
            kind, threshold, window_ms = RuleKind.TOTAL, rng.uniform(20e6, 39e6), HOUR_MS
        rows.append((chat, chat, kind.value, asset, threshold, window_ms, 0.0, 0, "{}", now_ms))
    async with app.store.db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO alert_rules (chat_key, user_key, kind, asset, threshold_usd, window_ms, share,"
            " paused, state, created_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    for n in range(digests):
        chat = f"telegram:{FIRST_USER_ID + n % chats}" if n < chats else f"telegram:{FIRST_USER_ID + n}"
        await app.digests.set_digest(chat, f"{n % 24:02d}:{n % 60:02d}", "UTC", "en", now_ms)


def percentiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return f"n={len(samples)} (too few)"
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms, p99 {q[98]:.0f} ms (n={len(samples):,})"


async def run(args: argparse.Namespace, folder: Path) -> None:
    config = parse_config("")
    now_ms = int(time.time() * 1000)
    app = await App.open(config, db_path=folder / "load.sqlite")
    print(f"seeding {args.rules:,} rules over {args.chats:,} chats, {args.digests:,} digest schedules ...", flush=True)
    await seed(app, args.rules, args.digests, args.chats, args.instruments, now_ms)
    await app.alerts.start()
    telegram_offset_s = time.time() - time.monotonic()  # the fake stamps calls with time.monotonic()
    async with FakeTelegramAPI() as fake:
        users = [fake.user(FIRST_USER_ID + n, f"U{n}") for n in range(args.chats)]
        chats = [fake.private_chat(user) for user in users]
        telegram = TelegramAdapter(
            TelegramConfig(enabled=True, base_url=fake.base_url, base_file_url=fake.base_file_url),
            fake.token, app.dispatcher, app.mark_chat_gone, rate_limiter=default_rate_limiter(),
            poll_timeout_seconds=5,
        )
        await telegram.start()
        app.notifier.add_destination("telegram", telegram)
        venue = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", str(args.events), str(args.instruments), str(args.markers),
            stdout=asyncio.subprocess.PIPE,
        )
        port = int((await venue.stdout.readline()).decode())
        ingest = LiveIngest(app.store)
        runner = FeedRunner(
            VenueStream("binance", "usdm", f"ws://127.0.0.1:{port}/market/ws/!forceOrder@arr"),
            FanOutSink(ingest, app.alerts),
        )
        markers_sent: dict[str, int] = {}
        frames_sent = [0]  # as the venue last reported
        asked: dict[int, float] = {}  # message id -> when the update was queued (monotonic)
        peak_rss_mb = 0.0

        async def read_markers() -> None:
            while line := await venue.stdout.readline():
                words = line.decode().split()
                if words[0] == "marker":
                    markers_sent[words[1]] = int(words[2])
                elif words[0] == "sent":
                    frames_sent[0] = int(words[1])

        async def ask() -> None:
            rng = random.Random(5)
            period_s, n = 1 / args.commands_per_s, 0
            while True:
                chat_index = n % args.chats
                message = fake.push_message(chats[chat_index], users[chat_index], rng.choice(COMMANDS))
                asked[message["message_id"] + (chat_index << 32)] = time.monotonic()
                if n % args.throttle_every == 0:
                    fake.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
                n += 1
                await asyncio.sleep(period_s)

        reader = asyncio.create_task(read_markers())
        tasks = [asyncio.create_task(coro) for coro in (
            app.notifier.run(), app.alerts.run(), ingest.run(), runner.run(), ask(),
        )]
        deadline = time.perf_counter() + args.max_s
        while runner.status.frames == 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        while ingest.stats.events_received < args.events and time.perf_counter() < deadline:
            await asyncio.sleep(0.25)
            peak_rss_mb = max(peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        received = ingest.stats.events_received
        drops = runner.status.drops
        ingest_s = time.perf_counter() - started
        await ingest.flush()
        settle_until = time.perf_counter() + args.settle_s  # let queued alerts and answers go out
        while time.perf_counter() < settle_until:
            await asyncio.sleep(0.25)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ingest.close()
        stored = (await app.store.stats()).events
        received_total = ingest.stats.events_received  # including what arrived while settling
        # The runner has disconnected: the venue reports what it sent (bounded wait).
        await asyncio.wait([reader], timeout=5)
        venue.kill()
        await venue.wait()
        reader.cancel()
        calls = [c for c in fake.calls_of("sendMessage") if c.status == 200]
        command_ms, alert_ms = [], []
        for call in calls:
            if call.reply_to is not None:
                key = call.reply_to + (call.chat_id - FIRST_USER_ID << 32)
                if key in asked:
                    command_ms.append((call.at - asked.pop(key)) * 1000)
                continue
            text = call.params.get("text", "")
            for asset, sent_ms in markers_sent.items():
                if f"{asset}" in text.split() or f"<b>{asset}</b>" in text or f" {asset} " in text:
                    alert_ms.append((call.at + telegram_offset_s) * 1000 - sent_ms)
                    break
        await telegram.stop()
    await app.close()
    peak_rss_mb = max(peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(f"events: {received:,} received of {args.events:,} in {ingest_s:.1f} s = {received / ingest_s:,.0f} events/s")
    # The venue counts frames written to its socket: with a cut-off run, unread ones are not lost.
    print(f"events lost (received - stored): {received_total - stored:,}  (stored {stored:,}; venue wrote"
          f" {frames_sent[0]:,}, {max(0, frames_sent[0] - received_total):,} still unread at the end;"
          f" venue connections dropped and resumed: {drops})")
    print(f"alert frame -> delivered ({len(markers_sent)} marker crossings): {percentiles(alert_ms)}")
    print(f"commands ({args.commands_per_s}/s from {args.chats:,} chats), queued -> answered: {percentiles(command_ms)};"
          f" {len(asked):,} unanswered by the end")
    print(f"429s injected: one per {args.throttle_every} sendMessage pushes; sends: {len(calls):,} delivered")
    print(f"peak RSS (bot + fake Telegram): {peak_rss_mb:.0f} MB")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--digests", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=1_000)
    parser.add_argument("--markers", type=int, default=50, help="marker orders (alert latency samples)")
    parser.add_argument("--commands-per-s", type=float, default=20.0)
    parser.add_argument("--throttle-every", type=int, default=50, help="one 429 per this many commands")
    parser.add_argument("--max-s", type=float, default=1800.0, help="stop feeding after this long (bounded)")
    parser.add_argument("--settle-s", type=float, default=10.0, help="time for queued sends after the cascade")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="liqbot-load-") as folder:
        asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    main()
