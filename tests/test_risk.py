"""Leverage risk: each rule and its boundary, the levels, missing and stale data,
a synthetic market walking elevated -> extreme -> low, the service over a real
store, and /risk through the console in both locales."""

from __future__ import annotations

import io

import pytest

from bot.adapters.console import run_console
from bot.commands.dispatch import Dispatcher
from bot.commands.risk import risk_handlers
from bot.config import ConfigError, RiskConfig, parse_config
from bot.core.market import MarketSample, annualised_funding, points
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, LiquidationEvent, Side, Window
from bot.core.risk import RiskLevel, RiskThresholds, VenueMarket, assess, level_of
from bot.core.summary import Breakdown, RecordedSpan, SideTotal, summarize
from bot.replies.render_plain import render_plain
from bot.replies.risk import risk_note, risk_reply
from bot.services.queries import QueryService
from bot.services.risk import RiskService
from bot.storage.market_store import MarketStore

NOW = 1_750_000_000_000 - 1_750_000_000_000 % MINUTE_MS
T = RiskThresholds()


def venue(
    name: str = "binance",
    now: int = NOW,
    funding: float | None = None,
    ratio: float | None = None,
    oi: dict[int, float] | None = None,
    price: dict[int, float] | None = None,
    age_ms: int = 0,
    funding_history=(),
    ratio_history=(),
    oi_history=(),
) -> VenueMarket:
    """A venue whose open interest / price were `value` `lookback` ms before now."""
    oi, price = oi or {}, price or {}
    latest = MarketSample(
        venue=name,
        asset="BTC",
        at_ms=now - age_ms,
        mark_price=price.get(0),
        funding_rate=funding,
        funding_interval_hours=8.0,
        open_interest_usd=oi.get(0),
        long_short_ratio=ratio,
    )
    return VenueMarket(
        venue=name,
        latest=latest,
        open_interest=sorted((now - back - age_ms, value) for back, value in oi.items()),
        mark_price=sorted((now - back - age_ms, value) for back, value in price.items()),
        funding_history=funding_history,
        long_short_history=ratio_history,
        open_interest_history=oi_history,
    )


def liquidations(now: int, long_usd: float, short_usd: float, preceding=(), covered=True):
    by_venue = [SideTotal("binance", side, usd, 10) for side, usd in ((Side.LONG, long_usd), (Side.SHORT, short_usd)) if usd]
    by_asset = [SideTotal("BTC", row.liquidated, row.usd, row.events) for row in by_venue]
    spans = [RecordedSpan("binance", "usdm", now - 30 * DAY_MS, now)] if covered else []
    return summarize("BTC", Window.trailing(DAY_MS, now), Breakdown(tuple(by_venue), tuple(by_asset)), None, spans, preceding)


def keys(report) -> list[str]:
    return [reason.key for reason in report.reasons]


def rate_for(annual: float) -> float:
    return annual / 1095  # per 8 h


# -- levels -----------------------------------------------------------------


@pytest.mark.parametrize(
    "score, level",
    [(0, "low"), (1, "low"), (2, "elevated"), (3, "elevated"), (4, "high"), (5, "high"), (6, "extreme"), (9, "extreme")],
)
def test_level_boundaries(score, level):
    assert level_of(score, T) is RiskLevel(level)


def test_levels_follow_the_config():
    config = parse_config("[risk]\nelevated_at = 1\nhigh_at = 2\nextreme_at = 3\n")
    assert level_of(1, config.risk) is RiskLevel.ELEVATED and level_of(3, config.risk) is RiskLevel.EXTREME
    with pytest.raises(ConfigError, match="risk.high_at"):
        parse_config("[risk]\nhigh_at = 9\n")
    with pytest.raises(ConfigError, match="risk.funding_high_annual"):
        parse_config("[risk]\nfunding_high_annual = -1\n")
    assert isinstance(RiskConfig(), RiskThresholds)


# -- each rule at its boundary ----------------------------------------------


