"""/report: the write-up of a window, handed to the Dispatcher by the composition root."""

from __future__ import annotations

from typing import Protocol

from bot.commands.dispatch import Context, Handler
from bot.core.models import Window
from bot.core.report import WriteUp
from bot.replies.model import Reply
from bot.replies.report import report_reply


class ReportPort(Protocol):
    async def write_up(self, asset: str | None, window: Window, now_ms: int, tz: str | None = None) -> WriteUp: ...


def report_handlers(reports: ReportPort | None) -> dict[str, Handler]:
    """The /report handler; without a report service the command stays "not enabled".
    Times are in the chat's own zone (/tz; UTC otherwise)."""
    if reports is None:
        return {}

    async def report(ctx: Context) -> Reply:
        asset, window_ms = ctx.invocation.args["asset"], ctx.invocation.args["window"]
        write_up = await reports.write_up(asset, Window.trailing(window_ms, ctx.now_ms), ctx.now_ms, ctx.tz)
        return report_reply(write_up, ctx.locale, ctx.invocation.canonical())

    return {"report": report}
