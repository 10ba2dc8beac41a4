"""One member flooding one chat: the flood costs a burst of answers and one
"slow down", and no other chat waits for it (Telegram and Discord, end to end
through their fakes with the real libraries and their pacing)."""

from __future__ import annotations

import time

from telegram.ext import AIORateLimiter

from bot.adapters.discord import DiscordAdapter
from bot.adapters.telegram import TelegramAdapter, default_rate_limiter
from bot.commands.dispatch import Dispatcher, Limits
from bot.config import DiscordConfig, TelegramConfig
from bot.core.ratelimit import RateLimit
from bot.replies.locales import text
from bot.services.queries import QueryService
from tests.fakes.discord_api import CHANNEL_ID, FakeDiscord
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.support import until
from tests.test_telegram import ALICE, BOB, NOW_MS, SUPERGROUP_ID, seed

FLOOD = 35
# A reply to someone else while a flood is on: what a person notices as "not stalled".
PROMPT_S = 1.0
SLOW_DOWN = text("en", "title.rate_limited")


async def ignore_gone(chat_key: str) -> None:
    pass


def telegram(fake: FakeTelegramAPI, dispatcher: Dispatcher, rate_limiter: AIORateLimiter) -> TelegramAdapter:
    config = TelegramConfig(enabled=True, base_url=fake.base_url, base_file_url=fake.base_file_url)
    return TelegramAdapter(config, fake.token, dispatcher, ignore_gone, rate_limiter=rate_limiter,
                           poll_timeout_seconds=5)


def answers_in(fake: FakeTelegramAPI, chat_id: int):
    return [c for c in fake.calls_of("sendMessage") if c.chat_id == chat_id and c.status == 200]


async def test_a_flood_in_a_group_costs_one_slow_down_and_never_delays_a_private_help(store):
    """The reported case: 35 commands in a group delayed another user's private /help by 44.5 s."""
    await seed(store)
    limits = Limits(per_user=RateLimit(burst=5, per_minute=10), per_chat=RateLimit(burst=20, per_minute=30))
    dispatcher = Dispatcher(QueryService(store), lambda: NOW_MS, limits=limits)
    async with FakeTelegramAPI() as fake:
        # Telegram's real pacing: 20 messages a minute per group.
        async with telegram(fake, dispatcher, default_rate_limiter()):
            group = fake.supergroup(SUPERGROUP_ID)
            for _ in range(FLOOD):
                fake.push_message(group, BOB, "/liq BTC 4h")
            await fake.wait_for("sendMessage")  # the flood is being handled
            asked = time.monotonic()
            help_message = fake.push_message(fake.private_chat(ALICE), ALICE, "/help")
            await until(lambda: answers_in(fake, ALICE["id"]), timeout=10)
            (answer,) = answers_in(fake, ALICE["id"])
            assert answer.reply_to == help_message["message_id"]
            assert answer.at - asked < PROMPT_S
            await until(lambda: dispatcher.dropped_commands == FLOOD - 6)
            flood_answers = answers_in(fake, SUPERGROUP_ID)
    # The burst of five answered, one "slow down" for the rest of the minute, nothing more.
    assert [SLOW_DOWN in c.params["text"] for c in flood_answers] == [False] * 5 + [True]


async def test_a_chats_backlog_delays_no_other_chat_and_keeps_its_own_order(store):
    await seed(store)
    dispatcher = Dispatcher(QueryService(store), lambda: NOW_MS)  # no command limits: a busy group
    # Five messages a second per group: twenty answers in one group take three seconds.
    paced = AIORateLimiter(overall_max_rate=1000, overall_time_period=1, group_max_rate=5, group_time_period=1,
                           max_retries=2)
    async with FakeTelegramAPI() as fake:
        async with telegram(fake, dispatcher, paced):
            group = fake.supergroup(SUPERGROUP_ID)
            commands = [fake.push_message(group, BOB, f"/liq BTC {hours}h") for hours in range(1, 21)]
            await fake.wait_for("sendMessage")
            help_message = fake.push_message(fake.private_chat(ALICE), ALICE, "/help")
            await until(lambda: len(answers_in(fake, SUPERGROUP_ID)) == len(commands), timeout=15)
            (private,) = answers_in(fake, ALICE["id"])
            group_answers = answers_in(fake, SUPERGROUP_ID)
    assert private.reply_to == help_message["message_id"]
    assert private.at < group_answers[-1].at - 1.0  # answered while the group's backlog was still paced
    assert [c.reply_to for c in group_answers] == [m["message_id"] for m in commands]  # in order


async def test_discord_a_flood_in_a_busy_channel_never_delays_a_dm(store, tmp_path):
    await seed(store)
    dispatcher = Dispatcher(QueryService(store), lambda: NOW_MS, limits=Limits())
    fake = await FakeDiscord().start()
    config = DiscordConfig(enabled=True, api_base=fake.api_base, gateway_url=fake.gateway_url,
                           guild_ids=(), sync_state_path=str(tmp_path / "commands.json"))
    adapter = DiscordAdapter(config, fake.token, dispatcher, ignore_gone, ready_timeout_s=5.0,
                             guild_ready_timeout_s=0.01)
    try:
        await adapter.start()
        fake.callback_delay_s[CHANNEL_ID] = 2.0  # every answer in the flooded channel is slow
        flood = [await fake.slash("liq", {"asset": "BTC", "window": "4h"}, admin=False, guild=True)
                 for _ in range(FLOOD)]
        asked = time.monotonic()
        dm = await fake.slash("help", guild=False, admin=True)
        await fake.wait_for("POST", dm.callback_path, timeout=PROMPT_S)
        assert time.monotonic() - asked < PROMPT_S
        await until(lambda: dispatcher.dropped_commands == FLOOD - 6, timeout=10)
        await until(lambda: sum(1 for i in flood if fake.requests_to("POST", i.callback_path)) == 6, timeout=10)
        answered = [r[0].json for i in flood if (r := fake.requests_to("POST", i.callback_path))]
    finally:
        await adapter.stop()
        await fake.close()
    told = [a for a in answered if any(SLOW_DOWN in e.get("title", "") for e in a["data"]["embeds"])]
    assert len(answered) == 6 and len(told) == 1  # five answers, one slow-down, the rest dropped

