"""Live ingest: runners -> LiveIngest -> Store, against fake venues on
127.0.0.1 with compressed time; and `record` -> `replay` giving the same
summaries as live ingest of the same frames."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import random

import httpx
import pytest

from bot.config import Config, FeedsConfig, MarketDataConfig
from bot.core.models import DAY_MS, HOUR_MS, Side, Window
from bot.feeds.runner import FeedRunner
from bot.feeds.settings import RunnerTuning
from bot.feeds.synthetic import LiquidationSpec, batch_frame_for, frame_for
from bot.feeds.venues import BY_NAME
from bot.feeds.sources import VenueStream
from bot.services.ingest import replay
from bot.services.live import LiveFeeds, LiveIngest
from bot.services.queries import QueryService
from bot.services.recorder import Recorder, record
from bot.storage.market_store import MarketStore
from bot.storage.store import Store
from tests.fakes.market_http import FakeMarketVenues
from tests.fakes.venue_rest import REST_BASE, FakeVenueRest
from tests.fakes.venue_ws import BASE_MS, FakeVenueServer, VirtualClock
from tests.support import until

EVERYTHING = Window(0, 4_000_000_000_000)




async def stored_events(store: Store):
    return await store.largest(None, EVERYTHING, 1_000_000)


async def stored_spans(store: Store, venue: str, stream: str):
    return [(s.start_ms, s.end_ms) for s in await store.spans(EVERYTHING) if (s.venue, s.stream) == (venue, stream)]


def event(n: int, at_ms: int = BASE_MS):
    from bot.core.models import LiquidationEvent

    return LiquidationEvent("binance", "usdm", "BTCUSDT", "BTC", Side.LONG, 60_000.0, 0.01 * n, 600.0 * n, at_ms + n)


# -- LiveIngest on its own ---------------------------------------------------------


async def test_events_are_written_in_batches_and_close_writes_the_rest(store):
    ingest = LiveIngest(store, now_ms=lambda: BASE_MS, batch_events=3, batch_ms=60_000)
    await ingest.on_events("binance", "usdm", [event(1), event(2)])
    await asyncio.sleep(0.05)
    assert ingest.stats.batches == 0 and ingest.pending_events == 2
    await ingest.on_events("binance", "usdm", [event(3)])  # a full batch: written now
    await until(lambda: ingest.stats.events_stored == 3)
    await ingest.on_events("binance", "usdm", [event(4), event(1)])  # event(1) again: a duplicate
    await ingest.close()
    assert ingest.stats.events_stored == 4 and ingest.stats.duplicates == 1
    assert len(await stored_events(store)) == 4


async def test_timer_flushes_and_extends_spans_so_a_disconnect_is_a_gap(store):
    now = [BASE_MS]
    ingest = LiveIngest(store, now_ms=lambda: now[0], sleep=lambda s: asyncio.sleep(0.01), batch_ms=1000)
    timer = asyncio.create_task(ingest.run())
    await ingest.on_connected("okx", "public", BASE_MS)
    await ingest.on_events("okx", "public", [event(1)])
    now[0] = BASE_MS + 5_000
    await until(lambda: ingest.stats.events_stored == 1)
    await until(lambda: ingest.stats.spans_written >= 2)
    assert await stored_spans(store, "okx", "public") == [(BASE_MS, BASE_MS + 5_000)]  # extended, not closed
    await ingest.on_disconnected("okx", "public", BASE_MS + 6_000, "closed 1006")
    now[0] = BASE_MS + 9_000
    await ingest.on_connected("okx", "public", BASE_MS + 9_000)
    now[0] = BASE_MS + 12_000
    timer.cancel()
    await ingest.close()
    assert await stored_spans(store, "okx", "public") == [
        (BASE_MS, BASE_MS + 6_000),
        (BASE_MS + 9_000, BASE_MS + 12_000),
    ]


async def test_live_states_for_status(store):
    ingest = LiveIngest(store, now_ms=lambda: BASE_MS)
    ingest.expect([("binance", "usdm"), ("bybit", "linear")])
    ingest.disable([("okx", "public")])
    await ingest.on_connected("binance", "usdm", BASE_MS)
    await ingest.on_frame("binance", "usdm", BASE_MS + 10, {"e": "forceOrder"})
    assert ingest.live_states() == {
        ("binance", "usdm"): ("live", BASE_MS + 10),
        ("bybit", "linear"): ("reconnecting", None),
        ("okx", "public"): ("disabled", None),
    }
    await ingest.on_disconnected("binance", "usdm", BASE_MS + 20, "closed")
    assert ingest.live_states()["binance", "usdm"] == ("reconnecting", BASE_MS + 10)
    status = await QueryService(store, ingest.live_states).status(BASE_MS + 30)
    assert {(s.venue, s.stream): s.state for s in status.streams}["okx", "public"] == "disabled"


# -- runner + LiveIngest + Store ------------------------------------------------------


def feeds_config(servers, **enabled) -> FeedsConfig:
    config = FeedsConfig()

    def url(key):
        return servers[key].url if key in servers else "ws://127.0.0.1:9/unused"

    return dataclasses.replace(
        config,
        binance=dataclasses.replace(
            config.binance, enabled=enabled.get("binance", True), usdm_ws_url=url(("binance", "usdm")),
            coinm_ws_url=url(("binance", "coinm")), coinm_rest_url=REST_BASE, usdm_rest_url=REST_BASE,
        ),
        bybit=dataclasses.replace(
            config.bybit, enabled=enabled.get("bybit", True), linear_ws_url=url(("bybit", "linear")),
            inverse_ws_url=url(("bybit", "inverse")), rest_url=REST_BASE,
        ),
        okx=dataclasses.replace(config.okx, enabled=enabled.get("okx", True), ws_url=url(("okx", "public")),
                                rest_url=REST_BASE),
        # Venues these tests have no fake of stay off (nothing here reaches the internet).
        **{venue: dataclasses.replace(getattr(config, venue), enabled=False)
           for venue in BY_NAME if venue not in ("binance", "bybit", "okx")},
    )


async def test_live_feeds_store_frames_once_and_flush_on_shutdown(store):
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    async with FakeVenueServer("binance", "usdm") as usdm, rest.client() as http:
        config = feeds_config({("binance", "usdm"): usdm}, bybit=False, okx=False)
        config = dataclasses.replace(config, binance=dataclasses.replace(config.binance, coinm_ws_url=usdm.url))
        feeds = LiveFeeds(
            config, store, http, tuning=RunnerTuning(batch_events=1000, batch_ms=10_000_000),
            now_ms=clock.now_ms, sleep=clock.quiet_sleep, tick_s=0.5,
        )
        assert feeds.live_states()["okx", "public"] == ("disabled", None)
        task = asyncio.create_task(feeds.run())
        await usdm.wait_for(lambda s: s.open_connections == 2)  # usdm and coinm (pointed here too)
        for n in range(5):
            spec = LiquidationSpec("binance", "usdm", "ETHUSDT", Side.SHORT, 3000.0, 1.0 + n, clock.now_ms())
            await usdm.broadcast(frame_for(spec))  # both connections get it; coinm cannot parse it
        await until(lambda: feeds.ingest.pending_events == 5)
        assert feeds.ingest.stats.batches == 0  # nothing due yet: batch size and interval are huge
        task.cancel()  # SIGTERM: pending events must still be written
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(await stored_events(store)) == 5
    assert feeds.live_states()["binance", "usdm"][0] == "reconnecting"
    spans = await stored_spans(store, "binance", "usdm")
    assert len(spans) == 1 and spans[0][1] > spans[0][0]
    coinm = {s.stream: s for s in feeds.statuses()}["coinm"]
    assert coinm.frames == 5 and coinm.events == 0


async def test_soak_ten_minutes_of_random_drops(store):
    """10 virtual minutes at 50x: frames every 0.5 s, the venue drops the
    connection at random (and sometimes refuses the next handshake)."""
    clock = VirtualClock(50)  # 12 s real; faster makes a loaded CI machine's jitter matter
    rng = random.Random(20250615)
    tuning = RunnerTuning(healthy_after_s=5.0, unavailable_backoff_s=3.0, batch_events=50, batch_ms=2000)
    async with FakeVenueServer("binance", "usdm") as server:
        server.clock = clock
        ingest = LiveIngest(store, now_ms=clock.now_ms, sleep=clock.quiet_sleep, batch_events=50, batch_ms=2000)
        runner = FeedRunner(
            VenueStream("binance", "usdm", server.url), ingest, tuning=tuning,
            now_ms=clock.now_ms, sleep=clock.sleep, rng=random.Random(1), tick_s=0.5,
        )
        timer = asyncio.create_task(ingest.run())
        task = asyncio.create_task(runner.run())
        await server.wait_for(lambda s: s.open_connections == 1)
        delivered, lost, drops = [], [], []
        end_ms = clock.now_ms() + 600_000
        n = 0
        while clock.now_ms() < end_ms:
            n += 1
            spec = LiquidationSpec("binance", "usdm", "BTCUSDT", rng.choice([Side.LONG, Side.SHORT]),
                                   60_000.0, round(0.001 * n, 3), clock.now_ms())
            (delivered if await server.broadcast(frame_for(spec)) else lost).append(spec)
            # Drop only connections the runner has seen open: a drop in the instant
            # between the server's accept and the client's is a failed connect, not a gap.
            live = ingest.live_states().get(("binance", "usdm"), ("",))[0] == "live"
            if server.open_connections and live and rng.random() < 1 / 60:
                if rng.random() < 0.3:
                    server.refusals.append((503, {}))
                drops.append(clock.now_ms())
                await server.drop()
            await clock.quiet_sleep(0.5)
        await until(lambda: ingest.stats.events_received == len(delivered), timeout=5)
        # A drop in the last moments opens its next span only once the runner is back.
        await until(lambda: runner.status.connects > len(drops) and runner.status.state == "live", timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        timer.cancel()
        await ingest.close()

    assert len(drops) >= 5 and lost  # the run really dropped and really lost frames
    stored = await stored_events(store)
    assert len(stored) == len(delivered)  # each delivered frame exactly once
    assert sorted((e.at_ms, e.quantity) for e in stored) == sorted((s.at_ms, s.quantity) for s in delivered)
    assert not {(s.at_ms, s.quantity) for s in lost} & {(e.at_ms, e.quantity) for e in stored}
    assert ingest.stats.duplicates == 0

    spans = await stored_spans(store, "binance", "usdm")
    assert len(spans) == len(drops) + 1  # every disconnect is a hole between spans
    tolerance_ms = 2_000  # scheduling jitter between the fake and the runner: 40 ms real at 50x
    for (_, gap_start), (gap_end, _), dropped_at in zip(spans, spans[1:], drops):
        assert abs(gap_start - dropped_at) <= tolerance_ms
        assert gap_end > gap_start
        reaccepted = min(t for t in server.accepted_at_ms if t >= dropped_at)
        assert abs(gap_end - reaccepted) <= tolerance_ms
    # Frames sent while nobody was connected fall in those holes.
    for spec in lost:
        assert not any(start + tolerance_ms < spec.at_ms < end - tolerance_ms for start, end in spans)


# -- record, then replay ------------------------------------------------------------


def sample_frames(past_ms: int) -> dict[tuple[str, str], list[dict]]:
    """Frames for every stream; events a day before the recording, so the
    summaries compared below are over a window no span touches."""
    def spec(venue, stream, instrument, side, price, quantity, k):
        return LiquidationSpec(venue, stream, instrument, side, price, quantity, past_ms + k * 1_000)

    long, short = Side.LONG, Side.SHORT
    return {
        ("binance", "usdm"): [
            frame_for(spec("binance", "usdm", "BTCUSDT", long, 61_000.0, 2.5, 1)),
            frame_for(spec("binance", "usdm", "ETHUSDT", short, 3_100.0, 40.0, 2)),
            frame_for(spec("binance", "usdm", "SOLUSDT", long, 150.0, 900.0, 3)),
        ],
        ("binance", "coinm"): [
            frame_for(spec("binance", "coinm", "BTCUSD_PERP", long, 61_000.0, 120.0, 4)),
        ],
        ("bybit", "linear"): [
            batch_frame_for([spec("bybit", "linear", "BTCUSDT", long, 60_900.0, 1.2, 5),
                             spec("bybit", "linear", "BTCUSDT", short, 61_100.0, 0.4, 6)]),
            batch_frame_for([spec("bybit", "linear", "SOLUSDT", long, 149.0, 300.0, 7)]),
        ],
        ("bybit", "inverse"): [
            batch_frame_for([spec("bybit", "inverse", "BTCUSD", long, 61_000.0, 50_000.0, 8)]),
        ],
        ("okx", "public"): [
            batch_frame_for([spec("okx", "public", "BTC-USDT-SWAP", long, 61_000.0, 300.0, 9),
                             spec("okx", "public", "ETH-USDT-SWAP", long, 3_050.0, 120.0, 10)]),
            batch_frame_for([spec("okx", "public", "BTC-USD-250328", short, 61_500.0, 80.0, 11)]),
        ],
    }


async def test_record_then_replay_reproduces_the_live_summaries(store, tmp_path):
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    keys = [("binance", "usdm"), ("binance", "coinm"), ("bybit", "linear"), ("bybit", "inverse"), ("okx", "public")]
    servers = {key: FakeVenueServer(*key) for key in keys}
    for server in servers.values():
        await server.start()
    out = tmp_path / "rec.jsonl.gz"
    reports = []
    try:
        async with rest.client() as http:
            config = feeds_config(servers)
            feeds = LiveFeeds(config, store, http, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=0.5)
            live_task = asyncio.create_task(feeds.run())
            record_task = asyncio.create_task(
                record(config, out, None, http=http, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=0.5,
                       progress=reports.append)
            )
            for server in servers.values():
                await server.wait_for(lambda s: s.subscribed_connections() == 2)
                if server.venue == "bybit":  # every chunk of the symbol list subscribed, by both clients
                    await server.wait_for(lambda s: len(s.subscribe_requests) == 2 * len(server_chunks(rest, s)))
            frames = sample_frames(BASE_MS - DAY_MS)
            expected_events = 0
            for key, key_frames in frames.items():
                for frame in key_frames:
                    assert await servers[key].broadcast(frame) == 2
                    expected_events += len(frame.get("data", [None])) if key[0] != "okx" else sum(
                        len(entry["details"]) for entry in frame["data"])
            await until(lambda: feeds.ingest.stats.events_received == expected_events)
            await until(lambda: bool(reports) and reports[-1].events == expected_events)
            for task in (record_task, live_task):
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
    finally:
        for server in servers.values():
            await server.stop()

    lines = [json.loads(line) for line in gzip.open(out, "rt")]
    assert sum(1 for line in lines if "rest" in line) == 3  # OKX SWAP + FUTURES, Binance exchangeInfo
    assert lines[0].get("rest") or lines[1].get("rest")  # sizes precede the frames that need them

    replayed = await Store.open(tmp_path / "replayed.sqlite")
    try:
        report = await replay(replayed, [out])
        assert report.stored == expected_events and report.decode.bad_lines == 0
        window = Window(BASE_MS - DAY_MS - HOUR_MS, BASE_MS - DAY_MS + HOUR_MS)
        live_queries, replay_queries = QueryService(store), QueryService(replayed)
        for asset in (None, "BTC", "ETH", "SOL"):
            live_summary = await live_queries.summary(asset, window)
            assert live_summary.total.events > 0
            assert await replay_queries.summary(asset, window) == live_summary
        assert (await replayed.stats()).events == (await store.stats()).events == expected_events
    finally:
        await replayed.close()


def server_chunks(rest: FakeVenueRest, server: FakeVenueServer) -> list:
    symbols = rest.bybit_symbols[server.stream]
    return [symbols[i : i + 10] for i in range(0, len(symbols), 10)]


async def test_recorder_writes_plain_jsonl(tmp_path):
    path = tmp_path / "plain.jsonl"
    recorder = Recorder(path, now_ms=lambda: BASE_MS)
    await recorder.on_rest("binance", BASE_MS, "/dapi/v1/exchangeInfo", {"symbols": []})
    await recorder.on_frame("okx", "public", BASE_MS + 1, "pong")
    recorder.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"venue": "binance", "at": BASE_MS, "rest": {"path": "/dapi/v1/exchangeInfo", "body": {"symbols": []}}},
        {"venue": "okx", "stream": "public", "at": BASE_MS + 1, "frame": "pong"},
    ]


async def test_record_keeps_market_polls_and_replay_turns_them_into_samples(tmp_path):
    """`liqbot record` runs the market poller too; its responses replay into the samples /risk reads."""
    clock = VirtualClock(100)
    assets = ["BTC", "ETH"]
    market_fake = FakeMarketVenues(assets, clock.now_ms)
    await market_fake.start()
    out = tmp_path / "market.jsonl"
    config = Config(
        feeds=feeds_config({}, binance=False, bybit=False, okx=False),
        market=MarketDataConfig(venues=("binance",), assets=("BTC", "ETH"), interval_s=60.0),
    )
    config = dataclasses.replace(
        config, feeds=dataclasses.replace(
            config.feeds, binance=dataclasses.replace(config.feeds.binance, usdm_rest_url=market_fake.base_url))
    )
    reports = []
    try:
        async with httpx.AsyncClient() as http:
            task = asyncio.create_task(record(config.feeds, out, None, http=http, now_ms=clock.now_ms,
                                              sleep=clock.sleep, progress=reports.append, market=config))
            # The start's open-interest backfill and klines (each 2 assets x 5 requests of at most
            # 500 5-minute points over 8 days), then two polls.
            await until(lambda: bool(reports) and reports[-1].rest_responses >= 2 * 5 + 2 * 5 + 2 * 5, timeout=30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await market_fake.stop()
    replayed = await Store.open(tmp_path / "replayed.sqlite")
    try:
        report = await replay(replayed, [out], market_assets=assets)
        assert report.market_samples >= 4 and report.decode.bad_lines == 0
        btc = await MarketStore(replayed).series("BTC", "binance", 0)
        assert btc[0].mark_price == 64_000.0 and btc[0].open_interest_usd and btc[0].long_short_ratio
    finally:
        await replayed.close()
