"""Market context: the poller against a fake of the venues' REST APIs on 127.0.0.1,
and storage of its samples."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import orjson
import pytest

from bot.config import Config, FeedsConfig, MarketDataConfig
from bot.core.market import Change, MarketSample, change_of
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.feeds.http_policy import RequestBudget
from bot.feeds.market import MarketPoller, make_client
from bot.feeds.recording import rest_line
from bot.feeds.venues import SETTINGS
from bot.feeds.venues.binance import VENUE as BINANCE
from bot.feeds.venues.bybit import VENUE as BYBIT
from bot.feeds.venues.okx import VENUE as OKX
from bot.storage.maintenance import RetentionPolicy, apply_retention
from bot.services.ingest import replay
from bot.storage.market_store import MarketStore
from bot.storage.store import Store
from tests.fakes.market_http import PRICES, FakeMarketVenues, Scripted
from tests.support import until
from tests.backends import backend  # noqa: F401,E402  (the store tests on both backends)

BinanceFeedConfig, BybitFeedConfig, OkxFeedConfig = SETTINGS[BINANCE], SETTINGS[BYBIT], SETTINGS[OKX]

T0 = 1_700_000_000_000
ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB")


def test_the_poller_reads_the_market_section_and_each_venues_rest_url():
    config = Config()
    poller = MarketPoller(config, client=None, sink=None, now_ms=lambda: T0)  # type: ignore[arg-type]
    settings = poller.settings
    assert settings is config.market  # one definition of [market], loaded by bot.config
    assert settings.assets == ASSETS
    assert settings.venues == (BINANCE, BYBIT, OKX)
    assert poller.base_urls[BINANCE] == config.feeds.binance.usdm_rest_url
    assert settings.interval_s == 60.0


# -- the poller against a fake of the venues ---------------------------------


class VirtualClock:
    """Time that only moves when someone sleeps; records who slept how long."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[tuple[str, float]] = []

    def now_ms(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        self.sleeps.append((task.get_name() if task else "?", seconds))
        self.now += round(seconds * 1000)
        await asyncio.sleep(0)

    def slept(self, task_name: str) -> list[float]:
        return [s for name, s in self.sleeps if name == task_name]


@pytest.fixture
def clock():
    return VirtualClock()


@pytest.fixture
async def venues(clock):
    async with FakeMarketVenues(ASSETS, clock.now_ms) as fake:
        yield fake


def make_config(url: str, **market) -> Config:
    defaults = dict(request_timeout_s=0.25, interval_s=60.0, backoff_base_s=1.0, backoff_max_s=8.0)
    return Config(
        feeds=FeedsConfig(
            binance=BinanceFeedConfig(usdm_rest_url=url),
            bybit=BybitFeedConfig(rest_url=url),
            okx=OkxFeedConfig(rest_url=url),
        ),
        market=MarketDataConfig(**{**defaults, **market}),
    )


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[MarketSample]] = []

    async def __call__(self, samples: list[MarketSample]) -> None:
        self.batches.append(samples)

    def of(self, venue: str) -> list[MarketSample]:
        return [s for batch in self.batches for s in batch if s.venue == venue]


@pytest.fixture
async def poller_parts(venues, clock):
    config = make_config(venues.base_url)
    async with make_client(config) as client:
        sink = Sink()
        yield config, client, sink


def new_poller(parts, clock, **kwargs) -> MarketPoller:
    config, client, sink = parts
    return MarketPoller(config, client, sink, clock.now_ms, clock.sleep, rng=lambda: 0.5, **kwargs)


