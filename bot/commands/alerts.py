"""/alert and /digest: their sub-grammar (the TEXT argument), authorization
and replies. The services behind them come in as ports (see `AlertsPort`,
`DigestsPort`); `alert_handlers(...)` gives the Dispatcher its handlers.

    /alert big BTC|any 1M            one order of at least $1M
    /alert total BTC 50M 1h          $50M liquidated within a trailing hour
    /alert skew ETH 80% 4h min 10M   80% on one side within 4h, at least $10M
    /alert risk BTC high             leverage risk rises to high or above
                                     (low|elevated|high|extreme, or 低|偏高|高|极高)
    /alert list | remove ID | pause [ID] | resume [ID]
    /digest on HH:MM [TZ] | off | status | preview | chart on|off
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.commands.clock import tz_suggestion, zone_named
from bot.commands.dispatch import Context, Handler, message_reply
from bot.commands.parse import WELL_KNOWN_ASSETS, normalize_asset, parse_window, suggest_asset
from bot.core.alerts import (
    MAX_ALERT_WINDOW_MS,
    MAX_THRESHOLD_USD,
    MIN_ALERT_WINDOW_MS,
    MIN_THRESHOLD_USD,
    AlertRule,
    Caps,
    DigestSchedule,
    RuleKind,
    RuleState,
    cap_exceeded,
    parse_local_time,
    risk_rule,
)
from bot.core.risk import LEVELS, RiskLevel
from bot.replies import numbers as fmt
from bot.replies.locales import text
from bot.replies.model import Bullets, Reply, Tone, line
from bot.replies.risk import level_text

ALERT_ACTIONS = ("big", "total", "skew", "risk", "list", "remove", "pause", "resume")
# Risk levels as people write them: the English names and the Chinese words of /risk.
LEVEL_WORDS: dict[str, RiskLevel] = {
    **{level.value: level for level in LEVELS},
    "低": RiskLevel.LOW,
    "偏高": RiskLevel.ELEVATED,
    "高": RiskLevel.HIGH,
    "极高": RiskLevel.EXTREME,
}
DIGEST_ACTIONS = ("on", "off", "status", "preview", "chart", "style")
DIGEST_STYLES = ("full", "brief")
SWITCH_WORDS = {"on": True, "off": False}
DEFAULT_TZ = "UTC"
_AMOUNT = re.compile(r"^\$?(\d+(?:\.\d+)?)([kmb]?)$", re.IGNORECASE)
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
# Rule ids are SQLite integers: more digits than this cannot be one.
MAX_RULE_ID_DIGITS = 18
# Times people type for a digest: 8, 8am, 8pm, 8.30, 8h30, 8:5.
_LOOSE_TIME = re.compile(r"^([0-9]{1,2})(?:[.:h]([0-9]{1,2}))?\s*(am|pm)?$", re.IGNORECASE)
# Typical zone shorthands people type.


class AlertsPort(Protocol):
    caps: Caps

    async def assets(self) -> list[str]: ...

    async def create_rule(self, rule: AlertRule, now_ms: int) -> AlertRule: ...

    async def rules_of_chat(self, chat_key: str) -> list[tuple[AlertRule, RuleState]]: ...

    async def count_rules(self, chat_key: str, user_key: str) -> tuple[int, int]: ...

    async def remove_rule(self, chat_key: str, rule_id: int) -> bool: ...

    async def set_paused(self, chat_key: str, rule_id: int | None, paused: bool) -> list[int]: ...


class DigestsPort(Protocol):
    async def set_digest(self, chat_key: str, local_time: str, tz: str, locale: str, now_ms: int) -> None: ...

    async def disable_digest(self, chat_key: str, now_ms: int) -> bool: ...

    async def digest(self, chat_key: str) -> DigestSchedule | None: ...

    async def preview(self, locale: str, now_ms: int, chat_key: str | None = None) -> Reply: ...

    async def set_digest_style(self, chat_key: str, style: str, now_ms: int) -> bool: ...

    async def set_digest_chart(self, chat_key: str, chart: bool, now_ms: int) -> bool: ...


class _Bad(Exception):
    """A sub-grammar error: a message key, its values, a suggestion."""

    def __init__(self, key: str, value: str = "", suggestion: str | None = None) -> None:
        super().__init__(key)
        self.key, self.value, self.suggestion = key, value, suggestion


def parse_amount(token: str) -> float | None:
    """"1M" -> 1e6, "500k", "2.5m", "$10M", "1000000"; None when not an amount."""
    match = _AMOUNT.match(token.replace(",", "").replace("_", ""))
    if not match:
        return None
    value = float(match.group(1)) * _SCALE[match.group(2).lower()]
    return value if value > 0 else None


def parse_share(token: str) -> float | None:
    """"80%" or "80" -> 0.8; a share must be above 50% (the heavier side) and at most 100%."""
    try:
        value = float(token.rstrip("%")) / 100
    except ValueError:
        return None
    return value if 0.5 < value <= 1 else None


def parse_level(token: str) -> RiskLevel | None:
    """"high", "HIGH", "高" -> RiskLevel.HIGH; None when not a risk level."""
    return LEVEL_WORDS.get(token.strip().lower())


def _level(token: str | None) -> RiskLevel:
    if token is None:
        raise _Bad("error.alert_incomplete")
    level = parse_level(token)
    if level is None:
        close = difflib.get_close_matches(token.strip().lower(), list(LEVEL_WORDS), n=1, cutoff=0.5)
        raise _Bad("error.alert_bad_level", token, close[0] if close else None)
    return level


def _amount(token: str | None) -> float:
    if token is None:
        raise _Bad("error.alert_incomplete")
    value = parse_amount(token)
    if value is None:
        raise _Bad("error.alert_bad_amount", token)
    if not MIN_THRESHOLD_USD <= value <= MAX_THRESHOLD_USD:
        raise _Bad("error.alert_amount_range", token)
    return value


def _window(token: str | None) -> int:
    if token is None:
        raise _Bad("error.alert_incomplete")
    window = parse_window(token)
    if window is None or not MIN_ALERT_WINDOW_MS <= window <= MAX_ALERT_WINDOW_MS:
        raise _Bad("error.alert_bad_window", token, "24h" if window and window > MAX_ALERT_WINDOW_MS else "1h")
    return window


def _asset(token: str | None, known: list[str], allow_any: bool) -> str | None:
    if token is None:
        raise _Bad("error.alert_incomplete")
    if allow_any and token.lower() in ("any", "all", "*"):
        return None
    pool = set(known) | WELL_KNOWN_ASSETS
    asset = normalize_asset(token, pool)
    if asset is None:
        raise _Bad("error.unknown_asset", token.upper(), suggest_asset(token, pool))
    return asset


def parse_rule(words: list[str], known_assets: list[str], chat_key: str, user_key: str) -> AlertRule:
    """The rule of `/alert big|total|skew|risk ...` (words after /alert). Raises _Bad."""
    kind, args = words[0].lower(), words[1:]

    def arg(i: int) -> str | None:
        return args[i] if i < len(args) else None

    if kind == "big":
        asset = _asset(arg(0), known_assets, allow_any=True)
        return AlertRule(0, chat_key, user_key, RuleKind.BIG, asset, _amount(arg(1)))
    if kind == "total":
        asset = _asset(arg(0), known_assets, allow_any=False)
        return AlertRule(0, chat_key, user_key, RuleKind.TOTAL, asset, _amount(arg(1)), _window(arg(2)))
    if kind == "risk":
        asset = _asset(arg(0), known_assets, allow_any=False)
        return risk_rule(0, chat_key, user_key, asset, _level(arg(1)))
    # skew ASSET PCT WINDOW [min] USD
    asset = _asset(arg(0), known_assets, allow_any=False)
    if arg(1) is None:
        raise _Bad("error.alert_incomplete")
    share = parse_share(arg(1))
    if share is None:
        raise _Bad("error.alert_bad_share", arg(1), "80%")
    window = _window(arg(2))
    rest = [w for w in args[3:] if w.lower() != "min"]
    minimum = _amount(rest[0] if rest else None)
    return AlertRule(0, chat_key, user_key, RuleKind.SKEW, asset, minimum, window, share)


def describe_rule(rule: AlertRule, locale: str) -> str:
    if rule.kind is RuleKind.RISK:
        return text(locale, "alert.rule_risk", asset=rule.asset, level=level_text(rule.level, locale))
    amount = fmt.usd(rule.threshold_usd, locale)
    if rule.kind is RuleKind.BIG:
        if rule.asset is None:
            return text(locale, "alert.rule_big_any", amount=amount)
        return text(locale, "alert.rule_big", asset=rule.asset, amount=amount)
    window = fmt.window_label(rule.window_ms, locale)
    if rule.kind is RuleKind.TOTAL:
        return text(locale, "alert.rule_total", asset=rule.asset, amount=amount, window=window)
    return text(locale, "alert.rule_skew", asset=rule.asset, amount=amount, window=window,
                share=fmt.share(rule.share, locale))


def _bad_reply(error: _Bad, locale: str, usage_key: str) -> Reply:
    values = {
        "value": error.value,
        "asset": error.value,
        "min": fmt.usd(MIN_THRESHOLD_USD, locale),
        "max": fmt.usd(MAX_THRESHOLD_USD, locale),
    }
    parts = [text(locale, error.key, **values)]
    if error.suggestion:
        parts.append(text(locale, "error.did_you_mean", suggestion=error.suggestion))
    parts.append(text(locale, usage_key))
    return message_reply("title.usage_error", locale, " ".join(parts), Tone.ERROR, ephemeral=True)


def _suggest(word: str, choices: tuple[str, ...], prefix: str) -> str | None:
    close = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.5)
    return f"{prefix} {close[0]}" if close else None


def _denied(locale: str) -> Reply:
    return message_reply("title.denied", locale, text(locale, "denied.body"), Tone.WARNING, ephemeral=True)


def _rule_id(token: str | None) -> int | None:
    if token is None:
        return None
    digits = token.lstrip("#")
    # isdigit() alone accepts superscripts (²) that int() refuses.
    if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_RULE_ID_DIGITS):
        raise _Bad("error.alert_bad_id", token)
    return int(digits)


async def _may_change(ctx: Context) -> bool:
    return not ctx.caller.is_group or await ctx.caller.is_admin()


def alert_handlers(
    alerts: AlertsPort | None = None, digests: DigestsPort | None = None
) -> dict[str, Handler]:
    """Handlers for the Dispatcher's `features`: "alert" and/or "digest"."""
    handlers: dict[str, Handler] = {}
    if alerts is not None:
        handlers["alert"] = _alert_handler(alerts)
    if digests is not None:
        handlers["digest"] = _digest_handler(digests)
    return handlers


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
                raise _Bad("error.alert_unknown", words[0], _suggest(words[0], ALERT_ACTIONS, "/alert"))
            if not await _may_change(ctx):
                return _denied(locale)
            if action == "remove":
                rule_id = _rule_id(words[1] if len(words) > 1 else None)
                if rule_id is None:
                    raise _Bad("error.alert_incomplete")
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
        except _Bad as error:
            return _bad_reply(error, locale, "alert.usage")
        over = cap_exceeded(port.caps, *await port.count_rules(caller.chat_key, caller.user_key))
        if over is not None:
            cap = port.caps.per_user if over == "user" else port.caps.per_chat
            return message_reply("title.alerts", locale, text(locale, f"alert.cap_{over}", cap=cap), Tone.WARNING,
                                 ephemeral=True)
        rule = await port.create_rule(rule, ctx.now_ms)
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
            item += " " + text(locale, "alert.paused_mark")
        items.append(line(item))
    return Reply(title=text(locale, "title.alerts"), blocks=(Bullets(tuple(items)),))


