"""Stopping the Telegram adapter (SIGTERM) while a burst of updates is queued:
no more updates are taken, none fails, and those not answered within the
drain time are dropped in one log line."""

from __future__ import annotations

import logging
import re

import pytest

from bot.adapters.telegram import TelegramAdapter
from bot.commands.dispatch import Dispatcher
from bot.config import TelegramConfig
from bot.services.queries import QueryService
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_telegram import NOW_MS, fast_limiter, seed

BURST = 40


async def ignore_gone(chat_key: str) -> None:
    pass


@pytest.mark.parametrize("drain_seconds", [5.0, 0.0])
async def test_stopping_during_a_burst_answers_each_update_or_drops_it_in_one_line(store, caplog, drain_seconds):
    caplog.set_level(logging.INFO)
    await seed(store)
    async with FakeTelegramAPI() as fake:
        config = TelegramConfig(enabled=True, base_url=fake.base_url, base_file_url=fake.base_file_url)
        dispatcher = Dispatcher(QueryService(store), lambda: NOW_MS)
        adapter = TelegramAdapter(
            config, fake.token, dispatcher, ignore_gone,
            rate_limiter=fast_limiter(), poll_timeout_seconds=5, drain_seconds=drain_seconds,
        )
        await adapter.start()
        # One group: its updates are handled in order, so most of the burst is still queued.
        group = fake.supergroup(-1001234567890)
        for n in range(BURST):
            user = FakeTelegramAPI.user(1000 + n, f"Trader{n}")
            fake.push_message(group, user, "/liq BTC 4h")
        await fake.wait_for("sendMessage")  # the burst arrived and is being answered
        await adapter.stop()
        answered = {call.reply_to for call in fake.calls_of("sendMessage") if call.status == 200}
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []
    dropped_lines = [record.getMessage() for record in caplog.records if "dropped" in record.getMessage()]
    if drain_seconds:
        assert (len(answered), dropped_lines) == (BURST, [])
    else:
        assert len(dropped_lines) == 1
        dropped = int(re.search(r"(\d+) queued update", dropped_lines[0]).group(1))
        assert dropped > 0 and len(answered) + dropped == BURST
