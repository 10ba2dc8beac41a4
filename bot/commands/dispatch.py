"""From a command line and its Caller to a Reply: parsing, authorization, rate
limits, the handlers, and the usage errors. Every surface goes through here."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import tzinfo

from bot.commands.help import help_reply, start_reply
from bot.commands.parse import Invocation, UsageError, is_command_for, parse_command
from bot.commands.ports import Caller, DataPort, RiskPort
from bot.commands.registry import COMMANDS
from bot.core.models import HOUR_MS, Window
from bot.core.ratelimit import CommandGate, RateLimit, Refusal
from bot.plumbing.priority import foreground
from bot.replies import compose
from bot.replies import numbers as fmt
from bot.replies.locales import sentences, text
from bot.replies.model import Note, Paragraph, Reply, Tone, line
from bot.replies.risk import risk_note

log = logging.getLogger(__name__)

BIG_ORDERS_SHOWN = 10
OVERVIEW_WINDOWS_MS = (HOUR_MS, 4 * HOUR_MS, 12 * HOUR_MS)  # shown beside the default 24 h by `/liq ASSET`


@dataclass(frozen=True, slots=True)
class Limits:
    per_user: RateLimit = RateLimit(burst=5, per_minute=10)
    per_chat: RateLimit = RateLimit(burst=20, per_minute=30)


@dataclass(frozen=True, slots=True)
class Context:
    invocation: Invocation
    caller: Caller
    locale: str
    now_ms: int
    tz: str | None = None  # the chat's own zone (/tz); None: UTC

    @property
    def zone(self) -> tzinfo:
        return fmt.zone(self.tz)


# A command's implementation. Built-in ones live here; feature modules (alerts,
# digests, risk, charts) hand theirs to the Dispatcher from the composition root.
Handler = Callable[[Context], Awaitable[Reply]]


def message_reply(title_key: str, locale: str, body: str, tone: Tone = Tone.NEUTRAL, ephemeral: bool = False):
    return Reply(title=text(locale, title_key), blocks=(Paragraph(line(body)),), tone=tone, ephemeral=ephemeral)


def usage_error_reply(error: UsageError, locale: str) -> Reply:
    parts = [text(locale, error.key, **error.values)]
    if error.suggestion:
        parts.append(text(locale, "error.did_you_mean", suggestion=error.suggestion))
    if error.spec is not None:
        parts.append(text(locale, "error.usage", usage=error.spec.usage()))
    return message_reply("title.usage_error", locale, sentences(locale, parts), Tone.ERROR, ephemeral=True)


def with_risk_note(reply: Reply, note: str | None) -> Reply:
    """The note as a paragraph above the footnotes."""
    if note is None:
        return reply
    blocks = list(reply.blocks)
    at = next((i for i, block in enumerate(blocks) if isinstance(block, Note)), len(blocks))
    blocks.insert(at, Paragraph(line(note)))
    return replace(reply, blocks=tuple(blocks))


class Dispatcher:
    def __init__(
        self,
        data: DataPort,
        clock_ms: Callable[[], int],
        default_locale: str = "en",
        limits: Limits | None = None,
        features: Mapping[str, Handler] | None = None,
        risk: RiskPort | None = None,
        on_answered: Callable[[str, float, bool], None] | None = None,
        timer_s: Callable[[], float] = time.perf_counter,
    ) -> None:
        """`features`: the handlers of feature modules (alerts, digests, risk, charts);
        `risk`: with it, a /liq of one asset carries its one-line leverage risk note;
        `on_answered(command, seconds, failed)`: told of every command a handler answered,
        with the time it took by `timer_s` (for /metrics)."""
        self._data = data
        self._on_answered = on_answered
        self._timer_s = timer_s
        self._clock_ms = clock_ms
        self._default_locale = default_locale
        self._risk = risk
        self._gate = CommandGate(limits.per_user, limits.per_chat) if limits else None
        self._handlers: dict[str, Handler] = {
            "liq": self._liq,
            "top": self._top,
            "big": self._big,
            "status": self._status,
            "lang": self._lang,
            "help": self._help,
            "start": self._start,
        }
        twice = set(self._handlers) & set(features or {})
        if twice:  # one handler per command: a feature never silently replaces a built-in
            raise RuntimeError(f"commands registered twice: {sorted(twice)}")
        self._handlers.update(features or {})
        unknown = set(self._handlers) - {spec.name for spec in COMMANDS}
        if unknown:
            raise RuntimeError(f"handlers for commands not in the registry: {sorted(unknown)}")

    async def assets(self) -> list[str]:
        """Recorded assets, most liquidated first (for autocomplete and menus)."""
        with foreground():  # like every entry point here, a person is waiting
            return await self._data.assets()

    async def locale_for(self, chat_key: str) -> str:
        with foreground():
            return await self._data.chat_locale(chat_key) or self._default_locale

    async def handle(self, message: str, caller: Caller, bot_username: str | None = None) -> Reply | None:
        """The reply to a message, or None when it is not a command for this bot:
        `/cmd@name` is answered only when `name` is the `bot_username` the
        platform (the adapter) knows this bot by."""
        if not is_command_for(message, bot_username):
            return None
        # Before parsing, so a flood of typos costs as little as a flood of commands.
        refusal = self._refused(caller)
        if refusal is not None and not refusal.notify:
            return None  # told once this period already: dropped (and counted)
        with foreground():  # a person waits for this: its reads go ahead of background work
            return await self._answer(message, caller, refusal, bot_username)

    async def _answer(self, message: str, caller: Caller, refusal: Refusal | None, bot_username: str | None) -> Reply | None:
        locale = await self.locale_for(caller.chat_key)
        if refusal is not None:
            body = text(locale, "rate.body", seconds=math.ceil(refusal.wait_s))
            return message_reply("title.rate_limited", locale, body, Tone.WARNING, ephemeral=True)
        try:
            invocation = parse_command(message, await self._data.assets(), bot_username)
        except UsageError as error:
            return usage_error_reply(error, locale)
        if invocation is None:
            return None
        return await self.run(invocation, caller, locale)

    @property
    def dropped_commands(self) -> int:
        """Commands refused by the rate limits without a reply (the user was told once)."""
        return self._gate.dropped if self._gate else 0

    def _refused(self, caller: Caller) -> Refusal | None:
        if self._gate is None or not caller.rate_limited:
            return None
        refusal = self._gate.check(caller.user_key, caller.chat_key, self._clock_ms())
        if refusal is not None and refusal.notify:
            log.info("rate limit: %s in %s told to slow down (%d dropped so far)", caller.user_key,
                     caller.chat_key, self._gate.dropped)
        return refusal

    async def run(self, invocation: Invocation, caller: Caller, locale: str) -> Reply:
        now_ms = self._clock_ms()
        if invocation.spec.admin_only_in_groups and caller.is_group and not await caller.is_admin():
            return message_reply("title.denied", locale, text(locale, "denied.body"), Tone.WARNING, ephemeral=True)
        handler = self._handlers.get(invocation.spec.name)
        if handler is None:  # a feature this bot runs without (e.g. no market data)
            body = text(locale, "error.not_enabled", name=invocation.spec.name)
            return message_reply("title.usage_error", locale, body, Tone.WARNING, ephemeral=True)
        started_s = self._timer_s()
        try:
            tz = await self._data.chat_timezone(caller.chat_key)
            reply, failed = await handler(Context(invocation, caller, locale, now_ms, tz)), False
        except Exception:
            log.exception("command %s failed", invocation.spec.name)
            failed = True
            reply = message_reply("title.usage_error", locale, text(locale, "error.internal"), Tone.ERROR, True)
        if self._on_answered is not None:
            self._on_answered(invocation.spec.name, self._timer_s() - started_s, failed)
        return reply

    # -- handlers ---------------------------------------------------------

    async def _liq(self, ctx: Context) -> Reply:
        asset, window_ms = ctx.invocation.args["asset"], ctx.invocation.args["window"]
        summary = await self._data.summary(asset, Window.trailing(window_ms, ctx.now_ms))
        reply = compose.summary_reply(summary, ctx.locale, ctx.invocation.canonical(), ctx.zone)
        if asset is not None and "window" not in ctx.invocation.given:
            # `/liq BTC`: the windows traders compare first, then the 24 h detail.
            shorter = [
                await self._data.summary(asset, Window.trailing(ms, ctx.now_ms)) for ms in OVERVIEW_WINDOWS_MS
            ]
            reply = compose.with_overview(reply, [*shorter, summary], ctx.locale, f"/liq {asset}")
        if asset is None or self._risk is None:
            return reply
        return with_risk_note(reply, await self._risk_note(asset, ctx))

    async def _risk_note(self, asset: str, ctx: Context) -> str | None:
        """Left out, never an error, when there is no market data or the risk read fails."""
        try:
            return risk_note(await self._risk.report(asset, ctx.now_ms), ctx.locale)
        except Exception:
            log.exception("risk note for %s failed", asset)
            return None

    async def _top(self, ctx: Context) -> Reply:
        window_ms = ctx.invocation.args["window"]
        summary = await self._data.summary(None, Window.trailing(window_ms, ctx.now_ms))
        return compose.top_reply(summary, ctx.locale, ctx.invocation.canonical(), ctx.zone)

    async def _big(self, ctx: Context) -> Reply:
        asset, window_ms = ctx.invocation.args["asset"], ctx.invocation.args["window"]
        events = await self._data.largest(asset, Window.trailing(window_ms, ctx.now_ms), BIG_ORDERS_SHOWN)
        return compose.big_reply(events, asset, window_ms, ctx.locale, ctx.zone, self._data.silent_streams())

    async def _status(self, ctx: Context) -> Reply:
        return compose.status_reply(await self._data.status(ctx.now_ms), ctx.now_ms, ctx.locale, ctx.zone)

    async def _lang(self, ctx: Context) -> Reply:
        chosen = ctx.invocation.args["language"]
        if chosen is None:
            return message_reply("title.lang", ctx.locale, text(ctx.locale, "lang.current"))
        await self._data.set_chat_locale(ctx.caller.chat_key, chosen, ctx.now_ms)
        return message_reply("title.lang", chosen, text(chosen, "lang.set"))

    async def _help(self, ctx: Context) -> Reply:
        return help_reply(ctx.invocation.args["command"], ctx.locale)

    async def _start(self, ctx: Context) -> Reply:
        return start_reply(ctx.locale)

