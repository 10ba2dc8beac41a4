"""/chart: per-interval bars that add up to the summary, real PNGs that decode,
captions with the summary's totals, the per-minute cache, and /chart through
the console in both locales."""

from __future__ import annotations

import io
import random
import re
import warnings
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image as PILImage

from bot.adapters.console import run_console
from bot.commands.clock import clock_handlers
from bot.commands.dispatch import Dispatcher
from bot.commands.parse import UsageError, parse_command
from bot.commands.ports import Caller
from bot.commands.risk import risk_handlers
from bot.config import ConfigError, parse_config
from bot.core.market import MarketSample
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, LiquidationEvent, Side, Window
from bot.core.summary import Split
from bot.replies import charts
from bot.replies import numbers as fmt
from bot.replies.locales import MESSAGES
from bot.replies.model import Image
from bot.replies.render_plain import render_plain
from bot.services.charts import ChartService, step_for
from bot.services.queries import QueryService
from bot.storage.market_store import MarketStore
from bot.storage.series import Bar, grid, liquidation_bars

NOW = 1_750_000_000_000 + 37_123  # not on a minute: the edges come from raw events


def png_size(png: bytes) -> tuple[int, int]:
    with PILImage.open(io.BytesIO(png)) as picture:
        picture.load()  # decodes the whole image, not just the header
        assert picture.format == "PNG"
        return picture.size


async def seed(store, events_count: int = 400) -> None:
    rng = random.Random(7)
    events = []
    for k in range(events_count):
        asset = rng.choice(["BTC", "BTC", "ETH", "SOL"])
        at = NOW - rng.randrange(0, 2 * DAY_MS)
        side = Side.LONG if rng.random() < 0.7 else Side.SHORT
        usd = round(rng.uniform(1e3, 5e5), 2)
        events.append(LiquidationEvent("binance", "usdm", f"{asset}USDT", asset, side, 100.0, usd / 100, usd, at))
    # A few right at the window's edges (partial minutes).
    for at in (NOW - DAY_MS, NOW - DAY_MS + 1, NOW - 1, NOW):
        events.append(LiquidationEvent("bybit", "linear", "BTCUSDT", "BTC", Side.SHORT, 100.0, 1.0, 1234.56, at))
    await store.add_events(events)
    await store.add_span("binance", "usdm", NOW - 3 * DAY_MS, NOW + MINUTE_MS)
    market = MarketStore(store)
    await market.add_samples(
        [
            MarketSample("binance", "BTC", NOW - k * MINUTE_MS, mark_price=100 + (k % 90) / 10)
            for k in range(0, 2 * 24 * 60, 5)
        ]
    )


@pytest.mark.parametrize(
    "window_ms, step_ms",
    [(HOUR_MS, MINUTE_MS), (4 * HOUR_MS, 5 * MINUTE_MS), (DAY_MS, 30 * MINUTE_MS), (2 * DAY_MS, 2 * HOUR_MS),
     (7 * DAY_MS, 4 * HOUR_MS), (30 * DAY_MS, DAY_MS)],
)
def test_bar_width_keeps_30_to_60_bars(window_ms, step_ms):
    assert step_for(window_ms) == step_ms
    assert 12 <= len(grid(Window.trailing(window_ms, NOW), step_ms)) <= 61


@pytest.mark.parametrize("asset", ["BTC", None])
@pytest.mark.parametrize("window_ms", [HOUR_MS, DAY_MS, 2 * DAY_MS])
async def test_bars_add_up_to_the_summary(store, asset, window_ms):
    await seed(store)
    window = Window.trailing(window_ms, NOW)
    bars = await liquidation_bars(store, asset, window, step_for(window_ms))
    summary = await QueryService(store).summary(asset, window)
    assert bars[0].start_ms == window.start_ms and bars[-1].end_ms == window.end_ms
    assert all(a.end_ms == b.start_ms for a, b in zip(bars, bars[1:]))
    assert all(b.start_ms % step_for(window_ms) == 0 for b in bars[1:])  # on the UTC grid
    assert round(sum(b.long_usd for b in bars), 2) == summary.total.long_usd
    assert round(sum(b.short_usd for b in bars), 2) == summary.total.short_usd
    assert sum(b.events for b in bars) == summary.total.events


