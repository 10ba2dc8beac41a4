"""The reconnecting feed runner and the venue stream sources, against fake
venue websocket servers on 127.0.0.1 and a fake metadata REST API.

Time is compressed: the runner's clock and sleep come from a VirtualClock
(100x, or instant), so watchdogs of a minute take 0.6 s and no test waits
for real minutes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import random

import pytest

from bot.config import FeedsConfig
from bot.core.models import Side
from bot.feeds.errors import FrameError
from bot.feeds.http_policy import backoff_delay, retry_after_s
from bot.feeds.runner import MAX_RETRY_AFTER_S, FeedRunner
from bot.feeds.settings import RunnerTuning
from bot.feeds.sinks import FanOutSink, NullSink
from bot.feeds.synthetic import LiquidationSpec, batch_frame_for, frame_for
from bot.feeds.sources import (
    ContractsStream,
    SymbolsStream,
    VenueStream,
    build_sources,
    disabled_streams,
    stream_urls,
)
from bot.feeds.venues.bybit import MAX_ARGS_PER_MESSAGE as BYBIT_MAX_ARGS_PER_MESSAGE
from bot.feeds.venues.bybit import subscribe_messages as bybit_subscribe_messages
from bot.feeds.venues.okx import subscribe_message as okx_subscribe_message
from tests.fakes.venue_rest import REST_BASE, FakeVenueRest
from tests.fakes.venue_ws import BASE_MS, FakeVenueServer, VirtualClock
from tests.support import until

TICK_S = 0.5


class CollectingSink(NullSink):
    def __init__(self) -> None:
        self.events = []
        self.frames = []
        self.rest = []
        self.log = []

    async def on_connected(self, venue, stream, at_ms):
        self.log.append(("connected", at_ms))

    async def on_frame(self, venue, stream, at_ms, frame):
        self.frames.append(frame)

    async def on_events(self, venue, stream, events):
        self.events += events

    async def on_disconnected(self, venue, stream, at_ms, reason):
        self.log.append(("disconnected", at_ms, reason))

    async def on_rest(self, venue, at_ms, path, body):
        self.rest.append((venue, path))




def backoffs(clock: VirtualClock) -> list[float]:
    """The runner's backoff sleeps (its keeper ticks are TICK_S exactly)."""
    return [delay for delay in clock.sleeps if delay != TICK_S]


def start(runner: FeedRunner) -> asyncio.Task:
    return asyncio.create_task(runner.run())


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def usdm_spec(clock: VirtualClock, n: int, side: Side = Side.LONG) -> LiquidationSpec:
    return LiquidationSpec("binance", "usdm", "BTCUSDT", side, 60_000.0 + n, 0.001 * (n + 1), clock.now_ms() - 5)


# -- pure pieces --------------------------------------------------------------


def test_the_config_section_is_the_tuning():
    assert type(FeedsConfig().runner) is RunnerTuning  # defined once, loaded by bot.config
    assert RunnerTuning.of(FeedsConfig().runner) == RunnerTuning() == RunnerTuning.of(None)


def test_backoff_doubles_with_jitter_and_is_capped():
    rng = random.Random(7)
    for failures in range(1, 12):
        ceiling = min(120.0, 1.0 * 2 ** (failures - 1))
        delay = backoff_delay(failures, 1.0, 120.0, rng.random())
        assert ceiling / 2 <= delay < ceiling


def test_retry_after_header_of_a_refused_handshake_is_capped_at_an_hour():
    at_ms = 1_445_412_360_000  # 2015-10-21T07:26:00Z
    assert retry_after_s("120", at_ms, MAX_RETRY_AFTER_S) == 120.0
    assert retry_after_s("999999", at_ms, MAX_RETRY_AFTER_S) == 3600.0
    assert retry_after_s(None, at_ms, MAX_RETRY_AFTER_S) is None
    # The HTTP-date form counts too (the same policy as the REST poller's).
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", at_ms, MAX_RETRY_AFTER_S) == 120.0


