"""What `liqbot run` says on stderr: what it serves, and failures one line each."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from bot.feeds.venues import BY_NAME

CLOSED = "127.0.0.1:9"  # nothing listens here


def config_text(db_path) -> str:
    others_off = "\n".join(f"[feeds.{venue}]\nenabled = false" for venue in BY_NAME if venue != "binance")
    return f"""
[storage]
path = "{db_path}"
[feeds.binance]
usdm_ws_url = "ws://{CLOSED}/"
coinm_ws_url = "ws://{CLOSED}/"
coinm_rest_url = "http://{CLOSED}"
{others_off}
[market]
enabled = false
[telegram]
enabled = true
base_url = "http://{CLOSED}/bot"
base_file_url = "http://{CLOSED}/file/bot"
"""


async def test_an_unreachable_telegram_is_one_line_per_retry_and_the_start_line_says_what_runs(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path / "bot.sqlite"))
    env = {**os.environ, "LIQBOT_TELEGRAM_TOKEN": "123:telegram-token", "LIQBOT_DISCORD_TOKEN": "discord-token"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )
    lines: list[str] = []

    async def read_until_two_telegram_failures() -> None:
        while sum("telegram failed" in line for line in lines) < 2:
            line = await process.stderr.readline()
            assert line, "liqbot run ended early:\n" + "".join(lines)
            lines.append(line.decode())

    try:
        await asyncio.wait_for(read_until_two_telegram_failures(), timeout=60)
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
    log = "".join(lines)
    assert "Traceback" not in log
    failures = [line for line in lines if "telegram failed" in line]
    assert all("cannot reach the Telegram Bot API" in line and "retrying in" in line for line in failures)
    assert "LIQBOT_DISCORD_TOKEN is set but [discord] enabled = false; discord stays off" in log
    start = next(line for line in lines if "liqbot running:" in line)
    assert "chat: telegram;" in start
    assert "venues: binance (usdm coinm);" in start
    assert "market polling: off" in start
    assert "telegram-token" not in log and "discord-token" not in log