@pytest.mark.parametrize("theme", ["dark", "light"])
async def test_pngs_decode_at_phone_size(store, theme):
    await seed(store)
    window = Window.trailing(DAY_MS, NOW)
    bars = await liquidation_bars(store, "BTC", window, step_for(DAY_MS))
    prices = await MarketStore(store).points("BTC", "binance", "mark_price", window.start_ms, window.end_ms)
    series = charts.series_png(charts.chart_title("BTC", DAY_MS, NOW), bars, prices, theme)
    assert png_size(series) == (charts.WIDTH_PX, charts.HEIGHT_PX)
    summary = await QueryService(store).summary(None, window)
    top = charts.top_png(charts.top_title(DAY_MS, NOW), summary.by_asset, theme)
    assert png_size(top) == (charts.WIDTH_PX, charts.HEIGHT_PX)
    assert png_size(charts.series_png("empty", [], (), theme)) == (charts.WIDTH_PX, charts.HEIGHT_PX)
    assert png_size(charts.top_png("empty", [], theme)) == (charts.WIDTH_PX, charts.HEIGHT_PX)


def test_themes_differ_and_are_configured():
    assert charts.empty_png("dark") != charts.empty_png("light")
    assert parse_config('[charts]\ntheme = "light"\n').charts.theme == "light"
    with pytest.raises(ConfigError, match="charts.theme"):
        parse_config('[charts]\ntheme = "neon"\n')


async def test_caption_totals_match_the_summary(store):
    await seed(store)
    summary = await QueryService(store).summary("BTC", Window.trailing(DAY_MS, NOW))
    for locale in ("en", "zh"):
        reply = charts.chart_reply(summary, Image(b"png", "x.png"), locale, "/chart BTC 24h")
        text = render_plain(reply)
        assert fmt.usd(summary.total.total_usd, locale) in text
        assert fmt.usd(summary.total.long_usd, locale) in text
        assert fmt.usd(summary.total.short_usd, locale) in text
        assert reply.image.filename == "x.png"


async def test_charts_are_cached_per_minute(store):
    await seed(store)
    queries = QueryService(store)
    service = ChartService(store, queries, MarketStore(store), theme="light", cache_entries=4)
    first = await service.chart("BTC", DAY_MS, NOW, "en", "/chart BTC 24h")
    again = await service.chart("BTC", DAY_MS, NOW + 10_000, "en", "/chart BTC 24h")  # same minute
    assert service.renders == 1 and again.image is first.image
    chinese = await service.chart("BTC", DAY_MS, NOW + 10_000, "zh", "/chart BTC 24h")  # labels in zh
    assert service.renders == 2 and chinese.image.png != first.image.png
    summary = await queries.summary("BTC", Window.trailing(DAY_MS, NOW))
    assert fmt.usd(summary.total.total_usd, "zh") in render_plain(chinese)
    await service.chart("BTC", DAY_MS, NOW + MINUTE_MS, "en", "/chart BTC 24h")  # next minute
    await service.chart("ETH", DAY_MS, NOW, "en", "/chart ETH 24h")
    await service.top(DAY_MS, NOW, "en", "/chart top 24h")
    await service.top(DAY_MS, NOW + 5_000, "en", "/chart top 24h")
    assert service.renders == 5