@pytest.mark.parametrize(
    "annual, expected, points",
    [
        (0.1999, [], 0),
        (0.2001, ["funding_high_long"], 1),
        (0.4999, ["funding_high_long"], 1),
        (0.5001, ["funding_extreme_long"], 2),
        (-0.2001, ["funding_high_short"], 1),
        (-0.5001, ["funding_extreme_short"], 2),
    ],
)
def test_funding_rule(annual, expected, points):
    history = [annualised_funding(rate_for(a), 8) for a in (0.05, 0.1, 0.15, 0.3)]
    report = assess("BTC", [venue(funding=rate_for(annual), funding_history=history)], None, T, NOW)
    assert keys(report) == expected and report.score == points
    assert report.funding[0].annualised == pytest.approx(annual)
    if expected:
        assert report.reasons[0].number("funding_annual") == pytest.approx(annual)
        assert report.reasons[0].number("percentile") == report.funding[0].percentile


def test_funding_is_averaged_over_venues_with_each_percentile():
    report = assess(
        "BTC",
        [
            venue("binance", funding=rate_for(0.30), funding_history=[0.1, 0.2, 0.3, 0.4]),
            venue("bybit", funding=rate_for(0.12)),
        ],
        None,
        T,
        NOW,
    )
    assert keys(report) == ["funding_high_long"]  # mean 21 %/yr
    assert report.reasons[0].number("funding_annual") == pytest.approx(0.21)
    assert report.reasons[0].number("percentile") == 75.0  # of the strongest venue (binance)
    assert [f.percentile for f in report.funding] == [75.0, None]


@pytest.mark.parametrize(
    "ratio, expected",
    [
        (1.99, []),
        (2.0, ["crowded_long"]),
        (2.99, ["crowded_long"]),
        (3.0, ["crowded_extreme_long"]),
        (0.51, []),
        (0.5, ["crowded_short"]),
        (0.3333, ["crowded_extreme_short"]),
    ],
)
def test_long_short_rule(ratio, expected):
    report = assess("BTC", [venue(ratio=ratio, ratio_history=[1.0, 1.5, 2.5])], None, T, NOW)
    assert keys(report) == expected
    assert report.long_short[0].percentile == pytest.approx(100 * sum(h <= ratio for h in (1.0, 1.5, 2.5)) / 3)


@pytest.mark.parametrize(
    "oi_then, price_then, expected, points",
    [
        (10e9 / 1.0999, 100 / 1.01, [], 0),  # OI +9.99 %
        (10e9 / 1.1, 100 / 1.0199, ["oi_building"], 2),  # OI +10 %, price +1.99 %: leverage building
        (10e9 / 1.1, 100 / 0.9801, ["oi_building"], 2),  # price -1.99 %
        (10e9 / 1.1, 100 / 1.02, ["oi_rising_with_price"], 1),  # price +2 %: trend-following
        (10e9 / 0.8999, 100 / 0.95, ["flushed"], 0),  # OI -10.01 %: flushed (-2, the score floors at 0)
        (10e9 / 0.9001, 100 / 0.95, [], 0),  # OI -9.99 %
    ],
)
def test_open_interest_against_price_24h(oi_then, price_then, expected, points):
    v = venue(oi={0: 10e9, HOUR_MS: 10e9, DAY_MS: oi_then}, price={0: 100.0, HOUR_MS: 100.0, DAY_MS: price_then})
    report = assess("BTC", [v], None, T, NOW)
    assert keys(report) == expected and report.score == points
    if expected:
        assert report.reasons[0].number("oi_change") == pytest.approx(report.open_interest.change_24h)
        assert report.reasons[0].number("oi_usd") == 10e9


def test_oi_rising_without_a_price_counts_the_smaller():
    report = assess("BTC", [venue(oi={0: 11e9, DAY_MS: 10e9})], None, T, NOW)
    assert keys(report) == ["oi_rising"] and report.score == 1 and "price" in report.missing


@pytest.mark.parametrize("then, expected", [(10e9 / 1.2499, []), (10e9 / 1.25, ["oi_build_7d"])])
def test_open_interest_seven_day_build_up(then, expected):
    report = assess("BTC", [venue(oi={0: 10e9, DAY_MS: 10e9, 7 * DAY_MS: then})], None, T, NOW)
    assert keys(report) == expected


@pytest.mark.parametrize("hour_ago, expected", [(10e9 / 0.951, []), (10e9 / 0.95, ["cascade"])])
def test_cascade_rule(hour_ago, expected):
    report = assess("BTC", [venue(oi={0: 10e9, HOUR_MS: hour_ago, DAY_MS: 10e9})], None, T, NOW)
    assert keys(report) == expected


