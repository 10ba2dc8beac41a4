"""The Telegram adapter end to end: the real python-telegram-bot Application,
a real Dispatcher over a real Store, and a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field

import httpx
import pytest

from bot.adapters.telegram import TelegramAdapter, TelegramStartError, TelegramTokenError
from bot.adapters.telegram_pacing import TelegramPacing
from bot.commands.dispatch import Dispatcher
from bot.commands.risk import risk_handlers
from bot.commands.registry import COMMANDS
from bot.config import TelegramConfig
from bot.plumbing.delivery import DeliveryRefused, DestinationGone
from bot.core.models import DAY_MS, HOUR_MS, Side
from bot.logsetup import install_logging
from bot.replies import numbers as fmt
from bot.replies.layout import utf16_len
from bot.replies.locales import text
from bot.replies.model import Action, Image, Paragraph, Reply, line
from bot.replies.render_telegram import render_telegram
from bot.services.charts import ChartService
from bot.services.queries import QueryService
from bot.services.risk import RiskService
from bot.storage.market_store import MarketStore
from tests.fakes.telegram_api import GROUP_ANONYMOUS_BOT, FakeTelegramAPI
from tests.support import free_port, liquidation, until

NOW_MS = 1_742_558_400_000  # 2025-03-21 12:00 UTC
BTC_4H = [(1_500_000.0, Side.LONG, "binance"), (700_000.0, Side.LONG, "bybit"), (300_000.0, Side.SHORT, "okx")]
SUPERGROUP_ID = -1001234567890
GROUP_ID = -4012345



def fast_limiter() -> TelegramPacing:
    """Telegram's pacing would stall a test that answers a dozen commands in a second."""
    return TelegramPacing(overall_per_s=1000, private_per_s=1000, private_burst=1000, group_per_minute=60_000,
                          max_retries=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Bot:
    fake: FakeTelegramAPI
    adapter: TelegramAdapter
    dispatcher: Dispatcher
    store: object
    clock: Clock
    gone: list[str] = field(default_factory=list)


async def seed(store) -> None:
    for venue in ("binance", "bybit", "okx"):
        await store.add_span(venue, "usdm", NOW_MS - 9 * DAY_MS, NOW_MS)
    events = [liquidation(NOW_MS - (i + 1) * HOUR_MS, usd, side, venue=venue) for i, (usd, side, venue) in enumerate(BTC_4H)]
    events.append(liquidation(NOW_MS - 10 * HOUR_MS, 2_000_000.0, Side.SHORT))  # outside 4h
    events.append(liquidation(NOW_MS - HOUR_MS, 400_000.0, Side.LONG, "ETH", "okx"))
    await store.add_events(events)


def make_adapter(fake, dispatcher, gone: list[str], token: str | None = None, clock=time.monotonic, **settings):
    async def on_chat_gone(chat_key: str) -> None:
        gone.append(chat_key)

    config = TelegramConfig(enabled=True, base_url=fake.base_url, base_file_url=fake.base_file_url, **settings)
    return TelegramAdapter(
        config,
        fake.token if token is None else token,
        dispatcher,
        on_chat_gone,
        rate_limiter=fast_limiter(),
        clock=clock,
        poll_timeout_seconds=5,
    )


@pytest.fixture
async def fake():
    async with FakeTelegramAPI() as server:
        yield server


@pytest.fixture
async def bot(fake, store):
    await seed(store)
    dispatcher = Dispatcher(QueryService(store), lambda: NOW_MS)
    clock, gone = Clock(), []
    adapter = make_adapter(fake, dispatcher, gone, clock=clock)
    await adapter.start()
    try:
        yield Bot(fake, adapter, dispatcher, store, clock, gone)
    finally:
        await adapter.stop()


ALICE = FakeTelegramAPI.user(42, "Alice", "alice")
BOB = FakeTelegramAPI.user(43, "Bob", "bob")


async def reply_to(fake: FakeTelegramAPI, message: dict, count: int = 1):
    """The sendMessage calls answering `message` (waits for the count-th one in its chat)."""
    chat_id = message["chat"]["id"]

    def mine():
        return [c for c in fake.calls_of("sendMessage") if c.chat_id == chat_id and c.status == 200]

    await until(lambda: len(mine()) >= count)
    return mine()


# -- start-up -----------------------------------------------------------------


async def test_start_learns_the_username_and_sets_both_menus(bot):
    fake = bot.fake
    assert bot.adapter.bot_username == "liqbot_test_bot"
    await fake.wait_for("getUpdates")
    methods = [c.method for c in fake.calls]
    assert methods[0] == "getMe"
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    names = [spec.name for spec in COMMANDS]
    assert [c["command"] for c in fake.commands[("default", "")]] == names
    assert [c["command"] for c in fake.commands[("default", "zh")]] == names
    assert fake.commands[("default", "zh")][0]["description"] == COMMANDS[0].summary["zh"]
    assert "TOKEN" not in repr(bot.adapter) and fake.token not in repr(bot.adapter)


async def test_start_in_a_private_chat(bot):
    fake = bot.fake
    message = fake.push_message(fake.private_chat(ALICE), ALICE, "/start")
    (call,) = await reply_to(fake, message)
    assert call.chat_id == ALICE["id"]
    assert call.reply_to == message["message_id"]
    assert call.params["parse_mode"] == "HTML"
    assert text("en", "title.start") in call.params["text"]


async def test_help_in_a_plain_group_lists_every_command(bot):
    fake = bot.fake
    message = fake.push_message(fake.group(GROUP_ID), ALICE, "/help")
    (call,) = await reply_to(fake, message)
    for spec in COMMANDS:
        assert f"/{spec.name}" in call.params["text"]


async def test_liq_in_a_supergroup(bot):
    fake = bot.fake
    group = fake.supergroup(SUPERGROUP_ID)
    message = fake.push_message(group, ALICE, "/liq BTC 4h")
    (call,) = await reply_to(fake, message)
    assert call.chat_id == SUPERGROUP_ID
    assert call.reply_to == message["message_id"]
    assert call.params["parse_mode"] == "HTML"
    total = sum(usd for usd, _, _ in BTC_4H)
    assert fmt.usd(total, "en") in call.params["text"]
    assert fmt.usd(2_000_000.0 + total, "en") not in call.params["text"]
    keyboard = call.json("reply_markup")["inline_keyboard"]
    assert keyboard == [[{"text": text("en", "action.refresh"), "callback_data": "/liq BTC 4h"}]]


async def test_addressed_commands_and_plain_chat(bot):
    fake = bot.fake
    group = fake.supergroup(SUPERGROUP_ID)
    fake.push_message(group, ALICE, "/liq@otherbot BTC")
    fake.push_message(group, ALICE, "/price@otherbot BTC")
    fake.push_message(group, ALICE, "/price BTC")  # another bot's command, not addressed: not ours to refuse
    fake.push_message(group, ALICE, "liquidations are wild today")
    ours = fake.push_message(group, ALICE, "/liq@LiqBot_Test_Bot BTC 4h")
    (call,) = await reply_to(fake, ours)  # updates are handled in order: the others were ignored
    assert call.reply_to == ours["message_id"]
    assert fmt.usd(sum(usd for usd, _, _ in BTC_4H), "en") in call.params["text"]
    # In a private chat a typo gets help instead of silence.
    typo = fake.push_message(fake.private_chat(BOB), BOB, "/lqi")
    (call,) = await reply_to(fake, typo)
    assert "/liq" in call.params["text"]


async def test_two_bots_on_one_dispatcher_each_answer_their_own_name(bot, store):
    """The adapter passes its @name with each message; it never sets it on the shared dispatcher."""
    async with FakeTelegramAPI(token="7099999999:AAAnotherFakeToken_abcdefghijklmnop", bot_username="liqbot_two_bot") as two:
        async with make_adapter(two, bot.dispatcher, []):
            for fake, name, other in ((bot.fake, "liqbot_test_bot", "liqbot_two_bot"), (two, "liqbot_two_bot", "liqbot_test_bot")):
                group = fake.supergroup(SUPERGROUP_ID)
                fake.push_message(group, ALICE, f"/liq@{other} BTC")
                ours = fake.push_message(group, ALICE, f"/liq@{name} BTC 4h")
                (call,) = await reply_to(fake, ours)  # in order: the other bot's command was ignored
                assert call.reply_to == ours["message_id"]


async def test_lang_needs_an_admin_in_groups(bot):
    fake = bot.fake
    group = fake.supergroup(SUPERGROUP_ID)
    fake.make_admin(group, ALICE)
    refused = fake.push_message(group, BOB, "/lang zh")
    (call,) = await reply_to(fake, refused)
    assert text("en", "denied.body") in call.params["text"]
    assert [c.params["user_id"] for c in fake.calls_of("getChatMember")] == [str(BOB["id"])]
    assert await bot.store.chats.locale(f"telegram:{SUPERGROUP_ID}") is None

    accepted = fake.push_message(group, ALICE, "/lang zh")
    calls = await reply_to(fake, accepted, 2)
    assert text("zh", "lang.set") in calls[1].params["text"]
    assert await bot.store.chats.locale(f"telegram:{SUPERGROUP_ID}") == "zh"

    # Cached for a minute, then asked again.
    again = fake.push_message(group, ALICE, "/lang en")
    await reply_to(fake, again, 3)
    assert len(fake.calls_of("getChatMember")) == 2
    bot.clock.now += 61
    once_more = fake.push_message(group, ALICE, "/lang zh")
    await reply_to(fake, once_more, 4)
    assert len(fake.calls_of("getChatMember")) == 3


async def test_anonymous_admins_are_admins_and_private_chats_are_not_groups(bot):
    fake = bot.fake
    group = fake.supergroup(SUPERGROUP_ID)
    anonymous = fake.push_message(group, GROUP_ANONYMOUS_BOT, "/lang zh", sender_chat=group)
    (call,) = await reply_to(fake, anonymous)
    assert text("zh", "lang.set") in call.params["text"]
    private = fake.push_message(fake.private_chat(BOB), BOB, "/lang zh")
    (call,) = await reply_to(fake, private)
    assert text("zh", "lang.set") in call.params["text"]
    assert fake.calls_of("getChatMember") == []


async def test_refresh_button_edits_the_message_in_place(bot):
    fake = bot.fake
    group = fake.supergroup(SUPERGROUP_ID)
    command = fake.push_message(group, ALICE, "/liq BTC 4h")
    (call,) = await reply_to(fake, command)
    old_total = sum(usd for usd, _, _ in BTC_4H)
    await bot.store.add_events([liquidation(NOW_MS - 60_000, 1_000_000.0, Side.SHORT, venue="okx")])

    fake.push_callback(call.result, BOB, "/liq BTC 4h")
    (edit,) = await fake.wait_for("editMessageText")
    await fake.wait_for("answerCallbackQuery")
    assert edit.chat_id == SUPERGROUP_ID
    assert int(edit.params["message_id"]) == call.result["message_id"]
    assert edit.params["parse_mode"] == "HTML"
    assert fmt.usd(old_total + 1_000_000.0, "en") in edit.params["text"]
    assert edit.json("reply_markup")["inline_keyboard"][0][0]["callback_data"] == "/liq BTC 4h"
    assert len(fake.calls_of("sendMessage")) == 1  # edited, not re-sent


class LongDispatcher(Dispatcher):
    """The real dispatcher, plus one command whose reply is far over 4096 characters."""

    LONG = Reply(
        title="Long",
        blocks=tuple(Paragraph(line(f"row {i}: " + "liquidation " * 40)) for i in range(40)),
        actions=(Action("🔄", "/liq BTC 4h"),),
    )

    async def handle(self, message, caller, bot_username=None):
        if message.startswith("/long"):
            return self.LONG
        return await super().handle(message, caller, bot_username)


async def test_a_long_reply_is_split_in_order(fake, store):
    dispatcher, gone = LongDispatcher(QueryService(store), lambda: NOW_MS), []
    async with make_adapter(fake, dispatcher, gone):
        command = fake.push_message(fake.supergroup(SUPERGROUP_ID), ALICE, "/long@liqbot_test_bot")
        parts = len(render_telegram(LongDispatcher.LONG))
        calls = await fake.wait_for("sendMessage", parts)
    assert len(fake.calls_of("sendMessage")) == parts > 1
    assert all(c.status == 200 for c in calls)
    assert all(utf16_len(c.params["text"]) < 4096 for c in calls)
    assert [c.reply_to for c in calls] == [command["message_id"]] + [None] * (len(calls) - 1)
    assert [c.json("reply_markup") is not None for c in calls] == [False] * (len(calls) - 1) + [True]
    joined = "".join(c.params["text"] for c in calls)
    assert [int(p.split(":")[0]) for p in joined.split("row ")[1:]] == list(range(40))


async def test_flood_wait_is_honoured_and_the_message_delivered(bot):
    fake = bot.fake
    fake.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    message = fake.push_message(fake.private_chat(ALICE), ALICE, "/start")
    (delivered,) = await reply_to(fake, message)
    first, second = fake.calls_of("sendMessage")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0
    assert second.params["text"] == first.params["text"]
    assert bot.gone == []


async def test_a_blocked_chat_is_reported_once_and_not_retried(bot):
    fake = bot.fake
    fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=ALICE["id"])
    blocked = fake.push_message(fake.private_chat(ALICE), ALICE, "/liq BTC 4h")
    sentinel = fake.push_message(fake.private_chat(BOB), BOB, "/start")
    await reply_to(fake, sentinel)  # other chats are answered meanwhile
    await until(lambda: bot.gone)
    assert bot.gone == [f"telegram:{ALICE['id']}"]
    assert [c.status for c in fake.calls_of("sendMessage") if c.chat_id == blocked["chat"]["id"]] == [403]


