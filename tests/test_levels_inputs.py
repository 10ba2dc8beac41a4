"""The levels model's feed-side inputs: klines with the taker split and the venues'
margin tiers. Parsers on the venues' documented shapes; a bar split by its taker
volume, by hand; the poller and the margin-tier reader against the fake market on
127.0.0.1 into /levels; and a recording of all of it replaying to the same /levels."""

from __future__ import annotations

import dataclasses

import pytest

from bot.app import App
from bot.config import ConfigError, LevelsConfig
from bot.core.bars import Kline, bars_from_samples
from bot.core.levels import Bar, LevelBook, LevelSettings, LeverageTier, venue_margin_rate
from bot.core.market import MarketSample
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Side
from bot.feeds.margin_tiers import MarginTierReader
from bot.feeds.market import MarketPoller, make_client
from bot.feeds.market_history import KLINE_SETTLE_MS
from bot.feeds.marketdata import MarketDataError, VenueError
from bot.feeds.recording import rest_line
from bot.feeds.venues import binance_levels, bybit_levels, gate_levels, margin_table, okx_levels
from bot.services.ingest import replay
from bot.storage.levels_inputs_store import KlineStore, MarginRateStore
from tests.fakes.market_http import PRICES, FakeMarket, FakeMarketVenues, Scripted
from tests.support import ask
from tests.test_market_poller import ASSETS, clock, make_config  # noqa: F401  (clock: the fixture)

BAR = 15 * MINUTE_MS
T = 1_764_633_600_000  # a bar's open


# -- parsers, on the venues' documented shapes ------------------------------------


def test_binance_klines_on_the_documented_example():
    body = [  # developers.binance.com, USD-M Kline/Candlestick Data, "Response Example"
        [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815", 1499644799999,
         "2434.19055334", 308, "1756.87402397", "28.46694368", "17928899.62484339"],
    ]
    (kline,) = binance_levels.parse_klines(body, "BTCUSDT")
    assert kline == Kline("binance", "BTC", 1499040000000, 1499644800000, 0.0163479, 0.8, 0.015758, 0.015771,
                          volume_usd=2434.19055334, taker_buy_usd=28.46694368)
    with pytest.raises(VenueError) as error:
        binance_levels.parse_klines({"code": -1003, "msg": "Too many requests"}, "BTCUSDT")
    assert error.value.rate_limited


def test_bybit_klines_on_the_documented_example():
    body = {  # bybit-exchange.github.io/docs/v5/market/kline, "Response Example" (its inverse symbol read as linear)
        "retCode": 0, "retMsg": "OK",
        "result": {"symbol": "BTCUSDT", "category": "linear", "list": [
            ["1670608800000", "17071", "17073", "17027", "17055.5", "268611", "15.74462667"],
            ["1670605200000", "17071.5", "17071.5", "17061", "17071", "4177", "0.24469757"]]},
        "retExtInfo": {}, "time": 1672025956592,
    }
    newest, older = bybit_levels.parse_klines(body, "BTCUSDT")
    assert newest == Kline("bybit", "BTC", 1670608800000, 1670608800000 + 5 * MINUTE_MS, 17071, 17073, 17027,
                           17055.5, volume_usd=15.74462667, taker_buy_usd=None)  # Bybit publishes no taker split
    assert older.open_ms == 1670605200000


def test_okx_klines_join_the_candles_with_the_contract_taker_volume():
    candles = {"code": "0", "msg": "", "data": [  # [ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm], as documented
        ["1597026300000", "3.721", "3.743", "3.677", "3.708", "8422410", "22698348.04828491", "12698348.04828491", "1"],
        ["1597026600000", "3.708", "3.75", "3.7", "3.74", "100", "200", "1000", "0"],  # not completed: left out
        ["1597026000000", "3.7", "3.73", "3.69", "3.721", "100", "200", "500", "1"]]}
    taker = {"code": "0", "msg": "", "data": [["1597026300000", "4000000", "6000000"]]}  # [ts, sellVol, buyVol]
    query = {"instId": "BTC-USDT-SWAP"}
    earlier, later = okx_levels.klines_of([(okx_levels.CANDLES_PATH, query, candles),
                                           (okx_levels.TAKER_VOLUME_PATH, query, taker)])
    assert later == Kline("okx", "BTC", 1597026300000, 1597026600000, 3.721, 3.743, 3.677, 3.708,
                          volume_usd=12698348.04828491, taker_buy_usd=pytest.approx(12698348.04828491 * 0.6))
    assert earlier.taker_buy_usd is None  # no taker row for it: no split


