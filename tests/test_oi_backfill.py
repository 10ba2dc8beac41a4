"""Open-interest backfill: each venue's history parsers on the shapes their docs
give, the poller's paging, rate limits and malformed answers against the fake
market on 127.0.0.1, what the store keeps (and does not ask again), record and
replay, and the issue's case: a fresh install rates a crowded market on its
first poll."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.app import App
from bot.core.market import MarketSample
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.core.status import RuntimeStatus, ServiceStatus, StatusReport
from bot.feeds.market import MarketPoller, make_client
from bot.feeds.oi_history import NothingStored
from bot.feeds.marketdata import MarketDataError, VenueError
from bot.feeds.recording import rest_line
from bot.feeds.venues import backfill_table
from bot.feeds.venues import binance, bybit, okx
from bot.replies.compose import status_reply
from bot.replies.render_plain import render_plain
from bot.services.ingest import replay
from bot.storage.market_store import MarketStore
from bot.storage.store import Store
from tests.fakes.market_http import PRICES, FakeMarket, FakeMarketVenues, Scripted
from tests.support import ask, until
from tests.test_market_poller import ASSETS, T0, clock, make_config  # noqa: F401  (clock: the fixture)

BINANCE_HIST = binance.OPEN_INTEREST_HIST_PATH
BYBIT_OI, BYBIT_KLINE = bybit.OPEN_INTEREST_PATH, bybit.MARK_KLINE_PATH
OKX_HIST = okx.OPEN_INTEREST_HISTORY_PATH
CROWDED = FakeMarket(funding_rate=0.0015, long_short_ratio=3.0, oi_growth_24h=0.25, history_ms=DAY_MS + HOUR_MS)


# -- parsers, on the venues' documented shapes ---------------------------------


def test_binance_history_parser_on_the_documented_example():
    body = [  # developers.binance.com, Open Interest Statistics, "Response Example"
        {"symbol": "BTCUSDT", "sumOpenInterest": "20403.63700000", "sumOpenInterestValue": "150570784.07809979",
         "timestamp": "1583127900000"},
        {"symbol": "BTCUSDT", "sumOpenInterest": "20401.36700000", "sumOpenInterestValue": "149940752.14464448",
         "timestamp": "1583128200000"},
    ]
    params = {"symbol": "BTCUSDT", "period": "5m"}
    (first, second) = binance.open_interest_history_samples([(BINANCE_HIST, params, body)])
    assert first == MarketSample("binance", "BTC", 1583127900000, mark_price=pytest.approx(150570784.07809979 / 20403.637),
                                 open_interest_usd=150570784.07809979)
    assert second.at_ms == 1583128200000 and second.open_interest_usd == 149940752.14464448
    with pytest.raises(MarketDataError, match="asked ETHUSDT"):
        binance.parse_open_interest_hist(body, "ETHUSDT")
    with pytest.raises(VenueError) as error:
        binance.parse_open_interest_hist({"code": -1003, "msg": "Too many requests"}, "BTCUSDT")
    assert error.value.rate_limited


def test_bybit_history_parsers_on_the_documented_examples():
    open_interest = {  # bybit-exchange.github.io/docs/v5/market/open-interest, "Response Example"
        "retCode": 0, "retMsg": "OK",
        "result": {"symbol": "BTCUSD", "category": "inverse", "list": [
            {"openInterest": "461134384.00000000", "timestamp": "1669571400000"},
            {"openInterest": "461134292.00000000", "timestamp": "1669571100000"}], "nextPageCursor": ""},
        "retExtInfo": {}, "time": 1672053548579,
    }
    assert bybit.parse_open_interest_page(open_interest, "BTCUSD") == (
        [(1669571400000, 461134384.0), (1669571100000, 461134292.0)], None
    )
    kline = {  # .../docs/v5/market/mark-kline, "Response Example"
        "retCode": 0, "retMsg": "OK",
        "result": {"symbol": "BTCUSDT", "category": "linear",
                   "list": [["1670608800000", "17164.16", "17164.16", "17121.5", "17131.64"]]},
        "retExtInfo": {}, "time": 1672026361839,
    }
    assert bybit.parse_mark_kline(kline, "BTCUSDT") == {1670608800000: 17164.16}
    # A linear point is base coin, valued at the open of the mark-price bar starting then.
    linear = {"retCode": 0, "retMsg": "OK", "result": {"symbol": "BTCUSDT", "category": "linear", "list": [
        {"openInterest": "50000.5", "timestamp": "1670608800000"},
        {"openInterest": "50000.0", "timestamp": "1670608500000"}], "nextPageCursor": "page2"}}
    samples = bybit.open_interest_history_samples([
        (BYBIT_OI, {"symbol": "BTCUSDT"}, linear), (BYBIT_KLINE, {"symbol": "BTCUSDT"}, kline)
    ])
    assert samples == [MarketSample("bybit", "BTC", 1670608800000, mark_price=17164.16,
                                    open_interest_usd=50000.5 * 17164.16)]  # the point without a bar is left out
    assert bybit.parse_open_interest_page(linear, "BTCUSDT")[1] == "page2"
    with pytest.raises(VenueError) as error:
        bybit.parse_open_interest_page({"retCode": 10006, "retMsg": "Too many visits!"}, "BTCUSDT")
    assert error.value.rate_limited


def test_okx_history_parser_on_the_documented_example():
    body = {  # docs-v5 "Get contract open interest history", "Response example": [ts, oi, oiCcy, oiUsd]
        "code": "0", "msg": "",
        "data": [["1701417600000", "731377.57500501", "111", "8888888"],
                 ["1701417500000", "731377.57500501", "111", "8888888"]],
    }
    samples = okx.open_interest_history_samples([(OKX_HIST, {"instId": "BTC-USDT-SWAP", "period": "5m"}, body)])
    assert samples == [
        MarketSample("okx", "BTC", 1701417600000, mark_price=8888888 / 111, open_interest_usd=8888888.0),
        MarketSample("okx", "BTC", 1701417500000, mark_price=8888888 / 111, open_interest_usd=8888888.0),
    ]
    with pytest.raises(MarketDataError, match="short"):
        okx.parse_open_interest_history({"code": "0", "data": [["1701417600000", "1"]]}, "BTC-USDT-SWAP")
    with pytest.raises(VenueError) as error:
        okx.parse_open_interest_history({"code": "50011", "msg": "Too Many Requests", "data": []}, "BTC-USDT-SWAP")
    assert error.value.rate_limited


@pytest.mark.parametrize(
    "parse, body",
    [
        (lambda b: binance.parse_open_interest_hist(b, "BTCUSDT"), {"symbol": "BTCUSDT"}),
        (lambda b: binance.parse_open_interest_hist(b, "BTCUSDT"),
         [{"symbol": "BTCUSDT", "sumOpenInterest": "1", "sumOpenInterestValue": "nan", "timestamp": "1583127900000"}]),
        (lambda b: binance.parse_open_interest_hist(b, "BTCUSDT"),
         [{"symbol": "BTCUSDT", "sumOpenInterest": "1", "sumOpenInterestValue": "2", "timestamp": "yesterday"}]),
        (lambda b: bybit.parse_open_interest_page(b, "BTCUSDT"), {"retCode": 0, "result": {"symbol": "BTCUSDT"}}),
        (lambda b: bybit.parse_mark_kline(b, "BTCUSDT"),
         {"retCode": 0, "result": {"symbol": "BTCUSDT", "list": [["1670608800000", "-1", "1", "1", "1"]]}}),
        (lambda b: okx.parse_open_interest_history(b, "BTC-USDT-SWAP"), {"code": "0", "data": [{"ts": "1"}]}),
    ],
)
def test_history_parsers_raise_typed_errors_on_garbage(parse, body):
    with pytest.raises(MarketDataError):
        parse(body)


# -- the poller against the fake market ------------------------------------------


@pytest.fixture
async def venues(clock):
    async with FakeMarketVenues(ASSETS, clock.now_ms, CROWDED) as fake:
        yield fake


@pytest.fixture
async def market(store):
    return MarketStore(store)


@pytest.fixture
async def client(venues):
    async with make_client(make_config(venues.base_url)) as http:
        yield http


def poller_for(fake, client, clock, market, **settings) -> MarketPoller:
    config = make_config(fake.base_url, **settings)
    return MarketPoller(config, client, market.add_samples, clock.now_ms, clock.sleep, rng=lambda: 0.5, history=market)


def queries(venues, path: str) -> list[dict[str, str]]:
    return [hit.query for hit in venues.hits if hit.path == path]


async def test_each_venue_pages_its_history_as_documented(venues, client, clock, market):
    poller = poller_for(venues, client, clock, market)
    stored = {venue: await poller.backfill(venue) for venue in ("binance", "bybit", "okx")}
    # 25 h of 5-minute points per asset (each venue's history ends at its current open interest).
    assert stored == {"binance": 6 * 300, "bybit": 6 * 300, "okx": 6 * 300}
    binance_asks = [q for q in queries(venues, BINANCE_HIST) if q["symbol"] == "BTCUSDT"]
    assert len(binance_asks) == 5  # 8 days in spans of at most 500 periods
    assert all(q["period"] == "5m" and q["limit"] == "500" for q in binance_asks)
    assert all(int(q["endTime"]) - int(q["startTime"]) < 500 * 5 * MINUTE_MS for q in binance_asks)
    assert int(binance_asks[0]["startTime"]) == T0 - 8 * DAY_MS + 1 and int(binance_asks[-1]["endTime"]) == T0 - 1
    bybit_asks = [q for q in queries(venues, BYBIT_OI) if q["symbol"] == "BTCUSDT"]
    assert [q.get("cursor") for q in bybit_asks] == [None, "200"]  # 300 points: two pages by cursor
    assert all(q["intervalTime"] == "5min" and q["limit"] == "200" for q in bybit_asks)
    kline_asks = [q for q in queries(venues, BYBIT_KLINE) if q["symbol"] == "BTCUSDT"]
    assert all(int(q["end"]) - int(q["start"]) < 200 * 5 * MINUTE_MS and q["interval"] == "5" for q in kline_asks)
    okx_asks = [q for q in queries(venues, OKX_HIST) if q["instId"] == "BTC-USDT-SWAP"]
    assert len(okx_asks) == 15  # OKX keeps 1,440 points (5 days): spans of at most 100
    assert int(okx_asks[0]["begin"]) == T0 - 1440 * 5 * MINUTE_MS and int(okx_asks[-1]["end"]) == T0
    series = await market.series("BTC", "bybit", 0)
    assert series[-1].open_interest_usd == pytest.approx(venues.current_oi_usd("bybit", "BTC"), rel=1e-3)
    assert series[-1].mark_price == PRICES["BTC"]
    assert poller.stats["okx"].backfilled == 6 * 300


async def test_okx_history_keeps_to_its_per_instrument_limit(venues, client, clock, market):
    poller = poller_for(venues, client, clock, market)
    await poller.backfill("okx")
    btc = [hit.at_ms for hit in venues.hits if hit.path == OKX_HIST and hit.query["instId"] == "BTC-USDT-SWAP"]
    # 10 requests / 2 s per IP + instrument; liqbot takes half (budget_fraction).
    assert all(later - earlier >= 2_000 for earlier, later in zip(btc, btc[5:]))


async def test_a_restart_asks_only_for_what_is_missing(venues, client, clock, market):
    first = poller_for(venues, client, clock, market, backfill_days=1.0)
    await first.backfill("binance")
    await first.poll_once("binance")
    asked = len(venues.hits)
    again = poller_for(venues, client, clock, market, backfill_days=1.0)  # a restart a minute later
    clock.now += MINUTE_MS
    assert await again.backfill("binance") == 0
    assert len(venues.hits) == asked  # no hole: nothing asked
    clock.now += 2 * HOUR_MS  # the bot was down two hours
    before = len(queries(venues, BINANCE_HIST))
    await again.backfill("binance")
    gap_asks = queries(venues, BINANCE_HIST)[before:]
    assert gap_asks and all(int(q["startTime"]) > T0 for q in gap_asks)  # only the hole after the last poll


async def test_backfilled_points_never_overwrite_polled_ones(venues, client, clock, market):
    poller = poller_for(venues, client, clock, market)
    (polled,) = [s for s in await poller.poll_once("bybit") if s.asset == "BTC"]
    clock.now += HOUR_MS
    await poller.backfill("bybit")
    series = await market.series("BTC", "bybit", 0)
    assert polled in series and polled.funding_rate == 0.0015  # the poll's sample stands, whole
    assert len({s.at_ms for s in series}) == len(series)
    between = [s for s in series if s.at_ms > polled.at_ms]
    assert between and all(s.at_ms < clock.now for s in between)  # the hour after the poll was filled
    assert await market.add_backfill([MarketSample("bybit", "BTC", polled.at_ms, open_interest_usd=1.0)]) == 0


async def test_429_parks_the_backfill_and_the_next_cycle_finishes_it(venues, client, clock, market):
    venues.script(BINANCE_HIST, Scripted(status=200), Scripted(status=429, headers={"Retry-After": "30"}))
    poller = poller_for(venues, client, clock, market, backfill_days=1.0, venues=("binance",))
    task = asyncio.create_task(poller.run(), name="market")
    try:
        await until(lambda: poller.stats["binance"].last_success_ms is not None)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    stats = poller.stats["binance"]
    assert stats.rate_limited == 1
    retried = [hit.at_ms for hit in venues.hits if hit.path == BINANCE_HIST]
    assert retried[2] - retried[1] >= 30_000  # waited out Retry-After before asking again
    first_poll = next(hit.at_ms for hit in venues.hits if hit.path == "/fapi/v1/premiumIndex")
    assert first_poll >= retried[-1]  # the backfill finished before the first poll
    assert len(await market.series("BTC", "binance", 0)) >= 24 * 12


async def test_malformed_history_is_counted_and_the_other_assets_are_filled(venues, client, clock, market, caplog):
    venues.script(OKX_HIST, Scripted(body=b'{"code":"0","data":[["1700000000000"]]}'), Scripted(body=b"<html>"))
    poller = poller_for(venues, client, clock, market, backfill_days=1.0)
    stored = await poller.backfill("okx")
    assert poller.stats["okx"].malformed == 2
    assert stored == 4 * 288  # BTC and ETH lost their first page and were skipped; the other four filled a day
    assert "malformed response" in caplog.text
    assert await poller.poll_once("okx")  # and the poller carries on


async def test_a_venue_without_history_is_left_as_it_is(venues, client, clock, market):
    venues.market = FakeMarket()  # serves no history
    poller = poller_for(venues, client, clock, market, backfill_days=1.0)
    assert await poller.backfill("bybit") == 0
    assert queries(venues, BYBIT_KLINE) == []  # nothing to value: no price asked
    assert poller.stats["bybit"].malformed == 0


# -- record and replay -----------------------------------------------------------


async def test_recorded_backfill_replays_to_the_same_samples(venues, client, clock, market, tmp_path):
    lines: list[str] = []

    async def record(venue: str, at_ms: int, path: str, body: object) -> None:
        lines.append(rest_line(venue, at_ms, path, body))

    config = make_config(venues.base_url, backfill_days=1.0)
    live = MarketPoller(config, client, market.add_samples, clock.now_ms, clock.sleep, on_response=record,
                        history=market)
    for venue in ("binance", "bybit", "okx"):
        await live.backfill(venue)
        await live.poll_once(venue)
    recorder = MarketPoller(config, client, market.add_samples, clock.now_ms, clock.sleep, history=NothingStored())
    assert await recorder.backfill("okx") == 0  # `liqbot record` keeps responses, not samples
    assert any(json.loads(line)["rest"]["path"].startswith(OKX_HIST) for line in lines)
    path = tmp_path / "backfill.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("once", "twice"):
        replayed = await Store.open(tmp_path / "replayed.sqlite")
        try:
            report = await replay(replayed, [path], market_assets=ASSETS)
            assert report.decode.bad_lines == 0
            for venue in ("binance", "bybit", "okx"):
                for asset in ASSETS:
                    assert await MarketStore(replayed).series(asset, venue, 0) == await market.series(asset, venue, 0)
        finally:
            await replayed.close()


# -- the case --------------------------------------------------------------


async def _first_poll_risk(tmp_path, venues, clock, *, backfill: bool) -> str:
    config = make_config(venues.base_url)
    app = await App.open(config, db_path=tmp_path / f"fresh-{backfill}.sqlite", clock_ms=clock.now_ms)
    polled: set[str] = set()

    async def sink(samples):
        await app.market_store.add_samples(samples)
        polled.add(samples[0].venue)

    async def sleep(seconds: float) -> None:
        if asyncio.current_task().get_name().removeprefix("market-") in polled:
            await asyncio.Event().wait()  # a venue that polled once waits here: one poll each
        await clock.sleep(seconds)

    try:
        async with make_client(config) as http:
            poller = MarketPoller(config, http, sink, clock.now_ms, sleep, rng=lambda: 0.5,
                                  history=app.market_store if backfill else None)
            task = asyncio.create_task(poller.run())
            try:
                await until(lambda: len(polled) == 3, timeout=30)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
        assert all(stats.polls == 1 for stats in poller.stats.values())
        return await ask(app, "/risk BTC")
    finally:
        await app.close()


async def test_a_fresh_install_rates_a_crowded_market_on_its_first_poll(tmp_path, venues, clock):
    """Funding +0.15%/8h, open interest +25% in 24h at a flat price, long/short 3.0."""
    text = await _first_poll_risk(tmp_path, venues, clock, backfill=True)
    assert "BTC leverage risk: extreme" in text
    assert "Leverage building: open interest +25." in text
    assert "open interest 24h change" not in text  # nothing missing but what no fresh install has


async def test_without_the_backfill_the_same_market_lacks_its_24h_change(tmp_path, venues, clock):
    text = await _first_poll_risk(tmp_path, venues, clock, backfill=False)
    assert "BTC leverage risk: high" in text and "Leverage building" not in text
    assert "open interest 24h change" in text


def test_the_readme_says_what_is_backfilled():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert backfill_table() in readme


@pytest.mark.parametrize(
    "locale, expected",
    [("en", "Binance: running, last poll 1m ago, 1,800 open-interest points backfilled"),
     ("zh", "已回填 1,800 个持仓量数据点")],
)
def test_status_counts_what_each_venue_backfilled(locale, expected):
    runtime = RuntimeStatus(platforms=(), market=(ServiceStatus("binance", "running", None, T0, backfilled=1800),),
                            stream_errors={})
    report = StatusReport(0, None, None, {}, (), runtime=runtime)
    assert expected in render_plain(status_reply(report, T0 + MINUTE_MS, locale))
