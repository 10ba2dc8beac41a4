"""/digest: a chat's daily digest (on, off, status, preview, chart, style),
handed to the Dispatcher by the composition root."""

from __future__ import annotations

import re
from typing import Protocol

from bot.commands.clock import tz_suggestion, zone_named
from bot.commands.dispatch import Context, Handler, message_reply
from bot.commands.subgrammar import SubgrammarError, denied_reply, may_change, subgrammar_reply, suggest
from bot.core.digest import DigestSchedule, parse_local_time
from bot.replies.locales import sentences, text
from bot.replies.model import Reply, Tone

DIGEST_ACTIONS = ("on", "off", "status", "preview", "chart", "style")
DIGEST_STYLES = ("full", "brief")
SWITCH_WORDS = {"on": True, "off": False}
DEFAULT_TZ = "UTC"

# Times people type for a digest: 8, 8am, 8pm, 8.30, 8h30, 8:5.
_LOOSE_TIME = re.compile(r"^([0-9]{1,2})(?:[.:h]([0-9]{1,2}))?\s*(am|pm)?$", re.IGNORECASE)


class DigestsPort(Protocol):
    async def set_digest(self, chat_key: str, local_time: str, tz: str, locale: str, now_ms: int) -> None: ...

    async def disable_digest(self, chat_key: str, now_ms: int) -> bool: ...

    async def digest(self, chat_key: str) -> DigestSchedule | None: ...

    async def preview(self, locale: str, now_ms: int, chat_key: str | None = None) -> Reply: ...

    async def set_digest_style(self, chat_key: str, style: str, now_ms: int) -> bool: ...

    async def set_digest_chart(self, chat_key: str, chart: bool, now_ms: int) -> bool: ...


def digest_handlers(digests: DigestsPort | None) -> dict[str, Handler]:
    """The "digest" handler for the Dispatcher's `features` (none without a digest service)."""
    return {} if digests is None else {"digest": _digest_handler(digests)}


def _resolve_tz(token: str | None) -> str:
    if token is None:
        return DEFAULT_TZ
    zone = zone_named(token)
    if zone is not None:
        return zone
    raise SubgrammarError("error.digest_bad_tz", token, tz_suggestion(token))


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


def _digest_handler(port: DigestsPort) -> Handler:
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
                body = sentences(locale, (
                    text(locale, "digest.status_on", time=schedule.local_time, tz=schedule.tz, last=last),
                    text(locale, "digest.status_chart_on" if schedule.chart else "digest.status_chart_off"),
                    text(locale, f"digest.status_style_{schedule.style}"),
                ))
                return message_reply("title.digest", locale, body)
            if action == "preview":
                return await port.preview(locale, ctx.now_ms, chat_key)
            if action not in DIGEST_ACTIONS:
                raise SubgrammarError("error.digest_unknown", words[0], suggest(words[0], DIGEST_ACTIONS, "/digest"))
            if not await may_change(ctx):
                return denied_reply(locale)
            if action == "off":
                key = "digest.off" if await port.disable_digest(chat_key, ctx.now_ms) else "digest.off_none"
                return message_reply("title.digest", locale, text(locale, key))
            if action == "chart":
                switch = words[1].lower() if len(words) > 1 else ""
                if switch not in SWITCH_WORDS:
                    raise SubgrammarError("error.digest_bad_chart", words[1] if len(words) > 1 else "",
                               suggest(switch, tuple(SWITCH_WORDS), "/digest chart") if switch else None)
                if not await port.set_digest_chart(chat_key, SWITCH_WORDS[switch], ctx.now_ms):
                    return message_reply("title.digest", locale, text(locale, "digest.chart_none"), Tone.WARNING,
                                         ephemeral=True)
                return message_reply("title.digest", locale, text(locale, f"digest.chart_{switch}"))
            if action == "style":
                style = words[1].lower() if len(words) > 1 else ""
                if style not in DIGEST_STYLES:
                    raise SubgrammarError("error.digest_bad_style", words[1] if len(words) > 1 else "",
                               suggest(style, DIGEST_STYLES, "/digest style") if style else None)
                if not await port.set_digest_style(chat_key, style, ctx.now_ms):
                    return message_reply("title.digest", locale, text(locale, "digest.chart_none"), Tone.WARNING,
                                         ephemeral=True)
                return message_reply("title.digest", locale, text(locale, f"digest.style_{style}"))
            if len(words) < 2:
                raise SubgrammarError("error.digest_bad_time", "", "08:00")
            local_time = parse_local_time(words[1])
            if local_time is None:
                raise SubgrammarError("error.digest_bad_time", words[1], _time_suggestion(words[1]))
            tz = _resolve_tz(words[2] if len(words) > 2 else None)
        except SubgrammarError as error:
            return subgrammar_reply(error, locale, "digest.usage")
        await port.set_digest(chat_key, local_time, tz, locale, ctx.now_ms)
        return message_reply("title.digest", locale, text(locale, "digest.on", time=local_time, tz=tz))

    return handle
