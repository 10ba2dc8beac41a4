"""/risk and /chart handlers, handed to the Dispatcher by the composition root.

Commands never import services: the handlers need only these small ports.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.commands.dispatch import Context, Handler
from bot.commands.ports import RiskPort
from bot.replies.model import Reply
from bot.replies.risk import risk_reply

log = logging.getLogger(__name__)

DEFAULT_RISK_ASSET = "BTC"  # /risk with no asset (or "all": risk is per asset)
CHART_TOP = "top"


class ChartPort(Protocol):
    async def chart(
        self, asset: str | None, window_ms: int, now_ms: int, locale: str, refresh_command: str, tz: str | None = None
    ) -> Reply: ...

    async def top(
        self, window_ms: int, now_ms: int, locale: str, refresh_command: str, tz: str | None = None
    ) -> Reply: ...


def risk_handlers(risk_service: RiskPort | None, chart_service: ChartPort | None) -> dict[str, Handler]:
    """Handlers for /risk and /chart; a missing service leaves its command "not enabled".
    Charts are drawn in the chat's own zone (/tz; UTC otherwise)."""
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
            if subject == CHART_TOP:
                return await chart_service.top(window_ms, ctx.now_ms, ctx.locale, refresh, ctx.tz)
            return await chart_service.chart(subject, window_ms, ctx.now_ms, ctx.locale, refresh, ctx.tz)

        handlers["chart"] = chart

    return handlers