def test_bybit_subscriptions_are_chunked_to_ten_args():
    symbols = [f"S{i}USDT" for i in range(23)]
    messages = [json.loads(m) for m in bybit_subscribe_messages(symbols)]
    assert [len(m["args"]) for m in messages] == [10, 10, 3]
    assert all(m["op"] == "subscribe" for m in messages)
    assert [a for m in messages for a in m["args"]] == [f"allLiquidation.{s}" for s in symbols]
    assert bybit_subscribe_messages([]) == []


def test_okx_subscribes_swap_and_futures_liquidations():
    assert json.loads(okx_subscribe_message()) == {
        "op": "subscribe",
        "args": [
            {"channel": "liquidation-orders", "instType": "SWAP"},
            {"channel": "liquidation-orders", "instType": "FUTURES"},
        ],
    }


def test_sources_follow_the_config():
    config = FeedsConfig()
    urls = stream_urls(config)
    assert urls["binance", "usdm"] == "wss://fstream.binance.com/market/ws/!forceOrder@arr"
    # Binance's 2026 /ws -> /market/ws move is USD-M only; the COIN-M docs still say /ws.
    assert urls["binance", "coinm"] == "wss://dstream.binance.com/ws/!forceOrder@arr"
    assert urls["okx", "public"] == config.okx.ws_url
    assert disabled_streams(config) == []
    sources = build_sources(config, http=None, sink=NullSink())  # type: ignore[arg-type]
    assert [(s.venue, s.stream) for s in sources] == list(urls)
    by_key = {(s.venue, s.stream): s for s in sources}
    assert by_key["binance", "usdm"].max_connection_s == 85800.0
    assert by_key["bybit", "linear"].heartbeat.message == '{"op":"ping"}'
    assert by_key["bybit", "linear"].heartbeat.every_s == 20.0
    okx = by_key["okx", "public"]
    assert (okx.heartbeat.message, okx.heartbeat.every_s, okx.heartbeat.idle_only) == ("ping", 25.0, True)
    assert okx.max_connection_s is None


# -- streaming and reconnecting -----------------------------------------------


async def test_drop_mid_stream_reconnects_after_the_expected_backoff():
    clock = VirtualClock(100)
    tuning = RunnerTuning(healthy_after_s=5.0, backoff_base_s=2.0)
    async with FakeVenueServer("binance", "usdm") as server:
        sink = CollectingSink()
        runner = FeedRunner(
            VenueStream("binance", "usdm", server.url), sink, tuning=tuning,
            now_ms=clock.now_ms, sleep=clock.sleep, rng=random.Random(3), tick_s=TICK_S,
        )
        task = start(runner)
        await server.wait_for(lambda s: s.open_connections == 1)
        for n in range(5):
            await server.broadcast(frame_for(usdm_spec(clock, n)))
        await until(lambda: len(sink.events) == 5)
        await asyncio.sleep(clock.real_s(6))  # healthy: lived longer than healthy_after_s
        await server.drop()  # a healthy connection drops: one short delay
        await server.wait_for(lambda s: s.open_connections == 1)
        await server.drop()  # this one dropped at once: the delay doubles
        await server.wait_for(lambda s: s.open_connections == 1)
        for n in range(5, 8):
            await server.broadcast(frame_for(usdm_spec(clock, n)))
        await until(lambda: len(sink.events) == 8)
        await stop(task)

    twin = random.Random(3)
    expected = [backoff_delay(1, 2.0, 120.0, twin.random()), backoff_delay(2, 2.0, 120.0, twin.random())]
    assert backoffs(clock) == expected
    assert 1.0 <= expected[0] < 2.0 and 2.0 <= expected[1] < 4.0
    assert [e.quantity for e in sink.events] == [0.001 * (n + 1) for n in range(8)]
    assert runner.status.connects == 3 and runner.status.drops == 3
    kinds = [entry[0] for entry in sink.log]
    assert kinds == ["connected", "disconnected"] * 3
    assert sink.log[-1][2] == "stopped"
    # Each reconnect waited (on the virtual clock) at least its backoff.
    disconnected_at, reconnected_at = sink.log[1][1], sink.log[2][1]
    assert reconnected_at - disconnected_at >= expected[0] * 1000 - 50