def test_bybit_risk_limit_reads_both_units_the_docs_show():
    def body(maintenance: str, initial: str) -> dict:
        return {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": [
            {"id": 2, "symbol": "BTCUSDT", "riskLimitValue": "4000000", "maintenanceMargin": "0.01",
             "initialMargin": "0.02", "isLowestRisk": 0, "maxLeverage": "50.00", "mmDeduction": "10000"},
            {"id": 1, "symbol": "BTCUSDT", "riskLimitValue": "150", "maintenanceMargin": maintenance,
             "initialMargin": initial, "isLowestRisk": 1, "maxLeverage": "100.00", "mmDeduction": ""}]},
            "retExtInfo": {}, "time": 1672054488010}

    # The docs' example gives percent ("0.5" at 100x, initial "1"); clients quote live answers in fractions.
    assert bybit_levels.lowest_tier_rate(body("0.5", "1"), "BTC") == 0.005
    assert bybit_levels.lowest_tier_rate(body("0.005", "0.01"), "BTC") == 0.005
    assert bybit_levels.lowest_tier_rate(body("0.005", "0.01"), "ETH") is None  # not listed


def test_okx_position_tiers_and_gate_risk_limit_tiers():
    okx_body = {"code": "0", "msg": "", "data": [  # the docs' example row, as a SWAP family's tiers
        {"baseMaxLoan": "", "imr": "0.02", "instId": "", "maxLever": "50", "maxSz": "1000", "minSz": "500",
         "mmr": "0.008", "optMgnFactor": "0", "quoteMaxLoan": "", "tier": "2", "uly": "BTC-USDT",
         "instFamily": "BTC-USDT"},
        {"baseMaxLoan": "", "imr": "0.01", "instId": "", "maxLever": "100", "maxSz": "500", "minSz": "0",
         "mmr": "0.004", "optMgnFactor": "0", "quoteMaxLoan": "", "tier": "1", "uly": "BTC-USDT",
         "instFamily": "BTC-USDT"}]}
    assert okx_levels.lowest_tier_rate(okx_body, "BTC") == 0.004
    gate_body = [  # the official SDK's FuturesLimitRiskTiers fields; BTC_USDT's first tier as recorded by a client
        {"tier": 2, "risk_limit": "1000000", "initial_rate": "0.01", "maintenance_rate": "0.0035",
         "leverage_max": "100", "contract": "BTC_USDT", "deduction": "250"},
        {"tier": 1, "risk_limit": "500000", "initial_rate": "0.005", "maintenance_rate": "0.003",
         "leverage_max": "200", "contract": "BTC_USDT", "deduction": "0"}]
    assert gate_levels.lowest_tier_rate(gate_body, "BTC") == 0.003
    with pytest.raises(VenueError):
        gate_levels.lowest_tier_rate({"label": "INVALID_PARAM_VALUE", "message": "contract not found"}, "BTC")


