"""Every error path of every command, rendered in every locale by every renderer.

The cases come from the command registry (each argument kind's bad values, too
many arguments, admin-only refusals, rate limits, a bot without the feature, a
failing store), plus the sub-grammars of the commands that take free text. A
wording that crashes (a placeholder clash, a missing key) or leaves a `{name}`
unfilled fails here, and so does an error message no case reaches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pytest

from bot.app import App
from bot.commands.dispatch import Dispatcher
from bot.commands.parse import parse_command
from bot.commands.ports import Caller
from bot.commands.registry import COMMANDS, ArgKind, CommandSpec
from bot.config import AlertsConfig, BotConfig, Config
from bot.replies.locales import MESSAGES
from bot.replies.model import Reply
from bot.replies.render_discord import render_discord
from bot.replies.render_plain import render_plain
from bot.replies.render_telegram import render_telegram
from bot.services.queries import QueryService

NOW_MS = 1_742_601_600_000
LOCALES = tuple(MESSAGES)

# A value of each argument kind that parses, and values that do not. A new
# kind fails here (KeyError) until it has both.
VALID = {ArgKind.ASSET: "BTC", ArgKind.WINDOW: "4h", ArgKind.LOCALE: "zh", ArgKind.COMMAND: "liq"}
INVALID = {
    ArgKind.ASSET: ("XBT", "NOPE"),
    ArgKind.WINDOW: ("0h", "25x", "31d"),
    ArgKind.LOCALE: ("fr", "english"),
    ArgKind.COMMAND: ("nope", "liqq"),
}
# The commands whose TEXT argument has its own grammar, and lines that break it.
SUBGRAMMAR_ERRORS = {
    "alert": (
        "/alert nope",
        "/alert big",
        "/alert big BTC lots",
        "/alert big BTC 2000000000000",
        "/alert big XBT 1M",
        "/alert total BTC 1M",
        "/alert total BTC 1M 90d",
        "/alert skew ETH",
        "/alert skew ETH 40% 4h 10M",
        "/alert skew ETH 80% 4h",
        "/alert risk BTC sky",
        "/alert risk BTC",
        "/alert cascade XBT",
        "/alert cascade all lots",
        "/alert near BTC",
        "/alert near BTC 40%",
        "/alert near BTC 1% lots",
        "/alert remove",
        "/alert remove x",
        "/alert remove 999",
        "/alert pause 999",
        "/alert resume",
    ),
    "digest": (
        "/digest nope",
        "/digest on",
        "/digest on 25:00",
        "/digest on 08:00 Mars/Base",
        "/digest chart",
        "/digest chart maybe",
        "/digest chart on",
        "/digest style",
        "/digest style fancy",
        "/digest style full",
        "/digest off",
    ),
    "feed": (
        "/feed nope",
        "/feed on",
        "/feed on lots",
        "/feed on 2000000000000",
        "/feed on 1M XBT",
        "/feed on 1M all BTC",
        "/feed on 1M BTC ETH SOL XRP BNB DOGE ADA TRX AVAX LINK TON",
        "/feed off now",
        "/feed status please",
        "/feed off",
    ),
    "tz": (
        "/tz Mars/Olympus",
        "/tz America",
        "/tz Asia/Shanghaii",
        "/tz " + "x" * 200,
    ),
}
# Messages that tell the user something went wrong; every one must be reached.
ERROR_KEYS = sorted(
    {key for key in MESSAGES["en"] if key.startswith("error.")}
    | {"denied.body", "rate.body", "alert.cap_user", "alert.cap_chat", "alert.not_found", "alert.unchanged",
       "digest.off_none", "digest.chart_none", "feed.off_none"}
)


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    setup: tuple[tuple[str, str], ...] = ()  # (user, command) sent first in the same chat
    user: str = "owner"
    member: bool = False  # a group member who is not an admin
    bot: str = "full"  # "full", "bare" (no feature handlers) or "broken" (its store fails)


def _example(spec: CommandSpec) -> str:
    return spec.examples[0] if spec.examples else f"/{spec.name}"


def registry_cases() -> list[Case]:
    cases = [Case("too long", "/liq " + "A" * 300)]
    for spec in COMMANDS:
        name = spec.name
        cases.append(Case(f"{name}: unknown command", f"/{name}zz"))
        plain_args = [arg for arg in spec.args if arg.kind is not ArgKind.TEXT]
        for position, arg in enumerate(plain_args):
            before = [VALID[a.kind] for a in plain_args[:position]]
            cases += [
                Case(f"{name}: bad {arg.name} {bad}", " ".join([f"/{name}", *before, bad]))
                for bad in INVALID[arg.kind]
            ]
        if len(plain_args) == len(spec.args):
            cases.append(Case(f"{name}: too many", " ".join([f"/{name}", *(VALID[a.kind] for a in plain_args), "extra"])))
        if spec.admin_only_in_groups:
            cases.append(Case(f"{name}: not an admin", _example(spec), member=True))
        cases.append(Case(f"{name}: rate limited", _example(spec), setup=(("limited", _example(spec)),), user="limited"))
        cases.append(Case(f"{name}: not enabled", _example(spec), bot="bare"))
        cases.append(Case(f"{name}: store fails", _example(spec), bot="broken"))
    return cases


def subgrammar_cases() -> list[Case]:
    cases = [Case(f"{name}: {line}", line) for name, lines in SUBGRAMMAR_ERRORS.items() for line in lines]
    for name in SUBGRAMMAR_ERRORS:
        spec = next(s for s in COMMANDS if s.name == name)
        cases.append(Case(f"{name}: not an admin", _example(spec), member=True))
    # Caps: one rule per user, two per chat (see `open_app`).
    cases.append(Case("alert: user cap", "/alert big BTC 1M", setup=(("owner", "/alert big ETH 1M"),)))
    cases.append(
        Case("alert: chat cap", "/alert big BTC 1M", setup=(("a", "/alert big ETH 1M"), ("b", "/alert big SOL 1M")))
    )
    return cases


CASES = registry_cases() + subgrammar_cases()


def test_every_command_with_free_text_has_its_error_lines():
    assert set(SUBGRAMMAR_ERRORS) == {s.name for s in COMMANDS if any(a.kind is ArgKind.TEXT for a in s.args)}


def caller(chat_key: str, user: str, member: bool, rate_limited: bool) -> Caller:
    async def not_admin() -> bool:
        return False

    if member:
        return Caller("telegram", chat_key, f"{chat_key}:{user}", is_group=True, is_admin=not_admin)
    return Caller("telegram", chat_key, f"{chat_key}:{user}", rate_limited=rate_limited)


async def open_app(tmp_path, name: str) -> App:
    config = replace(
        Config(),
        bot=BotConfig(user_burst=1, user_per_minute=1.0),
        alerts=AlertsConfig(max_per_user=1, max_per_chat=2),
    )
    return await App.open(config, db_path=tmp_path / f"{name}.sqlite", clock_ms=lambda: NOW_MS)


async def reply_of(case: Case, index: int, locale: str, apps: dict[str, App]) -> tuple[Reply | None, str]:
    """The reply, and the chat's language after it (`/lang zh` changes it)."""
    chat_key = f"test:{locale}:{index}"
    app = apps["broken" if case.bot == "broken" else "full"]
    limited = case.user == "limited"
    if case.bot == "broken":  # its store is closed: the handler fails, not the locale look-up
        invocation = parse_command(case.text, ["BTC"], None)
        return await app.dispatcher.run(invocation, caller(chat_key, case.user, case.member, limited), locale), locale
    await app.store.chats.set_locale(chat_key, locale, NOW_MS)
    dispatcher = app.dispatcher
    if case.bot == "bare":
        dispatcher = Dispatcher(QueryService(app.store), lambda: NOW_MS)
    for user, command in case.setup:
        await dispatcher.handle(command, caller(chat_key, user, False, limited))
    reply = await dispatcher.handle(case.text, caller(chat_key, case.user, case.member, limited))
    return reply, await app.store.chats.locale(chat_key)