def test_chinese_charts_draw_every_glyph():
    """zh labels come from the bundled CJK font subset: no tofu boxes, no missing-glyph warnings."""
    from matplotlib.ft2font import FT2Font

    font_path = files("bot").joinpath("data", "fonts", charts.CJK_FONT_FILE)
    covered = set(FT2Font(str(font_path)).get_charmap())
    drawn_keys = [key for key in MESSAGES["zh"] if key.startswith("chart.")] + ["scope.all"]
    needed = {ord(c) for key in drawn_keys for c in MESSAGES["zh"][key] if ord(c) > 0x2000}
    needed |= {ord(c) for c in fmt.usd(123_456_789, "zh") + fmt.window_label(4 * HOUR_MS, "zh")}
    assert needed - covered == set()
    bars = [Bar(NOW - HOUR_MS, NOW, 1_000_000.0, 250_000.0, 12)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = charts.series_png(charts.chart_title("BTC", HOUR_MS, NOW, None, "zh"), bars, [], "dark", None, "zh")
        charts.top_png(charts.top_title(DAY_MS, NOW, None, "zh"), [Split("BTC", 1e6, 2e5, 3)], "dark", "zh")
    assert [w for w in caught if "missing from font" in str(w.message)] == []
    assert png_size(png) == (charts.WIDTH_PX, charts.HEIGHT_PX)


def test_chart_arguments_share_the_grammar():
    known = ["BTC", "ETH"]
    assert parse_command("/chart top 4h", known).args == {"subject": "top", "window": 4 * HOUR_MS}
    assert parse_command("/chart 4h eth", known).args == {"subject": "ETH", "window": 4 * HOUR_MS}
    assert parse_command("/chart", known).args == {"subject": None, "window": DAY_MS}
    assert parse_command("/graph TOP", known).canonical() == "/chart top 24h"
    with pytest.raises(UsageError) as typo:
        parse_command("/chart tpo", known)
    assert typo.value.suggestion == "top"
    with pytest.raises(UsageError) as asset_typo:
        parse_command("/chart ETJ", known)
    assert asset_typo.value.suggestion == "ETH"
    with pytest.raises(UsageError):
        parse_command("/liq top", known)  # "top" is only a /chart word


@pytest.mark.parametrize(
    "locale, title, top_title",
    [("en", "BTC liquidations chart · last 4h", "Most liquidated chart · last 24h"),
     ("zh", "BTC 爆仓图 · 最近4小时", "爆仓排行图 · 最近24小时")],
)
async def test_chart_through_the_console(store, tmp_path, locale, title, top_title):
    await seed(store)
    queries = QueryService(store)
    await queries.set_chat_locale("console:local", locale, NOW)
    dispatcher = Dispatcher(
        queries, lambda: NOW, features=risk_handlers(None, ChartService(store, queries, MarketStore(store)))
    )
    out = io.StringIO()
    await run_console(dispatcher, io.StringIO("/chart BTC 4h\n/chart top\n"), out, image_dir=tmp_path / "images")
    text = out.getvalue()
    assert title in text and top_title in text
    saved = [Path(p) for p in re.findall(r"image saved: (\S+)", text)]
    assert len(saved) == 2 and all(p.parent == tmp_path / "images" for p in saved)
    assert all(png_size(p.read_bytes()) == (charts.WIDTH_PX, charts.HEIGHT_PX) for p in saved)
    summary = await queries.summary("BTC", Window.trailing(4 * HOUR_MS, NOW))
    assert fmt.usd(summary.total.total_usd, locale) in text


def test_a_zone_moves_the_title_times_and_labels_the_axis():
    shanghai = ZoneInfo("Asia/Shanghai")
    at = 1_742_515_200_000  # 2025-03-21 00:00 UTC, 08:00 in Shanghai
    assert charts.chart_title("BTC", DAY_MS, at).endswith("to 2025-03-21 00:00 UTC")
    assert charts.chart_title("BTC", DAY_MS, at, shanghai).endswith("to 2025-03-21 08:00 UTC+8")
    assert charts.top_title(DAY_MS, at, shanghai).endswith("08:00 UTC+8")
    assert charts.axis_label(None, at) == "UTC"
    assert charts.axis_label(shanghai, at) == "Asia/Shanghai (UTC+8)"
    assert charts.axis_label(ZoneInfo("Asia/Kolkata"), at) == "Asia/Kolkata (UTC+5:30)"
    assert charts.axis_label(ZoneInfo("America/Sao_Paulo"), at) == "America/Sao_Paulo (UTC-3)"
    assert charts.chart_filename("BTC", DAY_MS, at, shanghai) == "liqbot-btc-24h-20250321-0800.png"


async def test_a_chat_with_its_own_zone_gets_its_charts_in_that_zone(store, monkeypatch):
    await seed(store)
    drawn = []
    real_series_png = charts.series_png

    def spy(title, bars, prices=(), theme_name="dark", tz=None, locale="en", **kwargs):
        drawn.append((title, charts.axis_label(tz, NOW)))
        return real_series_png(title, bars, prices, theme_name, tz, locale, **kwargs)

    monkeypatch.setattr(charts, "series_png", spy)
    queries = QueryService(store)
    service = ChartService(store, queries, MarketStore(store))
    dispatcher = Dispatcher(queries, lambda: NOW, features={**risk_handlers(None, service), **clock_handlers(queries)})
    await dispatcher.handle("/tz Asia/Shanghai", Caller("telegram", "telegram:-100", "telegram:1"))
    shanghai = await dispatcher.handle("/chart BTC 4h", Caller("telegram", "telegram:-100", "telegram:1"))
    utc = await dispatcher.handle("/chart BTC 4h", Caller("telegram", "telegram:-200", "telegram:1"))
    assert service.renders == 2  # a different cache entry per zone
    assert shanghai.image is not utc.image and shanghai.image.png != utc.image.png
    (shanghai_title, shanghai_axis), (utc_title, utc_axis) = drawn
    assert shanghai_title.endswith("UTC+8") and shanghai_axis == "Asia/Shanghai (UTC+8)"
    assert utc_title.endswith(" UTC") and utc_axis == "UTC"
    again = await dispatcher.handle("/chart BTC 4h", Caller("telegram", "telegram:-100", "telegram:2"))
    assert again.image is shanghai.image and service.renders == 2
    assert png_size(shanghai.image.png) == (charts.WIDTH_PX, charts.HEIGHT_PX)


async def test_a_zone_gone_from_the_zone_database_charts_in_utc(store):
    await seed(store)
    queries = QueryService(store)
    service = ChartService(store, queries, MarketStore(store))
    await store.chats.set_timezone("telegram:-100", "Mars/Olympus", NOW)  # stored by an older liqbot, say
    dispatcher = Dispatcher(queries, lambda: NOW, features=risk_handlers(None, service))
    reply = await dispatcher.handle("/chart top", Caller("telegram", "telegram:-100", "telegram:1"))
    assert reply.image is not None and service.renders == 1


def drawn_texts(figure) -> list[str]:
    """Every piece of text a reader sees on a figure: labels, ticks, legends, notes."""
    texts = [t.get_text() for t in figure.findobj(lambda artist: hasattr(artist, "get_text"))]
    return [t for t in texts if t]


@pytest.mark.parametrize("locale, says", [("en", "No liquidations recorded"), ("zh", "没有记录到爆仓")])
def test_an_empty_window_says_so_instead_of_a_one_dollar_axis(locale, says):
    quiet = [Bar(NOW - HOUR_MS + k * MINUTE_MS, NOW - HOUR_MS + (k + 1) * MINUTE_MS, 0.0, 0.0, 0) for k in range(60)]
    texts = drawn_texts(charts.series_figure("BTC", quiet, (), "dark", None, locale))
    assert any(says in t for t in texts)
    assert not any("$1" in t or "1美元" in t for t in texts)


@pytest.mark.parametrize(
    "window_ms, locale, width",
    [(4 * HOUR_MS, "en", "5-minute bars"), (DAY_MS, "en", "30-minute bars"), (7 * DAY_MS, "en", "4-hour bars"),
     (4 * HOUR_MS, "zh", "每柱5分钟"), (7 * DAY_MS, "zh", "每柱4小时")],
)
async def test_the_axis_states_the_bar_width(store, window_ms, locale, width):
    await seed(store)
    bars = await liquidation_bars(store, "BTC", Window.trailing(window_ms, NOW), step_for(window_ms))
    figure = charts.series_figure("BTC", bars, (), "dark", None, locale)
    assert width in figure.axes[0].get_xlabel()


async def test_unrecorded_stretches_are_shaded_and_labelled(store):
    """The seeded store records from NOW - 3d; a 7-day chart has 4 days not recorded."""
    await seed(store)
    queries = QueryService(store)
    summary = await queries.summary("BTC", Window.trailing(7 * DAY_MS, NOW))
    assert summary.coverage.unrecorded == ((NOW - 7 * DAY_MS, NOW - 3 * DAY_MS),)
    bars = await liquidation_bars(store, "BTC", summary.window, step_for(7 * DAY_MS))
    for locale, label in (("en", "Not recorded"), ("zh", "未记录")):
        figure = charts.series_figure("BTC", bars, (), "dark", None, locale, unrecorded=summary.coverage.unrecorded)
        legend = figure.axes[0].get_legend()
        assert label in [t.get_text() for t in legend.get_texts()]
    fully_recorded = charts.series_figure("BTC", bars, (), "dark", None, "en")
    assert "Not recorded" not in [t.get_text() for t in fully_recorded.axes[0].get_legend().get_texts()]


def test_chinese_amount_axes_use_wan_and_yi():
    bars = [Bar(NOW - HOUR_MS, NOW, 250_000_000.0, 120_000_000.0, 12)]
    figure = charts.series_figure("BTC", bars, (), "dark", None, "zh")
    figure.canvas.draw()  # tick labels exist once drawn
    ticks = [t.get_text() for t in figure.axes[0].get_yticklabels() if t.get_text()]
    assert any("亿" in t for t in ticks) and not any("$" in t or "M" in t for t in ticks)


def test_the_font_cache_message_never_reaches_the_console(caplog):
    import logging

    charts.empty_png("dark")  # loads matplotlib the way the first /chart does
    logging.getLogger("matplotlib.font_manager").warning("Matplotlib is building the font cache; this may take a moment.")
    assert "font cache" not in caplog.text