@pytest.mark.parametrize("read", [
    lambda: binance_levels.parse_klines([[1499040000000, "1", "2"]], "BTCUSDT"),
    lambda: binance_levels.parse_klines([[1, "1", "2", "0.5", "1", "1", 0, "1", 1, "1", "1", "0"]], "BTCUSDT"),
    lambda: bybit_levels.parse_klines({"retCode": 0, "result": {"symbol": "BTCUSDT", "list": "x"}}, "BTCUSDT"),
    lambda: okx_levels.parse_candles({"code": "0", "data": [["x"] * 8 + ["1"]]}, "BTC-USDT-SWAP"),
    lambda: okx_levels.parse_taker_volume({"code": "0", "data": [["1597026300000", "-1", "2"]]}, "BTC-USDT-SWAP"),
    lambda: bybit_levels.lowest_tier_rate({"retCode": 0, "result": {"list": [{"symbol": "BTCUSDT"}]}}, "BTC"),
    lambda: okx_levels.lowest_tier_rate({"code": "0", "data": [{"instFamily": "BTC-USDT", "tier": "1"}]}, "BTC"),
    lambda: gate_levels.lowest_tier_rate({"tiers": []}, "BTC"),
])
def test_readers_raise_typed_errors_on_garbage(read):
    with pytest.raises(MarketDataError):
        read()


def test_the_readme_names_the_margin_tier_sources():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert margin_table() in readme


# -- the model's side, by hand -------------------------------------------------------


def kline(venue: str, minute: int, ohlc: tuple[float, float, float, float], volume: float, buys: float | None) -> Kline:
    open_ms = T + minute * MINUTE_MS
    return Kline(venue, "BTC", open_ms, open_ms + 5 * MINUTE_MS, *ohlc, volume_usd=volume, taker_buy_usd=buys)


def test_a_bar_with_taker_volume_splits_its_new_positions_by_it():
    klines = [
        kline("binance", 0, (100, 102, 99, 101), 40, 10), kline("binance", 5, (101, 103, 100, 102), 30, 10),
        kline("binance", 10, (102, 104, 101, 103), 30, 10),
        kline("bybit", 0, (100, 110, 90, 100), 1_000, None),  # no taker split: its volume is not in the share
    ]
    oi = [MarketSample("binance", "BTC", T - 1, open_interest_usd=1_000.0),
          MarketSample("binance", "BTC", T + BAR - 1, open_interest_usd=1_100.0)]
    (bar,) = bars_from_samples(oi, T, T + BAR, BAR, ["binance", "bybit"], klines=klines)
    # Binance's klines tile the bar: open 100, high 104, low 99, close 103; buys 30 of 100.
    assert bar == Bar(T, T + BAR, 100, 104, 99, 103, 1_000.0, 1_100.0, volume_usd=100, taker_buy_usd=30)
    book = LevelBook(LevelSettings(tiers=(LeverageTier(10, 1.0),), maintenance_margin_rate=0.005))
    book.apply(bar)
    # 100 opened at P = (104 + 99 + 103) / 3 = 102: longs 30 liquidated near 102 x (1 - 0.1 + 0.005) = 92.31,
    # shorts 70 near 102 x (1 + 0.1 - 0.005) = 111.69 (the bar is up: its direction alone would have said 60/40).
    (long_band,) = book.bands(Side.LONG)
    (short_band,) = book.bands(Side.SHORT)
    assert long_band.usd == pytest.approx(30) and long_band.low <= 92.31 < long_band.high
    assert short_band.usd == pytest.approx(70) and short_band.low <= 111.69 < short_band.high


def test_klines_that_do_not_tile_the_bar_leave_the_prices_to_the_mark_samples():
    klines = [kline("binance", 0, (100, 102, 99, 101), 40, 30)]  # one of the bar's three klines
    marks = [MarketSample("binance", "BTC", T + m * MINUTE_MS, mark_price=p) for m, p in ((1, 100), (7, 98), (14, 99))]
    (bar,) = bars_from_samples(marks, T, T + BAR, BAR, ["binance"], klines=klines)
    assert (bar.open, bar.high, bar.low, bar.close) == (100, 100, 98, 99)
    assert (bar.volume_usd, bar.taker_buy_usd) == (40, 30)  # the taker flow it has still splits the bar


def test_bars_are_whole_klines():
    with pytest.raises(ConfigError, match="multiple of 5"):
        LevelsConfig(bar_minutes=7)
    assert LevelsConfig(bar_minutes=30).bar_minutes == 30


