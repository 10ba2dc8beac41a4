"""The shared command grammar and dispatcher: what a user typing commands sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.dispatch import Dispatcher, Limits
from bot.commands.parse import UsageError, format_window, parse_command
from bot.commands.ports import Caller
from bot.commands.help import help_reply
from bot.commands.registry import COMMANDS, find
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.core.ratelimit import RateLimit
from bot.core.symbols import asset_of
from bot.replies.render_discord import render_discord
from bot.replies.render_plain import render_plain
from bot.services.queries import QueryService

KNOWN = ["BTC", "ETH", "SOL", "PEPE"]


def parse(text, bot_username="liqbot"):
    return parse_command(text, KNOWN, bot_username)


def test_defaults_are_all_assets_over_24h():
    invocation = parse("/liq")
    assert invocation.spec.name == "liq"
    assert invocation.args == {"asset": None, "window": DAY_MS}


@pytest.mark.parametrize(
    "text, asset, window_ms",
    [
        ("/liq BTC 4h", "BTC", 4 * HOUR_MS),
        ("/LIQ btc 4H", "BTC", 4 * HOUR_MS),
        ("/liq 4h btc", "BTC", 4 * HOUR_MS),
        ("/liq@LiqBot eth 7d", "ETH", 7 * DAY_MS),
        ("/liquidations sol 30m", "SOL", 30 * MINUTE_MS),
        ("/liq BTCUSDT 1h", "BTC", HOUR_MS),
        ("/liq $pepe 12h", "PEPE", 12 * HOUR_MS),
        ("/liq all 30d", None, 30 * DAY_MS),
        ("/liq DOGE", "DOGE", DAY_MS),  # a well-known major, before anything is recorded
    ],
)
def test_arguments_in_any_case_and_order(text, asset, window_ms):
    invocation = parse(text)
    assert (invocation.args["asset"], invocation.args["window"]) == (asset, window_ms)


DATA = Path(__file__).resolve().parent.parent / "bot" / "data"


def printed_instruments() -> list[str]:
    """Instrument ids liqbot prints in /big and alerts: the venues' own (real metadata), and Bybit's."""
    okx = json.loads((DATA / "okx-instruments-swap-2022-05-13.json").read_text())["data"]
    coinm = json.loads((DATA / "binance-coinm-exchangeinfo-2021-07-22.json").read_text())["symbols"]
    return [i["instId"] for i in okx] + [s["symbol"] for s in coinm] + ["BTCUSDT", "BTCUSD", "BTCUSDZ25", "BTCPERP"]


@pytest.mark.parametrize("command", ["/liq {} 4h", "/big {}", "/chart {}", "/risk {}"])
def test_instrument_ids_liqbot_prints_are_their_asset(command):
    for instrument in printed_instruments():
        asset = asset_of(instrument)
        invocation = parse_command(command.format(instrument), [asset], "liqbot")
        assert next(v for k, v in invocation.args.items() if k in ("asset", "subject")) == asset, instrument


def test_commands_for_other_bots_and_plain_chat_are_ignored():
    assert parse("/liq@otherbot BTC") is None
    assert parse("gm, what got liquidated?") is None


@pytest.mark.parametrize(
    "text, key, suggestion",
    [
        ("/liq XBT", "error.unknown_asset", "BTC"),
        ("/liq BTCC", "error.unknown_asset", "BTC"),
        ("/liq BTC 25x", "error.bad_window", "25h"),
        ("/liq BTC 31d", "error.window_too_long", "30d"),
        ("/liqq BTC", "error.unknown_command", "/liq"),
        ("/lang fr", "error.bad_locale", None),
        ("/top 4h 1h", "error.too_many_args", None),
        ("/status now", "error.too_many_args", None),
    ],
)
def test_mistakes_get_a_reason_and_a_suggestion(text, key, suggestion):
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert caught.value.key == key
    if suggestion:
        assert caught.value.suggestion == suggestion


def test_an_overlong_message_is_refused():
    with pytest.raises(UsageError) as caught:
        parse("/liq " + "A" * 400)
    assert caught.value.key == "error.too_long"


@pytest.mark.parametrize("window_ms, text", [(30 * MINUTE_MS, "30m"), (4 * HOUR_MS, "4h"), (DAY_MS, "24h"), (7 * DAY_MS, "7d")])
def test_windows_print_as_traders_write_them(window_ms, text):
    assert format_window(window_ms) == text


def test_every_command_has_help_in_both_locales():
    for spec in COMMANDS:
        assert spec.summary["en"] and spec.summary["zh"]
        for arg in spec.args:
            assert arg.help["en"] and arg.help["zh"]


async def dispatcher_for(store, limits=None):
    return Dispatcher(QueryService(store), clock_ms=lambda: 1_742_601_600_000, limits=limits)


async def reply_text(dispatcher, text, caller):
    reply = await dispatcher.handle(text, caller)
    return None if reply is None else render_plain(reply)


MEMBER = Caller("telegram", "telegram:-100", "telegram:7", is_group=True)


async def _not_admin() -> bool:
    return False


async def test_usage_errors_read_well_and_never_show_a_traceback(store):
    dispatcher = await dispatcher_for(store)
    text = await reply_text(dispatcher, "/liq XBT", MEMBER)
    assert "Unknown asset XBT. Did you mean BTC? Usage: /liq [ASSET] [WINDOW]" in text
    assert "Traceback" not in text


async def test_changing_a_group_setting_needs_an_admin(store):
    dispatcher = await dispatcher_for(store)
    member = Caller("telegram", "telegram:-100", "telegram:7", is_group=True, is_admin=_not_admin)
    refused = await dispatcher.handle("/lang zh", member)
    assert refused.ephemeral and "Only chat admins" in render_plain(refused)
    assert await store.chats.locale("telegram:-100") is None
    accepted = await dispatcher.handle("/lang zh", MEMBER)  # default is_admin: True
    assert "中文" in render_plain(accepted)
    assert await store.chats.locale("telegram:-100") == "zh"
    # In a private chat nobody needs to be an admin.
    private = Caller("telegram", "telegram:7", "telegram:7", is_admin=_not_admin)
    assert "中文" in render_plain(await dispatcher.handle("/lang zh", private))


async def test_a_flood_of_commands_gets_a_polite_wait(store):
    dispatcher = await dispatcher_for(store, Limits(RateLimit(2, 6), RateLimit(100, 100)))
    replies = [await reply_text(dispatcher, "/status", MEMBER) for _ in range(3)]
    assert "Too many commands; try again in 10s." in replies[2]
    assert "Too many" not in replies[0]


async def test_a_flood_is_told_once_per_minute_and_the_rest_dropped_typos_too(store):
    clock = [1_742_601_600_000]
    dispatcher = Dispatcher(QueryService(store), lambda: clock[0], limits=Limits(RateLimit(2, 1), RateLimit(100, 100)))
    flood = ["/status", "/lqi", "/liq BTC 4h", "/liq XBT", "/alert big BTC 1e99"] * 7  # typos and usage errors
    replies = [await reply_text(dispatcher, message, MEMBER) for message in flood]
    answered, told = replies[:2], [r for r in replies[2:] if r is not None]
    assert all(r and "Too many" not in r for r in answered)
    assert len(told) == 1 and "Too many commands" in told[0]
    assert dispatcher.dropped_commands == len(flood) - 3
    # Someone else in the same chat is not held back by the flood.
    other = Caller("telegram", "telegram:-100", "telegram:8", is_group=True)
    assert "Too many" not in await reply_text(dispatcher, "/status", other)
    # Plain chat and other bots' commands are no commands: neither limited nor counted.
    assert await reply_text(dispatcher, "gm", MEMBER) is None
    assert await reply_text(dispatcher, "/liq@otherbot BTC", MEMBER) is None
    assert dispatcher.dropped_commands == len(flood) - 3
    # A minute on, a token is back: answered; the next refusal is told again, once.
    clock[0] += 60_000
    assert "Too many" not in await reply_text(dispatcher, "/status", MEMBER)
    assert "Too many commands" in await reply_text(dispatcher, "/status", MEMBER)
    assert await reply_text(dispatcher, "/status", MEMBER) is None


async def test_a_failing_handler_is_logged_and_answered(store, caplog):
    await store.close()  # every query now fails
    dispatcher = await dispatcher_for(store)
    reply = await dispatcher.run(parse("/status"), MEMBER, "en")
    assert "Something went wrong on my side" in render_plain(reply)
    assert "command status failed" in caplog.text


@pytest.mark.parametrize("locale", ["en", "zh"])
def test_help_keeps_usage_apart_from_description(locale):
    fields = [field for message in render_discord(help_reply(None, locale)) for e in message for field in e.get("fields", [])]
    usages = [(f["name"].replace("\\", ""), f["value"]) for f in fields]  # Discord escapes the brackets
    assert usages == [(spec.usage(), spec.summary[locale]) for spec in COMMANDS]
    lines = render_plain(help_reply("liq", locale)).splitlines()
    for arg in find("liq").args:  # a column of placeholders, a column of explanations
        assert any(row.startswith(arg.placeholder) and row.endswith(arg.help[locale]) for row in lines)


@pytest.mark.parametrize(
    "text, key, suggestion",
    [
        ("/liq BTC 0h", "error.bad_window", None),  # suggested 0h once
        ("/liq BTC 0m", "error.bad_window", None),
        ("/liq BTC 1000x", "error.bad_window", None),  # 1000h is over 30 days
        ("/liq BTC 45x", "error.bad_window", "45h"),
        ("/liq BTC 720x", "error.bad_window", "720h"),
    ],
)
def test_window_suggestions_are_valid_windows(text, key, suggestion):
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert (caught.value.key, caught.value.suggestion) == (key, suggestion)


def test_a_scaled_meme_contract_is_its_asset():
    assert parse("/liq 1000PEPE").args == {"asset": "PEPE", "window": DAY_MS}  # once read as a window, 1000h
    assert parse("/liq 1000PEPE 4h").args["asset"] == "PEPE"


TOKENS = st.from_regex(r"[0-9]{1,5}[a-zA-Z]{0,5}", fullmatch=True) | st.text(max_size=8).filter(lambda t: t.strip() == t)


@settings(max_examples=300, deadline=None, database=None)
@given(token=TOKENS, template=st.sampled_from(["/liq BTC {}", "/liq {}", "/top {}", "/chart {}", "/big ETH {}"]))
def test_every_suggestion_is_itself_valid(token, template):
    try:
        parse(template.format(token))
    except UsageError as error:
        if error.suggestion is None or error.key == "error.unknown_command":
            return
        suggested = template.format(error.suggestion)
        try:
            parse(suggested)
        except UsageError as again:
            pytest.fail(f"{template.format(token)!r} suggested {error.suggestion!r}, which is refused: {again.key}")