def _resolve_tz(token: str | None) -> str:
    if token is None:
        return DEFAULT_TZ
    zone = zone_named(token)
    if zone is not None:
        return zone
    raise _Bad("error.digest_bad_tz", token, tz_suggestion(token))


def _time_suggestion(token: str) -> str | None:
    """The time of day a loosely written one means (`8pm` -> `20:00`); None when it means none (`25:00`)."""
    match = _LOOSE_TIME.match(token.strip())
    if not match:
        return None
    hours, minutes, half = int(match.group(1)), int(match.group(2) or 0), (match.group(3) or "").lower()
    if half:
        if not 1 <= hours <= 12:
            return None
        hours = hours % 12 + (12 if half == "pm" else 0)
    return parse_local_time(f"{hours:02d}:{minutes:02d}")


def _digest_handler(port: DigestsPort) -> Callable[[Context], Awaitable[Reply]]:
    async def handle(ctx: Context) -> Reply:
        locale, chat_key = ctx.locale, ctx.caller.chat_key
        words = str(ctx.invocation.args.get("schedule") or "").split()
        action = words[0].lower() if words else "status"
        try:
            if action == "status":
                schedule = await port.digest(chat_key)
                if schedule is None or not schedule.enabled:
                    return message_reply("title.digest", locale, text(locale, "digest.status_off"))
                last = schedule.last_sent_local_date or text(locale, "digest.never")
                body = text(locale, "digest.status_on", time=schedule.local_time, tz=schedule.tz, last=last)
                body += " " + text(locale, "digest.status_chart_on" if schedule.chart else "digest.status_chart_off")
                body += " " + text(locale, f"digest.status_style_{schedule.style}")
                return message_reply("title.digest", locale, body)
            if action == "preview":
                return await port.preview(locale, ctx.now_ms, chat_key)
            if action not in DIGEST_ACTIONS:
                raise _Bad("error.digest_unknown", words[0], _suggest(words[0], DIGEST_ACTIONS, "/digest"))
            if not await _may_change(ctx):
                return _denied(locale)
            if action == "off":
                key = "digest.off" if await port.disable_digest(chat_key, ctx.now_ms) else "digest.off_none"
                return message_reply("title.digest", locale, text(locale, key))
            if action == "chart":
                switch = words[1].lower() if len(words) > 1 else ""
                if switch not in SWITCH_WORDS:
                    raise _Bad("error.digest_bad_chart", words[1] if len(words) > 1 else "",
                               _suggest(switch, tuple(SWITCH_WORDS), "/digest chart") if switch else None)
                if not await port.set_digest_chart(chat_key, SWITCH_WORDS[switch], ctx.now_ms):
                    return message_reply("title.digest", locale, text(locale, "digest.chart_none"), Tone.WARNING,
                                         ephemeral=True)
                return message_reply("title.digest", locale, text(locale, f"digest.chart_{switch}"))
            if action == "style":
                style = words[1].lower() if len(words) > 1 else ""
                if style not in DIGEST_STYLES:
                    raise _Bad("error.digest_bad_style", words[1] if len(words) > 1 else "",
                               _suggest(style, DIGEST_STYLES, "/digest style") if style else None)
                if not await port.set_digest_style(chat_key, style, ctx.now_ms):
                    return message_reply("title.digest", locale, text(locale, "digest.chart_none"), Tone.WARNING,
                                         ephemeral=True)
                return message_reply("title.digest", locale, text(locale, f"digest.style_{style}"))
            if len(words) < 2:
                raise _Bad("error.digest_bad_time", "", "08:00")
            local_time = parse_local_time(words[1])
            if local_time is None:
                raise _Bad("error.digest_bad_time", words[1], _time_suggestion(words[1]))
            tz = _resolve_tz(words[2] if len(words) > 2 else None)
        except _Bad as error:
            return _bad_reply(error, locale, "digest.usage")
        await port.set_digest(chat_key, local_time, tz, locale, ctx.now_ms)
        return message_reply("title.digest", locale, text(locale, "digest.on", time=local_time, tz=tz))

    return handle


__all__ = [
    "AlertsPort",
    "DigestsPort",
    "alert_handlers",
    "describe_rule",
    "parse_amount",
    "parse_level",
    "parse_rule",
    "parse_share",
]