def test_the_margin_rate_is_the_mean_of_the_venues_lowest_tiers_that_fit_the_profile():
    settings = LevelSettings()  # up to 100x: a rate of 1 % or more could not hold a 100x position
    assert venue_margin_rate([0.005, 0.004, 0.003], settings) == pytest.approx(0.004)
    assert venue_margin_rate([0.004, 0.01], settings) == 0.004
    assert venue_margin_rate([], settings) == settings.maintenance_margin_rate


# -- end to end: the fake venues -> the poller and the reader -> /levels -> replay ----


def levels_config(url: str):
    config = make_config(url, backfill_days=1.0)
    feeds = dataclasses.replace(config.feeds, gate=dataclasses.replace(config.feeds.gate, rest_url=url))
    return dataclasses.replace(config, feeds=feeds, levels=dataclasses.replace(config.levels, warmup_days=1.0))


@pytest.fixture
async def venues(clock):
    market = FakeMarket(oi_growth_24h=0.25, history_ms=DAY_MS + HOUR_MS, taker_buy_share=0.7)
    async with FakeMarketVenues(ASSETS, clock.now_ms, market) as fake:
        yield fake


@pytest.fixture
async def http(venues):
    async with make_client(levels_config(venues.base_url)) as client:
        yield client


async def fresh_install(tmp_path, venues, http, clock, name: str, lines: list[str] | None = None):
    """An app whose first cycle ran against the fake: backfills, klines, one poll, the margin tiers."""

    async def record(venue: str, at_ms: int, path: str, body: object) -> None:
        if lines is not None:
            lines.append(rest_line(venue, at_ms, path, body))

    config = levels_config(venues.base_url)
    app = await App.open(config, db_path=tmp_path / f"{name}.sqlite", clock_ms=clock.now_ms)
    poller = MarketPoller(config, http, app.market_store.add_samples, clock.now_ms, clock.sleep, rng=lambda: 0.5,
                          on_response=record, history=app.market_store, klines=KlineStore(app.store))
    for venue in ("binance", "bybit", "okx"):
        await poller.backfill(venue)
        await poller.follow_klines(venue)
        await poller.poll_once(venue)
    reader = MarginTierReader(config, http, MarginRateStore(app.store).set_rates, clock.now_ms, clock.sleep,
                              on_response=record)
    await reader.read_all()
    return app, poller


async def test_a_fresh_install_splits_the_backfilled_open_interest_by_taker_flow(tmp_path, venues, http, clock):
    app, poller = await fresh_install(tmp_path, venues, http, clock, "fresh")
    try:
        assert all(poller.stats[venue].klines > 250 for venue in ("binance", "bybit", "okx"))  # a day of 5m klines
        stored = await KlineStore(app.store).klines("BTC", clock.now_ms() - DAY_MS, clock.now_ms())
        assert {round(k.taker_buy_usd) for k in stored if k.venue in ("binance", "okx")} == {700_000}
        assert {k.taker_buy_usd for k in stored if k.venue == "bybit"} == {None}
        assert await MarginRateStore(app.store).rates("BTC") == {"bybit": 0.005, "okx": 0.004, "gate": 0.003}

        text = await ask(app, "/levels BTC")
        book = await app.levels.update("BTC", clock.now_ms())
        # Open interest rose at a flat price: every bar's new positions split 70/30 by the takers,
        # where the bars' direction would have split them 50/50.
        longs, shorts = sum(book.long_usd), sum(book.short_usd)
        assert longs / (longs + shorts) == pytest.approx(0.7)
        assert book.settings.maintenance_margin_rate == pytest.approx(0.004)  # (0.5 + 0.4 + 0.3) % / 3
        assert book.first_bar_ms < clock.now_ms() - DAY_MS + BAR  # the backfilled day, not just the first poll
        # The densest long band: 25x from $64,000, 64,000 x (1 - 0.04 + 0.004) = $61,696.
        assert "Longs would be liquidated below" in text and "$61," in text
        assert 61_696 < PRICES["BTC"]
    finally:
        await app.close()


