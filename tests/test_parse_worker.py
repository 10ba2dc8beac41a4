"""Replay's parse worker process (bot.services.parse_worker) through its public
face: it decodes as this process does, and a failure is said, not hung on."""

from __future__ import annotations

import asyncio
import gzip
import marshal
from pathlib import Path

import pytest

from bot.feeds.recording import RecordingDecoder
from bot.services.parse_worker import ParseWorker, ParseWorkerError

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
    async with ParseWorker.start() as worker:
        assert worker.decode([(False, lines[:1_000])]) is None  # passed over, not answered
        decoded = worker.decode([(False, lines[1_000:1_500]), (True, lines[1_500:])])
        decoded = await asyncio.wait_for(decoded, ANSWER_S)
        assert worker.ready
    assert sum(row[1] == "okx" for row in expected) > 10
    assert marshal.loads(decoded.rows) == expected
    assert decoded.stats == here.stats


async def test_a_failing_worker_says_why_and_fails_what_was_queued_behind():
    lines = sample_lines(100)
    async with ParseWorker.start() as worker:
        decoded = worker.decode([(True, lines)])
        broken = worker.decode([(True, None)])  # no lines at all
        queued = worker.decode([(True, lines)])
        assert marshal.loads((await asyncio.wait_for(decoded, ANSWER_S)).rows)
        with pytest.raises(ParseWorkerError, match=r"(?s)^replay's parse worker failed:\nTraceback .*TypeError"):
            await asyncio.wait_for(broken, ANSWER_S)
        with pytest.raises(ParseWorkerError, match=r"^replay's parse worker exited \(code 0\)$"):
            await asyncio.wait_for(queued, ANSWER_S)
        with pytest.raises(ParseWorkerError, match=r"exited \(code 0\)"):
            await worker.decode([(True, lines)])  # at once: it is gone