async def test_accept_and_close_at_once_backs_off_instead_of_looping():
    clock = VirtualClock(200)
    async with FakeVenueServer("binance", "usdm") as server:
        server.close_on_accept = True
        runner = FeedRunner(
            VenueStream("binance", "usdm", server.url), NullSink(),
            now_ms=clock.now_ms, sleep=clock.sleep, rng=random.Random(5), tick_s=TICK_S,
        )
        task = start(runner)
        await asyncio.sleep(0.6)  # 120 virtual seconds
        await stop(task)
    delays = backoffs(clock)
    # 120 s of 1, 2, 4, 8, 16, 32, 64 s ceilings (each at least half): a handful of tries, no storm.
    assert 3 <= server.connections <= 9
    assert runner.status.connects == server.connections
    for index, delay in enumerate(delays):
        ceiling = min(120.0, 2.0**index)
        assert ceiling / 2 <= delay < ceiling


async def test_watchdog_reopens_a_connection_that_went_silent():
    clock = VirtualClock(100)
    async with FakeVenueServer("binance", "usdm") as server:
        sink = CollectingSink()
        runner = FeedRunner(
            VenueStream("binance", "usdm", server.url), sink,
            tuning=RunnerTuning(watchdog_s=30.0, ping_interval_s=10.0),
            now_ms=clock.now_ms, sleep=clock.sleep, tick_s=TICK_S,
        )
        task = start(runner)
        await server.wait_for(lambda s: s.open_connections == 1)
        await asyncio.sleep(clock.real_s(45))  # pongs keep a quiet connection alive
        assert server.connections == 1 and runner.status.state == "live"
        server.silence()  # no frames, no pongs from now on
        silenced_at = clock.now_ms()
        await server.wait_for(lambda s: s.connections == 2, timeout=3)
        await stop(task)
    reason = sink.log[1][2]
    assert reason.startswith("watchdog: no frame or pong for")
    assert sink.log[1][1] - silenced_at >= 30_000 - 10_000  # the last pong could predate the silence


async def test_garbage_frames_are_counted_and_the_runner_survives():
    clock = VirtualClock(100)
    async with FakeVenueServer("binance", "usdm") as server:
        sink = CollectingSink()
        runner = FeedRunner(
            VenueStream("binance", "usdm", server.url), sink, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=TICK_S
        )
        task = start(runner)
        await server.wait_for(lambda s: s.open_connections == 1)
        await server.send_raw(b"\x00\xff\xfe")
        await server.send_raw("{not json")
        await server.send_raw('{"e":"forceOrder","E":1,"o":5}')
        await server.send_raw('{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","ap":"-1","z":"1","T":1}}')
        await server.send_raw('{"error":{"code":2,"msg":"Invalid request"},"id":1}')
        await server.broadcast(frame_for(usdm_spec(clock, 1)))
        await until(lambda: len(sink.events) == 1)
        await stop(task)
    assert runner.status.bad_frames == 4
    assert runner.status.venue_errors == 1
    assert runner.status.connects == 1 and runner.status.frames == 6
    # Every message reaches on_frame (the recorder), undecodable ones as text.
    assert sink.frames[1] == "{not json" and len(sink.frames) == 6


async def test_refused_handshakes_back_off_longer():
    clock = VirtualClock(scale=None)  # sleeps take no real time
    async with FakeVenueServer("binance", "usdm") as server:
        server.refusals = [(503, {}), (403, {}), (429, {"Retry-After": "900"})]
        sink = CollectingSink()
        runner = FeedRunner(
            VenueStream("binance", "usdm", server.url), sink, now_ms=clock.now_ms, sleep=clock.sleep,
            rng=random.Random(1), tick_s=TICK_S,
        )
        task = start(runner)
        await server.wait_for(lambda s: s.connections >= 1)
        await stop(task)
    first, second, third = backoffs(clock)[:3]
    tuning = RunnerTuning()
    assert tuning.unavailable_backoff_s <= first < 2 * tuning.unavailable_backoff_s
    assert second >= tuning.refused_backoff_s  # minutes after a 403
    assert third >= 900  # Retry-After is honoured
    assert runner.status.attempts >= 4
    assert server.attempts >= 4