def test_no_flush_credit_while_the_cascade_runs():
    v = venue(oi={0: 8e9, HOUR_MS: 9e9, DAY_MS: 10e9}, price={0: 90.0, HOUR_MS: 95.0, DAY_MS: 100.0})
    report = assess("BTC", [v], None, T, NOW)
    assert keys(report) == ["cascade"] and report.score == 2


def test_open_interest_is_summed_over_venues():
    a = venue("binance", oi={0: 6e9, DAY_MS: 5e9}, price={0: 100.0, DAY_MS: 100.0})
    b = venue("bybit", oi={0: 5e9, DAY_MS: 5e9}, price={0: 100.0, DAY_MS: 100.0})
    report = assess("BTC", [a, b], None, T, NOW)
    assert report.open_interest.usd == 11e9
    assert report.open_interest.change_24h == pytest.approx(0.10)
    assert keys(report) == ["oi_building"]


def test_open_interest_sits_against_each_venues_own_history():
    # Binance's 5B is its highest of the month (p100); Bybit's 2B sits at its median (p50).
    binance = venue("binance", oi={0: 5e9}, oi_history=[3e9, 4e9, 4.5e9, 4.8e9])
    bybit = venue("bybit", oi={0: 2e9}, oi_history=[1e9, 1.5e9, 2.5e9, 3e9])
    report = assess("BTC", [binance, bybit], None, T, NOW)
    assert report.open_interest.percentile == 75.0
    assert "p75 of 30d" in render_plain(risk_reply(report, "en"))
    assert "30天分位 p75" in render_plain(risk_reply(report, "zh"))
    without_history = assess("BTC", [venue("binance", oi={0: 5e9})], None, T, NOW)
    assert without_history.open_interest.percentile is None


@pytest.mark.parametrize(
    "long_usd, short_usd, preceding, expected",
    [
        (79e6, 21e6, [10e6] * 7, []),  # 79 % longs
        (80e6, 20e6, [10e6] * 7, ["skew_long"]),  # 80 % at 10x the average
        (20e6, 80e6, [10e6] * 7, ["skew_short"]),
        (80e6, 20e6, [50.1e6] * 7, []),  # 1.996x the average: not heavy
        (80e6, 20e6, [50e6] * 7, ["skew_long"]),  # 2.0x
        (80e6, 20e6, [], ["skew_long"]),  # no history: the share alone
    ],
)
def test_liquidation_skew_rule(long_usd, short_usd, preceding, expected):
    summary = liquidations(NOW, long_usd, short_usd, preceding)
    report = assess("BTC", [venue(funding=0.0)], summary, T, NOW)
    assert keys(report) == expected
    assert report.liquidations.total_usd == long_usd + short_usd
    if expected:
        assert report.reasons[0].number("share") == pytest.approx(0.8)


# -- missing and stale data -------------------------------------------------


def test_no_market_data_at_all_is_unknown_not_low():
    report = assess("BTC", [], None, T, NOW)
    assert report.level is None
    assert set(report.missing) == {"funding", "long_short", "open_interest", "liquidations"}
    text = render_plain(risk_reply(report, "en"))
    assert "unknown" in text and "No market data for BTC yet" in text
    assert risk_note(report, "en") is None


def test_stale_venues_are_left_out_and_named():
    fresh = venue("bybit", funding=rate_for(0.25))
    stale = venue("binance", funding=rate_for(0.9), age_ms=11 * MINUTE_MS)
    report = assess("BTC", [fresh, stale], None, T, NOW)
    assert report.stale == (("binance", 11 * MINUTE_MS),)
    assert [f.venue for f in report.funding] == ["bybit"] and keys(report) == ["funding_high_long"]
    only_stale = assess("BTC", [stale], None, T, NOW)
    assert only_stale.level is None
    text = render_plain(risk_reply(report, "en"))
    assert "Left out, data too old: Binance (11m ago)" in text


def test_history_too_short_names_the_missing_change():
    report = assess("BTC", [venue(oi={0: 11e9, DAY_MS: 10e9}, price={0: 100.0, DAY_MS: 100.0})], None, T, NOW)
    assert {"oi_1h", "oi_7d", "liquidations"} <= set(report.missing)
    assert report.level is RiskLevel.ELEVATED
    text = render_plain(risk_reply(report, "en"))
    assert "open interest 7d change (history too short)" in text
    assert "1h n/a · 24h +10.0% · 7d n/a" in text


