"""/alert: its sub-grammar (the TEXT argument), authorization and replies. The
service behind it comes in as a port (`AlertsPort`); `alert_handlers(...)`
gives the Dispatcher its handler. (/digest lives in `bot.commands.digest`.)

    /alert big BTC|any 1M            one order of at least $1M
    /alert total BTC 50M 1h          $50M liquidated within a trailing hour
    /alert skew ETH 80% 4h min 10M   80% on one side within 4h, at least $10M
    /alert risk BTC high             leverage risk rises to high or above
                                     (low|elevated|high|extreme, or 低|偏高|高|极高)
    /alert near BTC 1% [10M]         the price within 1% of an estimated liquidation
                                     band of at least $10M (/levels)
    /alert list | remove ID | pause [ID] | resume [ID]
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.commands.dispatch import Context, Handler, message_reply
from bot.commands.subgrammar import (
    SubgrammarError,
    amount_arg,
    asset_arg,
    denied_reply,
    may_change,
    parse_amount,
    subgrammar_reply,
    suggest,
)
from bot.commands.parse import parse_window
from bot.core.alert_rules import (
    MAX_ALERT_WINDOW_MS,
    MIN_ALERT_WINDOW_MS,
    AlertRule,
    Caps,
    CapReached,
    RuleKind,
    RuleState,
    risk_rule,
)
from bot.core.cascade_alerts import DEFAULT_MIN_EVENT_USD
from bot.core.near_alerts import DEFAULT_NEAR_MIN_USD, MAX_NEAR_SHARE, near_rule
from bot.core.risk import LEVELS, RiskLevel
from bot.replies.alerts import describe_rule
from bot.replies.locales import sentences, text
from bot.replies.model import Bullets, Reply, Tone, line

ALERT_ACTIONS = ("big", "total", "skew", "risk", "cascade", "near", "list", "remove", "pause", "resume")
# Risk levels as people write them: the English names and the Chinese words of /risk.
LEVEL_WORDS: dict[str, RiskLevel] = {
    **{level.value: level for level in LEVELS},
    "低": RiskLevel.LOW,
    "偏高": RiskLevel.ELEVATED,
    "高": RiskLevel.HIGH,
    "极高": RiskLevel.EXTREME,
}
# Rule ids are SQLite integers: more digits than this cannot be one.
MAX_RULE_ID_DIGITS = 18


class AlertsPort(Protocol):
    caps: Caps

    async def assets(self) -> list[str]: ...

    async def create_rule(self, rule: AlertRule, now_ms: int) -> AlertRule:
        """The rule as stored; raises CapReached when its user or chat is at a cap."""
        ...

    async def rules_of_chat(self, chat_key: str) -> list[tuple[AlertRule, RuleState]]: ...

    async def remove_rule(self, chat_key: str, rule_id: int) -> bool: ...

    async def set_paused(self, chat_key: str, rule_id: int | None, paused: bool) -> list[int]: ...


def parse_share(token: str) -> float | None:
    """"80%" or "80" -> 0.8; a share must be above 50% (the heavier side) and at most 100%."""
    try:
        value = float(token.rstrip("%")) / 100
    except ValueError:
        return None
    return value if 0.5 < value <= 1 else None


def parse_distance(token: str) -> float | None:
    """"1%" or "1" -> 0.01, "0.5%"; a distance must be above 0 and at most 25%."""
    try:
        value = float(token.rstrip("%")) / 100
    except ValueError:
        return None
    return value if 0 < value <= MAX_NEAR_SHARE else None


def parse_level(token: str) -> RiskLevel | None:
    """"high", "HIGH", "高" -> RiskLevel.HIGH; None when not a risk level."""
    return LEVEL_WORDS.get(token.strip().lower())


def _level(token: str | None) -> RiskLevel:
    if token is None:
        raise SubgrammarError("error.alert_incomplete")
    level = parse_level(token)
    if level is None:
        close = difflib.get_close_matches(token.strip().lower(), list(LEVEL_WORDS), n=1, cutoff=0.5)
        raise SubgrammarError("error.alert_bad_level", token, close[0] if close else None)
    return level


def _amount(token: str | None) -> float:
    if token is None:
        raise SubgrammarError("error.alert_incomplete")
    return amount_arg(token)


def _window(token: str | None) -> int:
    if token is None:
        raise SubgrammarError("error.alert_incomplete")
    window = parse_window(token)
    if window is None or not MIN_ALERT_WINDOW_MS <= window <= MAX_ALERT_WINDOW_MS:
        raise SubgrammarError("error.alert_bad_window", token, "24h" if window and window > MAX_ALERT_WINDOW_MS else "1h")
    return window


def _asset(token: str | None, known: list[str], allow_any: bool) -> str | None:
    if token is None:
        raise SubgrammarError("error.alert_incomplete")
    return asset_arg(token, known, allow_any)


def parse_rule(words: list[str], known_assets: list[str], chat_key: str, user_key: str) -> AlertRule:
    """The rule of `/alert big|total|skew|risk|cascade|near ...` (words after /alert). Raises _Bad."""
    kind, args = words[0].lower(), words[1:]

    def arg(i: int) -> str | None:
        return args[i] if i < len(args) else None

    if kind == "big":
        asset = _asset(arg(0), known_assets, allow_any=True)
        return AlertRule(0, chat_key, user_key, RuleKind.BIG, asset, _amount(arg(1)))
    if kind == "total":
        asset = _asset(arg(0), known_assets, allow_any=False)
        return AlertRule(0, chat_key, user_key, RuleKind.TOTAL, asset, _amount(arg(1)), _window(arg(2)))
    if kind == "cascade":  # cascade [ASSET|all] [MIN_USD]
        asset = _asset(arg(0), known_assets, allow_any=True) if arg(0) is not None else None
        minimum = _amount(arg(1)) if arg(1) is not None else DEFAULT_MIN_EVENT_USD
        return AlertRule(0, chat_key, user_key, RuleKind.CASCADE, asset, minimum)
    if kind == "risk":
        asset = _asset(arg(0), known_assets, allow_any=False)
        return risk_rule(0, chat_key, user_key, asset, _level(arg(1)))
    if kind == "near":  # near ASSET PCT [MIN_USD]
        asset = _asset(arg(0), known_assets, allow_any=False)
        if arg(1) is None:
            raise SubgrammarError("error.alert_incomplete")
        distance = parse_distance(arg(1))
        if distance is None:
            raise SubgrammarError("error.alert_bad_distance", arg(1), "1%")
        minimum = _amount(arg(2)) if arg(2) is not None else DEFAULT_NEAR_MIN_USD
        return near_rule(0, chat_key, user_key, asset, distance, minimum)
    # skew ASSET PCT WINDOW [min] USD
    asset = _asset(arg(0), known_assets, allow_any=False)
    if arg(1) is None:
        raise SubgrammarError("error.alert_incomplete")
    share = parse_share(arg(1))
    if share is None:
        raise SubgrammarError("error.alert_bad_share", arg(1), "80%")
    window = _window(arg(2))
    rest = [w for w in args[3:] if w.lower() != "min"]
    minimum = _amount(rest[0] if rest else None)
    return AlertRule(0, chat_key, user_key, RuleKind.SKEW, asset, minimum, window, share)


def _rule_id(token: str | None) -> int | None:
    if token is None:
        return None
    digits = token.lstrip("#")
    # isdigit() alone accepts superscripts (²) that int() refuses.
    if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_RULE_ID_DIGITS):
        raise SubgrammarError("error.alert_bad_id", token)
    return int(digits)


def alert_handlers(alerts: AlertsPort | None) -> dict[str, Handler]:
    """The "alert" handler for the Dispatcher's `features` (none without an alert service)."""
    return {} if alerts is None else {"alert": _alert_handler(alerts)}


