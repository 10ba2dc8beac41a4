"""/tz: a chat's own clock for every time it is shown, set by /tz or by /digest on."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.config import Config
from bot.core.models import DAY_MS, HOUR_MS
from tests.support import ask, liquidation

NOW = 1_742_515_200_000 + 12 * HOUR_MS  # 2025-03-21 12:00 UTC, 20:00 in Shanghai


@pytest.fixture
async def app(tmp_path):
    app = await App.open(Config(), db_path=tmp_path / "db.sqlite", clock_ms=lambda: NOW)
    await app.store.add_events([liquidation(NOW - HOUR_MS, 2_500_000.0), liquidation(NOW - 2 * HOUR_MS, 900_000.0)])
    await app.store.add_span("binance", "usdm", NOW - 2 * DAY_MS, NOW)
    try:
        yield app
    finally:
        await app.close()


async def test_tz_moves_every_time_the_chat_sees(app):
    before = await ask(app, "/liq BTC 24h", "/big BTC", "/status")
    assert "2025-03-21 11:00 UTC" in before and "Time (UTC)" in before
    said = await ask(app, "/tz Asia/Shanghai")
    assert "Times in this chat are now in Asia/Shanghai (UTC+8)" in said
    after = await ask(app, "/liq BTC 24h", "/big BTC", "/status", "/report BTC", "/tz")
    assert "2025-03-21 19:00 UTC+8" in after and "Time (UTC+8)" in after and "03-21 19:00" in after
    assert "2025-03-21 11:00 UTC" not in after
    assert "Times in this chat are in Asia/Shanghai (UTC+8)" in after
    reset = await ask(app, "/tz utc", "/liq BTC 24h")
    assert "Times in this chat are in UTC now." in reset and "2025-03-21 11:00 UTC" in reset


async def test_names_are_forgiving_and_mistakes_are_usage_replies(app):
    assert "Asia/Shanghai (UTC+8)" in await ask(app, "/tz asia/shanghai")
    assert "Asia/Shanghai (UTC+8)" in await ask(app, "/tz Beijing")
    typo = await ask(app, "/tz Asia/Shanghaii", "/tz America", "/lang zh", "/tz Mars/Base")
    assert "Did you mean Asia/Shanghai?" in typo
    assert "America is not a time zone I know" in typo
    assert "Mars/Base 不是已知时区" in typo
    assert "Something went wrong" not in typo


async def test_digest_on_sets_the_chat_clock(app):
    said = await ask(app, "/digest on 08:00 Europe/Berlin", "/liq BTC 24h")
    assert "2025-03-21 12:00 UTC+1" in said  # 11:00 UTC in Berlin (CET, before the March change)


@pytest.mark.parametrize(
    "locale, title, rows",
    [("en", "BTC liquidations · 1h to 24h", [["1h", "$2.50M"], ["4h", "$3.40M"], ["12h", "$3.40M"], ["24h", "$3.40M"]]),
     ("zh", "BTC 爆仓 · 1小时至24小时", [["1小时", "250万美元"], ["4小时", "340万美元"], ["12小时", "340万美元"],
                                       ["24小时", "340万美元"]])],
)
async def test_liq_asset_without_a_window_shows_four_windows_then_the_day(app, locale, title, rows):
    text = await ask(app, f"/lang {locale}", "/liq BTC")
    assert title in text
    table = [line.split()[:2] for line in text.splitlines() if line.split()[:1] in ([r[0]] for r in rows)]
    assert table == rows
    assert "/liq BTC]" in text  # refresh keeps the overview
    detail = await ask(app, "/liq BTC 24h")
    assert title not in detail  # a window typed: just that window