async def test_planned_reconnect_before_the_daily_cut_off():
    clock = VirtualClock(100)
    config = FeedsConfig()
    async with FakeVenueServer("binance", "usdm") as server:
        source = build_sources(config, http=None, sink=NullSink(), tuning=RunnerTuning(binance_reconnect_after_s=20.0))[0]  # type: ignore[arg-type]
        source.url = server.url
        sink = CollectingSink()
        runner = FeedRunner(source, sink, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=TICK_S)
        task = start(runner)
        await server.wait_for(lambda s: s.connections == 2, timeout=3)
        await stop(task)
    assert sink.log[1][2] == "planned reconnect"
    assert backoffs(clock)[0] == 0.0
    assert sink.log[1][1] - sink.log[0][1] >= 20_000


async def test_cancelling_closes_the_socket():
    clock = VirtualClock(100)
    async with FakeVenueServer("binance", "usdm") as server:
        sink = CollectingSink()
        runner = FeedRunner(VenueStream("binance", "usdm", server.url), sink, now_ms=clock.now_ms, sleep=clock.sleep)
        task = start(runner)
        await server.wait_for(lambda s: s.open_connections == 1)
        await until(lambda: runner.status.state == "live")
        await stop(task)
        await server.wait_for(lambda s: s.open_connections == 0, timeout=3)
    assert sink.log[-1][2] == "stopped"
    assert runner.status.state == "reconnecting"


async def test_fan_out_isolates_a_failing_sink():
    class Broken(NullSink):
        async def on_events(self, venue, stream, events):
            raise RuntimeError("disk full")

    good = CollectingSink()
    fan_out = FanOutSink(Broken(), good)
    await fan_out.on_events("binance", "usdm", ["e1"])
    await fan_out.on_events("binance", "usdm", ["e2"])
    assert good.events == ["e1", "e2"]
    assert fan_out.failures == {0: 2, 1: 0}


# -- venue specifics ----------------------------------------------------------


def gunzip(message: str | bytes) -> bytes:
    try:
        return gzip.decompress(message if isinstance(message, bytes) else message.encode())
    except (OSError, EOFError) as error:
        raise FrameError(f"not gzip: {error}") from None


async def test_a_stream_that_gzips_its_frames_and_pings_is_unwrapped_and_answered():
    # HTX's shape: every frame gzipped; {"op":"ping","ts":T} must be answered with the same ts.
    clock = VirtualClock(100)
    async with FakeVenueServer("binance", "usdm") as server:
        sink = CollectingSink()
        source = VenueStream("binance", "usdm", server.url)
        source.unwrap = gunzip
        source.answer = lambda frame: (
            json.dumps({"op": "pong", "ts": frame["ts"]}) if type(frame) is dict and frame.get("op") == "ping" else None
        )
        runner = FeedRunner(source, sink, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=TICK_S)
        task = start(runner)
        await server.wait_for(lambda s: s.open_connections == 1)
        await server.send_raw(gzip.compress(json.dumps({"op": "ping", "ts": "1492420473058"}).encode()))
        await until(lambda: '{"op": "pong", "ts": "1492420473058"}' in server.received)
        await server.send_raw(gzip.compress(json.dumps(frame_for(usdm_spec(clock, 1))).encode()))
        await server.send_raw(b"not gzip at all")
        await until(lambda: len(sink.events) == 1 and runner.status.bad_frames == 1)
        await stop(task)
    assert sink.frames[0] == {"op": "ping", "ts": "1492420473058"}  # recorded decompressed
    assert sink.events[0].instrument == "BTCUSDT"
    assert runner.status.bad_frames == 1 and runner.status.venue_errors == 0


