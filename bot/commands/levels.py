"""/levels and /heatmap, handed to the Dispatcher by the composition root (commands never import services)."""

from __future__ import annotations

from typing import Protocol

from bot.commands.dispatch import Context, Handler
from bot.commands.parse import ALL_ASSETS, format_window
from bot.core.levels import LevelsView
from bot.replies.levels import levels_reply
from bot.replies.model import Reply

DEFAULT_LEVELS_ASSET = "BTC"  # /levels alone, or /levels all: levels are per asset


class LevelsPort(Protocol):
    async def view(self, asset: str, now_ms: int) -> LevelsView: ...


class HeatmapPort(Protocol):
    async def heatmap(
        self, asset: str, window_ms: int, now_ms: int, locale: str, refresh_command: str, tz: str | None = None
    ) -> Reply: ...


def _asset(ctx: Context) -> str:
    asset = ctx.invocation.args.get("asset") or DEFAULT_LEVELS_ASSET
    return DEFAULT_LEVELS_ASSET if asset == ALL_ASSETS else asset


def levels_handlers(levels: LevelsPort | None, heatmaps: HeatmapPort | None) -> dict[str, Handler]:
    """/levels and /heatmap; without the levels service both answer "not enabled"."""
    if levels is None or heatmaps is None:
        return {}

    async def show_levels(ctx: Context) -> Reply:
        asset = _asset(ctx)
        return levels_reply(await levels.view(asset, ctx.now_ms), ctx.locale, ctx.tz, f"/levels {asset}")

    async def show_heatmap(ctx: Context) -> Reply:
        asset, window_ms = _asset(ctx), ctx.invocation.args["window"]
        refresh = f"/heatmap {asset} {format_window(window_ms)}"
        return await heatmaps.heatmap(asset, window_ms, ctx.now_ms, ctx.locale, refresh, ctx.tz)

    return {"levels": show_levels, "heatmap": show_heatmap}
