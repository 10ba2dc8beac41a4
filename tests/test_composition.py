"""The composition root's wiring, through the App that `liqbot run` builds."""

from __future__ import annotations

import logging

from bot.adapters.telegram import TelegramAdapter
from bot.app import App
from bot.config import Config, Secrets, TelegramConfig
from bot.replies.model import Reply
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_telegram import fast_limiter

BLOCKED_CHAT = 4242


async def test_an_alert_to_a_blocked_chat_takes_one_gone_path(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    app = await App.open(Config(), Secrets(), tmp_path / "app.sqlite")
    try:
        async with FakeTelegramAPI() as fake:
            config = TelegramConfig(enabled=True, base_url=fake.base_url, base_file_url=fake.base_file_url)
            adapter = TelegramAdapter(config, fake.token, app.dispatcher, app.mark_chat_gone, rate_limiter=fast_limiter())
            app.notifier.add_destination("telegram", adapter)  # as run_bot wires it
            async with adapter:
                fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
                delivered = await app.notifier.deliver([f"telegram:{BLOCKED_CHAT}"], Reply(title="Alert"))
        assert delivered == 0 and app.notifier.stats.gone == 1
        assert (await app.store.chats.settings([f"telegram:{BLOCKED_CHAT}"]))[f"telegram:{BLOCKED_CHAT}"].active is False
        gone_lines = [r.getMessage() for r in caplog.records if "gone" in r.getMessage()]
        assert len(gone_lines) == 1, gone_lines  # reported (and marked) once, by the adapter
    finally:
        await app.close()
