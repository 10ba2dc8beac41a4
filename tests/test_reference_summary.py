"""The design's reference long squeeze, end to end: venue frames -> replay ->
store -> /liq in the console, in English and Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import App
from bot.config import Config
from bot.services.ingest import replay
from tests.reference import END_MS, write_reference
from tests.support import ask


@pytest.fixture
async def reference_app(tmp_path):
    recording = tmp_path / "reference.jsonl"
    write_reference(recording)
    app = await App.open(Config(), db_path=tmp_path / "db.sqlite", clock_ms=lambda: END_MS)
    report = await replay(app.store, [recording])
    assert report.decode.bad_lines == 0 and report.decode.unpriced_events == 0
    try:
        yield app
    finally:
        await app.close()


async def test_btc_24h_reads_as_the_reference(reference_app):
    text = await ask(reference_app, "/liq BTC 24h")
    assert "BTC liquidations · last 24h" in text
    assert "$78.47M" in text
    assert "$62.19M (79.25%)" in text
    assert "$16.28M (20.75%)" in text
    assert "Long squeeze: longs were 79.25% of liquidations." in text


async def test_all_assets_table_total_and_insights(reference_app):
    text = await ask(reference_app, "/liq")
    assert "Total:  $145.18M" in text
    rows = [line.split() for line in text.splitlines() if line.split()[:1] in (["BTC"], ["ETH"], ["SOL"])]
    assert rows == [
        ["BTC", "$78.47M", "$62.19M", "$16.28M", "79.25%"],
        ["ETH", "$51.71M", "$36.36M", "$15.35M", "70.32%"],
        ["SOL", "$15.00M", "$13.85M", "$1.15M", "92.35%"],
    ]
    assert "BTC dominates: $78.47M" in text
    assert "Most one-sided: SOL, 92.35% longs" in text
    assert "Long squeeze" in text
    # Every venue contributed, and the coverage is complete (no caveat beyond the lower bound).
    for venue in ("Binance", "Bybit", "OKX"):
        assert f"\n{venue} " in text
    assert "Recording covers" not in text


async def test_the_same_in_chinese(reference_app):
    text = await ask(reference_app, "/lang zh", "/liq BTC 24h", "/liq")
    assert "BTC 爆仓 · 最近24小时" in text
    assert "7847万美元" in text
    assert "79.25%" in text
    assert "1.45亿美元" in text
    assert "BTC 爆仓最多" in text
    assert "最单边：SOL，多单占 92.35%" in text


async def test_replaying_the_same_recording_twice_changes_nothing(reference_app, tmp_path):
    before = await ask(reference_app, "/liq", "/big", "/status")
    recording = tmp_path / "reference.jsonl"
    report = await replay(reference_app.store, [recording])
    assert report.stored == 0 and report.duplicates == 24
    assert await ask(reference_app, "/liq", "/big", "/status") == before


async def test_a_window_longer_than_the_recording_says_how_much_it_covers(reference_app):
    text = await ask(reference_app, "/liq BTC 7d")
    assert "$78.47M" in text
    assert "Recording covers 1d of this 7d window (14.29%)" in text


README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("locale", ["en", "zh"])
async def test_the_readme_shows_the_real_reply(reference_app, locale):
    await reference_app.store.chats.set_locale("console:local", locale, END_MS)
    reply = (await ask(reference_app, "/liq")).strip()
    assert f"```\n{reply}\n```" in README
