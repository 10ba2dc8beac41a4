"""/report: the write-up of the design's reference long squeeze, with market
data that shows the price falling and open interest flushing, pinned whole in
English and Chinese; and the write-up's judgements on their own."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.config import Config
from bot.core.market import MarketSample
from bot.core.models import HOUR_MS, MINUTE_MS
from bot.core.report import Verdict, leverage_verdict, standings
from bot.core.risk import RiskThresholds
from bot.services.ingest import replay
from tests.reference import END_MS, START_MS, write_reference
from tests.support import ask, check_golden

BEFORE_MS = START_MS + 5 * HOUR_MS - 10 * MINUTE_MS  # ten minutes before the first order


def market_day() -> list[MarketSample]:
    """Every 5 minutes from 04:50 to 06:00: flat until the squeeze starts at
    05:00, then BTC falls from $100,000 to $92,000 and open interest from $30B
    to $26B by 05:50; at the end of the day open interest is $25.5B (-15 %)
    and funding has cooled from 0.03 % to 0.005 % every 8 h."""
    squeeze_ms = START_MS + 5 * HOUR_MS
    samples = []
    for venue, oi_share in (("binance", 0.6), ("bybit", 0.4)):
        for step in range(15):
            at_ms = BEFORE_MS + step * 5 * MINUTE_MS
            fall = min(1.0, max(0.0, (at_ms - squeeze_ms) / (50 * MINUTE_MS)))
            samples.append(MarketSample(
                venue, "BTC", at_ms, mark_price=100_000.0 - 8_000.0 * fall,
                funding_rate=0.0003 - 0.0002 * fall, funding_interval_hours=8,
                open_interest_usd=(30e9 - 4e9 * fall) * oi_share, long_short_ratio=2.4 - 0.8 * fall,
            ))
        samples.append(MarketSample(venue, "BTC", END_MS - MINUTE_MS, mark_price=93_500.0, funding_rate=0.00005,
                                    funding_interval_hours=8, open_interest_usd=25.5e9 * oi_share,
                                    long_short_ratio=1.3))
    return samples


@pytest.fixture
async def reference_app(tmp_path):
    recording = tmp_path / "reference.jsonl"
    write_reference(recording)
    app = await App.open(Config(), db_path=tmp_path / "db.sqlite", clock_ms=lambda: END_MS)
    await replay(app.store, [recording])
    await app.market_store.add_samples(market_day())
    try:
        yield app
    finally:
        await app.close()


@pytest.mark.parametrize("locale", ["en", "zh"])
async def test_the_reference_long_squeeze_write_up(reference_app, locale):
    text = await ask(reference_app, f"/lang {locale}", "/report")
    check_golden(f"report_{locale}.txt", text)
    if locale == "en":
        assert "Long squeeze: $145.18M liquidated in 24h" in text
        assert "BTC dominates: $78.47M" in text and "Most one-sided: SOL, 92.35% longs" in text
        assert "BTC -8.0% ($100,000 to $92,000)" in text
        assert "Verdict: leverage flushed." in text
        assert "-15.0%" in text
    else:
        assert "多头挤压：24小时爆仓1.45亿美元" in text
        assert "结论：杠杆已出清。" in text


async def test_times_follow_the_chats_zone(reference_app):
    await reference_app.digests.set_digest("console:local", "08:00", "Asia/Shanghai", "en", END_MS)
    text = await ask(reference_app, "/report BTC 24h")
    assert "UTC+8" in text and "UTC\n" not in text.split("Against history")[0].split("How it unfolded")[-1]


async def test_a_quiet_window_and_an_unknown_asset_still_answer(reference_app):
    text = await ask(reference_app, "/report BTC 1h", "/report XBT")
    assert "No liquidations recorded" in text or "liquidations" in text.lower()
    assert "Did you mean BTC?" in text


def test_verdicts_follow_the_risk_thresholds():
    t = RiskThresholds()
    assert leverage_verdict(-0.15, 0.05, t) is Verdict.FLUSHED
    assert leverage_verdict(-0.15, 0.30, t) is Verdict.PARTLY_FLUSHED  # OI gone, funding still high
    assert leverage_verdict(-0.07, 0.05, t) is Verdict.PARTLY_FLUSHED
    assert leverage_verdict(-0.02, 0.05, t) is Verdict.STILL_CROWDED  # OI barely moved
    assert leverage_verdict(-0.20, 0.60, t) is Verdict.STILL_CROWDED  # funding still extreme
    assert leverage_verdict(None, 0.05, t) is None


def test_standings_say_how_much_history_there_is():
    day = 24 * HOUR_MS
    month, quarter = standings(100.0, [50.0] * 10 + [200.0], day)
    assert (month.rank, month.windows, month.expected_windows, month.complete) == (2, 11, 30, False)
    assert quarter.period_days == 90 and quarter.windows == 11
    full = standings(100.0, [50.0] * 120, day)
    assert full[0].complete and full[0].windows == 30 and full[1].windows == 90 and full[1].rank == 1
    assert standings(100.0, [], day) == ()
