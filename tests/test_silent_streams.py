"""A stream that stays connected but stops carrying liquidations while other
venues report is flagged silent in /status (and the log), and recovers with its next liquidation."""

from __future__ import annotations

import logging

from bot.core.models import MINUTE_MS
from bot.replies.compose import status_reply
from bot.replies.render_plain import render_plain
from bot.services.live import LiveIngest
from bot.services.queries import QueryService
from tests.support import liquidation

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
