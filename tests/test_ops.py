"""What an operator watches: /healthz and /metrics (bot.services.ops_http).

In process, on the injected clock: /healthz follows the database connection, the
database file, the feeds' freshness and the replica's role; /metrics reads the
streams' counters and last-frame age; commands are timed and failures counted; digest
sends are counted by outcome, and the outbox backlog is shown. End to end: a real `liqbot run` against a fake venue and a
fake Telegram counts the events it stored, the command and the alert it sent."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.config import parse_config
from bot.core.models import MINUTE_MS, Side
from bot.feeds.settings import RunnerTuning
from bot.feeds.synthetic import LiquidationSpec, frame_for
from bot.feeds.venues import BY_NAME
from bot.replies.model import Paragraph, Reply, Tone, line
from bot.services.health import live_health
from bot.services.leadership import Leadership
from bot.services.live import LiveFeeds
from bot.services.metrics import Metrics
from bot.services.notifier import ConsoleDestination, Notifier, NotifierSettings
from bot.services.ops_http import OpsServer
from bot.services.outbox import Outbox
from bot.services.queries import QueryService
from bot.storage.store import Store
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.venue_ws import BASE_MS, FakeVenueServer
from tests.support import free_port, until

CLOSED = "127.0.0.1:9"  # nothing listens here: the COIN-M stream keeps reconnecting, quietly
STREAMS = [("binance", "usdm"), ("binance", "coinm")]
ALERTS_SENT = ("liqbot_sends_total", (("kind", "alert"), ("outcome", "sent")))



def feeds_text(usdm_url: str) -> str:
    others_off = "\n".join(f"[feeds.{venue}]\nenabled = false" for venue in BY_NAME if venue != "binance")
    return f"""