async def test_bybit_pages_symbols_chunks_subscriptions_and_adds_new_listings_live():
    clock = VirtualClock(100)
    rest = FakeVenueRest(page_size=7)
    tuning = RunnerTuning(symbols_refresh_s=30.0, ping_interval_s=5.0)
    async with FakeVenueServer("bybit", "linear") as server, rest.client() as http:
        source = SymbolsStream("bybit", "linear", server.url, REST_BASE, http, tuning, clock.now_ms)
        sink = CollectingSink()
        runner = FeedRunner(source, sink, tuning=tuning, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=TICK_S)
        task = start(runner)
        expected = rest.bybit_symbols["linear"]
        topics = lambda s: {a for r in s.subscribe_requests for a in r["args"]}  # noqa: E731
        await server.wait_for(lambda s: len(topics(s)) == len(expected))
        # Paged with the cursor: 24 entries (one closed) at 7 a page.
        pages = [q for p, q in rest.requests if p == "/v5/market/instruments-info"]
        assert [q.get("cursor") for q in pages] == [None, "7", "14", "21"]
        assert all(q["category"] == "linear" and q["limit"] == "1000" for q in pages)
        assert topics(server) == {f"allLiquidation.{s}" for s in expected}  # LUNAUSDT is closed
        assert all(len(r["args"]) <= BYBIT_MAX_ARGS_PER_MESSAGE for r in server.subscribe_requests)

        spec = LiquidationSpec("bybit", "linear", "SOLUSDT", Side.LONG, 150.0, 3.0, clock.now_ms())
        await server.broadcast(batch_frame_for([spec]))
        await until(lambda: len(sink.events) == 1)

        # A new listing is subscribed on the live connection at the next refresh.
        rest.bybit_symbols["linear"].append("NEWUSDT")
        await server.wait_for(lambda s: "allLiquidation.NEWUSDT" in topics(s), timeout=3)
        assert server.subscribe_requests[-1]["args"] == ["allLiquidation.NEWUSDT"]
        new = LiquidationSpec("bybit", "linear", "NEWUSDT", Side.SHORT, 1.5, 100.0, clock.now_ms())
        await server.broadcast(batch_frame_for([new]))
        await until(lambda: len(sink.events) == 2)
        assert server.app_pings >= 1  # {"op":"ping"} heartbeats
        await stop(task)
    assert server.connections == 1
    assert runner.status.venue_errors == 0
    assert sink.events[1].instrument == "NEWUSDT" and sink.events[1].liquidated is Side.SHORT


async def test_okx_unknown_instrument_triggers_one_rate_limited_refresh():
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    rest.okx_hidden = {"SOL-USDT-SWAP"}
    tuning = RunnerTuning(unknown_refresh_min_s=600.0)
    async with FakeVenueServer("okx", "public") as server, rest.client() as http:
        defaults = FeedsConfig()
        config = dataclasses.replace(
            defaults, okx=dataclasses.replace(defaults.okx, ws_url=server.url, rest_url=REST_BASE)
        )
        sink = CollectingSink()
        (source,) = [
            s for s in build_sources(config, http, sink, tuning=tuning, now_ms=clock.now_ms) if s.venue == "okx"
        ]
        runner = FeedRunner(source, sink, tuning=tuning, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=TICK_S)
        task = start(runner)
        await server.wait_for(lambda s: s.subscribed_connections() == 1)
        assert server.subscribe_requests == [json.loads(okx_subscribe_message())]
        assert rest.count("/api/v5/public/instruments", instType="SWAP") == 1
        assert [path for _, path in sink.rest] == [
            "/api/v5/public/instruments?instType=SWAP", "/api/v5/public/instruments?instType=FUTURES"
        ]

        rest.okx_hidden = set()  # listed since we loaded
        sol = LiquidationSpec("okx", "public", "SOL-USDT-SWAP", Side.LONG, 150.0, 10.0, clock.now_ms())
        btc = LiquidationSpec("okx", "public", "BTC-USDT-SWAP", Side.SHORT, 60_000.0, 2.0, clock.now_ms())
        await server.broadcast(batch_frame_for([sol, btc]))
        await until(lambda: len(sink.events) == 1 and rest.count("/api/v5/public/instruments", instType="SWAP") == 2)
        assert runner.status.unpriced_events == 1
        await until(lambda: source.contracts().get("SOL-USDT-SWAP") is not None)
        await server.broadcast(batch_frame_for([sol]))
        await until(lambda: len(sink.events) == 2)
        assert sink.events[1].notional_usd == pytest.approx(10 * 1.0 * 150.0)  # ctVal 1 SOL

        # An instrument no refresh knows: counted, never guessed; one refresh at most per window.
        ghost = LiquidationSpec("okx", "public", "GHOST-USDT-SWAP", Side.LONG, 1.0, 5.0, clock.now_ms())
        for _ in range(3):
            await server.broadcast(batch_frame_for([ghost]))
        await until(lambda: runner.status.unpriced_events == 4)
        assert rest.count("/api/v5/public/instruments", instType="SWAP") == 2
        assert len(sink.events) == 2

        await asyncio.sleep(clock.real_s(30))  # silence: OKX wants a text ping within 30 s
        assert server.app_pings >= 1
        await stop(task)


