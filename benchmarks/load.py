"""Load: a liquidation cascade into a running bot while 1,000 chats ask it things.

What runs, all on 127.0.0.1:
- a fake Binance USD-M websocket in a child process (its own CPU and GIL) sends
  `--events` forceOrder frames over `--instruments` symbols as fast as the bot
  takes them; every `--events // --markers`-th frame is a $40M "marker" order
  on its own asset, stamped with the wall clock when it is sent;
- the bot as `liqbot run` composes it (`App.open` with the default config):
  the real FeedRunner and Binance parser, LiveIngest into SQLite, the
  AlertService with `--rules` rules (loaded from the database at start), the
  Notifier, the DigestScheduler (APScheduler) with `--digests` schedules, all
  due at one minute `--digest-after-s` into the run (the worst case: everyone
  picked the same time), and the Dispatcher;
- half the `--chats` are Telegram private chats: the real TelegramAdapter
  (python-telegram-bot, default pacing: TelegramPacing) against
  tests/fakes/telegram_api.py; the other half Discord channels: the real
  DiscordAdapter (discord.py) against tests/fakes/discord_api.py (gateway
  interactions in, channel messages out). Both fakes answer 429: Telegram one
  sendMessage in `--throttle-every` (retry_after=1), Discord one channel message
  in `--throttle-every`. Commands arrive at `--commands-per-s`, alternating
  platforms, each from the next chat; alerts and digests go to the same chats.
  Both fakes run in a child process (benchmarks/load_platforms.py), so their CPU
  and memory are not the bot's; the bot is this process.

Alert latency is measured on `total` rules (asset window over a threshold),
which fire as the event is ingested: marker sent (venue clock) -> the alert's
message received by the fake platform. Each marker crosses the `total` rules
of its asset (~100 at the default sizes), i.e. one message to each of ~50
chats per platform at once. Telegram allows a bot ~30 messages/s
(https://core.telegram.org/bots/faq), replies to commands included (so 30/s
less the Telegram half of `--commands-per-s` is left for alerts), Discord 50
requests/s, interaction responses not counted
(https://docs.discord.com/developers/topics/rate-limits), so the k-th message
of a burst cannot arrive before k/20 s (k/50 s) at the default sizes: no
sender gets every alert of a 50-chat burst out within 1 s. Printed per platform, hence:
- every alert: frame -> delivered (what a subscriber sees, including the wait
  for the platform's budget);
- first alert of each crossing: how fast the bot reacts;
- the same from the marker frame's arrival in the bot: the venue sends as fast
  as the socket takes frames, so a frame waits in the socket's buffers behind
  what the bot has not read yet (printed apart: ~1.3 s at 1M events), which no
  real venue's pace builds;
- the floor: what a sender at exactly the platform's published rate would reach,
  one message per alert, none before its frame arrived;
- where the time goes, from the outbox rows: frame -> written (the socket,
  matching, the rules' transaction), written -> recorded sent (the outbox's
  claim, the Notifier's queue and pacing, the platform), and each platform's
  messages per second while the firehose ran.
With `--cascade-after-digests-s S` the cascade starts S s after the digests fell due
(the baseline, at least `--baseline-s`, lasts until then and includes the fan-out's
start): the fan-out has filled each platform's outbox share when the alerts come,
which the outbox must not let hold them back.
`big` alerts are held `alerts.group_s` (2 s) by design to group orders, so they
are not a latency measure (the marker is below every `big` threshold).

Also printed: events/s, command latency p50/p95/p99 per platform (update or
interaction sent -> first answer received by the fake), digest delivery
(due -> first and last delivered), event-loop lag, peak RSS of this process
(the bot alone), events lost (received - stored, must be 0).

    python benchmarks/load.py [--events 1000000] [--rules 100000] [--chats 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import math
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.server import serve  # noqa: E402

from benchmarks.load_figures import (  # noqa: E402
    alert_figures,
    alert_stages,
    command_latencies,
    digest_figures,
    percentiles,
    send_rates,
    sent_of,
)
from bot.adapters.discord import DiscordAdapter  # noqa: E402
from bot.adapters.telegram import TelegramAdapter  # noqa: E402
from bot.adapters.telegram_pacing import OVERALL_PER_S as TELEGRAM_PACED_PER_S  # noqa: E402
from bot.app import App  # noqa: E402
from bot.config import DiscordConfig, TelegramConfig, parse_config  # noqa: E402
from bot.core.alerts import RuleKind  # noqa: E402
from bot.core.models import HOUR_MS, Side  # noqa: E402
from bot.feeds.runner import FeedRunner  # noqa: E402
from bot.feeds.sinks import FanOutSink, NullSink  # noqa: E402
from bot.feeds.sources import VenueStream  # noqa: E402
from bot.feeds.synthetic import LiquidationSpec, frame_for  # noqa: E402
from bot.scheduler import DigestScheduler  # noqa: E402
from bot.services.live import LiveIngest  # noqa: E402

MARKER_USD = 40_000_000
FIRST_USER_ID = 500_000
FIRST_CHANNEL_ID = 710_000_000_000_000_000
# Published send limits per bot (see the docstring): the floor a burst of alerts cannot beat.
TELEGRAM_PER_S = 30.0
DISCORD_PER_S = 50.0
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


# -- chats and seeding -----------------------------------------------------------


def chat_keys(chats: int) -> list[str]:
    """Half Telegram private chats, half Discord channels."""
    telegram = (chats + 1) // 2
    return [f"telegram:{FIRST_USER_ID + n}" for n in range(telegram)] + [
        f"discord:{FIRST_CHANNEL_ID + n}" for n in range(chats - telegram)
    ]


def extra_chat_key(n: int) -> str:
    """Chats with a digest only (beyond the `--chats` that also ask and get alerts)."""
    return f"telegram:{FIRST_USER_ID + 10_000_000 + n}" if n % 2 == 0 else f"discord:{FIRST_CHANNEL_ID + 10_000_000 + n}"


async def seed(app: App, keys: list[str], rules: int, digests: int, digest_at: str, instruments: int,
               now_ms: int) -> list[str]:
    """Rules in one transaction (the INSERT of AlertsStore.add_rule, batched to keep set-up short);
    digest schedules through the DigestService. Returns the digest chats."""
    rng = random.Random(3)
    rows = []
    for n in range(rules):
        chat = keys[n % len(keys)]
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
    digest_chats = [keys[n] if n < len(keys) else extra_chat_key(n) for n in range(digests)]
    for chat in digest_chats:
        await app.digests.set_digest(chat, digest_at, "UTC", "en", now_ms)
    return digest_chats


class MarkerArrivals(NullSink):
    """Notes when each marker order reaches the bot's sinks (wall clock ms): the frame's
    time in the socket between the venue and the bot, apart from the bot's own."""

    def __init__(self) -> None:
        self.at_ms: dict[str, int] = {}

    async def on_events(self, venue: str, stream: str, events: list) -> None:
        for event in events:
            if event.notional_usd >= MARKER_USD / 2:
                self.at_ms.setdefault(event.asset, int(time.time() * 1000))