async def test_being_kicked_marks_the_chat_gone(bot):
    fake = bot.fake
    group = fake.supergroup(SUPERGROUP_ID)
    fake.push_my_chat_member(group, ALICE, "member", "kicked")
    await until(lambda: bot.gone)
    assert bot.gone == [f"telegram:{SUPERGROUP_ID}"]


async def test_send_for_alerts(bot):
    fake = bot.fake
    fake.supergroup(SUPERGROUP_ID)
    alert = Reply(title="BTC alert", blocks=(Paragraph(line("$5M liquidated in 5 minutes")),))
    await bot.adapter.send(f"telegram:{SUPERGROUP_ID}", alert)
    (call,) = fake.calls_of("sendMessage")
    assert call.chat_id == SUPERGROUP_ID and call.reply_to is None and "BTC alert" in call.params["text"]

    fake.fail("sendMessage", 403, "Forbidden: bot was kicked from the supergroup chat")
    with pytest.raises(DestinationGone) as gone:
        await bot.adapter.send(f"telegram:{SUPERGROUP_ID}", alert)
    assert gone.value.chat_key == f"telegram:{SUPERGROUP_ID}"
    with pytest.raises(DestinationGone):
        await bot.adapter.send("telegram:-100999", alert)  # never seen: "chat not found"
    assert bot.gone == [f"telegram:{SUPERGROUP_ID}", "telegram:-100999"]
    assert len(fake.calls_of("sendMessage")) == 3


async def test_a_message_telegram_refuses_raises_delivery_refused_and_the_chat_stays(bot):
    fake = bot.fake
    fake.supergroup(SUPERGROUP_ID)
    fake.fail("sendMessage", 400, "Bad Request: can't parse entities: unsupported start tag")
    alert = Reply(title="BTC alert", blocks=(Paragraph(line("$5M liquidated in 5 minutes")),))
    with pytest.raises(DeliveryRefused) as refused:
        await bot.adapter.send(f"telegram:{SUPERGROUP_ID}", alert)
    assert refused.value.chat_key == f"telegram:{SUPERGROUP_ID}" and "parse entities" in refused.value.reason
    assert bot.gone == []
    await bot.adapter.send(f"telegram:{SUPERGROUP_ID}", alert)
    assert [c.status for c in fake.calls_of("sendMessage")] == [400, 200]


async def test_a_reply_with_an_image_goes_out_as_a_photo(bot):
    fake = bot.fake
    fake.supergroup(SUPERGROUP_ID)
    png = b"\x89PNG\r\n\x1a\n" + bytes(2000)
    chart = Reply(title="BTC 24h", blocks=(Paragraph(line("chart")),), image=Image(png, "btc.png"),
                  actions=(Action("🔄", "/liq BTC 24h"),))
    await bot.adapter.send(f"telegram:{SUPERGROUP_ID}", chart)
    (photo,) = fake.calls_of("sendPhoto")
    assert photo.files["photo"] == ("btc.png", png)
    assert "BTC 24h" in photo.params["caption"] and photo.params["parse_mode"] == "HTML"
    assert photo.json("reply_markup") is not None
    assert fake.calls_of("sendMessage") == []

    wordy = Reply(title="BTC 24h", blocks=(Paragraph(line("word " * 400)),), image=Image(png, "btc.png"))
    await bot.adapter.send(f"telegram:{SUPERGROUP_ID}", wordy)
    photo = fake.calls_of("sendPhoto")[1]
    assert "caption" not in photo.params
    assert len(fake.calls_of("sendMessage")) == 1


# -- failures at start ------------------------------------------------------------


async def test_a_rejected_token_is_one_clear_error(fake, store):
    bad = "7012345678:AAwrongWrongWrongWrongWrongWrongWrong"
    adapter = make_adapter(fake, Dispatcher(QueryService(store), lambda: NOW_MS), [], token=bad)
    with pytest.raises(TelegramTokenError) as error:
        await adapter.start()
    message = str(error.value)
    assert "LIQBOT_TELEGRAM_TOKEN" in message and "\n" not in message and bad not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__
    assert [c.method for c in fake.calls] == ["getMe"]  # no retry loop
    await adapter.stop()  # harmless


async def test_a_missing_token_fails_before_any_request(fake, store):
    adapter = make_adapter(fake, Dispatcher(QueryService(store), lambda: NOW_MS), [], token="")
    with pytest.raises(TelegramTokenError, match="LIQBOT_TELEGRAM_TOKEN is not set"):
        await adapter.start()
    assert fake.calls == []


async def test_webhook_mode_needs_a_url_and_a_secret(fake, store, monkeypatch):
    # The adapter never reads the environment: the composition root hands it the secret.
    monkeypatch.setenv("LIQBOT_TELEGRAM_WEBHOOK_SECRET", "a_valid_secret_nobody_passed_in")
    dispatcher = Dispatcher(QueryService(store), lambda: NOW_MS)
    adapter = make_adapter(fake, dispatcher, [], mode="webhook", webhook_url="https://bot.example.com/tg")
    with pytest.raises(TelegramStartError, match="LIQBOT_TELEGRAM_WEBHOOK_SECRET"):
        await adapter.start()
    adapter = make_adapter(fake, dispatcher, [], mode="webhook", webhook_url="http://bot.example.com/tg")
    with pytest.raises(TelegramStartError, match="https"):
        await adapter.start()
    assert fake.calls == []



async def test_webhook_mode(fake, store):
    """Updates arrive by POST with Telegram's secret header (tornado comes with the install:
    python-telegram-bot[webhooks] is a dependency, so this runs in CI)."""
    await seed(store)
    port, secret = free_port(), "wh-Secret_0123456789"
    dispatcher, gone = Dispatcher(QueryService(store), lambda: NOW_MS), []
    config = TelegramConfig(
        enabled=True,
        base_url=fake.base_url,
        base_file_url=fake.base_file_url,
        mode="webhook",
        webhook_url="https://bot.example.com/tg/updates",
        webhook_listen="127.0.0.1",
        webhook_port=port,
    )

    async def on_chat_gone(chat_key):
        gone.append(chat_key)

    adapter = TelegramAdapter(config, fake.token, dispatcher, on_chat_gone, webhook_secret=secret,
                              rate_limiter=fast_limiter())
    async with adapter:
        (hook,) = fake.calls_of("setWebhook")
        assert hook.params["url"] == "https://bot.example.com/tg/updates"
        assert hook.params["secret_token"] == secret
        group = fake.supergroup(SUPERGROUP_ID)
        update = {"update_id": 1, "message": {"message_id": 7, "date": 0, "chat": group, "from": ALICE,
                                              "text": "/liq BTC 4h"}}
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/tg/updates"
            refused = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
            accepted = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret})
        assert refused.status_code == 403 and accepted.status_code == 200
        (call,) = await fake.wait_for("sendMessage")
        assert call.reply_to == 7 and fmt.usd(sum(usd for usd, _, _ in BTC_4H), "en") in call.params["text"]
        assert "getUpdates" not in [c.method for c in fake.calls]


