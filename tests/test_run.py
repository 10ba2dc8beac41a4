"""`liqbot run` as a user runs it: a real process, live frames from a venue on
loopback, SIGTERM, and every event written before it exits."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import sys
import time

from bot.core.models import Side
from bot.feeds.synthetic import LiquidationSpec, frame_for
from bot.feeds.venues import BY_NAME
from tests.fakes.venue_ws import FakeVenueServer

CLOSED = "127.0.0.1:9"  # nothing listens here: those streams keep reconnecting, quietly
# The venues this test has no fake of: off, so nothing reaches the internet.
OTHER_VENUES_OFF = "\n".join(
    f"[feeds.{venue}]\nenabled = false" for venue in BY_NAME if venue not in ("binance", "bybit", "okx")
)


def config_text(usdm_url: str, db_path) -> str:
    return f"""
[storage]
path = "{db_path}"
[feeds.binance]
usdm_ws_url = "{usdm_url}"
coinm_ws_url = "ws://{CLOSED}/"
coinm_rest_url = "http://{CLOSED}"
[feeds.bybit]
enabled = false
[feeds.okx]
enabled = false
{OTHER_VENUES_OFF}
[market]
enabled = false
[logging]
level = "INFO"
"""


def stored_usd(db_path) -> float:
    with sqlite3.connect(db_path) as db:
        return (db.execute("SELECT COALESCE(SUM(notional_cents), 0) FROM events").fetchone()[0]) / 100


async def log_until_running(process: asyncio.subprocess.Process) -> bytes:
    """Its log up to "liqbot running" (every part started), read as it is written."""
    head = b""
    while b"liqbot running" not in head:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=30)
        assert line, head.decode()  # it exited before running
        head += line
    return head


async def test_run_records_live_frames_and_flushes_them_on_sigterm(tmp_path):
    db_path = tmp_path / "live.sqlite"
    async with FakeVenueServer("binance", "usdm") as usdm:
        config = tmp_path / "config.toml"
        config.write_text(config_text(usdm.url, db_path))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            head = await log_until_running(process)
            await usdm.wait_for(lambda s: s.open_connections == 1, timeout=30)
            now_ms = int(time.time() * 1000)
            for n in range(3):
                spec = LiquidationSpec("binance", "usdm", "BTCUSDT", Side.LONG, 100_000.0, 0.5 + n, now_ms + n)
                await usdm.broadcast(frame_for(spec))
            await usdm.round_trip()  # the bot has read them; they sit in its write buffer
            process.send_signal(signal.SIGTERM)
            _, tail = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            if process.returncode is None:
                process.kill()
    log = (head + tail).decode()
    assert process.returncode == 0, log
    assert stored_usd(db_path) == 100_000.0 * (0.5 + 1.5 + 2.5), log
    assert "Traceback" not in log


def stored_count(db_path) -> int:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


async def test_a_second_ctrl_c_during_a_burst_does_not_abandon_the_final_write(tmp_path):
    db_path = tmp_path / "burst.sqlite"
    burst = 20_000
    async with FakeVenueServer("binance", "usdm") as usdm:
        config = tmp_path / "config.toml"
        # Batches larger than the burst: every received event is still waiting for the final write.
        config.write_text(config_text(usdm.url, db_path) + "[feeds.runner]\nbatch_events = 100000\nbatch_ms = 600000\n")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            head = await log_until_running(process)
            await usdm.wait_for(lambda s: s.open_connections == 1, timeout=30)
            now_ms = int(time.time() * 1000)
            specs = (
                LiquidationSpec("binance", "usdm", "BTCUSDT", Side.LONG, 100_000.0, 0.001 * (n + 1), now_ms + n)
                for n in range(burst)
            )
            await usdm.burst([frame_for(spec) for spec in specs])  # the bot has read (nearly) all of it
            process.send_signal(signal.SIGINT)
            await asyncio.sleep(0.05)
            process.send_signal(signal.SIGINT)
            _, tail = await asyncio.wait_for(process.communicate(), timeout=60)
        finally:
            if process.returncode is None:
                process.kill()
    log = (head + tail).decode()
    assert process.returncode == 0, log
    assert "Traceback" not in log
    received = int(re.search(r"feeds stopped: ([\d,]+) events received", log).group(1).replace(",", ""))
    assert received > burst // 2
    assert stored_count(db_path) == received
    assert "already stopping" in log  # the second Ctrl-C said what it does
