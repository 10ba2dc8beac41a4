"""`liqbot demo` as a new user runs it: the bundled sample day, with market data,
so every command shows something real."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.cli import SAMPLE_RECORDING
from bot.config import MarketDataConfig
from bot.core.models import DAY_MS, Window
from bot.services.ingest import replay
from bot.storage.market_store import MarketStore

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_output() -> str:
    async def run() -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "demo", cwd=PROJECT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        commands = b"/risk\n/risk ETH\n/chart BTC 24h\n/report\n"
        out, _ = await asyncio.wait_for(process.communicate(commands), timeout=120)
        assert process.returncode == 0, out.decode()
        return out.decode()

    return asyncio.run(run())


def test_the_banner_says_what_the_data_is_and_where_the_clock_stands(demo_output):
    banner = demo_output.split("\n\n")[0]
    assert "synthetic sample day" in banner and "not real market data" in banner
    assert "clock is pinned to the sample's end, 2025-03-21 23:59 UTC" in banner
    assert "market samples" in banner


def test_risk_has_every_measure_from_the_sample(demo_output):
    btc = demo_output.split("BTC leverage risk")[1].split("[🔄")[0]
    assert "unknown" not in btc.split("\n")[0]
    for measure in ("Funding:", "Binance +", "Bybit +", "Open interest:", "Mark price:", "Long/short accounts:"):
        assert measure in btc
    assert "ETH leverage risk" in demo_output


async def test_the_sample_carries_mark_prices_for_the_chart_line(store):
    await replay(store, [SAMPLE_RECORDING], market_assets=MarketDataConfig().asset_list)
    stats = await store.stats()
    day = Window(stats.last_at_ms + 1 - DAY_MS, stats.last_at_ms + 1)
    for venue in ("binance", "bybit"):
        prices = await MarketStore(store).points("BTC", venue, "mark_price", day.start_ms, day.end_ms)
        assert len(prices) >= 24 * 60 // 5 - 1  # a poll every 5 minutes
        assert all(50_000 < price < 150_000 for _, price in prices)


def test_the_report_tells_the_squeeze_with_its_price_move(demo_output):
    assert "image saved: " in demo_output
    report = demo_output.split("How it unfolded")[1]
    assert "BTC -" in report.split("\n")[2]  # the long squeeze's price drop, from the sample's mark prices
    assert "Verdict:" in report