async def test_one_poll_of_each_venue(poller_parts, clock, venues):
    poller = new_poller(poller_parts, clock)
    binance = {s.asset: s for s in await poller.poll_once(BINANCE)}
    assert set(binance) == set(ASSETS)
    btc = binance["BTC"]
    assert btc == MarketSample(BINANCE, "BTC", T0, mark_price=64000.0, funding_rate=0.0001,
                               funding_interval_hours=8.0, open_interest_usd=1000.5 * 64000.0,
                               long_short_ratio=1.5)
    assert binance["DOGE"].funding_interval_hours == 4.0  # from fundingInfo
    bybit = {s.asset: s for s in await poller.poll_once(BYBIT)}
    assert bybit["ETH"].open_interest_usd == 1000 * PRICES["ETH"]
    assert bybit["ETH"].long_short_ratio == pytest.approx(0.55 / 0.45)
    okx = {s.asset: s for s in await poller.poll_once(OKX)}
    assert okx["SOL"] == MarketSample(OKX, "SOL", T0, mark_price=145.0, funding_rate=0.0001,
                                      funding_interval_hours=8.0, open_interest_usd=200 * 145.0)
    # The sink got one batch per venue poll; requests asked what the venues document.
    assert [len(batch) for batch in poller_parts[2].batches] == [6, 6, 6]
    queries = {(hit.path, tuple(sorted(hit.query.items()))) for hit in venues.hits}
    assert ("/futures/data/globalLongShortAccountRatio", (("limit", "1"), ("period", "5m"), ("symbol", "BTCUSDT"))) in queries
    assert ("/v5/market/account-ratio", (("category", "linear"), ("limit", "1"), ("period", "5min"), ("symbol", "XRPUSDT"))) in queries
    assert ("/api/v5/public/open-interest", (("instType", "SWAP"),)) in queries
    # Binance weight: fundingInfo 1 + premiumIndex 10 + 6 x (openInterest 1 + ratio 1).
    assert poller._budgets[BINANCE].used(clock.now) == 23
    assert clock.sleeps == []  # nothing failed, no budget pressure


async def test_5xx_then_success_is_retried_with_backoff(poller_parts, clock, venues):
    venues.script("/fapi/v1/premiumIndex", Scripted(status=503), Scripted(status=502))
    poller = new_poller(poller_parts, clock)
    samples = await poller.poll_once(BINANCE)
    assert len(samples) == len(ASSETS)
    # base 1 s doubling, jitter fixed at the middle of the upper half.
    assert [s for _, s in clock.sleeps] == [0.75, 1.5]
    assert poller.stats[BINANCE].retries == 2
    assert poller.stats[BINANCE].failures == 0


async def test_5xx_until_retries_run_out(poller_parts, clock, venues):
    venues.script("/v5/market/tickers", *[Scripted(status=500)] * 4)
    poller = new_poller(poller_parts, clock)
    assert await poller.poll_once(BYBIT) == []
    assert [s for _, s in clock.sleeps] == [0.75, 1.5, 3.0]
    assert poller.stats[BYBIT].failures == 1
    assert len(venues.hits_of(BYBIT)) == 4
    assert len(await poller.poll_once(BYBIT)) == len(ASSETS)  # the next poll is fine


async def test_slow_response_times_out_and_is_retried(poller_parts, clock, venues):
    venues.script("/v5/market/tickers", Scripted(delay_s=0.6))
    poller = new_poller(poller_parts, clock)
    samples = await poller.poll_once(BYBIT)
    assert len(samples) == len(ASSETS)
    assert poller.stats[BYBIT].retries == 1
    assert [s for _, s in clock.sleeps] == [0.75]


async def test_connection_refused_is_retried_then_given_up(clock):
    config = make_config("http://127.0.0.1:9", retries=2)  # discard port: nothing listens
    async with make_client(config) as client:
        poller = MarketPoller(config, client, Sink(), clock.now_ms, clock.sleep, rng=lambda: 0.0)
        assert await poller.poll_once(OKX) == []
    # The first request outlasted its retries: the rest of the poll is skipped.
    assert poller.stats[OKX].failures == 1
    assert poller.stats[OKX].retries == 2
    assert poller.stats[OKX].requests == 3


