"""A stream that stays connected but stops carrying liquidations while other
venues report is reconnected once; if that does not help it is flagged silent in
/status, the log and the /liq, /top, /big and /report footnotes, and recovers with its next liquidation."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.commands.report import report_handlers
from bot.core.models import MINUTE_MS
from bot.core.silence import SilenceRule, SilenceWatch
from bot.replies.compose import status_reply
from bot.replies.render_plain import render_plain
from bot.services.live import LiveFeeds, LiveIngest
from bot.services.queries import QueryService
from bot.services.reports import ReportService
from tests.fakes.all_venues import feeds_config, liquidation_frame
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.venue_ws import FakeVenueServer, VirtualClock
from tests.support import liquidation, until

CONSOLE = Caller("console", "console:local", "console:local", rate_limited=False)

BASE_MS = 1_742_601_600_000
STREAMS = [("binance", "usdm"), ("bybit", "linear"), ("okx", "public")]


async def status_of(store, ingest, now_ms: int) -> dict[str, str]:
    report = await QueryService(store, ingest.live_states).status(now_ms)
    return {f"{s.venue}/{s.stream}": s.state for s in report.streams}


async def deliver(ingest, now, key, at_ms):
    now[0] = at_ms
    await ingest.on_events(*key, [liquidation(at_ms, 1_000.0, venue=key[0])])


async def test_a_silent_stream_is_flagged_within_minutes_and_recovers(store, caplog):
    now = [BASE_MS]
    ingest = LiveIngest(store, now_ms=lambda: now[0], batch_ms=60_000)
    for key in STREAMS:
        await ingest.on_connected(*key, BASE_MS)
    for second in range(0, 600, 30):  # ten normal minutes: every stream reports every 30 s
        for key in STREAMS:
            await deliver(ingest, now, key, BASE_MS + second * 1000)
    went_quiet_ms = now[0]
    # Binance goes quiet; the others keep reporting.
    t = went_quiet_ms
    while t < went_quiet_ms + 9 * MINUTE_MS:
        t += 30_000
        for key in STREAMS[1:]:
            await deliver(ingest, now, key, t)
    assert (await status_of(store, ingest, t))["binance/usdm"] == "live"  # 9 min: within the floor
    while t < went_quiet_ms + 11 * MINUTE_MS:
        t += 30_000
        for key in STREAMS[1:]:
            await deliver(ingest, now, key, t)
    with caplog.at_level(logging.WARNING, logger="bot.services.live"):
        states = await status_of(store, ingest, t)
    assert states == {"binance/usdm": "silent", "bybit/linear": "live", "okx/public": "live"}
    assert "binance/usdm is connected but silent" in caplog.text
    report = await QueryService(store, ingest.live_states).status(t)
    assert "silent (no liquidations)" in render_plain(status_reply(report, t, "en"))

    await deliver(ingest, now, STREAMS[0], t + 1000)
    assert (await status_of(store, ingest, t + 1000))["binance/usdm"] == "live"
    await ingest.close()


async def test_a_quiet_market_flags_nothing(store):
    now = [BASE_MS]
    ingest = LiveIngest(store, now_ms=lambda: now[0], batch_ms=60_000)
    for key in STREAMS:
        await ingest.on_connected(*key, BASE_MS)
        await deliver(ingest, now, key, BASE_MS)
    now[0] = BASE_MS + 60 * MINUTE_MS  # an hour with no liquidation anywhere
    assert set((await status_of(store, ingest, now[0])).values()) == {"live"}
    await ingest.close()


async def test_a_stream_that_is_normally_sparse_gets_its_own_longer_allowance(store):
    now = [BASE_MS]
    ingest = LiveIngest(store, now_ms=lambda: now[0], batch_ms=60_000)
    for key in STREAMS:
        await ingest.on_connected(*key, BASE_MS)
    for minute in (0, 5, 10):  # okx normally reports every 5 minutes: allowance 6 x 5 = 30 min
        await deliver(ingest, now, STREAMS[2], BASE_MS + minute * MINUTE_MS)
    t = BASE_MS + 10 * MINUTE_MS
    while t < BASE_MS + 39 * MINUTE_MS:  # 29 min of okx silence: within its own allowance
        t += 30_000
        for key in STREAMS[:2]:
            await deliver(ingest, now, key, t)
    assert (await status_of(store, ingest, t))["okx/public"] == "live"
    while t < BASE_MS + 41 * MINUTE_MS:
        t += 30_000
        for key in STREAMS[:2]:
            await deliver(ingest, now, key, t)
    assert (await status_of(store, ingest, t))["okx/public"] == "silent"
    await ingest.close()


def test_after_its_reconnect_a_sparse_stream_gets_its_longest_gap_before_it_is_flagged():
    watch = SilenceWatch(SilenceRule())
    sparse, others = ("okx", "public"), [("binance", "usdm"), ("bybit", "linear")]
    for key in (sparse, *others):
        watch.connected(key, BASE_MS)
    for minute in (0, 5, 10):  # okx reports every 5 minutes: judged silent after 6 x 5 = 30 min
        watch.delivered(sparse, BASE_MS + minute * MINUTE_MS)
    for second in range(0, 45 * 60, 30):
        for key in others:
            watch.delivered(key, BASE_MS + second * 1000)
    assert watch.to_reconnect(BASE_MS + 40 * MINUTE_MS) == set()
    reconnect_ms = BASE_MS + 41 * MINUTE_MS
    assert watch.to_reconnect(reconnect_ms) == {sparse}
    watch.reconnected(sparse, reconnect_ms)
    assert watch.to_reconnect(reconnect_ms + MINUTE_MS) == set()  # once
    # Its longest gap (5 min) outlasts the 2-minute recheck floor.
    assert watch.flagged(reconnect_ms + 4 * MINUTE_MS) == set()
    assert watch.flagged(reconnect_ms + 5 * MINUTE_MS) == {sparse}
    watch.delivered(sparse, reconnect_ms + 6 * MINUTE_MS)
    assert watch.flagged(reconnect_ms + 6 * MINUTE_MS) == set()


# -- through the real runners: the silent stream is reconnected once ------------------

# Binance COIN-M goes quiet (its connection stays up and answers pings); the others report.
QUIET = ("binance", "coinm")
REPORTING = [("binance", "usdm"), ("aster", "futures"), ("bitfinex", "public")]
EVERY_S = 30.0  # virtual seconds between two liquidations of a reporting stream


@contextlib.asynccontextmanager
async def four_streams(store, clock):
    """LiveFeeds of Binance (usdm, coinm), Aster and Bitfinex against loopback fakes;
    a background task broadcasts one liquidation per reporting stream every EVERY_S
    (the streams in the yielded set: add QUIET to make it report)."""
    async with contextlib.AsyncExitStack() as stack:
        servers = {key: await stack.enter_async_context(FakeVenueServer(*key)) for key in (QUIET, *REPORTING)}
        http = await stack.enter_async_context(FakeVenueRest().client())
        feeds = LiveFeeds(feeds_config(servers), store, http, now_ms=clock.now_ms, sleep=clock.quiet_sleep, tick_s=0.5)
        reporting = {QUIET, *REPORTING}

        async def market() -> None:
            for n in itertools.count(1):
                for key in sorted(reporting):
                    await servers[key].broadcast(liquidation_frame(*key, n, clock.now_ms()))
                await clock.quiet_sleep(EVERY_S)

        tasks = [asyncio.create_task(feeds.run())]
        try:
            for server in servers.values():
                await server.wait_for(lambda s: s.subscribed_connections() == 1)
            tasks.append(asyncio.create_task(market()))
            yield feeds, servers, reporting
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def state_of(feeds, key=QUIET) -> str:
    return feeds.live_states()[key][0]


async def test_a_silent_stream_is_reconnected_once_then_flagged_with_a_footnote_and_recovers(store, caplog):
    clock = VirtualClock(100)
    caplog.set_level(logging.INFO, logger="bot.services.live")
    async with four_streams(store, clock) as (feeds, servers, reporting):
        quiet = servers[QUIET]
        await clock.quiet_sleep(5 * 60)  # five normal minutes: every stream reports every 30 s
        reporting.discard(QUIET)
        went_quiet_ms = clock.now_ms()
        # Judged silent after max(6 x 30 s, 10 min): the runner drops the connection and opens another.
        await quiet.wait_for(lambda s: s.connections == 2, timeout=15)
        reconnected_ms = clock.now_ms()
        # (counted from its last liquidation, up to EVERY_S before it was taken off the market)
        assert 10 * MINUTE_MS - EVERY_S * 1000 <= reconnected_ms - went_quiet_ms <= 11 * MINUTE_MS
        assert "binance/coinm: silent: no liquidation while other venues report; reconnecting once" in caplog.text
        await until(lambda: state_of(feeds) == "live", timeout=5)  # reconnected, not flagged: it may be cured
        assert clock.now_ms() - reconnected_ms < 2 * MINUTE_MS
        # Still silent 2 minutes (silence_recheck_s) after the reconnect: flagged.
        await until(lambda: state_of(feeds) == "silent", timeout=15)
        # (the reconnect was decided a keeper tick and a handshake before the fake saw it: 2 s of slack)
        assert clock.now_ms() - reconnected_ms >= 2 * MINUTE_MS - 2_000
        assert "binance/coinm is connected but silent" in caplog.text
        assert {state_of(feeds, key) for key in REPORTING} == {"live"}

        queries = QueryService(store, feeds.live_states)
        dispatcher = Dispatcher(queries, clock.now_ms, features=report_handlers(ReportService(store, queries)))
        for command in ("/liq", "/top", "/big", "/report"):
            reply = render_plain(await dispatcher.handle(command, CONSOLE))
            assert "Missing here: liquidations from Binance coinm, connected but silent" in reply, command
        zh = Dispatcher(QueryService(store, feeds.live_states), clock.now_ms, default_locale="zh")
        assert "此处缺少 Binance coinm 的爆仓：连接正常但无推送" in render_plain(await zh.handle("/liq", CONSOLE))

        # Flagged, it is not reconnected again (checked after 3 more virtual minutes).
        flagged_ms = clock.now_ms()
        await clock.quiet_sleep(3 * 60)
        assert clock.now_ms() - flagged_ms >= 3 * MINUTE_MS
        assert (quiet.connections, state_of(feeds)) == (2, "silent")

        # Its next liquidation ends it; the footnote goes with it.
        reporting.add(QUIET)
        await until(lambda: state_of(feeds) == "live", timeout=5)
        assert "binance/coinm carries liquidations again" in caplog.text
        reply = render_plain(await dispatcher.handle("/liq", CONSOLE))
        assert "Missing here" not in reply


async def test_a_stream_the_reconnect_cures_is_never_flagged(store, caplog):
    clock = VirtualClock(100)
    async with four_streams(store, clock) as (feeds, servers, reporting):
        quiet = servers[QUIET]
        await clock.quiet_sleep(5 * 60)
        reporting.discard(QUIET)
        await quiet.wait_for(lambda s: s.connections == 2, timeout=15)
        reporting.add(QUIET)  # the new connection carries liquidations again
        reconnected_ms = clock.now_ms()
        await until(lambda: state_of(feeds) == "live", timeout=5)
        states = set()
        while clock.now_ms() - reconnected_ms < 4 * MINUTE_MS:  # well past the 2 min recheck
            states.add(state_of(feeds))
            await clock.quiet_sleep(5)
        assert states == {"live"}
        assert quiet.connections == 2
        assert "is connected but silent" not in caplog.text
