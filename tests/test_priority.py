"""Commands go ahead of background work in the database: on SQLite a command's reads run
on connections of their own (bot.plumbing.priority), so a reply never waits behind the
reads queued by alerts or a digest fan-out, nor behind another command's slow read."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.core.models import MINUTE_MS
from bot.plumbing.handover import HANDOVER_AFTER_S, NAP_EVERY_S, handed_over
from bot.plumbing.priority import foreground, make_way, waited_for
from bot.replies.render_plain import render_plain
from bot.services.queries import QueryService
from bot.storage.store import Store
from tests.support import liquidation

NOW = 1_742_558_400_000
PRIVATE = Caller("telegram", "telegram:42", "telegram:42")
# About a millisecond of SQLite's time each: 300 of them keep its connection busy for a while.
BACKGROUND_READ = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT count(*) FROM n"


async def test_a_command_is_answered_while_hundreds_of_background_reads_wait(tmp_path):
    store = await Store.open(tmp_path / "liq.sqlite")
    try:
        await store.add_events([liquidation(NOW - MINUTE_MS, 2_500_000)])
        dispatcher = Dispatcher(QueryService(store), lambda: NOW)
        background = [asyncio.create_task(store.db.fetch(BACKGROUND_READ)) for _ in range(300)]
        await asyncio.sleep(0)  # each has queued its read
        reply = render_plain(await dispatcher.handle("/liq BTC 1h", PRIVATE))
        waiting = sum(not read.done() for read in background)
        assert "$2.50M" in reply
        assert waiting > 0, "the reply waited for every background read"
        assert {rows[0][0] for rows in await asyncio.gather(*background)} == {20_000}
    finally:
        await store.close()


@pytest.mark.parametrize("given_up", [False, True], ids=["waited for", "given up on"])
async def test_a_reply_does_not_wait_behind_another_commands_slow_read(tmp_path, given_up):
    store = await Store.open(tmp_path / "liq.sqlite")
    try:
        await store.add_events([liquidation(NOW - MINUTE_MS, 2_500_000)])
        dispatcher = Dispatcher(QueryService(store), lambda: NOW)
        # About a second of SQLite's time: a person's read that a firehose has slowed down.
        slow_sql = BACKGROUND_READ.replace("20000", "5000000")

        async def slow_read() -> list[tuple]:
            with foreground():
                return await store.db.fetch(slow_sql)

        slow = asyncio.create_task(slow_read())
        # Half as long, in the background: a clock that ends before the slow read does.
        half = asyncio.create_task(store.db.fetch(slow_sql.replace("5000000", "2500000")))
        await asyncio.sleep(0.05)  # both reads are on readers' threads
        if given_up:  # its person left (a timeout, a shutdown): the read runs on regardless
            slow.cancel()
        reply = render_plain(await asyncio.wait_for(dispatcher.handle("/liq BTC 1h", PRIVATE), 10))
        assert "$2.50M" in reply
        assert not half.done(), "the reply waited for the other command's read"
        assert (await asyncio.wait_for(half, 60)) == [(2_500_000,)]
        if given_up:
            return
        assert (await asyncio.wait_for(slow, 60)) == [(5_000_000,)]
    finally:
        await store.close()


async def test_a_firehose_pauses_while_a_persons_read_is_in_flight_and_goes_on_after():
    parsed: list[int] = []

    async def firehose() -> None:
        for frame in range(1_000):
            parsed.append(frame)
            if frame % 32 == 0:  # as the feed session does every 32 frames
                await make_way(max_s=10)

    with waited_for():  # a command's read, on SQLite's reader thread
        task = asyncio.create_task(firehose())
        await asyncio.sleep(0.05)
        assert parsed == [0]  # it stopped at its first turn and stays stopped
    await asyncio.wait_for(task, 5)
    assert len(parsed) == 1_000


async def test_a_read_that_never_ends_holds_a_firehose_back_only_a_moment():
    with waited_for():
        await asyncio.wait_for(make_way(max_s=0.05), 5)  # returns: the pause is bounded


async def test_replies_come_while_other_work_keeps_the_event_loop_from_ever_idling(tmp_path):
    """Work that computes a millisecond at a time and yields with `sleep(0)` (wording
    alerts for thousands of chats, a library busy with a burst) never lets the loop idle:
    without bot.plumbing.handover, SQLite's threads waited seconds for the GIL (a reply
    took over 10 s)."""
    store = await Store.open(tmp_path / "liq.sqlite")
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            end = time.perf_counter() + 0.001
            while time.perf_counter() < end:
                sum(range(100))
            await asyncio.sleep(0)

    try:
        await store.add_events([liquidation(NOW - MINUTE_MS, 2_500_000)])
        dispatcher = Dispatcher(QueryService(store), lambda: NOW)
        work = asyncio.create_task(busy())
        slowest_s = 0.0
        for _ in range(20):
            started = time.perf_counter()
            with foreground():
                reply = render_plain(await asyncio.wait_for(dispatcher.handle("/liq BTC 1h", PRIVATE), 10))
            slowest_s = max(slowest_s, time.perf_counter() - started)
            assert "$2.50M" in reply
        stop.set()
        await asyncio.wait_for(work, 5)
        assert slowest_s < 1.0, f"a reply took {slowest_s:.1f} s"
    finally:
        stop.set()
        await store.close()


async def test_the_loop_naps_only_while_a_call_is_overdue(monkeypatch):
    """The naps that hand the GIL over start once a call has waited HANDOVER_AFTER_S, and
    stop when no call is overdue any more: when it ends, and when its caller gives up."""
    naps: list[float] = []
    sleep = time.sleep

    def counted_sleep(seconds: float) -> None:
        naps.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(time, "sleep", counted_sleep)
    loop = asyncio.get_running_loop()
    for ends in ("with its result", "cancelled"):
        call = loop.create_future()
        waiting = asyncio.create_task(handed_over(call))
        await asyncio.sleep(HANDOVER_AFTER_S + 0.05)
        assert naps, f"no nap while a call waited ({ends})"
        if ends == "cancelled":
            waiting.cancel()
        else:
            call.set_result(1)
        await asyncio.gather(waiting, return_exceptions=True)
        await asyncio.sleep(2 * NAP_EVERY_S)  # a nap scheduled before the end has run its turn
        naps.clear()
        await asyncio.sleep(0.05)  # 50 naps' time
        assert naps == [], f"the loop kept napping after the call ended ({ends})"