async def test_malformed_json_is_counted_logged_and_survived(poller_parts, clock, venues, caplog):
    venues.script("/fapi/v1/premiumIndex", Scripted(body=b"{not json"))
    venues.script("/api/v5/public/mark-price", Scripted(body=b'{"code":"0","data":[{"instId":"BTC-USDT-SWAP","markPx":"x"}]}'))
    venues.script("/fapi/v1/openInterest", Scripted(body=orjson.dumps({"symbol": "BTCUSDT", "openInterest": []})))
    poller = new_poller(poller_parts, clock)
    with caplog.at_level(logging.WARNING, logger="bot.feeds.market"):
        assert await poller.poll_once(BINANCE) == []
        okx = {s.asset: s for s in await poller.poll_once(OKX)}
        binance = {s.asset: s for s in await poller.poll_once(BINANCE)}
    assert poller.stats[BINANCE].malformed == 2
    assert poller.stats[OKX].malformed == 1
    assert "malformed response" in caplog.text and "not JSON" in caplog.text
    # OKX: no mark prices this time, but OI (oiUsd) and funding still arrive.
    assert okx["BTC"].mark_price is None and okx["BTC"].open_interest_usd == 200 * PRICES["BTC"]
    assert okx["BTC"].funding_rate == 0.0001
    # Binance: one asset's OI was broken; that measure alone is missing.
    assert binance["BTC"].open_interest_usd is None and binance["BTC"].funding_rate == 0.0001
    assert binance["ETH"].open_interest_usd is not None


async def test_418_and_403_park_the_venue_for_long(poller_parts, clock, venues):
    venues.script("/fapi/v1/premiumIndex", Scripted(status=418))
    venues.script("/v5/market/tickers", Scripted(status=403))
    poller = new_poller(poller_parts, clock)
    assert await poller.poll_once(BINANCE) == []
    assert await poller.poll_once(BYBIT) == []
    assert poller.stats[BINANCE].blocked_until_ms == T0 + 600_000  # ban_backoff_s
    assert poller.stats[BYBIT].blocked_until_ms == T0 + 600_000
    hits = len(venues.hits)
    assert await poller.poll_once(BINANCE) == []  # still parked: not even asked
    assert len(venues.hits) == hits
    assert len(await poller.poll_once(OKX)) == len(ASSETS)  # OKX unaffected
    clock.now = T0 + 600_000
    assert len(await poller.poll_once(BINANCE)) == len(ASSETS)


async def test_429_mid_poll_keeps_what_was_fetched(poller_parts, clock, venues):
    venues.script("/fapi/v1/openInterest", Scripted(status=429, headers={"Retry-After": "30"}))
    poller = new_poller(poller_parts, clock)
    samples = await poller.poll_once(BINANCE)
    assert {s.asset for s in samples} == set(ASSETS)  # funding and mark from premiumIndex
    assert all(s.open_interest_usd is None and s.long_short_ratio is None for s in samples)
    assert poller.stats[BINANCE].blocked_until_ms == T0 + 30_000
    assert len(venues.hits_of(BINANCE)) == 3  # fundingInfo, premiumIndex, the refused openInterest


async def test_rate_limit_code_in_a_200_body_parks_the_venue(poller_parts, clock, venues):
    body = orjson.dumps({"retCode": 10006, "retMsg": "Too many visits!", "result": {}})
    venues.script("/v5/market/tickers", Scripted(body=body))
    poller = new_poller(poller_parts, clock)
    assert await poller.poll_once(BYBIT) == []
    assert poller.stats[BYBIT].rate_limited == 1
    assert poller.stats[BYBIT].blocked_until_ms == T0 + 60_000  # rate_limit_backoff_s


async def test_budget_spreads_requests_over_windows(poller_parts, clock, venues):
    poller = new_poller(poller_parts, clock, budgets={OKX: RequestBudget(3, 2_000)})
    assert len(await poller.poll_once(OKX)) == len(ASSETS)
    times = [hit.at_ms for hit in venues.hits_of(OKX)]
    assert len(times) == 8  # mark-price, open-interest, 6 x funding-rate
    for start in times:
        assert sum(1 for t in times if start <= t < start + 2_000) <= 3
    assert all(0 < s <= 2.0 for _, s in clock.sleeps)