async def test_binance_coinm_prices_with_exchange_info_contract_sizes():
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    async with FakeVenueServer("binance", "coinm") as server, rest.client() as http:
        sink = CollectingSink()
        source = ContractsStream(
            "binance", "coinm", server.url,
            [(REST_BASE + "/dapi/v1/exchangeInfo", None, "/dapi/v1/exchangeInfo")],
            http, sink, RunnerTuning(), clock.now_ms,
        )
        runner = FeedRunner(source, sink, now_ms=clock.now_ms, sleep=clock.sleep, tick_s=TICK_S)
        task = start(runner)
        await server.wait_for(lambda s: s.open_connections == 1)
        specs = [
            LiquidationSpec("binance", "coinm", "BTCUSD_PERP", Side.LONG, 60_000.0, 3.0, clock.now_ms()),
            LiquidationSpec("binance", "coinm", "ETHUSD_PERP", Side.SHORT, 3_000.0, 7.0, clock.now_ms()),
        ]
        for spec in specs:
            await server.broadcast(frame_for(spec))
        await until(lambda: len(sink.events) == 2)
        await stop(task)
    assert [e.notional_usd for e in sink.events] == [300.0, 70.0]
    assert sink.rest == [("binance", "/dapi/v1/exchangeInfo")]


async def test_a_metadata_refresh_that_fails_to_apply_keeps_the_last_good_book():
    now = [BASE_MS]
    rest = FakeVenueRest()
    async with rest.client() as http:
        source = ContractsStream(
            "binance", "coinm", "ws://127.0.0.1:9/unused",
            [(REST_BASE + "/dapi/v1/exchangeInfo", None, "/dapi/v1/exchangeInfo")],
            http, NullSink(), RunnerTuning(contracts_refresh_s=60.0), lambda: now[0],
        )
        await source.prepare()
        assert source.contracts()["BTCUSD_PERP"].size == 100
        for bad in (
            {"symbols": [{"symbol": "BTCUSD_PERP", "contractSize": 10**400}]},  # OverflowError before
            {"symbols": "none today"},
        ):
            rest.bodies["/dapi/v1/exchangeInfo"] = lambda params, bad=bad: bad
            now[0] += 61_000  # stale: prepare() refreshes before the next connect
            await source.prepare()  # never raises while a book is known: the stream reconnects with it
            assert source.contracts()["BTCUSD_PERP"].size == 100
        assert rest.count("/dapi/v1/exchangeInfo") == 3


async def test_metadata_failure_is_a_failed_attempt_with_backoff():
    clock = VirtualClock(100)
    rest = FakeVenueRest()
    rest.fail_next["/v5/market/instruments-info"] = 2
    async with FakeVenueServer("bybit", "inverse") as server, rest.client() as http:
        source = SymbolsStream("bybit", "inverse", server.url, REST_BASE, http, RunnerTuning(), clock.now_ms)
        runner = FeedRunner(source, NullSink(), now_ms=clock.now_ms, sleep=clock.sleep, tick_s=TICK_S,
                            rng=random.Random(2))
        task = start(runner)
        await server.wait_for(lambda s: s.subscribed_connections() == 1)
        await stop(task)
    assert server.attempts == 1  # no connection without a symbol list
    assert len(backoffs(clock)) == 2 and runner.status.attempts == 3
