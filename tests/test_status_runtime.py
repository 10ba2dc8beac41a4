"""`/status` under `liqbot run`: chat platforms, market polling and each stream's
last error, asked on Telegram (a fake Bot API on loopback)."""

from __future__ import annotations

import asyncio
import contextlib

from bot.app import run_bot
from bot.config import Secrets, parse_config
from bot.feeds.venues import BY_NAME
from tests.fakes.telegram_api import FakeTelegramAPI, parse_html

CLOSED = "127.0.0.1:9"  # nothing listens here: streams and REST polls fail fast


def config_for(fake: FakeTelegramAPI, db_path):
    others_off = "\n".join(f"[feeds.{venue}]\nenabled = false" for venue in BY_NAME if venue != "binance")
    return parse_config(f"""
[storage]
path = "{db_path}"
[feeds.binance]
usdm_ws_url = "ws://{CLOSED}/"
coinm_ws_url = "ws://{CLOSED}/"
usdm_rest_url = "http://{CLOSED}"
coinm_rest_url = "http://{CLOSED}"
{others_off}
[market]
venues = ["binance"]
retries = 0
[telegram]
enabled = true
base_url = "{fake.base_url}"
base_file_url = "{fake.base_file_url}"
""")


async def test_status_shows_chat_platforms_market_polling_and_stream_errors(tmp_path):
    async with FakeTelegramAPI() as fake:
        bot = asyncio.create_task(
            run_bot(config_for(fake, tmp_path / "bot.sqlite"), Secrets(telegram_token=fake.token), console=False)
        )
        try:
            await fake.wait_for("getUpdates", timeout=30)
            user = fake.user(7)
            chat = fake.private_chat(user)
            expected = [
                "Chat platforms", "Telegram: running",
                "Market polling", "Binance: retrying, last error: ",
                "Last error by stream", "Binance usdm: ", "Binance coinm: ",
            ]
            reply = ""
            for attempt in range(1, 41):  # until the first connects and polls have failed; bounded
                fake.push_message(chat, user, "/status")
                reply = parse_html((await fake.wait_for("sendMessage", count=attempt, timeout=10))[-1].params["text"])
                if all(part in reply for part in expected):
                    break
                await asyncio.sleep(0.25)
            assert all(part in reply for part in expected), reply
        finally:
            bot.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot
