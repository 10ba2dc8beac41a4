"""The Discord adapter end to end: the real discord.py client against a fake
Discord (tests/fakes/discord_api.py), a real Dispatcher, QueryService and Store."""

from __future__ import annotations

import discord
import pytest

from bot.adapters.discord import REFRESH_PREFIX, DiscordAdapter, DiscordLoginError
from bot.adapters.discord_commands import command_text, slash_commands
from bot.commands.dispatch import Dispatcher, Limits
from bot.commands.ports import Caller
from bot.commands.registry import COMMANDS
from bot.commands.risk import risk_handlers
from bot.config import DiscordConfig
from bot.plumbing.delivery import DeliveryRefused, DestinationGone
from bot.core.models import HOUR_MS, MINUTE_MS, Side
from bot.replies.model import Image, Paragraph, Reply, Tone, line
from bot.replies.render_discord import EMBEDS_PER_MESSAGE, MESSAGE_TOTAL_LIMIT, TONE_COLOUR, render_discord
from bot.services.charts import ChartService
from bot.services.queries import QueryService
from bot.services.risk import RiskService
from bot.storage.market_store import MarketStore
from tests.fakes.discord_api import FakeDiscord, buttons_of
from tests.fakes.discord_payloads import (
    APP_ID,
    BOT_PERMISSIONS,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    EMBED_LINKS,
    EPHEMERAL,
    GUILD_ID,
    NO_ACCESS_CHANNEL_ID,
    TOKEN,
)
from tests.support import liquidation as event

T0 = 1_742_558_400_000  # 2025-03-21 12:00:00 UTC
NOW = T0 + 6 * HOUR_MS
GUILD_COMMANDS = f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands"
CHAT = f"discord:{CHANNEL_ID}"



@pytest.fixture
async def fake():
    fake = await FakeDiscord().start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
async def dispatcher(store):
    events = []
    for i in range(60):  # over the last 5 hours: mostly BTC longs, some shorts, ETH and SOL
        at = NOW - 5 * HOUR_MS + i * 5 * MINUTE_MS
        events.append(event(at, 250_000.0 + i, Side.LONG, "BTC", ("binance", "bybit", "okx")[i % 3]))
        if i % 4 == 0:
            events.append(event(at + 1, 40_000.0 + i, Side.SHORT, "BTC"))
        events.append(event(at + 2, 90_000.0 + i, Side.LONG if i % 3 else Side.SHORT, "ETH", "okx"))
        events.append(event(at + 3, 20_000.0 + i, Side.LONG, "SOL", "bybit"))
    await store.add_events(events)
    for venue in ("binance", "bybit", "okx"):
        await store.add_span(venue, "usdm", T0 - 48 * HOUR_MS, NOW)
    return Dispatcher(QueryService(store), lambda: NOW, limits=Limits())


def config_for(fake: FakeDiscord, tmp_path, **overrides) -> DiscordConfig:
    values = dict(
        enabled=True,
        api_base=fake.api_base,
        gateway_url=fake.gateway_url,
        guild_ids=(GUILD_ID,),
        sync_state_path=str(tmp_path / "discord_commands.json"),
    )
    return DiscordConfig(**(values | overrides))


class Gone:
    def __init__(self) -> None:
        self.keys: list[str] = []

    async def __call__(self, chat_key: str) -> None:
        self.keys.append(chat_key)


def adapter_for(fake, dispatcher, tmp_path, gone=None, token=TOKEN, **overrides) -> DiscordAdapter:
    return DiscordAdapter(
        config_for(fake, tmp_path, **overrides),
        token,
        dispatcher,
        gone or Gone(),
        ready_timeout_s=5.0,
        guild_ready_timeout_s=0.01,
    )


@pytest.fixture
async def gone():
    return Gone()


@pytest.fixture
async def bot(fake, dispatcher, tmp_path, gone):
    adapter = adapter_for(fake, dispatcher, tmp_path, gone)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()


