"""Replay recordings into the store through the same parsers as the live feeds.

Parsing runs in one worker process while this process writes to SQLite: the
two halves cost about the same per event, so overlapping them on two cores
nearly doubles replay throughput. One worker keeps the frames in order, so
REST lines (contract sizes) apply to exactly the frames after them.
"""

from __future__ import annotations

import asyncio
import gzip
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.models import Window
from bot.feeds.market_replay import MarketPoll, MarketReplayer
from bot.feeds.recording import DecodeStats, RecordingDecoder
from bot.storage.market_store import MarketStore
from bot.storage.rows import event_row
from bot.storage.store import Store

REPLAY_BATCH_LINES = 5_000


@dataclass(slots=True)
class ReplayReport:
    files: int = 0
    bytes_read: int = 0
    stored: int = 0
    duplicates: int = 0
    market_samples: int = 0
    decode: DecodeStats = field(default_factory=DecodeStats)
    interrupted: bool = False  # stopped before the end: the counts are of what was stored

    def one_line(self) -> str:
        """What was read and what became of it; each group adds up (lines, then liquidations)."""
        d = self.decode
        line = (
            f"replayed {_counted(self.files, 'file')}: {_counted(d.lines, 'line')} read"
            f" ({_counted(d.frames, 'frame')}, {_counted(d.rest_responses, 'REST response')},"
            f" {_counted(d.market_responses, 'market response')}, {_counted(d.bad_lines, 'unusable line')});"
            f" {_counted(d.events, 'liquidation')} decoded:"
            f" {self.stored:,} stored, {_counted(self.duplicates, 'duplicate')}"
        )
        if self.interrupted:
            line = f"interrupted: {line}"
        if d.unpriced_events:
            line += f"; {_counted(d.unpriced_events, 'liquidation')} without a contract size, not stored"
        if self.market_samples:
            line += f"; {_counted(self.market_samples, 'market sample')} from the market polls"
        return line


def _counted(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _lines(raw, path: Path):
    """A recording's binary lines; `.gz` recordings are read as they are."""
    return gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw


def _batches(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line_bytes in lines:
        batch.append(line_bytes)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- the worker process: one decoder for the whole replay --------------------

_worker_decoder: RecordingDecoder | None = None
PARENT_CHECK_S = 0.2


def _start_worker(parent_pid: int) -> None:
    global _worker_decoder
    _worker_decoder = RecordingDecoder()
    # Ctrl-C in a terminal signals the whole process group: the parent decides
    # how to stop (finish the batch, record spans) and shuts this worker down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent watch", daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    """A parent killed with SIGKILL cannot shut us down: leave instead of lingering as an orphan."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _decode_batch(
    batch: list[bytes],
) -> tuple[list[tuple], DecodeStats, dict[tuple[str, str], Window], list[MarketPoll]]:
    """Rows, not events (plain tuples cross the process boundary cheaply), with
    what the decoder has seen up to the end of this batch and the market polls it completed."""
    rows: list[tuple] = []
    for line_bytes in batch:
        rows += map(event_row, _worker_decoder.feed(line_bytes))
    return rows, _worker_decoder.stats, _worker_decoder.spans(), _worker_decoder.take_market_polls()


def _last_market_polls() -> list[MarketPoll]:
    return _worker_decoder.take_market_polls(final=True)


# -- the writer ---------------------------------------------------------------


async def replay(
    store: Store,
    paths: Iterable[Path],
    progress: Callable[[int, int, int], None] | None = None,
    batch_lines: int = REPLAY_BATCH_LINES,
    stop: asyncio.Event | None = None,
    market_assets: Sequence[str] = (),
) -> ReplayReport:
    """Ingest recordings; `progress(done, total, stored)` gets the bytes read of all
    the files (compressed bytes for `.gz`) and the liquidations stored so far.

    When `stop` is set, the batch being written is finished and the rest left
    unread (`report.interrupted`). Interrupted or cancelled, the spans of what
    was stored are recorded. Market polls in the recordings become market
    samples of `market_assets` (the assets the live poller tracks, `[market]
    assets`; none by default).
    """
    paths = list(paths)
    total_bytes = sum(os.path.getsize(path) for path in paths)
    report = ReplayReport()
    stored_spans: dict[tuple[str, str], Window] = {}
    market = _MarketSink(store, market_assets)
    loop = asyncio.get_running_loop()

    async def write(decoded: asyncio.Future) -> None:
        rows, report.decode, spans, polls = await decoded
        _count(report, await store.add_rows(rows))
        stored_spans.update(spans)  # cumulative: the spans of everything stored so far
        report.market_samples += await market.add(polls)

    # spawn, not fork: this process has running threads (aiosqlite), which fork does not copy safely.
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
        ) as worker:
            for path in paths:
                if stop is not None and stop.is_set():
                    break
                report.files += 1
                pending: asyncio.Future | None = None
                with open(path, "rb") as raw, _lines(raw, path) as lines:
                    for batch in _batches(lines, batch_lines):
                        # The worker parses this batch while the previous one is written.
                        decoding = loop.run_in_executor(worker, _decode_batch, batch)
                        if pending is not None:
                            await write(pending)
                        pending = decoding
                        if progress is not None:
                            progress(report.bytes_read + raw.tell(), total_bytes, report.stored)
                        if stop is not None and stop.is_set():
                            break
                    if pending is not None:
                        await write(pending)
                    report.bytes_read += raw.tell()
                if progress is not None:
                    progress(report.bytes_read, total_bytes, report.stored)
            report.market_samples += await market.add(await loop.run_in_executor(worker, _last_market_polls))
    finally:
        for (venue, stream), span in stored_spans.items():
            await store.add_span(venue, stream, span.start_ms, span.end_ms)
    report.interrupted = stop is not None and stop.is_set()
    return report


def _count(report: ReplayReport, result) -> None:
    report.stored += result.inserted
    report.duplicates += result.duplicates


class _MarketSink:
    """Recorded market polls -> samples (through the venues' collectors) -> the market store."""

    def __init__(self, store: Store, assets: Sequence[str]) -> None:
        self._store = MarketStore(store)
        self._replayer = MarketReplayer(assets)

    async def add(self, polls: Sequence[MarketPoll]) -> int:
        samples = [sample for poll in polls for sample in await self._replayer.samples(poll)]
        backfilled = [sample for poll in polls for sample in self._replayer.backfilled(poll)]
        await self._store.add_backfill(backfilled)  # never over a polled sample, as live
        return await self._store.add_samples(samples) + len(backfilled)
