"""Inline buttons through the fake Bot API: a press re-runs only the command its
button was made for. Callback data comes from the client, so a modified client
can send anything; these tests send what such a client would."""

from __future__ import annotations

import pytest

from bot.commands.dispatch import Dispatcher, Limits
from bot.core.ratelimit import RateLimit
from bot.replies.locales import text
from bot.services.queries import QueryService
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_telegram import ALICE, BOB, NOW_MS, SUPERGROUP_ID, make_adapter, reply_to, seed


@pytest.fixture
async def fake():
    async with FakeTelegramAPI() as server:
        yield server


async def test_forged_callback_data_overwrites_nothing_and_runs_nothing(fake, store):
    await seed(store)
    async with make_adapter(fake, Dispatcher(QueryService(store), lambda: NOW_MS), []):
        group = fake.supergroup(SUPERGROUP_ID)
        fake.make_admin(group, ALICE)
        fake.push_message(group, ALICE, "/liq BTC 4h")
        fake.push_message(group, ALICE, "/liq ETH 4h")
        lang = fake.push_message(group, ALICE, "/lang zh")
        summary_call, eth_call, _ = await reply_to(fake, lang, 3)
        shown = fake.message(SUPERGROUP_ID, summary_call.result["message_id"])["text"]

        # A non-admin sends another command's data, another message's button, an admin command.
        fake.push_callback(summary_call.result, BOB, "/help")
        fake.push_callback(summary_call.result, BOB, eth_call.json("reply_markup")["inline_keyboard"][0][0]["callback_data"])
        fake.push_callback(summary_call.result, BOB, "/lang en")
        answers = await fake.wait_for("answerCallbackQuery", 3)
        assert [a.params.get("text") for a in answers] == [None, None, None]  # answered, silently
        assert fake.calls_of("editMessageText") == [] and len(fake.calls_of("sendMessage")) == 3
        assert fake.message(SUPERGROUP_ID, summary_call.result["message_id"])["text"] == shown
        assert await store.chats.locale(f"telegram:{SUPERGROUP_ID}") == "zh"

        # The button the message does carry still works (now in the chat's new language).
        fake.push_callback(summary_call.result, BOB, "/liq BTC 4h")
        (edit,) = await fake.wait_for("editMessageText")
    assert int(edit.params["message_id"]) == summary_call.result["message_id"]
    assert "BTC 爆仓" in edit.params["text"]


async def test_a_refused_press_of_a_real_button_is_an_alert_to_the_presser_only(fake, store):
    await seed(store)
    limits = Limits(per_user=RateLimit(burst=1, per_minute=1), per_chat=RateLimit(burst=100, per_minute=100))
    async with make_adapter(fake, Dispatcher(QueryService(store), lambda: NOW_MS, limits=limits), []):
        group = fake.supergroup(SUPERGROUP_ID)
        command = fake.push_message(group, ALICE, "/liq BTC 4h")
        (call,) = await reply_to(fake, command)
        fake.push_callback(call.result, BOB, "/liq BTC 4h")
        fake.push_callback(call.result, BOB, "/liq BTC 4h")  # over Bob's limit
        first, second = await fake.wait_for("answerCallbackQuery", 2)
    assert "show_alert" not in first.params or first.params["show_alert"] == "false"
    assert second.params["show_alert"] == "true"
    assert text("en", "rate.body", seconds=60) in second.params["text"]
    assert len(fake.calls_of("sendMessage")) == 1
