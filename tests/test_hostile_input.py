"""Hostile input through the whole dispatcher, as the production composition root
wires it: numbers that broke replies, inputs that reached "internal error", and
a property test that no text as any command's arguments ever does."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.commands.ports import Caller
from bot.commands.registry import COMMANDS
from bot.config import Config
from bot.core.alert_rules import AlertRule, Caps, RuleKind
from bot.core.models import HOUR_MS, Side
from bot.replies.locales import text
from bot.replies.render_plain import render_plain
from bot.storage.alerts_store import AlertsStore
from tests.support import liquidation

NOW_MS = 1_742_558_400_000  # 2025-03-21 12:00 UTC
PRIVATE = Caller("telegram", "telegram:42", "telegram:42", rate_limited=False)


async def _not_admin() -> bool:
    return False


MEMBER = Caller("telegram", "telegram:-100", "telegram:7", is_group=True, rate_limited=False, is_admin=_not_admin)
ADMIN = Caller("telegram", "telegram:-100", "telegram:1", is_group=True, rate_limited=False)
ZH_ADMIN = Caller("discord", "discord:555", "discord:9", is_group=True, rate_limited=False)
CALLERS = (PRIVATE, MEMBER, ADMIN, ZH_ADMIN)
# Asset names a venue (or a corrupt frame) could put in the store.
HOSTILE_ASSETS = ("<b>", "A" * 120, "💥", "1000", "4H", "ALL", "TOP", "ANY", "{ASSET}", "%S", "&AMP;", "-", "Ⅻ")
STORED_THRESHOLDS = (1e38, math.inf, 1.7e308)
# Values for each slot of the grammar: valid ones, and ones that broke (or nearly broke) a command once.
AMOUNTS = ("1M", "500k", "$2.5b", "1e35", "1" * 39, "1" * 400, "0", "0.0001", "-1", "nan", "inf")
ASSETS = ("BTC", "any", "all", "top", "xbt", "1000PEPE", "$", "{asset}", "%s", *HOSTILE_ASSETS)
WINDOWS = ("1h", "4H", "24h", "30d", "0h", "1000h", "31d", "1e3h", "²h")
IDS = ("1", "#2", "²", "٢", "99999999999999999999999", "-1", "#")
TIMES = ("08:00", "8:5", "0800", "8pm", "²²:00", "٢٢:٠٠", "25:00", "24:00", ":")
ZONES = ("UTC", "Europe/Berlin", "CST", "America", "Etc", "../../etc/passwd", "UTC\x00", "A" * 300)
SHARES = ("80%", "101%", "50%", "nan%", "1e400")
LEVELS = ("high", "高", "extreme", "🔥")


async def open_app(tmp_path) -> App:
    app = await App.open(Config(), db_path=tmp_path / "db.sqlite", clock_ms=lambda: NOW_MS)
    try:
        events = [liquidation(NOW_MS - HOUR_MS, 1_000_000.0, Side.LONG)]
        for i, asset in enumerate(HOSTILE_ASSETS):
            event = liquidation(NOW_MS - (i + 2) * 60_000, 10_000.0 * (i + 1), Side.SHORT)
            events.append(event._replace(asset=asset, instrument=asset + "USDT"))
        await app.store.add_events(events)
        await app.store.chats.set_locale(ZH_ADMIN.chat_key, "zh", NOW_MS)
        # Rules stored before amounts were bounded, as they are in existing databases.
        rules = AlertsStore(app.store)
        for threshold in STORED_THRESHOLDS:
            rule = AlertRule(0, PRIVATE.chat_key, PRIVATE.user_key, RuleKind.BIG, "BTC", threshold)
            await rules.add_rule(rule, NOW_MS, Caps())
        await app.alerts.start()
    except BaseException:
        await app.close()
        raise
    return app


async def say(app: App, message: str, caller: Caller = PRIVATE) -> str:
    reply = await app.dispatcher.handle(message, caller, "liqbot")
    return render_plain(reply) if reply is not None else ""


def is_internal_error(reply: str) -> bool:
    return any(text(locale, "error.internal") in reply for locale in ("en", "zh"))


@pytest.fixture
async def app(tmp_path):
    app = await open_app(tmp_path)
    try:
        yield app
    finally:
        await app.close()


# -- the inputs that reached "internal error" ---------------------------------------


@pytest.mark.parametrize(
    "message, key",
    [
        ("/digest on 08:00 America", "error.digest_bad_tz"),  # a zoneinfo directory
        ("/digest on 08:00 ../../etc/passwd", "error.digest_bad_tz"),
        ("/digest on ²²:00", "error.digest_bad_time"),  # isdigit() takes superscripts, int() does not
        ("/alert remove ²", "error.alert_bad_id"),
        ("/alert pause ²", "error.alert_bad_id"),
        ("/alert remove 99999999999999999999999", "error.alert_bad_id"),  # past SQLite's integers
        ("/alert big BTC 100000000000000000000000000000000000000", "error.alert_amount_range"),
        ("/alert big any 0.5", "error.alert_amount_range"),
        ("/alert skew ETH 80% 4h min 2000000000000", "error.alert_amount_range"),
    ],
)
@pytest.mark.parametrize("caller", [PRIVATE, ZH_ADMIN], ids=["en", "zh"])
async def test_bad_input_is_a_usage_reply_in_both_locales(app, message, key, caller):
    reply = await say(app, message, caller)
    locale = "zh" if caller is ZH_ADMIN else "en"
    value = message.split()[-1]
    assert text(locale, key, value=value, min="$1.00" if locale == "en" else "1.00美元",
                max="$1.00T" if locale == "en" else "1.00万亿美元") in reply
    assert not is_internal_error(reply)


async def test_a_huge_rule_from_before_the_bounds_is_listed_and_removable(app):
    listed = await say(app, "/alert list")
    assert "$1.00e+38" in listed and "$∞" in listed and not is_internal_error(listed)
    assert text("en", "alert.removed", id=1) in await say(app, "/alert remove 1")
    assert "#1" not in await say(app, "/alert list")


# -- arbitrary text as every command's arguments -------------------------------------


COMMAND_NAMES = sorted({name for spec in COMMANDS for name in (spec.name, *spec.aliases)})


def slot(values: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(values) | st.text(min_size=1, max_size=12).filter(lambda s: not s.isspace())


def line(*parts: st.SearchStrategy[str] | str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.just(p) if isinstance(p, str) else p for p in parts)).map(" ".join)


ALERT_LINES = st.one_of(
    line("/alert big", slot(ASSETS), slot(AMOUNTS)),
    line("/alert total", slot(ASSETS), slot(AMOUNTS), slot(WINDOWS)),
    line("/alert skew", slot(ASSETS), slot(SHARES), slot(WINDOWS), "min", slot(AMOUNTS)),
    line("/alert risk", slot(ASSETS), slot(LEVELS)),
    line("/alert", st.sampled_from(("remove", "pause", "resume")), slot(IDS)),
    st.just("/alert list"),
)
DIGEST_LINES = st.one_of(
    line("/digest on", slot(TIMES), slot(ZONES)),
    line("/digest chart", slot(("on", "off"))),
    st.sampled_from(("/digest off", "/digest status", "/digest preview")),
)
ANY_WORD = slot(AMOUNTS + ASSETS + WINDOWS + IDS + TIMES + ZONES + SHARES + LEVELS)
ANY_COMMAND = st.tuples(
    st.sampled_from(COMMAND_NAMES), st.sampled_from(("", "@liqbot", "@other")), st.lists(ANY_WORD, max_size=6)
).map(lambda parts: f"/{parts[0]}{parts[1]} " + " ".join(parts[2]))
MESSAGES = ALERT_LINES | DIGEST_LINES | ANY_COMMAND | st.text(max_size=300).map(lambda s: "/" + s)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_no_text_as_any_commands_arguments_reaches_an_internal_error(tmp_path):
    loop = asyncio.new_event_loop()
    try:
        app = loop.run_until_complete(open_app(tmp_path))
    except BaseException:
        loop.close()
        raise
    errors = _Errors()
    logging.getLogger("bot").addHandler(errors)

    @settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message=MESSAGES, caller=st.sampled_from(CALLERS))
    def check(message: str, caller: Caller) -> None:
        errors.records.clear()
        reply = loop.run_until_complete(say(app, message, caller))
        assert not is_internal_error(reply), (message, reply)
        assert errors.records == [], (message, [r.getMessage() for r in errors.records])

    try:
        check()
    finally:
        logging.getLogger("bot").removeHandler(errors)
        loop.run_until_complete(app.close())
        loop.close()
