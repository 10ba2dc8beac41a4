"""`liqbot run` as a user runs it, against loopback fakes of every venue of the
registry at once: every stream is recorded; one venue's fake dies and the
others carry on storing. And a recording of every stream replays once."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time

from bot.feeds.recording import frame_line
from bot.feeds.venues import ALL_STREAMS
from tests.fakes.all_venues import (
    all_venue_servers,
    check_covered,
    config_sections,
    liquidation_frame,
    metadata_lines,
    metadata_rest,
    rest_server,
)
from tests.fakes.single_venue import replayed_twice, stored_events
from tests.fakes.venue_ws import BASE_MS, FakeVenueServer

KILLED = ("okx", "public")
WAIT_S = 60.0  # bound of each wait: 18 streams connecting on a loaded 2-core machine


def stored_by_stream(db_path) -> dict[tuple[str, str], int]:
    if not db_path.exists():
        return {}
    with sqlite3.connect(db_path) as db:
        try:
            rows = db.execute("SELECT venue, stream, COUNT(*) FROM events GROUP BY venue, stream").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return {}
    return {(venue, stream): count for venue, stream, count in rows}


async def until_stored(db_path, expected: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Poll the database (bounded) until every stream of `expected` has stored that many events."""
    deadline = time.monotonic() + WAIT_S
    while True:
        stored = stored_by_stream(db_path)
        if all(stored.get(key, 0) >= count for key, count in expected.items()):
            return stored
        assert time.monotonic() < deadline, f"stored {stored}, expected {expected}"
        await asyncio.sleep(0.2)


async def deliver(server: FakeVenueServer, n: int) -> None:
    """Broadcast liquidation n until a client subscribed to it got it (Bybit and
    Kraken subscribe in chunks after the first acknowledgement)."""
    deadline = time.monotonic() + WAIT_S
    frame = liquidation_frame(server.venue, server.stream, n, int(time.time() * 1000))
    while not await server.broadcast(frame):
        assert time.monotonic() < deadline, f"{server.venue}/{server.stream}: nobody subscribed to liquidation {n}"
        await asyncio.sleep(0.1)


async def test_run_records_every_venue_and_the_others_carry_on_when_one_dies(tmp_path):
    check_covered()
    db_path = tmp_path / "all.sqlite"
    log_lines: list[bytes] = []
    async with all_venue_servers() as servers, rest_server(metadata_rest()) as rest_url:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[storage]\npath = "{db_path}"\n{config_sections(servers, rest_url)}\n'
            "[market]\nenabled = false\n[logging]\nlevel = \"INFO\"\n"
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )

        async def read_log() -> None:  # drained as it is written: a full pipe would stall the bot
            while line := await process.stderr.readline():
                log_lines.append(line)

        reader = asyncio.create_task(read_log())
        try:
            for server in servers.values():
                await server.wait_for(lambda s: s.subscribed_connections() >= 1, timeout=WAIT_S)
            for n in (1, 2):
                for server in servers.values():
                    await deliver(server, n)
            stored = await until_stored(db_path, {key: 2 for key in ALL_STREAMS})
            assert stored == {key: 2 for key in ALL_STREAMS}  # every stream, each liquidation once

            await servers[KILLED].stop()  # the venue goes away: connection dropped, reconnects refused
            others = [server for key, server in servers.items() if key != KILLED]
            for n in (3, 4):
                for server in others:
                    await deliver(server, n)
            stored = await until_stored(db_path, {key: 4 for key in ALL_STREAMS if key != KILLED})
            assert stored == {**{key: 4 for key in ALL_STREAMS}, KILLED: 2}
            assert process.returncode is None
            # The dead venue is retried: its first retry comes after a backoff of about a second,
            # which the deliveries above may not have outlasted.
            deadline = time.monotonic() + WAIT_S
            while b"okx/public: connect failed" not in b"".join(log_lines):
                assert time.monotonic() < deadline, "the dead venue was not retried"
                await asyncio.sleep(0.2)

            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=30)
            await asyncio.wait_for(reader, timeout=5)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            reader.cancel()
    log = b"".join(log_lines).decode()
    assert process.returncode == 0, log
    assert "Traceback" not in log


async def test_a_recording_of_every_stream_replays_each_liquidation_once(store, tmp_path):
    """What `liqbot record` would write of all the venues (the replay benchmark's
    --venues all mix): the metadata, then frames of every stream."""
    check_covered()
    lines = metadata_lines(BASE_MS)
    for n in range(1, 4):
        lines += [frame_line(*key, BASE_MS + n, liquidation_frame(*key, n, BASE_MS + n)) for key in ALL_STREAMS]
    first, second = await replayed_twice(store, tmp_path, lines)
    assert (first.stored, first.decode.unpriced_events, first.decode.bad_lines) == (3 * len(ALL_STREAMS), 0, 0)
    assert (second.stored, second.duplicates) == (0, 3 * len(ALL_STREAMS))
    by_stream = {(e.venue, e.stream) for e in await stored_events(store)}
    assert by_stream == set(ALL_STREAMS)
