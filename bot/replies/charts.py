"""Charts as PNG bytes (matplotlib, Agg, no display), and their caption Replies.

Pure: data in, bytes out. Figures are built with `matplotlib.figure.Figure`
(no pyplot state), so rendering is safe in a worker thread.

- `series_png`: long vs short liquidations per interval as mirrored bars
  (longs up in red, shorts down in green) with the mark price as a line on a
  second axis when recorded.
- `top_png`: per-asset horizontal bars, each split into longs and shorts.

Sized for a phone (1280x800 px, large fonts), dark or light theme, time
axis and title times in a given zone (`tz`, a `zoneinfo` zone; UTC by
default), the axis labelled with the zone's name, UTC offset and bar width.
Ranges liqbot was not recording are shaded and labelled, so a quiet stretch
and a gap in the recording never look alike; a window without a single
liquidation says so instead of drawing an empty axis. Labels and amounts are
in the chart's locale (zh amounts in 万/亿).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Protocol

from functools import cache
from importlib.resources import files
from types import SimpleNamespace
from typing import TYPE_CHECKING

from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.core.summary import Split, Summary
from bot.replies import numbers as fmt
from bot.replies.compose import coverage_notes, tone_of
from bot.replies.locales import text
from bot.replies.model import Action, Field, Fields, Image, Reply, bold, line
from bot.replies.numbers import Locale

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@cache
def mpl() -> SimpleNamespace:
    """matplotlib, loaded on the first chart: importing it costs ~0.5 s of start-up."""
    # "Matplotlib is building the font cache" is a WARNING on the first run:
    # it would interrupt the console for something the user need not act on.
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    import matplotlib

    matplotlib.use("Agg")  # before anything else of matplotlib: never a display
    from matplotlib import colors, dates, font_manager
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    # Chinese labels: a subset of WenQuanYi Micro Hei (Apache-2.0) ships with the
    # package, so zh charts render on any machine. DejaVu draws Latin, WQY the rest.
    font_manager.fontManager.addfont(str(files("bot").joinpath("data", "fonts", CJK_FONT_FILE)))
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", "WenQuanYi Micro Hei"]
    return SimpleNamespace(colors=colors, dates=dates, FigureCanvasAgg=FigureCanvasAgg, Figure=Figure, FuncFormatter=FuncFormatter)

CJK_FONT_FILE = "wqy-microhei-subset.ttf"
WIDTH_PX, HEIGHT_PX, DPI = 1280, 800, 100
FONT_SIZE = 20
TITLE_SIZE = 26
MAX_PRICE_POINTS = 600
TOP_ASSETS_CHARTED = 10


@dataclass(frozen=True, slots=True)
class Theme:
    background: str
    text: str
    grid: str
    longs: str
    shorts: str
    price: str


THEMES = {
    "dark": Theme("#15171c", "#e8e8e8", "#3a3d45", "#ff5a5f", "#2ecc71", "#f5c542"),
    "light": Theme("#ffffff", "#1d1d1f", "#d9d9de", "#d62839", "#1a9e55", "#2b59c3"),
}


class BarLike(Protocol):
    start_ms: int
    end_ms: int
    long_usd: float
    short_usd: float


def utc_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _local(ms: int, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz or UTC)


def utc_offset(tz: tzinfo | None, at_ms: int) -> str:
    """The zone's offset at `at_ms` as people write it: "UTC", "UTC+8", "UTC+5:30", "UTC-3"."""
    offset = _local(at_ms, tz).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        return "UTC"
    sign, minutes = ("+" if minutes > 0 else "-"), abs(minutes)
    hours, rest = divmod(minutes, 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_name(tz: tzinfo | None) -> str:
    """The IANA name of a zoneinfo zone ("Asia/Shanghai"), "UTC" for none."""
    return "UTC" if tz is None else str(getattr(tz, "key", None) or tz)


def axis_label(tz: tzinfo | None, at_ms: int) -> str:
    """The time axis label: "UTC", or "Asia/Shanghai (UTC+8)"."""
    name, offset = zone_name(tz), utc_offset(tz, at_ms)
    return offset if name in ("UTC", offset) else f"{name} ({offset})"


def usd_axis(locale: Locale):
    def tick(value: float, _position=None) -> str:
        # Ticks arrive as numpy floats; "$20M" reads better than "$20.00M" on an axis.
        return fmt.usd(abs(float(value)), locale).replace(".00", "")

    return tick


_BAR_UNITS = ((DAY_MS, {"en": "day", "zh": "天"}), (HOUR_MS, {"en": "hour", "zh": "小时"}), (MINUTE_MS, {"en": "minute", "zh": "分钟"}))


def bar_width(width_ms: int, locale: Locale) -> str:
    """How long one bar is, as the axis states it: "5-minute" (zh "5分钟")."""
    for unit_ms, names in _BAR_UNITS:
        if width_ms >= unit_ms and width_ms % unit_ms == 0:
            count = width_ms // unit_ms
            return f"{count}-{names['en']}" if locale == "en" else f"{count}{names['zh']}"
    return fmt.duration(width_ms, locale)


def new_figure(theme: Theme) -> Figure:
    figure = mpl().Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor=theme.background)
    mpl().FigureCanvasAgg(figure)
    return figure