def _alert_handler(port: AlertsPort) -> Callable[[Context], Awaitable[Reply]]:
    async def handle(ctx: Context) -> Reply:
        locale, caller = ctx.locale, ctx.caller
        words = str(ctx.invocation.args.get("rule") or "").split()
        if not words:
            return message_reply("title.alerts", locale, text(locale, "alert.usage"))
        action = words[0].lower()
        try:
            if action == "list":
                return await _list(port, ctx)
            if action not in ALERT_ACTIONS:
                raise SubgrammarError("error.alert_unknown", words[0], suggest(words[0], ALERT_ACTIONS, "/alert"))
            if not await may_change(ctx):
                return denied_reply(locale)
            if action == "remove":
                rule_id = _rule_id(words[1] if len(words) > 1 else None)
                if rule_id is None:
                    raise SubgrammarError("error.alert_incomplete")
                if not await port.remove_rule(caller.chat_key, rule_id):
                    return message_reply("title.alerts", locale, text(locale, "alert.not_found", id=rule_id),
                                         Tone.WARNING, ephemeral=True)
                return message_reply("title.alerts", locale, text(locale, "alert.removed", id=rule_id))
            if action in ("pause", "resume"):
                rule_id = _rule_id(words[1] if len(words) > 1 else None)
                changed = await port.set_paused(caller.chat_key, rule_id, action == "pause")
                if not changed:
                    return message_reply("title.alerts", locale, text(locale, "alert.unchanged"), Tone.WARNING)
                ids = ", ".join(f"#{i}" for i in changed)
                return message_reply("title.alerts", locale, text(locale, f"alert.{action}d", ids=ids))
            rule = parse_rule(words, await port.assets(), caller.chat_key, caller.user_key)
        except SubgrammarError as error:
            return subgrammar_reply(error, locale, "alert.usage")
        try:
            rule = await port.create_rule(rule, ctx.now_ms)
        except CapReached as reached:
            cap = port.caps.per_user if reached.which == "user" else port.caps.per_chat
            body = text(locale, f"alert.cap_{reached.which}", cap=cap)
            return message_reply("title.alerts", locale, body, Tone.WARNING, ephemeral=True)
        body = text(locale, "alert.created", id=rule.id, rule=describe_rule(rule, locale))
        return message_reply("title.alerts", locale, body)

    return handle


async def _list(port: AlertsPort, ctx: Context) -> Reply:
    locale = ctx.locale
    rules = await port.rules_of_chat(ctx.caller.chat_key)
    if not rules:
        return message_reply("title.alerts", locale, text(locale, "alert.none"))
    items = []
    for rule, _state in rules:
        item = text(locale, "alert.list_item", id=rule.id, rule=describe_rule(rule, locale))
        if rule.paused:
            item = sentences(locale, (item, text(locale, "alert.paused_mark")))
        items.append(line(item))
    return Reply(title=text(locale, "title.alerts"), blocks=(Bullets(tuple(items)),))


__all__ = [
    "AlertsPort",
    "alert_handlers",
    "parse_amount",
    "parse_level",
    "parse_rule",
    "parse_share",
]