# -- the token never reaches the logs -----------------------------------------------


async def test_no_log_line_contains_the_token(fake, store):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in logging.root.manager.loggerDict})
    buffer, raw = io.StringIO(), io.StringIO()
    try:
        install_logging("DEBUG", secrets=[fake.token], stream=buffer)
        unfiltered = logging.StreamHandler(raw)  # no redaction: what the libraries and we emit
        unfiltered.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        root.addHandler(unfiltered)
        for name in ("telegram", "httpx", "httpcore"):  # as chatty as they get
            logging.getLogger(name).setLevel(logging.DEBUG)
        for name in ("telegram.ext", "telegram.ext.ExtBot", "telegram.ext.Updater", "telegram.ext.Application"):
            logging.getLogger(name).setLevel(logging.DEBUG)

        await seed(store)
        dispatcher, gone = Dispatcher(QueryService(store), lambda: NOW_MS), []
        async with make_adapter(fake, dispatcher, gone) as adapter:
            group = fake.supergroup(SUPERGROUP_ID)
            fake.make_admin(group, ALICE)
            fake.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
            fake.push_message(group, ALICE, "/liq BTC 4h")
            fake.push_message(group, BOB, "/lang zh")
            call = (await fake.wait_for("sendMessage", 3))[1]
            fake.push_callback(call.result, BOB, "/liq BTC 4h")
            await fake.wait_for("editMessageText")
            fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
            with pytest.raises(DestinationGone):
                await adapter.send(f"telegram:{SUPERGROUP_ID}", Reply(title="alert"))
        bad = make_adapter(fake, dispatcher, gone, token=fake.token + "x")
        with pytest.raises(TelegramTokenError):
            await bad.start()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(saved[2].get(name, logging.NOTSET))

    logged, unredacted = buffer.getvalue(), raw.getvalue()
    assert "Calling Bot API endpoint `sendMessage`" in unredacted  # the capture really was at DEBUG
    assert "HTTP Request: POST" in unredacted  # httpx logged its URLs
    assert fake.token not in logged
    assert fake.token not in unredacted
    assert fake.token.split(":")[1] not in logged + unredacted  # not even the secret half


async def test_chart_and_risk_commands_through_telegram(fake, store):
    """/chart goes out as a photo whose caption carries the summary's total; /risk answers in text."""
    await seed(store)
    queries = QueryService(store)
    market = MarketStore(store)
    features = risk_handlers(RiskService(market, queries), ChartService(store, queries, market))
    dispatcher = Dispatcher(queries, lambda: NOW_MS, features=features)
    adapter = make_adapter(fake, dispatcher, [])
    await adapter.start()
    try:
        group = fake.supergroup(SUPERGROUP_ID)
        fake.push_message(group, ALICE, "/chart BTC 4h")
        (photo,) = await fake.wait_for("sendPhoto", timeout=20)
        filename, png = photo.files["photo"]
        assert filename.endswith(".png") and png.startswith(b"\x89PNG")
        total_4h = sum(usd for usd, _, _ in BTC_4H)
        assert fmt.usd(total_4h, "en") in photo.params["caption"]
        fake.push_message(group, ALICE, "/risk BTC")
        (answer,) = await fake.wait_for("sendMessage")
        assert "BTC leverage risk" in answer.params["text"]
        assert "market poller" in answer.params["text"]  # no market data recorded: says what is missing
    finally:
        await adapter.stop()