async def watch_loop_lag(samples: list[float], every_s: float = 0.05) -> None:
    """How late the event loop runs a timer: what every waiting reply also waits."""
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + every_s
        await asyncio.sleep(every_s)
        samples.append((loop.time() - expected) * 1000)


async def run(args: argparse.Namespace, folder: Path) -> None:
    config = parse_config("")
    now_ms = int(time.time() * 1000)
    app = await App.open(config, db_path=folder / "load.sqlite")
    keys = chat_keys(args.chats)
    due_s = math.ceil((time.time() + args.digest_after_s) / 60) * 60  # a whole minute, as cron fires
    digest_at = datetime.fromtimestamp(due_s, UTC).strftime("%H:%M")
    print(f"seeding {args.rules:,} rules over {args.chats:,} chats, {args.digests:,} digest schedules"
          f" (due {digest_at} UTC) ...", flush=True)
    digest_chats = await seed(app, keys, args.rules, args.digests, digest_at, args.instruments, now_ms)
    await app.alerts.start()
    offset_s = time.time() - time.monotonic()  # the fakes stamp calls with time.monotonic()
    ids = {platform: sorted({int(k.partition(":")[2]) for k in set(keys) | set(digest_chats) if k.startswith(platform)})
           for platform in ("telegram", "discord")}
    platforms = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("load_platforms.py")),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    platforms.stdin.write(json.dumps({**ids, "throttle_every": args.throttle_every}).encode() + b"\n")
    urls = json.loads(await platforms.stdout.readline())
    # Time inside the dispatcher (rate limits, parsing, reads, composing), apart from delivery:
    # (monotonic start, ms) per command, to tell the bot's own latency from the platform path's.
    dispatched_ms: list[tuple[float, float]] = []
    dispatch = app.dispatcher.handle

    async def timed_dispatch(*args, **kwargs):
        started_s = time.monotonic()
        try:
            return await dispatch(*args, **kwargs)
        finally:
            dispatched_ms.append((started_s, (time.monotonic() - started_s) * 1000))

    app.dispatcher.handle = timed_dispatch
    telegram = TelegramAdapter(
        TelegramConfig(enabled=True, base_url=urls["telegram_base_url"], base_file_url=urls["telegram_file_url"]),
        urls["telegram_token"], app.dispatcher, app.mark_chat_gone, poll_timeout_seconds=5,
    )
    discord_adapter = DiscordAdapter(
        DiscordConfig(enabled=True, api_base=urls["discord_api"], gateway_url=urls["discord_gateway"],
                      sync_state_path=str(folder / "discord_commands.json")),
        urls["discord_token"], app.dispatcher, app.mark_chat_gone, guild_ready_timeout_s=0.01,
    )
    await telegram.start()
    await discord_adapter.start()
    app.notifier.add_destination("telegram", telegram)
    app.notifier.add_destination("discord", discord_adapter)
    scheduler = DigestScheduler(app.digests)
    await scheduler.start()
    venue = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", str(args.events), str(args.instruments), str(args.markers),
        stdout=asyncio.subprocess.PIPE,
    )
    port = int((await venue.stdout.readline()).decode())
    ingest = LiveIngest(app.store)
    arrivals = MarkerArrivals()
    runner = FeedRunner(
        VenueStream("binance", "usdm", f"ws://127.0.0.1:{port}/market/ws/!forceOrder@arr"),
        FanOutSink(arrivals, ingest, app.alerts),
    )
    markers_sent: dict[str, int] = {}
    frames_sent = [0]  # as the venue last reported
    loop_lag_ms: list[float] = []
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
        telegram_chats = [k for k in keys if k.startswith("telegram:")]
        discord_chats = [k for k in keys if k.startswith("discord:")]
        period_s, n = 1 / args.commands_per_s, 0
        while True:
            chats = telegram_chats if n % 2 == 0 or not discord_chats else discord_chats
            platform, _, raw = chats[(n // 2) % len(chats)].partition(":")
            platforms.stdin.write(f"{platform[0]} {raw} {rng.choice(COMMANDS)}\n".encode())
            n += 1
            await asyncio.sleep(period_s)

    reader = asyncio.create_task(read_markers())
    tasks = [asyncio.create_task(coro) for coro in (
        app.notifier.run(), app.outbox.run(), app.alerts.run(), ingest.run(), ask(), watch_loop_lag(loop_lag_ms),
    )]
    # The same-run baseline: commands with no cascade. With --cascade-after-digests-s it lasts (at
    # least --baseline-s and) until the digests' fan-out has run that long, so the cascade's alerts
    # meet a platform share it filled; such a baseline includes the fan-out's first minute or two.
    cascade_in_s = args.baseline_s
    if args.cascade_after_digests_s is not None:
        cascade_in_s = max(cascade_in_s, due_s + args.cascade_after_digests_s - time.time())
    await asyncio.sleep(cascade_in_s)
    cascade_at = time.monotonic()
    baseline_lag = len(loop_lag_ms)
    tasks.append(asyncio.create_task(runner.run()))
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
    firehose_end = time.monotonic()

    def during_firehose(at_s: float) -> bool:
        return cascade_at <= at_s < firehose_end
    await ingest.flush()
    # Let queued alerts, digests and answers go out: until the digests' minute has passed and
    # the outbox and the notifier's queues are empty, at most --settle-s.
    settle_until = time.perf_counter() + args.settle_s
    while time.perf_counter() < settle_until:
        await asyncio.sleep(0.5)
        peak_rss_mb = max(peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if time.time() > due_s + 5 and app.notifier.queued() == 0 and await app.outbox.backlog() == 0:
            break
    settled_s = time.perf_counter() - started - ingest_s
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(2)  # answers to the last commands
    await ingest.close()
    stored = (await app.store.stats()).events
    received_total = ingest.stats.events_received  # including what arrived while settling
    # The runner has disconnected: the venue reports what it sent (bounded wait).
    await asyncio.wait([reader], timeout=5)
    venue.kill()
    await venue.wait()
    reader.cancel()
    # The bot's peak, read before the fakes' record of every message sent (tens of MB) is loaded here.
    peak_rss_mb = max(peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    dump_path = folder / "platforms.json"
    platforms.stdin.write(f"dump {dump_path}\n".encode())
    await asyncio.wait_for(platforms.stdout.readline(), 120)
    dump = json.loads(dump_path.read_text())
    scheduler.shutdown()
    written = await app.store.db.fetch(
        "SELECT o.chat_key, o.created_ms, o.done_ms, m.body FROM outbox o"
        " JOIN outbox_messages m ON m.id = o.message_id WHERE o.kind = 'alert'"
    )
    await telegram.stop()
    await discord_adapter.stop()
    platforms.stdin.close()
    await asyncio.wait_for(platforms.wait(), 30)
    await app.close()
    sent, command_ms = sent_of(dump), command_latencies(dump)
    print(f"events: {received:,} received of {args.events:,} in {ingest_s:.1f} s = {received / ingest_s:,.0f} events/s"
          f"; then {settled_s:.0f} s until every queued alert and digest was sent")
    # The venue counts frames written to its socket: with a cut-off run, unread ones are not lost.
    print(f"events lost (received - stored): {received_total - stored:,}  (stored {stored:,}; venue wrote"
          f" {frames_sent[0]:,}, {max(0, frames_sent[0] - received_total):,} still unread at the end;"
          f" venue connections dropped and resumed: {drops})")
    # Telegram's ~30/s is per bot, replies included (the commands' half that is Telegram's);
    # Discord's interaction responses are outside its global limit.
    in_bot = [arrivals.at_ms[asset] - sent_ms for asset, sent_ms in markers_sent.items() if asset in arrivals.at_ms]
    print(f"marker frames, venue -> the bot's sinks (the socket's backlog in a firehose): {percentiles(in_bot)}")
    # What liqbot's own pacing allows alerts: Telegram's adapter 25/s less the replies, the Notifier's rate elsewhere.
    paced = {"telegram": min(TELEGRAM_PACED_PER_S, config.alerts.send_rate_per_s) - args.commands_per_s / 2,
             "discord": config.alerts.send_rate_per_s}
    for platform, left_per_s in (("telegram", TELEGRAM_PER_S - args.commands_per_s / 2), ("discord", DISCORD_PER_S)):
        print(f"{platform} alerts, frame -> delivered ({len(markers_sent)} marker crossings):")
        for figure in alert_figures(sent[platform], markers_sent, arrivals.at_ms, offset_s, left_per_s, paced[platform],
                                    due_s * 1000):
            print(f"  {figure}")
        for figure in alert_stages(written, markers_sent, platform):
            print(f"  {figure}")
        print(f"  sent while the firehose ran (alerts and digests): {send_rates(sent[platform], cascade_at, firehose_end)}")
    asked = {"telegram": len(dump["asked_telegram"]), "discord": len(dump["asked_discord"])}
    for platform in ("telegram", "discord"):
        idle = [ms for at_s, _, ms in command_ms[platform] if at_s < cascade_at]
        loaded = [(c, ms) for at_s, c, ms in command_ms[platform] if at_s >= cascade_at]
        print(f"{platform} commands ({args.commands_per_s / 2:g}/s), asked -> answered, from the cascade on:"
              f" {percentiles([ms for _, ms in loaded])};"
              f" {asked[platform] - len(command_ms[platform]):,} unanswered by the end")
        during = [ms for at_s, _, ms in command_ms[platform] if during_firehose(at_s)]
        print(f"  asked during the firehose (its {firehose_end - cascade_at:.0f} s): {percentiles(during)}")
        print(f"  baseline, the first {cascade_in_s:.0f} s without the cascade: {percentiles(idle)}")
        for command in COMMANDS:
            asked_during = [ms for at_s, c, ms in command_ms[platform] if c == command and during_firehose(at_s)]
            print(f"  {command}: {percentiles([ms for c, ms in loaded if c == command])};"
                  f" asked during the firehose: {percentiles(asked_during)}")
    print(f"both platforms, time in the dispatcher from the cascade on: "
          f"{percentiles([ms for at_s, ms in dispatched_ms if at_s >= cascade_at])};"
          f" during the firehose: {percentiles([ms for at_s, ms in dispatched_ms if during_firehose(at_s)])}")
    print(digest_figures(sent["telegram"] + sent["discord"], due_s - offset_s, len(digest_chats)))
    print(f"429s injected: one per {args.throttle_every} Telegram commands (next sendMessage) and one per"
          f" {args.throttle_every} Discord channel messages; delivered: Telegram {len(sent['telegram']):,}"
          f" alerts+digests, Discord {len(sent['discord']):,}")
    print(f"event-loop lag from the cascade on: {percentiles(loop_lag_ms[baseline_lag:])},"
          f" max {max(loop_lag_ms[baseline_lag:], default=0):.0f} ms; baseline {percentiles(loop_lag_ms[:baseline_lag])}")
    print(f"peak RSS of the bot's process (the fakes run in their own): {peak_rss_mb:.0f} MB")


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
    parser.add_argument("--baseline-s", type=float, default=15.0, help="commands alone before the cascade (at least this long)")
    parser.add_argument("--digest-after-s", type=float, default=60.0, help="digests fall due this far into the run")
    parser.add_argument("--cascade-after-digests-s", type=float, default=None,
                        help="start the cascade this long after the digests fell due, and not before --baseline-s")
    parser.add_argument("--settle-s", type=float, default=600.0,
                        help="at most this long for queued alerts, digests and answers after the cascade")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="liqbot-load-") as folder:
        asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    main()
