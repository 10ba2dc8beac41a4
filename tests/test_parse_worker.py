"""Replay's parse worker processes (bot.services.parse_worker) through their public
face: a worker decodes as this process does, and a failure is said, never hung on."""

from __future__ import annotations

import asyncio
import gzip
import marshal
import os
import signal
from pathlib import Path

import pytest

from bot.feeds.recording import RecordingDecoder
from bot.services.parse_worker import ParseWorkerError, running

SAMPLE = Path(__file__).resolve().parent.parent / "bot" / "data" / "sample.jsonl.gz"
ANSWER_S = 30  # a fresh interpreter on a loaded machine


def sample_lines(count: int) -> list[bytes]:
    with gzip.open(SAMPLE, "rb") as sample:
        return [next(sample) for _ in range(count)]


async def test_a_worker_decodes_its_chunks_as_this_process_does_and_passes_over_the_rest():
    lines = sample_lines(3_000)  # contract sizes first: the rows of OKX and Binance COIN-M need them
    here = RecordingDecoder()
    here.pass_over(lines[:1_500])
    expected = here.feed_rows(lines[1_500:])
    async with running(1) as (worker,):
        assert worker.decode([(False, lines[:1_000])]) is None  # passed over, not answered
        decoded = worker.decode([(False, lines[1_000:1_500]), (True, lines[1_500:])])
        decoded = await asyncio.wait_for(decoded, ANSWER_S)
        assert worker.ready
    assert sum(row[1] == "okx" for row in expected) > 10
    assert marshal.loads(decoded.rows) == expected
    assert decoded.stats == here.stats


@pytest.mark.parametrize("broken", ["its own chunk", "a chunk it passes over"])
async def test_a_failing_worker_says_why_in_one_line_and_fails_everything_after(broken):
    lines = sample_lines(100)
    async with running(1) as (worker,):
        decoded = worker.decode([(True, lines)])
        assert marshal.loads((await asyncio.wait_for(decoded, ANSWER_S)).rows)
        queued = [worker.decode([(broken == "its own chunk", None)]), worker.decode([(True, lines)])]
        failures = await asyncio.wait_for(asyncio.gather(*filter(None, queued), return_exceptions=True), ANSWER_S)
        why = str(failures[0])
        assert why.startswith("replay's parse worker failed: TypeError: ") and "\n" not in why
        assert [str(failure) for failure in failures] == [why] * len(failures)
        with pytest.raises(ParseWorkerError) as raised:
            worker.decode([(False, lines)])  # at once, even for a chunk it would only pass over
        assert str(raised.value) == why


async def test_a_worker_killed_before_it_started_is_said_at_once():
    async with running(1) as (worker,):
        os.kill(worker_pid(), signal.SIGKILL)
        with pytest.raises(ParseWorkerError, match=r"^replay's parse worker exited \(code -9\)$"):
            await worker.started(ANSWER_S)
        assert not worker.ready
        with pytest.raises(ParseWorkerError, match="exited"):
            worker.decode([(False, sample_lines(10))])


async def test_stopping_workers_with_shares_queued_takes_no_longer_than_decoding_them():
    lines = sample_lines(2_000)
    loop = asyncio.get_running_loop()
    async with running(2) as workers:
        for worker in workers:
            for _ in range(3):
                worker.decode([(True, lines)])
        began_s = loop.time()
    assert loop.time() - began_s < 5  # each finishes its three shares and leaves; none is killed
    assert not children()


def children() -> list[int]:
    """This process's live child processes (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid, state = parent_and_state(entry)
            except OSError:
                continue
            if ppid == os.getpid() and state != "Z":
                found.append(int(entry.name))
    return found


def parent_and_state(entry: Path) -> tuple[int, str]:
    state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
    return int(ppid), state


def worker_pid() -> int:
    (pid,) = children()
    return pid