# Full-width punctuation takes no space after it, and Chinese text takes no ASCII , ; : .
ZH_SPACED = re.compile(r"[，；：。、？！] ")
ZH_ASCII_PUNCTUATION = re.compile(r"[\u4e00-\u9fff][,;:.](\s|$)")


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def problems_of(reply: Reply | None, locale: str) -> list[str]:
    if reply is None:
        return ["no reply"]
    plain = render_plain(reply)
    found = []
    if re.search(r"\{[a-z_]+\}", plain) or "Traceback" in plain:
        found.append(f"unfilled or broken: {plain!r}")
    if locale == "zh" and (ZH_SPACED.search(plain) or ZH_ASCII_PUNCTUATION.search(plain)):
        found.append(f"Chinese punctuation: {plain!r}")
    if (locale == "zh") != _has_cjk(reply.title):
        found.append(f"title not in {locale}: {reply.title!r}")
    telegram = render_telegram(reply)
    if not telegram or not all(message.strip() for message in telegram):
        found.append(f"empty Telegram message: {telegram!r}")
    discord = render_discord(reply)
    if not discord or not all(embed.get("title") or embed.get("description") for m in discord for embed in m):
        found.append(f"empty Discord embed: {discord!r}")
    return found


def template_pattern(template: str) -> re.Pattern:
    pieces = re.split(r"\{[a-z_]+\}", template)
    return re.compile("(?s:.+?)".join(re.escape(piece) for piece in pieces))


@pytest.mark.parametrize("locale", LOCALES)
async def test_every_error_path_renders_in_every_renderer(tmp_path, locale):
    apps = {"full": await open_app(tmp_path, "full"), "broken": await open_app(tmp_path, "broken")}
    await apps["broken"].store.close()
    try:
        rendered, problems = [], []
        for index, case in enumerate(CASES):
            reply, chat_locale = await reply_of(case, index, locale, apps)
            problems += [f"{case.name}: {problem}" for problem in problems_of(reply, chat_locale)]
            if reply is not None:
                rendered.append(render_plain(reply))
    finally:
        await apps["full"].close()
        await apps["broken"].notifier.close()
    assert problems == []
    everything = "\n".join(rendered)
    unreached = [key for key in ERROR_KEYS if not template_pattern(MESSAGES[locale][key]).search(everything)]
    assert unreached == []