async def answer(fake: FakeDiscord, injected, followups: int = 0):
    """The interaction callback body and the followup bodies for an injected interaction."""
    [callback] = await fake.wait_for("POST", injected.callback_path)
    later = await fake.wait_for("POST", injected.followup_path, followups) if followups else []
    return callback.json, [r.json for r in later]


def embed_text(embed: dict) -> str:
    parts = [embed.get("title", ""), embed.get("description", ""), embed.get("footer", {}).get("text", "")]
    parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


def message_size(embeds: list[dict]) -> int:
    """Characters Discord counts against the 6000 per message (in UTF-16 units, an upper bound)."""

    def size(text: str) -> int:
        return len(text.encode("utf-16-le")) // 2

    return sum(
        size(e.get("title", "")) + size(e.get("description", "")) + size(e.get("footer", {}).get("text", ""))
        + sum(size(f["name"]) + size(f["value"]) for f in e.get("fields", []))
        for e in embeds
    )


# -- start, sync -------------------------------------------------------------


async def test_logs_in_reaches_ready_and_syncs_the_commands_once(fake, dispatcher, tmp_path):
    first = adapter_for(fake, dispatcher, tmp_path)
    await first.start()
    try:
        assert first.client.is_ready()
        assert fake.requests_to("GET", "/users/@me")[0].authorization == f"Bot {TOKEN}"
        assert fake.requests_to("GET", "/oauth2/applications/@me")
        [identify] = [f for f in fake.gateway_frames if f["op"] == 2]
        assert identify["d"]["intents"] == discord.Intents.default().value  # no privileged intents
        assert "shard" not in identify["d"]  # no shard_count: one unsharded connection
        [put] = fake.requests_to("PUT", GUILD_COMMANDS)
        assert not fake.requests_to("PUT", f"/applications/{APP_ID}/commands")  # test guild only
        assert [c["name"] for c in put.json] == [spec.name for spec in COMMANDS]
        liq = next(c for c in put.json if c["name"] == "liq")
        assert liq["description_localizations"]["zh-CN"] == COMMANDS[0].summary["zh"]
        asset, window = liq["options"]
        assert asset["autocomplete"] is True and asset["required"] is False
        assert "4h" in [c["value"] for c in window["choices"]]
    finally:
        await first.stop()

    # Unchanged definitions: a restart does not sync again.
    second = adapter_for(fake, dispatcher, tmp_path)
    await second.start()
    await second.stop()
    assert len(fake.requests_to("PUT", GUILD_COMMANDS)) == 1
    assert len(fake.requests_to("GET", "/users/@me")) == 2

    # A lost state file (or changed definitions) syncs again.
    (tmp_path / "discord_commands.json").unlink()
    third = adapter_for(fake, dispatcher, tmp_path)
    await third.start()
    await third.stop()
    assert len(fake.requests_to("PUT", GUILD_COMMANDS)) == 2


async def test_without_guild_ids_commands_are_global(fake, dispatcher, tmp_path):
    adapter = adapter_for(fake, dispatcher, tmp_path, guild_ids=())
    await adapter.start()
    await adapter.stop()
    assert len(fake.requests_to("PUT", f"/applications/{APP_ID}/commands")) == 1
    assert not fake.requests_to("PUT", GUILD_COMMANDS)


async def test_a_rejected_token_is_one_clear_error(fake, dispatcher, tmp_path):
    adapter = adapter_for(fake, dispatcher, tmp_path, token="wrong")
    with pytest.raises(DiscordLoginError) as raised:
        await adapter.start()
    message = str(raised.value)
    assert "\n" not in message and "LIQBOT_DISCORD_TOKEN" in message and "wrong" not in message
    assert not fake.gateway_frames


async def test_a_token_the_gateway_rejects_is_a_login_error(fake, dispatcher, tmp_path):
    fake.gateway_token = "rotated"
    adapter = adapter_for(fake, dispatcher, tmp_path)
    with pytest.raises(DiscordLoginError, match="4004"):
        await adapter.start()


# -- commands ----------------------------------------------------------------


async def test_connects_the_configured_shards_and_answers_on_the_guilds_shard(fake, dispatcher, tmp_path):
    # This replica runs shards 1 and 3 of 4; Discord routes the test guild to shard 1.
    config = config_for(fake, tmp_path, shard_count=4, shard_ids=(1, 3))
    # discord.py waits Discord's 5 s between two shards' IDENTIFYs.
    adapter = DiscordAdapter(config, TOKEN, dispatcher, Gone(), ready_timeout_s=30.0, guild_ready_timeout_s=0.01)
    await adapter.start()
    try:
        assert fake.identified_shards == [[1, 4], [3, 4]]
        assert adapter.client.shard_count == 4 and sorted(adapter.client.shards) == [1, 3]
        assert [guild.id for guild in adapter.client.guilds] == [GUILD_ID]
        callback, _ = await answer(fake, await fake.slash("liq", {"asset": "btc"}, admin=False))
        assert "BTC" in callback["data"]["embeds"][0]["title"]
    finally:
        await adapter.stop()


async def test_liq_answers_with_an_embed_and_a_refresh_button(fake, bot):
    injected = await fake.slash("liq", {"asset": "btc", "window": "24h"}, admin=False)
    callback, _ = await answer(fake, injected)
    assert callback["type"] == 4
    data = callback["data"]
    assert not (data.get("flags") or 0) & EPHEMERAL
    [embed] = data["embeds"]
    assert "BTC" in embed["title"]
    assert embed["color"] == TONE_COLOUR[Tone.LONGS_HIT]  # a long squeeze is red
    assert len(embed["fields"]) >= 3 and all(f["name"] and f["value"] for f in embed["fields"])
    [button] = buttons_of(data)
    assert button["custom_id"] == f"{REFRESH_PREFIX}/liq BTC 24h"


async def test_top_and_help(fake, bot):
    top, _ = await answer(fake, await fake.slash("top", {"window": "4h"}))
    [embed] = top["data"]["embeds"]
    assert "```" in embed_text(embed) and "BTC" in embed_text(embed)
    assert buttons_of(top["data"])[0]["custom_id"] == f"{REFRESH_PREFIX}/top 4h"

    help_all, _ = await answer(fake, await fake.slash("help"))
    text = embed_text(help_all["data"]["embeds"][0])
    assert all(f"/{spec.name}" in text for spec in COMMANDS)

    help_liq, _ = await answer(fake, await fake.slash("help", {"command": "liq"}))
    assert "/liq [ASSET] [WINDOW]" in embed_text(help_liq["data"]["embeds"][0])


async def test_a_typo_gets_the_shared_suggestion_ephemerally(fake, bot):
    callback, _ = await answer(fake, await fake.slash("liq", {"asset": "xbt"}))
    data = callback["data"]
    assert data["flags"] & EPHEMERAL
    assert "Did you mean BTC?" in embed_text(data["embeds"][0])
    assert data["embeds"][0]["color"] == TONE_COLOUR[Tone.ERROR]
    assert not buttons_of(data)


async def test_asset_autocomplete_offers_recorded_assets(fake, bot):
    injected = await fake.autocomplete("liq", {"asset": "s"}, focused="asset")
    callback, _ = await answer(fake, injected)
    assert callback["type"] == 8
    assert [c["value"] for c in callback["data"]["choices"]] == ["SOL"]
    everything, _ = await answer(fake, await fake.autocomplete("big", {"asset": ""}, focused="asset"))
    assert [c["value"] for c in everything["data"]["choices"]][:2] == ["all", "BTC"]


async def test_lang_needs_manage_server_in_a_guild(fake, bot, store):
    refused, _ = await answer(fake, await fake.slash("lang", {"language": "zh"}, admin=False))
    assert refused["data"]["flags"] & EPHEMERAL
    assert "Admins only" in refused["data"]["embeds"][0]["title"]
    assert await store.chats.locale(CHAT) is None

    accepted, _ = await answer(fake, await fake.slash("lang", {"language": "zh"}, admin=True))
    assert not (accepted["data"].get("flags") or 0) & EPHEMERAL
    assert await store.chats.locale(CHAT) == "zh"

    chinese, _ = await answer(fake, await fake.slash("liq", {"asset": "BTC"}, admin=False))
    assert "美元" in embed_text(chinese["data"]["embeds"][0])


async def test_in_a_dm_anyone_may_set_the_language(fake, dispatcher, tmp_path, store):
    adapter = adapter_for(fake, dispatcher, tmp_path, guild_ids=())  # guild commands are not in DMs
    await adapter.start()
    try:
        callback, _ = await answer(fake, await fake.slash("lang", {"language": "zh"}, admin=False, guild=False))
    finally:
        await adapter.stop()
    assert not (callback["data"].get("flags") or 0) & EPHEMERAL
    assert await store.chats.locale(f"discord:{DM_CHANNEL_ID}") == "zh"


async def test_an_oversized_reply_is_split_into_followups_within_limits(fake, bot, store, dispatcher):
    for i in range(300):  # many recorded streams make /status long
        await store.add_span("binance", f"stream-{i:03d}", NOW - HOUR_MS, NOW - MINUTE_MS)
    expected = render_discord(await dispatcher.handle("/status", Caller("console", "console:x", "console:x")))
    injected = await fake.slash("status")
    [callback] = await fake.wait_for("POST", injected.callback_path)
    first = callback.json["data"]["embeds"]
    followups = await fake.wait_for("POST", injected.followup_path, len(expected) - 1)
    messages = [first] + [r.json["embeds"] for r in followups]
    assert len(messages) >= 3
    for embeds in messages:
        assert 1 <= len(embeds) <= EMBEDS_PER_MESSAGE
        assert message_size(embeds) <= MESSAGE_TOTAL_LIMIT
        for embed in embeds:
            assert len(embed.get("description", "")) <= 4096
            assert all(len(f["value"]) <= 1024 for f in embed.get("fields", []))
    everything = "\n".join(embed_text(e) for embeds in messages for e in embeds)
    assert all(f"stream-{i:03d}" in everything for i in range(300))


async def test_the_refresh_button_reruns_the_command_and_edits_the_message(fake, bot):
    callback, _ = await answer(fake, await fake.slash("liq", {"asset": "eth", "window": "4h"}))
    [original_id] = [m for m, msg in fake.messages.items() if buttons_of(msg)]
    [button] = buttons_of(fake.messages[original_id])
    clicked = await fake.click(original_id, button["custom_id"])
    update, _ = await answer(fake, clicked)
    assert update["type"] == 7  # UPDATE_MESSAGE: the message the button is on is edited
    [embed] = update["data"]["embeds"]
    assert "ETH" in embed["title"]
    assert buttons_of(update["data"])[0]["custom_id"] == f"{REFRESH_PREFIX}/liq ETH 4h"


async def test_missing_embed_permission_is_reported_to_the_invoker(fake, bot):
    injected = await fake.slash("liq", {"asset": "btc"}, app_permissions=BOT_PERMISSIONS & ~EMBED_LINKS)
    callback, _ = await answer(fake, injected)
    data = callback["data"]
    assert data["flags"] & EPHEMERAL
    assert "Embed Links" in data["content"] and not data.get("embeds")


async def test_a_refused_answer_is_reported_to_the_invoker(fake, bot):
    fake.fail_next_callback = (403, 50013, "Missing Permissions")
    injected = await fake.slash("top")
    refused, notice = await fake.wait_for("POST", injected.callback_path, 2)
    assert refused.json["data"]["embeds"]
    assert notice.json["data"]["flags"] & EPHEMERAL
    assert "Embed Links" in notice.json["data"]["content"]


# -- outgoing ----------------------------------------------------------------


async def test_send_posts_embeds_with_an_attached_image(fake, bot):
    reply = Reply(
        title="BTC alert",
        blocks=(Paragraph(line("Longs liquidated: $12.5M in 1h")),),
        image=Image(png=b"\x89PNG fake", filename="chart.png"),
    )
    await bot.send(CHAT, reply)
    [posted] = fake.requests_to("POST", f"/channels/{CHANNEL_ID}/messages")
    assert posted.files == [("chart.png", b"\x89PNG fake")]
    [embed] = posted.json["embeds"]
    assert embed["title"] == "BTC alert"
    assert embed["image"]["url"] == "attachment://chart.png"