async def test_klines_are_followed_as_they_close_and_only_the_new_ones_asked(tmp_path, venues, http, clock):
    app, poller = await fresh_install(tmp_path, venues, http, clock, "follow")
    try:
        asked = len(venues.hits_of("binance"))
        assert await poller.follow_klines("binance") == 0  # nothing closed since
        assert len(venues.hits_of("binance")) == asked
        clock.now += 5 * MINUTE_MS + KLINE_SETTLE_MS
        assert await poller.follow_klines("binance") >= 1
        new = venues.hits_of("binance")[asked:]
        assert {hit.path for hit in new} == {binance_levels.KLINES_PATH}
        (request,) = [hit for hit in new if hit.query["symbol"] == "BTCUSDT"]
        assert int(request.query["startTime"]) > clock.now_ms() - HOUR_MS  # the last hour's holes, not the day's
    finally:
        await app.close()


async def test_a_recording_with_klines_and_margin_tiers_replays_to_the_same_levels(tmp_path, venues, http, clock):
    lines: list[str] = []
    live, _ = await fresh_install(tmp_path, venues, http, clock, "live", lines)
    try:
        live_text = await ask(live, "/levels BTC")
    finally:
        await live.close()
    path = tmp_path / "market.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    replayed = await App.open(levels_config(venues.base_url), db_path=tmp_path / "replayed.sqlite",
                              clock_ms=clock.now_ms)
    try:
        report = await replay(replayed.store, [path], market_assets=ASSETS)
        assert report.decode.bad_lines == 0
        assert await MarginRateStore(replayed.store).rates("BTC") == {"bybit": 0.005, "okx": 0.004, "gate": 0.003}
        assert await ask(replayed, "/levels BTC") == live_text
    finally:
        await replayed.close()


async def test_a_rate_limited_kline_fill_is_finished_next_cycle(tmp_path, venues, http, clock):
    config = levels_config(venues.base_url)
    app = await App.open(config, db_path=tmp_path / "limited.sqlite", clock_ms=clock.now_ms)
    try:
        klines = KlineStore(app.store)
        poller = MarketPoller(config, http, app.market_store.add_samples, clock.now_ms, clock.sleep,
                              rng=lambda: 0.5, klines=klines)
        venues.script(bybit_levels.KLINES_PATH, Scripted(status=429, headers={"Retry-After": "30"}))
        assert await poller.follow_klines("bybit") == 0
        assert poller.stats["bybit"].rate_limited == 1
        clock.now += 31_000
        assert await poller.follow_klines("bybit") > 0  # the whole window is still due, not just the tail
        opens = [k.open_ms for k in await klines.klines("BTC", clock.now_ms() - DAY_MS, clock.now_ms())]
        assert len(opens) >= DAY_MS // (5 * MINUTE_MS) - 2
    finally:
        await app.close()


async def test_margin_tiers_keep_what_answered(venues, http, clock, caplog):
    malformed = b'{"code": "0", "data": [{"instFamily": "BTC-USDT", "tier": "x"}]}'
    venues.script(okx_levels.POSITION_TIERS_PATH, Scripted(body=malformed))
    venues.script(gate_levels.RISK_LIMIT_TIERS_PATH, Scripted(status=429))
    stored: list = []

    async def sink(rates, at_ms):
        stored.append((rates, at_ms))

    reader = MarginTierReader(levels_config(venues.base_url), http, sink, clock.now_ms, clock.sleep)
    rates = await reader.read_all()
    by_venue = {venue: [asset for asset, v, _ in rates if v == venue] for venue in ("bybit", "okx", "gate")}
    assert by_venue == {"bybit": list(ASSETS), "okx": list(ASSETS[1:]), "gate": []}  # OKX's BTC was malformed
    assert [batch for batch, _ in stored] == [rates]  # one round, one write
    assert "malformed" in caplog.text and "HTTP 429" in caplog.text
    gate_asked = [hit for hit in venues.hits if hit.path == gate_levels.RISK_LIMIT_TIERS_PATH]
    assert len(gate_asked) == 1  # a 429 ends that venue's round
