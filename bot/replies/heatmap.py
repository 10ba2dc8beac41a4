"""/heatmap: the estimated liquidation bands of one asset over time as a price x
time heatmap (brighter = more USD would be liquidated there), with the mark
price as a line and the liquidations liqbot recorded as dots sized by USD, so
the picture shows the estimate and how reality met it.

Pure: data in, bytes out, like `bot.replies.charts` (whose figure, theme and
axis helpers it shares).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

from bot.core.levels import LevelBook
from bot.core.models import DAY_MS, LiquidationEvent, Side
from bot.replies import numbers as fmt
from bot.replies.charts import (
    FONT_SIZE,
    MAX_PRICE_POINTS,
    THEMES,
    TITLE_SIZE,
    axis_label,
    draw_legend,
    mpl,
    new_figure,
    png_bytes,
    style_axes,
    thin,
    until_label,
    usd_axis,
    utc_datetime,
)
from bot.replies.levels import model_note
from bot.replies.locales import text
from bot.replies.model import Action, Image, Paragraph, Reply, Tone, line
from bot.replies.numbers import Locale

PRICE_ROWS = 160
PRICE_MARGIN = 0.03  # of the price range: room above and below the line and the dots
MAX_DOT_AREA = 700.0  # points^2 of the largest order's dot
COLORMAP = "inferno"


def _rows(columns: Sequence[tuple[int, LevelBook]], prices: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """The price range drawn: the bands' grids, clipped to 25 % around the prices seen."""
    low = min(book.low for _, book in columns)
    high = max(book.high for _, book in columns)
    if prices:
        seen_low, seen_high = min(p for _, p in prices), max(p for _, p in prices)
        low, high = max(low, seen_low * 0.75), min(high, seen_high * 1.25)
    margin = (high - low) * PRICE_MARGIN
    return low - margin, high + margin


def _intensity(columns: Sequence[tuple[int, LevelBook]], low: float, high: float) -> list[list[float]]:
    """USD per (price row, column): each book's buckets added to the row holding their middle."""
    height = (high - low) / PRICE_ROWS
    grid = [[0.0] * len(columns) for _ in range(PRICE_ROWS)]
    for column, (_, book) in enumerate(columns):
        width = book.width
        for index, usd in enumerate(a + b for a, b in zip(book.long_usd, book.short_usd)):
            mid = book.low + (index + 0.5) * width
            if usd > 0 and low <= mid < high:
                grid[min(PRICE_ROWS - 1, int((mid - low) / height))][column] += usd
    return grid


def heatmap_png(
    title: str,
    columns: Sequence[tuple[int, LevelBook]],
    end_ms: int,
    prices: Sequence[tuple[int, float]] = (),
    orders: Sequence[LiquidationEvent] = (),
    theme_name: str = "dark",
    tz: tzinfo | None = None,
    locale: Locale = "en",
) -> bytes:
    """One column per saved book (it holds until the next, the last until `end_ms`)."""
    m = mpl()
    theme = THEMES[theme_name]
    figure = new_figure(theme)
    axes = figure.add_subplot(1, 1, 1)
    style_axes(axes, theme)
    axes.grid(False)
    low, high = _rows(columns, prices)
    edges_x = [m.dates.date2num(utc_datetime(at_ms)) for at_ms, _ in columns]
    edges_x.append(m.dates.date2num(utc_datetime(end_ms)))
    edges_y = [low + (high - low) * row / PRICE_ROWS for row in range(PRICE_ROWS + 1)]
    grid = _intensity(columns, low, high)
    peak = max((max(row) for row in grid), default=0.0)
    mesh = axes.pcolormesh(
        edges_x, edges_y, grid, cmap=COLORMAP, shading="flat",
        norm=m.colors.PowerNorm(0.5, vmin=0, vmax=peak or 1.0),
    )
    colorbar = figure.colorbar(mesh, ax=axes, pad=0.01, format=m.FuncFormatter(usd_axis(locale)))
    colorbar.ax.tick_params(colors=theme.text, labelsize=FONT_SIZE - 6)
    colorbar.set_label(text(locale, "heatmap.scale"), color=theme.text, fontsize=FONT_SIZE - 4)
    if prices:
        shown = thin(prices, MAX_PRICE_POINTS)
        axes.plot([m.dates.date2num(utc_datetime(at)) for at, _ in shown], [p for _, p in shown],
                  color=theme.price, linewidth=2.5, label=text(locale, "chart.mark_price"), zorder=6)
    largest = max((o.notional_usd for o in orders), default=0.0)
    for side, color, key in ((Side.LONG, theme.longs, "heatmap.longs"), (Side.SHORT, theme.shorts, "heatmap.shorts")):
        mine = [o for o in orders if o.liquidated is side and low <= o.price <= high]
        if mine:
            axes.scatter(
                [m.dates.date2num(utc_datetime(o.at_ms)) for o in mine], [o.price for o in mine],
                s=[max(6.0, MAX_DOT_AREA * math.sqrt(o.notional_usd / largest)) for o in mine],
                color=color, alpha=0.6, edgecolors=theme.text, linewidths=0.6, label=text(locale, key), zorder=5,
            )
    zone = tz or UTC
    span_ms = end_ms - columns[0][0]
    axes.xaxis.set_major_locator(m.dates.AutoDateLocator(minticks=3, maxticks=7, tz=zone))
    axes.xaxis.set_major_formatter(m.dates.DateFormatter("%H:%M" if span_ms <= 2 * DAY_MS else "%m-%d", tz=zone))
    axes.set_xlim(edges_x[0], edges_x[-1])
    axes.set_ylim(low, high)
    axes.yaxis.set_major_formatter(m.FuncFormatter(lambda value, _p=None: fmt.price(float(value), high)))
    axes.set_xlabel(axis_label(tz, end_ms), color=theme.text, fontsize=FONT_SIZE)
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        draw_legend(axes, handles, labels, "upper left", theme)
    axes.set_title(title, color=theme.text, fontsize=TITLE_SIZE - 4, loc="left", pad=14)
    figure.tight_layout()
    return png_bytes(figure)


def heatmap_title(asset: str, window_ms: int, end_ms: int, tz: tzinfo | None, locale: Locale) -> str:
    return text(locale, "heatmap.image_title", asset=asset, window=fmt.window_label(window_ms, locale),
                end=until_label(end_ms, tz))


def heatmap_filename(asset: str, window_ms: int, end_ms: int, tz: tzinfo | None) -> str:
    stamp = f"{datetime.fromtimestamp(end_ms / 1000, tz or UTC):%Y%m%d-%H%M}"
    return f"liqbot-heatmap-{asset.lower()}-{fmt.window_label(window_ms, 'en')}-{stamp}.png"


def heatmap_reply(
    asset: str, window_ms: int, image: Image | None, locale: Locale, refresh_command: str,
    leverage: tuple[float, float],
) -> Reply:
    """The caption: how to read the picture; without an image, what the estimate needs."""
    title = text(locale, "heatmap.title", asset=asset, window=fmt.window_label(window_ms, locale))
    actions = (Action(text(locale, "action.refresh"), refresh_command),)
    if image is None:
        return Reply(title=title, blocks=(Paragraph(line(text(locale, "levels.none", asset=asset))),),
                     tone=Tone.NEUTRAL, actions=actions)
    blocks = (Paragraph(line(text(locale, "heatmap.legend"))), model_note(leverage, locale))
    return Reply(title=title, blocks=blocks, tone=Tone.NEUTRAL, actions=actions, image=image)