async def test_send_to_a_gone_channel_raises_destination_gone(fake, bot, gone):
    reply = Reply(title="digest", blocks=(Paragraph(line("hello")),))
    with pytest.raises(DestinationGone) as raised:
        await bot.send("discord:123456789012345678", reply)
    assert raised.value.reason == "Unknown Channel"
    with pytest.raises(DestinationGone) as raised:
        await bot.send(f"discord:{NO_ACCESS_CHANNEL_ID}", reply)
    assert raised.value.reason == "Missing Access"
    assert gone.keys == ["discord:123456789012345678", f"discord:{NO_ACCESS_CHANNEL_ID}"]


async def test_a_message_discord_refuses_raises_delivery_refused_and_the_channel_stays(fake, bot, gone):
    fake.fail_next_message = (400, 50035, "Invalid Form Body")
    with pytest.raises(DeliveryRefused) as refused:
        await bot.send(CHAT, Reply(title="alert", blocks=(Paragraph(line("hello")),)))
    assert refused.value.chat_key == CHAT and "Invalid Form Body" in refused.value.reason
    assert gone.keys == []
    await bot.send(CHAT, Reply(title="the next alert"))  # the channel still takes messages
    assert [r.status for r in fake.requests_to("POST", f"/channels/{CHANNEL_ID}/messages")] == [400, 200]


# -- parity with the registry -------------------------------------------------


def test_every_registry_command_is_a_slash_command_with_the_same_arguments():
    async def run(interaction, spec, options):  # pragma: no cover - never called
        pass

    async def complete(interaction, current):  # pragma: no cover - never called
        return []

    generated = {command.name: command for command in slash_commands(run, complete)}
    assert set(generated) == {spec.name for spec in COMMANDS}
    for spec in COMMANDS:
        command = generated[spec.name]
        assert [p.name for p in command.parameters] == [a.name for a in spec.args], spec.name
        assert all(not p.required for p in command.parameters)
        assert command.description == spec.summary["en"]
        for parameter, arg in zip(command.parameters, spec.args):
            assert parameter.description == arg.help["en"]
            if arg.kind == "asset":
                assert parameter.autocomplete
            elif arg.kind != "text":  # free text (/alert, /digest) has neither
                assert parameter.choices


def test_slash_options_become_the_shared_command_text():
    liq = next(spec for spec in COMMANDS if spec.name == "liq")
    assert command_text(liq, {"asset": "xbt", "window": "4h"}) == "/liq xbt 4h"
    assert command_text(liq, {"asset": None, "window": "4h"}) == "/liq 4h"
    assert command_text(liq, {}) == "/liq"


async def test_chart_answers_with_an_attached_png(fake, store, tmp_path):
    await store.add_events([event(NOW - HOUR_MS, 250_000.0, Side.LONG, "BTC", "binance")])
    queries, market = QueryService(store), MarketStore(store)
    features = risk_handlers(RiskService(market, queries), ChartService(store, queries, market))
    dispatcher = Dispatcher(queries, lambda: NOW, limits=Limits(), features=features)
    adapter = adapter_for(fake, dispatcher, tmp_path)
    await adapter.start()
    try:
        injected = await fake.slash("chart", {"subject": "btc", "window": "4h"})
        [callback] = await fake.wait_for("POST", injected.callback_path)
    finally:
        await adapter.stop()
    [(filename, png)] = callback.files
    assert filename.endswith(".png") and png.startswith(b"\x89PNG")
    [embed] = callback.json["data"]["embeds"]
    assert "BTC" in embed["title"]
    assert embed["image"]["url"] == f"attachment://{filename}"
    assert buttons_of(callback.json["data"])[0]["custom_id"] == f"{REFRESH_PREFIX}/chart BTC 4h"