# -- a synthetic market walk ------------------------------------------------

DAY0 = NOW - 40 * DAY_MS
# (day, mark price, open interest USD, funding per 8 h, long/short ratio); linear in between.
KEYFRAMES = [
    (0.0, 100.0, 10.0e9, 0.0001, 1.2),
    (30.0, 100.0, 10.0e9, 0.0001, 1.2),  # a quiet month
    (31.0, 100.5, 11.5e9, 0.0002, 1.6),  # OI +15 % in a day, price flat: leverage building
    (31.5, 100.5, 12.0e9, 0.0005, 2.2),  # funding 55 %/yr, accounts crowded long
    (31.5 + 40 / 1440, 92.0, 11.0e9, 0.0005, 2.2),  # 40 minutes of cascade: price -8.5 %, OI -8 %
    (31.5 + 60 / 1440, 92.0, 11.0e9, 0.0005, 2.2),
    (32.0, 93.0, 10.25e9, 0.00005, 1.1),  # deleveraging goes on, funding resets
    (32.5, 94.0, 9.5e9, 0.00005, 1.1),
    (40.0, 94.0, 9.5e9, 0.00005, 1.1),
]
STEP_MS = 5 * MINUTE_MS


def _at(day: float):
    for (d0, *a), (d1, *b) in zip(KEYFRAMES, KEYFRAMES[1:]):
        if d0 <= day <= d1:
            f = (day - d0) / (d1 - d0)
            return [x + (y - x) * f for x, y in zip(a, b)]
    raise ValueError(day)


def synthetic_samples(venue_name: str, until_day: float) -> list[MarketSample]:
    samples = []
    for k in range(int(until_day * DAY_MS / STEP_MS) + 1):
        at = DAY0 + k * STEP_MS
        price, oi, funding, ratio = _at((at - DAY0) / DAY_MS)
        samples.append(MarketSample(venue_name, "BTC", at, price, funding, 8.0, oi, ratio))
    return samples


def market_at(day: float, venues=("binance", "bybit")) -> list[VenueMarket]:
    now = DAY0 + round(day * DAY_MS / STEP_MS) * STEP_MS
    found = []
    for name in venues:
        samples = [s for s in synthetic_samples(name, day) if s.at_ms <= now]
        month = [s for s in samples if s.at_ms > now - 30 * DAY_MS]
        found.append(
            VenueMarket(
                venue=name,
                latest=samples[-1],
                open_interest=points(samples, "open_interest_usd"),
                mark_price=points(samples, "mark_price"),
                funding_history=[s.annualised_funding for s in month],
                long_short_history=[s.long_short_ratio for s in month],
            )
        )
    return found


def test_the_market_walks_elevated_then_extreme_then_low():
    building_at = DAY0 + 31 * DAY_MS
    building = assess("BTC", market_at(31.0), liquidations(building_at, 6e6, 4e6, [10e6] * 7), T, building_at)
    assert building.level is RiskLevel.ELEVATED
    assert keys(building) == ["oi_building", "funding_high_long"]
    assert building.open_interest.change_24h == pytest.approx(0.15)
    assert building.open_interest.price_change_24h == pytest.approx(0.005)
    assert building.reasons[1].number("percentile") == 100.0  # the highest funding of the month

    cascade_day = 31.5 + 45 / 1440
    cascade_at = DAY0 + round(cascade_day * DAY_MS / STEP_MS) * STEP_MS
    cascade = assess("BTC", market_at(cascade_day), liquidations(cascade_at, 45e6, 5e6, [10e6] * 7), T, cascade_at)
    assert cascade.level is RiskLevel.EXTREME
    assert sorted(keys(cascade)) == sorted(["cascade", "funding_extreme_long", "crowded_long", "skew_long"])
    assert cascade.score == 6
    assert cascade.open_interest.change_1h == pytest.approx(11.0 / 12.0 - 1, abs=0.002)

    flush_at = DAY0 + round(32.6 * DAY_MS / STEP_MS) * STEP_MS
    flushed = assess("BTC", market_at(32.6), liquidations(flush_at, 8e6, 7e6, [20e6] * 7), T, flush_at)
    assert flushed.level is RiskLevel.LOW
    assert keys(flushed) == ["flushed"] and flushed.score == 0
    assert flushed.open_interest.change_24h < -0.10
    note = risk_note(flushed, "en")
    assert note.startswith("🟢 Leverage risk: low") and "flushed" not in note  # the credit is no headline
    assert "Leverage flushed: open interest -12.9% in 24h" in render_plain(risk_reply(flushed, "en"))
    zh = render_plain(risk_reply(cascade, "zh"))
    assert "BTC 杠杆风险：极高" in zh and "连环爆仓进行中" in zh


