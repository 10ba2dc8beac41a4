"""/tz: the chat's own clock. Every time liqbot shows a chat (/liq, /big,
/status, /report, charts, digests) is in the zone the chat chose; UTC until it
chooses. `/digest on HH:MM TZ` chooses it too."""

from __future__ import annotations

import difflib

from bot.commands.dispatch import Context, Handler, message_reply, usage_error_reply
from bot.commands.parse import UsageError
from bot.commands.ports import DataPort
from bot.commands.registry import find
from bot.core.digest import valid_tz
from bot.replies import numbers as fmt
from bot.replies.locales import text
from bot.replies.model import Reply

# Abbreviations people type, as the IANA zone liqbot stores.
TZ_ALIASES = {"CET": "Europe/Berlin", "CEST": "Europe/Berlin", "BEIJING": "Asia/Shanghai", "CST": "Asia/Shanghai",
              "HKT": "Asia/Hong_Kong", "SGT": "Asia/Singapore", "JST": "Asia/Tokyo", "GMT": "UTC", "Z": "UTC"}
RESETS = ("utc", "off", "reset")


def zone_named(token: str) -> str | None:
    """The IANA zone a typed name means (aliases and any letter case), None when none."""
    candidate = TZ_ALIASES.get(token.upper(), token)
    if valid_tz(candidate):
        return candidate
    from zoneinfo import available_timezones

    return {z.lower(): z for z in available_timezones()}.get(candidate.lower())


def tz_suggestion(token: str) -> str | None:
    from zoneinfo import available_timezones

    zones = {z.lower(): z for z in available_timezones()}
    close = difflib.get_close_matches(token.lower(), list(zones), n=1, cutoff=0.6)
    return zones[close[0]] if close else None


def clock_handlers(data: DataPort) -> dict[str, Handler]:
    """The /tz handler, over the chats' stored zones."""

    async def tz(ctx: Context) -> Reply:
        return await _tz(ctx, data)

    return {"tz": tz}


async def _tz(ctx: Context, data: DataPort) -> Reply:
    locale, chat_key = ctx.locale, ctx.caller.chat_key
    token = str(ctx.invocation.args.get("zone") or "").strip()
    if not token:
        if ctx.tz is None:
            return message_reply("title.tz", locale, text(locale, "tz.current_utc"))
        label = fmt.zone_label(ctx.zone, ctx.now_ms)
        return message_reply("title.tz", locale, text(locale, "tz.current", tz=ctx.tz, offset=label))
    if token.lower() in RESETS:
        await data.set_chat_timezone(chat_key, None, ctx.now_ms)
        return message_reply("title.tz", locale, text(locale, "tz.set_utc"))
    zone = zone_named(token)
    if zone is None or len(token) > 64:
        error = UsageError("error.digest_bad_tz", {"value": token[:64]}, find("tz"), tz_suggestion(token[:64]))
        return usage_error_reply(error, locale)
    if zone == "UTC":
        await data.set_chat_timezone(chat_key, None, ctx.now_ms)
        return message_reply("title.tz", locale, text(locale, "tz.set_utc"))
    await data.set_chat_timezone(chat_key, zone, ctx.now_ms)
    label = fmt.zone_label(fmt.zone(zone), ctx.now_ms)
    return message_reply("title.tz", locale, text(locale, "tz.set", tz=zone, offset=label))
