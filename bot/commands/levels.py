"""/levels, handed to the Dispatcher by the composition root (commands never import services)."""

from __future__ import annotations

from typing import Protocol

from bot.commands.dispatch import Context, Handler
from bot.commands.parse import ALL_ASSETS
from bot.core.levels import LevelsView
from bot.replies.levels import levels_reply
from bot.replies.model import Reply

DEFAULT_LEVELS_ASSET = "BTC"  # /levels alone, or /levels all: levels are per asset


class LevelsPort(Protocol):
    async def view(self, asset: str, now_ms: int) -> LevelsView: ...


def levels_handlers(levels: LevelsPort | None) -> dict[str, Handler]:
    """The /levels handler; without a service the command answers "not enabled"."""
    if levels is None:
        return {}

    async def show_levels(ctx: Context) -> Reply:
        asset = ctx.invocation.args.get("asset") or DEFAULT_LEVELS_ASSET
        if asset == ALL_ASSETS:
            asset = DEFAULT_LEVELS_ASSET
        view = await levels.view(asset, ctx.now_ms)
        return levels_reply(view, ctx.locale, ctx.tz, f"/levels {asset}")

    return {"levels": show_levels}