# -- the service over a store, and /risk in the console ---------------------


async def _seed(store, until_day: float) -> int:
    market = MarketStore(store)
    now = DAY0 + round(until_day * DAY_MS / STEP_MS) * STEP_MS
    for name in ("binance", "bybit"):
        await market.add_samples([s for s in synthetic_samples(name, until_day) if s.at_ms <= now])
    events = [
        LiquidationEvent("binance", "usdm", "BTCUSDT", "BTC", Side.LONG, 92.0, 1e5, 9.2e6, now - HOUR_MS - k * MINUTE_MS)
        for k in range(5)
    ] + [LiquidationEvent("bybit", "linear", "BTCUSDT", "BTC", Side.SHORT, 92.0, 1e4, 0.92e6, now - 2 * HOUR_MS)]
    await store.add_events(events)
    await store.add_span("binance", "usdm", now - 2 * DAY_MS, now)
    return now


async def test_the_service_reads_the_store_and_caches_per_minute(store):
    now = await _seed(store, 31.5 + 45 / 1440)
    service = RiskService(MarketStore(store), QueryService(store), RiskConfig())
    report = await service.report("BTC", now)
    assert report.level is RiskLevel.EXTREME
    assert "cascade" in keys(report) and "skew_long" in keys(report)
    assert report.liquidations.long_usd == pytest.approx(46e6)
    assert report.funding[0].percentile == 100.0
    assert await service.report("BTC", now + 30_000) is report  # same minute: cached
    assert await service.risk_level("BTC", now) is RiskLevel.EXTREME
    assert (await service.note("BTC", now, "zh")).startswith("🔴 杠杆风险：极高")
    assert (await service.report("ETH", now)).level is None


@pytest.mark.parametrize(
    "locale, expected",
    [
        ("en", ["BTC leverage risk: extreme", "Liquidation cascade under way", "Score 6", "Open interest:"]),
        ("zh", ["BTC 杠杆风险：极高", "连环爆仓进行中", "得分 6", "持仓量："]),
    ],
)
async def test_risk_through_the_console(store, locale, expected):
    now = await _seed(store, 31.5 + 45 / 1440)
    queries = QueryService(store)
    await queries.set_chat_locale("console:local", locale, now)
    service = RiskService(MarketStore(store), queries)
    dispatcher = Dispatcher(queries, lambda: now, features=risk_handlers(service, None))
    out = io.StringIO()
    await run_console(dispatcher, io.StringIO("/risk\n/risk ETH\n/chart\n"), out)
    text = out.getvalue()
    for piece in expected:
        assert piece in text
    assert "No market data for ETH" in text or "尚无 ETH 的市场数据" in text
    assert "/chart is not enabled" in text or "本机器人未启用 /chart" in text


async def test_liq_gets_a_one_line_risk_note(store):
    now = await _seed(store, 31.5 + 45 / 1440)
    queries = QueryService(store)
    service = RiskService(MarketStore(store), queries)
    dispatcher = Dispatcher(queries, lambda: now, features=risk_handlers(service, None), risk=service)
    out = io.StringIO()
    await run_console(dispatcher, io.StringIO("/liq BTC 24h\n/liq ETH 24h\n/liq\n"), out)
    replies = out.getvalue().split("BTC liquidations · last 24h")[1]
    assert replies.count("Leverage risk:") == 1  # BTC only: ETH has no market data, /liq is all assets
    assert "🔴 Leverage risk: extreme: Funding extreme" in replies
    assert replies.index("Leverage risk:") < replies.index("Venues throttle")  # above the footnotes


async def test_each_command_is_registered_once(store):
    queries = QueryService(store)
    service = RiskService(MarketStore(store), queries)
    with pytest.raises(RuntimeError, match="registered twice"):  # a second /liq never silently wins
        Dispatcher(queries, lambda: 0, features={**risk_handlers(service, None), "liq": risk_handlers(service, None)["risk"]})