async def test_run_backs_off_one_venue_while_the_others_keep_polling(poller_parts, clock, venues):
    # Binance: 429 with Retry-After 120 s. Bybit: 403 without one (ban_backoff_s, 600 s).
    venues.script("/fapi/v1/premiumIndex", Scripted(status=429, headers={"Retry-After": "120"}))
    venues.script("/v5/market/tickers", Scripted(status=403))
    config, client, sink = poller_parts
    poller = new_poller(poller_parts, clock)
    task = asyncio.create_task(poller.run())
    try:
        await until(lambda: sink.of(BINANCE) and sink.of(BYBIT) and len({s.at_ms for s in sink.of(OKX)}) >= 3, 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert clock.slept("market-binance")[0] == 120.0
    assert clock.slept("market-bybit")[0] == 600.0
    assert 120.0 not in clock.slept("market-okx") and 600.0 not in clock.slept("market-okx")
    assert poller.stats[BINANCE].rate_limited == 1 and poller.stats[BYBIT].rate_limited == 1
    # OKX polled on while the others waited; each resumed after its pause.
    first_binance = min(s.at_ms for s in sink.of(BINANCE))
    assert first_binance >= T0 + 120_000
    assert min(s.at_ms for s in sink.of(BYBIT)) >= T0 + 600_000
    assert poller.stats[OKX].polls >= 3 and poller.stats[OKX].rate_limited == 0


async def test_run_survives_a_failing_sink_and_garbage(poller_parts, clock, venues):
    config, client, _ = poller_parts
    calls = []

    async def flaky_sink(samples):
        calls.append(samples)
        if len(calls) == 1:
            raise RuntimeError("disk full")

    venues.script("/api/v5/public/open-interest", Scripted(body=b"<html>502 Bad Gateway</html>"))
    only_okx = dataclasses.replace(config, market=dataclasses.replace(config.market, venues=(OKX,)))
    poller = MarketPoller(only_okx, client, flaky_sink, clock.now_ms, clock.sleep, rng=lambda: 0.5)
    task = asyncio.create_task(poller.run())
    try:
        await until(lambda: len(calls) >= 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert poller.stats[OKX].sink_errors == 1
    assert poller.stats[OKX].malformed == 1
    # Polls are interval_s apart in virtual time.
    assert [batch[0].at_ms for batch in calls[:3]] == [T0, T0 + 60_000, T0 + 120_000]


async def test_disabled_poller_returns_at_once(poller_parts, clock):
    config, client, sink = poller_parts
    off = make_config("http://127.0.0.1:9", enabled=False)
    await asyncio.wait_for(MarketPoller(off, client, sink, clock.now_ms, clock.sleep).run(), 1)


# -- storage -----------------------------------------------------------------


async def test_store_round_trip_latest_series_and_retention(store):
    market = MarketStore(store)
    assert await market.latest("BTC") == {}
    samples = [
        MarketSample(venue, "BTC", T0 + minute * MINUTE_MS, mark_price=60000.0 + minute,
                     funding_rate=0.0001 * (minute + 1), funding_interval_hours=8.0,
                     open_interest_usd=1e9 + minute, long_short_ratio=None if venue == OKX else 1.2)
        for minute in range(5)
        for venue in (BINANCE, BYBIT, OKX)
    ]
    samples.append(MarketSample(BINANCE, "ETH", T0 + 9 * MINUTE_MS, mark_price=3000.0))
    assert await market.add_samples(samples) == len(samples)
    assert await market.add_samples([]) == 0
    latest = await market.latest("BTC")
    assert set(latest) == {BINANCE, BYBIT, OKX}
    assert latest[OKX] == samples[-2]
    assert latest[BINANCE].at_ms == T0 + 4 * MINUTE_MS and latest[OKX].long_short_ratio is None
    assert set(await market.latest("ETH")) == {BINANCE}
    assert await market.latest("BTC", since_ms=T0 + 5 * MINUTE_MS) == {}
    series = await market.series("BTC", BYBIT, T0 + MINUTE_MS)
    assert [s.at_ms for s in series] == [T0 + m * MINUTE_MS for m in range(1, 5)]
    assert series == [s for s in samples if s.venue == BYBIT and s.asset == "BTC"][1:]
    assert len(await market.series("BTC", BYBIT, T0, until_ms=T0 + 2 * MINUTE_MS)) == 2
    assert await market.points("BTC", OKX, "long_short_ratio", T0) == []
    assert await market.points("BTC", BINANCE, "funding_rate", T0 + 3 * MINUTE_MS) == [
        (T0 + 3 * MINUTE_MS, pytest.approx(0.0004)),
        (T0 + 4 * MINUTE_MS, pytest.approx(0.0005)),
    ]
    with pytest.raises(ValueError):
        await market.points("BTC", OKX, "asset; DROP TABLE market_samples", T0)
    # The same key again keeps the latest write.
    await market.add_samples([MarketSample(BYBIT, "BTC", T0, mark_price=1.0)])
    assert (await market.series("BTC", BYBIT, T0))[0].mark_price == 1.0
    pruned = await apply_retention(store, RetentionPolicy(market_days=1), now_ms=T0 + 3 * MINUTE_MS + DAY_MS)
    assert pruned.market_samples == 9
    assert [s.at_ms for s in await market.series("BTC", BINANCE, 0)] == [T0 + 3 * MINUTE_MS, T0 + 4 * MINUTE_MS]
    assert set(await market.latest("ETH")) == {BINANCE}


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's query plan; PostgreSQL plans by its statistics
async def test_store_latest_uses_the_key(store):
    rows = await store.db.fetch(
        "EXPLAIN QUERY PLAN SELECT * FROM market_samples WHERE asset = ? AND venue = ? AND at_ms >= ?",
        ("BTC", "okx", 0),
    )
    plan = " ".join(str(row[-1]) for row in rows)
    assert "PRIMARY KEY" in plan or "USING" in plan


async def test_poller_into_store(poller_parts, clock, store):
    config, client, _ = poller_parts
    market = MarketStore(store)
    poller = MarketPoller(config, client, market.add_samples, clock.now_ms, clock.sleep, rng=lambda: 0.5)
    await poller.poll_once(BYBIT)
    clock.now += HOUR_MS
    await poller.poll_once(BYBIT)
    series = await market.series("BTC", BYBIT, T0)
    assert len(series) == 2
    assert change_of(series, "open_interest_usd", HOUR_MS, clock.now) == Change(
        series[0].open_interest_usd, series[1].open_interest_usd, T0, T0 + HOUR_MS
    )


async def test_recorded_polls_replay_to_the_same_samples(poller_parts, clock, venues, tmp_path):
    """What the poller received, written as recording lines, replays through the
    same collectors into the same samples; a response missing from a poll leaves
    only its measure empty; frames and old recordings are untouched."""
    lines: list[str] = []

    async def record(venue: str, at_ms: int, path: str, body: object) -> None:
        lines.append(rest_line(venue, at_ms, path, body))

    poller = new_poller(poller_parts, clock, on_response=record)
    live = []
    for venue in (BINANCE, BYBIT, OKX):
        live += await poller.poll_once(venue)
        clock.now += 60_000
    assert lines and all(json.loads(line)["at"] in (T0, T0 + 60_000, T0 + 120_000) for line in lines)
    path = tmp_path / "polls.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = await Store.open(tmp_path / "replayed.sqlite")
    try:
        report = await replay(store, [path], market_assets=ASSETS)
        assert report.market_samples == len(live) and report.decode.bad_lines == 0
        market = MarketStore(store)
        replayed = [s for asset in ASSETS for venue in (BINANCE, BYBIT, OKX)
                    for s in await market.series(asset, venue, 0)]
        assert sorted(replayed, key=repr) == sorted(live, key=repr)
    finally:
        await store.close()

    ratio_free = [line for line in lines if "globalLongShortAccountRatio" not in line]
    path.write_text("\n".join(ratio_free) + "\n", encoding="utf-8")
    store = await Store.open(tmp_path / "partial.sqlite")
    try:
        await replay(store, [path], market_assets=["BTC"])
        (btc,) = await MarketStore(store).series("BTC", BINANCE, 0)
        assert btc.long_short_ratio is None and btc.open_interest_usd == 1000.5 * 64000.0
    finally:
        await store.close()
