"""/risk and /chart handlers, handed to the Dispatcher by the composition root.

Commands never import services: the handlers need only these small ports.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Protocol

from bot.commands.dispatch import Context, Handler
from bot.commands.ports import DataPort
from bot.core.models import Window
from bot.core.risk import RiskReport
from bot.replies import compose
from bot.replies.model import Note, Paragraph, Reply, line
from bot.replies.risk import risk_note, risk_reply

log = logging.getLogger(__name__)

DEFAULT_RISK_ASSET = "BTC"  # /risk with no asset (or "all": risk is per asset)
CHART_TOP = "top"


class RiskPort(Protocol):
    async def report(self, asset: str, now_ms: int) -> RiskReport: ...


class ChartPort(Protocol):
    async def chart(
        self, asset: str | None, window_ms: int, now_ms: int, locale: str, refresh_command: str, tz: str | None = None
    ) -> Reply: ...

    async def top(
        self, window_ms: int, now_ms: int, locale: str, refresh_command: str, tz: str | None = None
    ) -> Reply: ...


class TimezonePort(Protocol):
    """A chat's own time zone (the one of its digest), None when it never set one."""

    async def chat_timezone(self, chat_key: str) -> str | None: ...


async def chat_tz(timezones: TimezonePort | None, chat_key: str) -> str | None:
    if timezones is None:
        return None
    try:
        return await timezones.chat_timezone(chat_key)
    except Exception:
        log.exception("time zone of %s failed; charting in UTC", chat_key)
        return None


def risk_handlers(
    risk_service: RiskPort | None, chart_service: ChartPort | None, timezones: TimezonePort | None = None
) -> dict[str, Handler]:
    """Handlers for /risk and /chart; a missing service leaves its command "not enabled".
    With `timezones`, a chat's charts are drawn in its own zone (UTC otherwise)."""
    handlers: dict[str, Handler] = {}

    if risk_service is not None:

        async def risk(ctx: Context) -> Reply:
            asset = ctx.invocation.args.get("asset") or DEFAULT_RISK_ASSET
            report = await risk_service.report(asset, ctx.now_ms)
            return risk_reply(report, ctx.locale, f"/risk {asset}")

        handlers["risk"] = risk

    if chart_service is not None:

        async def chart(ctx: Context) -> Reply:
            subject, window_ms = ctx.invocation.args.get("subject"), ctx.invocation.args["window"]
            refresh = ctx.invocation.canonical()
            tz = await chat_tz(timezones, ctx.caller.chat_key)
            if subject == CHART_TOP:
                return await chart_service.top(window_ms, ctx.now_ms, ctx.locale, refresh, tz)
            return await chart_service.chart(subject, window_ms, ctx.now_ms, ctx.locale, refresh, tz)

        handlers["chart"] = chart

    return handlers


def liq_with_risk_note(data: DataPort, risk_service: RiskPort) -> Handler:
    """A /liq handler that adds the one-line risk note to single-asset replies.

    Hand it to the Dispatcher as `features={"liq": ...}` (feature handlers
    replace built-ins of the same name). The note is left out, never an error,
    when there is no market data or the risk read fails.
    """

    async def liq(ctx: Context) -> Reply:
        asset, window_ms = ctx.invocation.args["asset"], ctx.invocation.args["window"]
        summary = await data.summary(asset, Window.trailing(window_ms, ctx.now_ms))
        reply = compose.summary_reply(summary, ctx.locale, ctx.invocation.canonical())
        if asset is None:
            return reply
        try:
            note = risk_note(await risk_service.report(asset, ctx.now_ms), ctx.locale)
        except Exception:
            log.exception("risk note for %s failed", asset)
            return reply
        if note is None:
            return reply
        blocks = list(reply.blocks)
        at = next((i for i, block in enumerate(blocks) if isinstance(block, Note)), len(blocks))
        blocks.insert(at, Paragraph(line(note)))
        return replace(reply, blocks=tuple(blocks))

    return liq