def style_axes(axes, theme: Theme) -> None:
    axes.set_facecolor(theme.background)
    axes.tick_params(colors=theme.text, labelsize=FONT_SIZE)
    for spine in axes.spines.values():
        spine.set_color(theme.grid)
    axes.grid(True, color=theme.grid, linewidth=0.8, alpha=0.8)
    axes.set_axisbelow(True)


def draw_legend(axes, handles, labels, where: str, theme: Theme) -> None:
    legend = axes.legend(
        handles, labels, loc=where, fontsize=FONT_SIZE - 4, framealpha=0.85,
        facecolor=theme.background, edgecolor=theme.grid,
    )
    legend.set_zorder(10)
    for label in legend.get_texts():
        label.set_color(theme.text)


def png_bytes(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor=figure.get_facecolor())
    return out.getvalue()


def thin(points: Sequence[tuple[int, float]], limit: int) -> Sequence[tuple[int, float]]:
    if len(points) <= limit:
        return points
    stride = -(-len(points) // limit)
    return [*points[::stride], points[-1]]


def _shade_unrecorded(axes, unrecorded: Sequence[tuple[int, int]], theme: Theme, locale: Locale) -> None:
    for index, (start_ms, end_ms) in enumerate(unrecorded):
        start = mpl().dates.date2num(utc_datetime(start_ms))
        axes.axvspan(
            start, mpl().dates.date2num(utc_datetime(end_ms)), color=theme.grid, alpha=0.45, linewidth=0,
            hatch="//", label=text(locale, "chart.not_recorded") if index == 0 else None, zorder=0,
        )


def _say_empty(axes, theme: Theme, locale: Locale) -> None:
    axes.set_yticks([])
    axes.text(
        0.5, 0.5, text(locale, "chart.no_liquidations"), transform=axes.transAxes,
        ha="center", va="center", color=theme.text, fontsize=TITLE_SIZE,
    )


def series_png(*args, **kwargs) -> bytes:
    """`series_figure` drawn as PNG bytes."""
    return png_bytes(series_figure(*args, **kwargs))


def series_figure(
    title: str,
    bars: Sequence[BarLike],
    prices: Sequence[tuple[int, float]] = (),
    theme_name: str = "dark",
    tz: tzinfo | None = None,
    locale: Locale = "en",
    *,
    unrecorded: Sequence[tuple[int, int]] = (),
) -> Figure:
    """Mirrored long/short bars per interval, with the mark price line if given;
    times on the axis in `tz` (UTC when None), labels in `locale`; the
    `unrecorded` (start_ms, end_ms) ranges shaded."""
    theme = THEMES[theme_name]
    figure = new_figure(theme)
    axes = figure.add_subplot(1, 1, 1)
    style_axes(axes, theme)
    starts = [mpl().dates.date2num(utc_datetime(b.start_ms)) for b in bars]
    widths = [mpl().dates.date2num(utc_datetime(b.end_ms)) - s for s, b in zip(starts, bars)]
    longs = [b.long_usd for b in bars]
    shorts = [-b.short_usd for b in bars]
    axes.bar(starts, longs, widths, align="edge", color=theme.longs, label=text(locale, "chart.longs_up"), linewidth=0)
    axes.bar(starts, shorts, widths, align="edge", color=theme.shorts, label=text(locale, "chart.shorts_down"), linewidth=0)
    axes.axhline(0, color=theme.text, linewidth=1)
    _shade_unrecorded(axes, unrecorded, theme, locale)
    peak = max([*longs, *(-s for s in shorts), 0.0])
    if peak > 0:
        axes.set_ylim(-peak * 1.15, peak * 1.15)
        axes.yaxis.set_major_formatter(mpl().FuncFormatter(usd_axis(locale)))
    else:
        _say_empty(axes, theme, locale)
    span_ms = (bars[-1].end_ms - bars[0].start_ms) if bars else DAY_MS
    zone = tz or UTC
    axes.xaxis.set_major_locator(mpl().dates.AutoDateLocator(minticks=3, maxticks=7, tz=zone))
    axes.xaxis.set_major_formatter(mpl().dates.DateFormatter("%H:%M" if span_ms <= 2 * DAY_MS else "%m-%d", tz=zone))
    if bars:
        axes.set_xlim(starts[0], starts[-1] + widths[-1])
    zone_label = axis_label(tz, bars[-1].end_ms if bars else 0)
    if bars:
        width_ms = max(b.end_ms - b.start_ms for b in bars)  # the edge bars may be partial
        zone_label = text(locale, "chart.axis", zone=zone_label, width=bar_width(width_ms, locale))
    axes.set_xlabel(zone_label, color=theme.text, fontsize=FONT_SIZE)
    handles, labels = axes.get_legend_handles_labels()
    if prices:
        shown = thin(prices, MAX_PRICE_POINTS)
        price_axes = axes.twinx()
        price_axes.tick_params(colors=theme.price, labelsize=FONT_SIZE)
        for spine in price_axes.spines.values():
            spine.set_visible(False)
        price_axes.plot(
            [mpl().dates.date2num(utc_datetime(at)) for at, _ in shown],
            [value for _, value in shown],
            color=theme.price,
            linewidth=2.5,
            label=text(locale, "chart.mark_price"),
        )
        price_axes.yaxis.set_major_formatter(mpl().FuncFormatter(lambda v, _p=None: fmt.price(float(v))))
        extra_handles, extra_labels = price_axes.get_legend_handles_labels()
        handles, labels = handles + extra_handles, labels + extra_labels
    draw_legend(price_axes if prices else axes, handles, labels, "upper left", theme)
    axes.set_title(title, color=theme.text, fontsize=TITLE_SIZE, loc="left", pad=14)
    figure.tight_layout()
    return figure


def top_png(title: str, splits: Sequence[Split], theme_name: str = "dark", locale: Locale = "en") -> bytes:
    """One horizontal bar per asset (largest on top), split into longs and shorts."""
    theme = THEMES[theme_name]
    figure = new_figure(theme)
    axes = figure.add_subplot(1, 1, 1)
    style_axes(axes, theme)
    shown = list(splits[:TOP_ASSETS_CHARTED])[::-1]
    names = [s.name for s in shown]
    longs = [s.long_usd for s in shown]
    shorts = [s.short_usd for s in shown]
    axes.barh(names, longs, height=0.6, color=theme.longs, label=text(locale, "chart.longs"))
    axes.barh(names, shorts, height=0.6, left=longs, color=theme.shorts, label=text(locale, "chart.shorts"))
    axes.set_ylim(len(shown) - max(len(shown), 3) - 0.4, len(shown) - 0.4)  # few assets: at the top
    for index, split in enumerate(shown):
        axes.text(
            split.total_usd, index, "  " + fmt.usd(split.total_usd, locale),
            va="center", color=theme.text, fontsize=FONT_SIZE - 2,
        )
    peak = max([s.total_usd for s in shown] + [1.0])
    axes.set_xlim(0, peak * 1.25)
    axes.xaxis.set_major_formatter(mpl().FuncFormatter(usd_axis(locale)))
    handles, labels = axes.get_legend_handles_labels()
    draw_legend(axes, handles, labels, "lower right", theme)
    axes.set_title(title, color=theme.text, fontsize=TITLE_SIZE, loc="left", pad=14)
    figure.tight_layout()
    return png_bytes(figure)


def empty_png(theme_name: str = "dark") -> bytes:
    """An empty figure of the same size: the benchmark's baseline."""
    return png_bytes(new_figure(THEMES[theme_name]))


def until_label(end_ms: int, tz: tzinfo | None) -> str:
    return f"{_local(end_ms, tz):%Y-%m-%d %H:%M} {utc_offset(tz, end_ms)}"


def chart_title(
    asset: str | None, window_ms: int, end_ms: int, tz: tzinfo | None = None, locale: Locale = "en"
) -> str:
    """The title drawn in a chart (the end time in `tz`, UTC when None)."""
    scope = asset or text(locale, "scope.all")
    window = fmt.window_label(window_ms, locale)
    return text(locale, "chart.image_title", scope=scope, window=window, end=until_label(end_ms, tz))


def top_title(window_ms: int, end_ms: int, tz: tzinfo | None = None, locale: Locale = "en") -> str:
    window = fmt.window_label(window_ms, locale)
    return text(locale, "chart.image_top_title", window=window, end=until_label(end_ms, tz))


def chart_filename(asset: str | None, window_ms: int, end_ms: int, tz: tzinfo | None = None) -> str:
    stamp = f"{_local(end_ms, tz):%Y%m%d-%H%M}"
    return f"liqbot-{(asset or 'all').lower()}-{fmt.window_label(window_ms, 'en')}-{stamp}.png"


def _caption_fields(split: Split, locale: Locale) -> Fields:
    def side(amount: float, share: float | None) -> str:
        if share is None:
            return fmt.usd(amount, locale)
        return text(locale, "value.side_amount", amount=fmt.usd(amount, locale), share=fmt.share(share, locale))

    return Fields(
        (
            Field(text(locale, "field.total"), line(bold(fmt.usd(split.total_usd, locale)))),
            Field(text(locale, "field.longs"), line(side(split.long_usd, split.long_share))),
            Field(text(locale, "field.shorts"), line(side(split.short_usd, split.short_share))),
        )
    )


def chart_reply(
    summary: Summary, image: Image, locale: Locale, refresh_command: str, tz: tzinfo | None = None
) -> Reply:
    """The caption of a `/chart ASSET` picture: the summary's totals, coverage notes."""
    window_text = fmt.window_label(summary.window.duration_ms, locale)
    scope = summary.asset or text(locale, "scope.all")
    return Reply(
        title=text(locale, "chart.title", scope=scope, window=window_text),
        blocks=(_caption_fields(summary.total, locale), *coverage_notes(summary, locale, tz or UTC)),
        tone=tone_of(summary.squeeze),
        actions=(Action(text(locale, "action.refresh"), refresh_command),),
        image=image,
    )


def top_chart_reply(
    summary: Summary, image: Image, locale: Locale, refresh_command: str, tz: tzinfo | None = None
) -> Reply:
    """The caption of a `/chart top` picture."""
    window_text = fmt.window_label(summary.window.duration_ms, locale)
    return Reply(
        title=text(locale, "chart.top_title", window=window_text),
        blocks=(_caption_fields(summary.total, locale), *coverage_notes(summary, locale, tz or UTC)),
        tone=tone_of(summary.squeeze),
        actions=(Action(text(locale, "action.refresh"), refresh_command),),
        image=image,
    )