[feeds.binance]
usdm_ws_url = "{usdm_url}"
coinm_ws_url = "ws://{CLOSED}/"
coinm_rest_url = "http://{CLOSED}"
{others_off}
[market]
enabled = false
"""


def samples(exposition: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def test_healthz_follows_the_database_the_feeds_and_the_role(tmp_path):
    db = tmp_path / "bot.sqlite"
    store = await Store.open(db)
    now = [BASE_MS]
    await store.add_span("binance", "usdm", BASE_MS - 10 * MINUTE_MS, BASE_MS - 2_000)
    leadership = Leadership()
    metrics = Metrics(lambda: now[0], leadership)

    async def health():
        return await live_health(store, db, leadership.is_leader, STREAMS, now[0], 10 * MINUTE_MS)

    port = free_port()
    server = asyncio.create_task(OpsServer("127.0.0.1", port, health, leadership, metrics).run())
    url = f"http://127.0.0.1:{port}"
    closed = False
    try:
        await until(lambda: _listening(port), timeout=10)
        answer = await get(f"{url}/healthz")
        assert answer.status_code == 200
        assert answer.json() == {
            "healthy": True,
            "role": "leader",
            "detail": "healthy: the database answers; 1 of 2 streams recorded in the last 10m; "
            "not recording: binance/coinm (never)",
        }

        now[0] = BASE_MS + 11 * MINUTE_MS  # the injected clock passes the staleness limit
        answer = await get(f"{url}/healthz")
        assert answer.status_code == 503 and answer.json()["detail"] == (
            "unhealthy: the database answers; 0 of 2 streams recorded in the last 10m; "
            "not recording: binance/usdm (11m 2s ago), binance/coinm (never)"
        )

        leadership.become("follower")  # what the PostgreSQL election will do: feeds are the leader's
        answer = await get(f"{url}/healthz")
        assert answer.status_code == 200 and answer.json()["role"] == "follower"
        scraped = samples((await get(f"{url}/metrics")).text)
        assert scraped["liqbot_leader", ()] == 0 and scraped["liqbot_leadership_changes_total", ()] == 1

        db.rename(tmp_path / "moved.sqlite")  # the file is gone from under the running process
        answer = await get(f"{url}/healthz")
        assert answer.status_code == 503 and answer.json()["detail"] == f"unhealthy: the database file {db} is gone"
        (tmp_path / "moved.sqlite").rename(db)
        assert (await get(f"{url}/healthz")).status_code == 200

        await store.close()  # the connection is gone (on PostgreSQL: cut)
        closed = True
        answer = await get(f"{url}/healthz")
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith("unhealthy: the database does not answer: ")
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        if not closed:
            await store.close()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_metrics_read_each_streams_counters_and_last_frame_age_on_the_injected_clock(store):
    now = [BASE_MS]
    async with FakeVenueServer("binance", "usdm") as usdm, httpx.AsyncClient(timeout=2) as http:
        tuning = RunnerTuning(batch_events=1000, batch_ms=10_000_000)  # nothing is written before the end
        feeds = LiveFeeds(parse_config(feeds_text(usdm.url)).feeds, store, http, tuning=tuning, now_ms=lambda: now[0])
        metrics = Metrics(lambda: now[0], Leadership())
        metrics.watch_feeds(feeds)
        task = asyncio.create_task(feeds.run())
        try:
            await usdm.wait_for(lambda s: s.open_connections == 1, timeout=10)
            for n in range(2):
                spec = LiquidationSpec("binance", "usdm", "BTCUSDT", Side.LONG, 90_000.0, 1.0 + n, BASE_MS + n)
                await usdm.broadcast(frame_for(spec))
            await until(lambda: feeds.ingest.pending_events == 2, timeout=10)
            now[0] = BASE_MS + 42_000  # read at once: the scrape itself never awaits
            scraped = samples(metrics.exposition(None)[0].decode())
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    usdm_labels = (("stream", "usdm"), ("venue", "binance"))
    assert scraped["liqbot_stream_events_total", usdm_labels] == 2
    assert scraped["liqbot_stream_frames_total", usdm_labels] >= 2
    assert scraped["liqbot_stream_connected", usdm_labels] == 1
    assert scraped["liqbot_stream_last_frame_age_seconds", usdm_labels] == 42.0
    assert scraped["liqbot_stream_connected", (("stream", "coinm"), ("venue", "binance"))] == 0
    assert scraped["liqbot_ingest_queue_events", ()] == 2  # the batch is not due yet
    assert scraped["liqbot_events_stored_total", ()] == 0
    after = samples(metrics.exposition(None)[0].decode())  # the shutdown wrote them
    assert after["liqbot_events_stored_total", ()] == 2 and after["liqbot_ingest_queue_events", ()] == 0


async def test_liqbot_run_metrics_count_the_events_stored_the_command_and_the_alert_sent(tmp_path):
    port, db = free_port(), tmp_path / "bot.sqlite"
    async with FakeVenueServer("binance", "usdm") as usdm, FakeTelegramAPI() as telegram:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[storage]\npath = "{db}"\n{feeds_text(usdm.url)}'
            f'[telegram]\nenabled = true\nbase_url = "{telegram.base_url}"\nbase_file_url = "{telegram.base_file_url}"\n'
            f"[ops]\nhttp_port = {port}\n"
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "LIQBOT_TELEGRAM_TOKEN": telegram.token},
        )
        try:
            await usdm.wait_for(lambda s: s.open_connections == 1, timeout=60)
            trader = telegram.user(4242)
            telegram.push_message(telegram.private_chat(trader), trader, "/alert big BTC 1M")
            await telegram.wait_for("sendMessage", 1, timeout=30)  # the rule is set
            now_ms = int(time.time() * 1000)
            for n, quantity in enumerate((25.0, 2.0, 1.0)):  # $2.5M (over the rule), $200k, $100k
                spec = LiquidationSpec("binance", "usdm", "BTCUSDT", Side.LONG, 100_000.0, quantity, now_ms + n)
                await usdm.broadcast(frame_for(spec))
            (_, alert) = await telegram.wait_for("sendMessage", 2, timeout=30)
            assert "BTC" in alert.params["text"]

            async def scrape() -> dict:
                return samples((await get(f"http://127.0.0.1:{port}/metrics")).text)

            def settled(scraped: dict) -> bool:  # the ingest writes every feeds.runner.batch_ms (1 s), and
                # the fake records the alert before its answer reaches the bot
                return scraped["liqbot_events_stored_total", ()] >= 3 and scraped[ALERTS_SENT] >= 1

            scraped = await scrape()
            deadline = time.monotonic() + 30
            while not settled(scraped) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                scraped = await scrape()
            health = await get(f"http://127.0.0.1:{port}/healthz")
            process.send_signal(signal.SIGTERM)
            _, log = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            if process.returncode is None:
                process.kill()
    assert process.returncode == 0, log.decode()
    usdm_labels = (("stream", "usdm"), ("venue", "binance"))
    assert scraped["liqbot_events_stored_total", ()] == 3
    assert scraped["liqbot_stream_events_total", usdm_labels] == 3
    assert scraped["liqbot_command_seconds_count", (("command", "alert"),)] == 1
    assert scraped[ALERTS_SENT] == 1
    assert scraped["liqbot_sends_total", (("kind", "alert"), ("outcome", "failed"))] == 0
    assert scraped["liqbot_leader", ()] == 1
    assert health.status_code == 200 and health.json()["role"] == "leader"
    assert health.json()["detail"].startswith("healthy: the database answers; 1 of 2 streams recorded")


class Refusing:
    """A chat platform that fails every send (a transient error, as far as the notifier knows)."""

    async def send(self, chat_key: str, reply: Reply) -> None:
        raise ConnectionError("platform down")


async def test_digest_sends_are_counted_by_outcome_and_the_outbox_backlog_shown(store):
    printed: list[str] = []
    notifier = Notifier(
        {"console": ConsoleDestination(printed.append), "down": Refusing()}, NotifierSettings(rate_per_s=0, retries=0)
    )
    metrics = Metrics(lambda: BASE_MS, Leadership())
    outbox = Outbox(store, notifier, now_ms=lambda: BASE_MS, on_done=metrics.send_done)
    metrics.watch_outbox(outbox.backlog)
    reply = Reply(title="Daily digest", blocks=(Paragraph(line("BTC $78.47M")),))
    sends = [(f"digest:{chat}:2025-03-21", chat) for chat in ("console:1", "down:2", "nowhere:3")]
    async with store.db.transaction() as tx:
        await outbox.add(tx, reply, sends, "digest", urgent=False)
    await metrics.refresh()
    queued = samples(metrics.exposition(None)[0].decode())
    try:
        delivered = await outbox.delivered(key for key, _ in sends)
    finally:
        await outbox.close()
        await notifier.close()
    await metrics.refresh()
    scraped = samples(metrics.exposition(None)[0].decode())
    assert queued["liqbot_outbox_backlog", ()] == 3 and scraped["liqbot_outbox_backlog", ()] == 0
    assert delivered == 1 and len(printed) == 1
    assert scraped["liqbot_sends_total", (("kind", "digest"), ("outcome", "sent"))] == 1
    assert scraped["liqbot_sends_total", (("kind", "digest"), ("outcome", "failed"))] == 2


async def test_each_answered_command_is_timed_and_a_failing_handler_counted(store):
    ticks = iter([10.0, 10.25, 20.0, 20.5])  # the dispatcher's timer: /liq takes 0.25 s, /risk 0.5 s
    metrics = Metrics(lambda: BASE_MS, Leadership())

    async def broken_risk(context):
        raise RuntimeError("market data store unreadable")

    dispatcher = Dispatcher(
        QueryService(store), lambda: BASE_MS, features={"risk": broken_risk},
        on_answered=metrics.command_answered, timer_s=lambda: next(ticks),
    )
    caller = Caller("telegram", "telegram:7", "telegram:7")
    await dispatcher.handle("/liq BTC 4h", caller)
    failed = await dispatcher.handle("/risk BTC", caller)
    await dispatcher.handle("/liq BTC 9y", caller)  # a usage error: no handler ran, nothing timed
    scraped = samples(metrics.exposition(None)[0].decode())
    assert failed.tone is Tone.ERROR
    assert scraped["liqbot_command_seconds_count", (("command", "liq"),)] == 1
    assert scraped["liqbot_command_seconds_sum", (("command", "liq"),)] == 0.25
    assert scraped["liqbot_command_seconds_sum", (("command", "risk"),)] == 0.5
    assert scraped["liqbot_command_failures_total", (("command", "risk"),)] == 1
    assert ("liqbot_command_failures_total", (("command", "liq"),)) not in scraped
