"""One member flooding one chat: the flood costs a burst of answers and one
"slow down", and no other chat waits for it (Telegram and Discord, end to end
through their fakes with the real libraries and their pacing). Likewise an
alert burst: replies to commands go first, chats take turns, alerts go before
digests, and a flood wait (429) in one chat holds up no other chat."""

from __future__ import annotations

import asyncio
import time

from bot.adapters.discord import DiscordAdapter
from bot.adapters.telegram import TelegramAdapter, default_rate_limiter
from bot.adapters.telegram_pacing import TelegramPacing
from bot.commands.dispatch import Dispatcher, Limits
from bot.config import DiscordConfig, TelegramConfig
from bot.core.ratelimit import RateLimit
from bot.replies.locales import text
from bot.replies.model import Reply
from bot.services.notifier import Notifier, NotifierSettings
from bot.services.queries import QueryService
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_payloads import CHANNEL_ID
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.support import until
from tests.test_telegram import ALICE, BOB, NOW_MS, SUPERGROUP_ID, seed

FLOOD = 35
# A reply to someone else while a flood is on: what a person notices as "not stalled".
PROMPT_S = 1.0
SLOW_DOWN = text("en", "title.rate_limited")


async def ignore_gone(chat_key: str) -> None:
    pass


def telegram(fake: FakeTelegramAPI, dispatcher: Dispatcher, rate_limiter: TelegramPacing) -> TelegramAdapter:
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
    paced = TelegramPacing(overall_per_s=1000, private_per_s=1000, private_burst=1000, group_per_minute=300,
                           group_burst=5, max_retries=2)
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



class Recorder:
    """A destination that records (chat key, title) in the order sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, chat_key: str, reply: Reply) -> None:
        self.sent.append((chat_key, reply.title))


async def test_one_chats_alert_backlog_never_delays_another_chats_first_alert():
    recorder = Recorder()
    notifier = Notifier({"telegram": recorder}, NotifierSettings(rate_per_s=0, senders_per_platform=1))
    try:
        flooded = notifier.submit(["telegram:1"] * 30, Reply(title="alert"))
        other = notifier.submit(["telegram:2"], Reply(title="alert"))
        await asyncio.wait_for(asyncio.gather(*flooded, *other), 5)
    finally:
        await notifier.close()
    assert recorder.sent.index(("telegram:2", "alert")) <= 1  # its turn came after one of the 30
    assert len(recorder.sent) == 31


async def test_alerts_go_before_queued_digests():
    recorder = Recorder()
    notifier = Notifier({"telegram": recorder}, NotifierSettings(rate_per_s=0, senders_per_platform=1))
    try:
        digests = notifier.submit([f"telegram:{n}" for n in range(20)], Reply(title="digest"))
        alert = notifier.submit(["telegram:99"], Reply(title="alert"), urgent=True)
        await asyncio.wait_for(asyncio.gather(*digests, *alert), 5)
    finally:
        await notifier.close()
    assert recorder.sent.index(("telegram:99", "alert")) <= 1  # behind at most the digest in flight
    assert len(recorder.sent) == 21


def alert_chats(fake: FakeTelegramAPI, count: int) -> list[str]:
    users = [FakeTelegramAPI.user(10_000 + n, f"Trader{n}") for n in range(count)]
    return [f"telegram:{fake.private_chat(user)['id']}" for user in users]


async def test_an_alert_burst_never_delays_a_reply_to_a_command(store):
    """A crossing fans out to 100 chats: Telegram's budget (25/s, a second's burst) makes that
    take seconds; a /help asked meanwhile is answered ahead of the alerts still queued."""
    await seed(store)
    dispatcher = Dispatcher(QueryService(store), lambda: NOW_MS)
    async with FakeTelegramAPI() as fake:
        adapter = telegram(fake, dispatcher, default_rate_limiter())
        notifier = Notifier({"telegram": adapter}, NotifierSettings(rate_per_s=0))
        async with adapter:
            chats = alert_chats(fake, 100)
            alerts = notifier.submit(chats, Reply(title="BTC alert"))
            await until(lambda: len(answers_in(fake, 10_000)) == 1)  # the burst is going out
            help_message = fake.push_message(fake.private_chat(ALICE), ALICE, "/help")
            await until(lambda: answers_in(fake, ALICE["id"]), timeout=10)
            alerts_sent_before = sum(1 for c in fake.calls_of("sendMessage") if "BTC alert" in c.params["text"])
            assert await asyncio.wait_for(asyncio.gather(*alerts), 10) == [True] * len(chats)
            await notifier.close()
    (answer,) = answers_in(fake, ALICE["id"])
    assert answer.reply_to == help_message["message_id"]
    assert alerts_sent_before < len(chats) // 2  # answered while most of the burst still waited


async def test_a_flood_wait_in_one_chat_holds_up_no_other_chats_reply(store):
    """A 429 pauses its chat (and alert sends, whose volume floods a bot); replies elsewhere go on."""
    await seed(store)
    dispatcher = Dispatcher(QueryService(store), lambda: NOW_MS)
    async with FakeTelegramAPI() as fake:
        adapter = telegram(fake, dispatcher, default_rate_limiter())
        notifier = Notifier({"telegram": adapter}, NotifierSettings(rate_per_s=0))
        async with adapter:
            (flooded,) = alert_chats(fake, 1)
            flooded_id = int(flooded.partition(":")[2])
            fake.fail("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3, chat_id=flooded_id)
            alert = notifier.submit([flooded], Reply(title="BTC alert"), urgent=True)
            await until(lambda: fake.calls_of("sendMessage"))  # the 429 came
            help_message = fake.push_message(fake.private_chat(ALICE), ALICE, "/help")
            await until(lambda: answers_in(fake, ALICE["id"]), timeout=10)
            flooded_answers_meanwhile = answers_in(fake, flooded_id)
            assert await asyncio.wait_for(asyncio.gather(*alert), 10) == [True]
            await notifier.close()
    assert answers_in(fake, ALICE["id"])[0].reply_to == help_message["message_id"]
    assert flooded_answers_meanwhile == []  # the reply went out during the flooded chat's wait
    assert len(answers_in(fake, flooded_id)) == 1  # and the flooded chat got its alert after the wait
