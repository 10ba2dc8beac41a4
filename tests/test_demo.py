"""`liqbot demo` as a new user runs it: the bundled sample day, with market data,
so every command shows something real."""

from __future__ import annotations

import asyncio
import gzip
import sys
from pathlib import Path

import pytest

from bot.cli import SAMPLE_RECORDING
from bot.config import MarketDataConfig
from bot.feeds.market_replay import MarketReplayer
from bot.feeds.recording import RecordingDecoder

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


async def test_the_sample_carries_mark_prices_for_the_chart_line():
    """A market poll of Binance and Bybit every 5 minutes, each pricing the tracked assets."""
    decoder = RecordingDecoder()
    with gzip.open(SAMPLE_RECORDING, "rb") as lines:
        for line in lines:
            decoder.feed(line)
    polls = decoder.take_market_polls(final=True)
    assert {poll.venue for poll in polls} == {"binance", "bybit"}
    assert len(polls) >= 2 * (24 * 60 // 5)
    replayer = MarketReplayer(MarketDataConfig().asset_list)
    for poll in polls[:: len(polls) // 20]:  # a sample of the polls through the real collectors
        prices = {s.asset: s.mark_price for s in await replayer.samples(poll)}
        assert 50_000 < prices["BTC"] < 150_000 and prices.keys() >= {"BTC", "ETH", "SOL"}


def test_the_report_tells_the_squeeze_with_its_price_move(demo_output):
    assert "image saved: " in demo_output
    report = demo_output.split("How it unfolded")[1]
    assert "BTC -" in report.split("\n")[2]  # the long squeeze's price drop, from the sample's mark prices
    assert "Verdict:" in report
