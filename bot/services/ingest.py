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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.models import Window
from bot.feeds.recording import DecodeStats, RecordingDecoder
from bot.storage.store import Store, event_row

REPLAY_BATCH_LINES = 5_000


@dataclass(slots=True)
class ReplayReport:
    files: int = 0
    bytes_read: int = 0
    stored: int = 0
    duplicates: int = 0
    decode: DecodeStats = field(default_factory=DecodeStats)

    def one_line(self) -> str:
        d = self.decode
        line = (
            f"replayed {self.files} file(s): {d.frames:,} frames read, {self.stored:,} events stored,"
            f" {self.duplicates:,} duplicates, {d.bad_frames:,} bad frames"
        )
        if d.unpriced_events:
            line += f", {d.unpriced_events:,} events without a contract size"
        return line


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


def _start_worker() -> None:
    global _worker_decoder
    _worker_decoder = RecordingDecoder()


def _decode_batch(batch: list[bytes]) -> list[tuple]:
    """Rows, not events: plain tuples cross the process boundary cheaply."""
    rows: list[tuple] = []
    for line_bytes in batch:
        rows += map(event_row, _worker_decoder.feed(line_bytes))
    return rows


def _finish_worker() -> tuple[DecodeStats, dict[tuple[str, str], Window]]:
    return _worker_decoder.stats, _worker_decoder.spans()


# -- the writer ---------------------------------------------------------------


async def replay(
    store: Store,
    paths: Iterable[Path],
    progress: Callable[[int, int], None] | None = None,
    batch_lines: int = REPLAY_BATCH_LINES,
) -> ReplayReport:
    """Ingest recordings; `progress(done, total)` gets the bytes of the current file read."""
    report = ReplayReport()
    loop = asyncio.get_running_loop()
    # spawn, not fork: this process has running threads (aiosqlite), which fork does not copy safely.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_start_worker) as worker:
        for path in paths:
            report.files += 1
            pending: asyncio.Future | None = None
            with open(path, "rb") as raw, _lines(raw, path) as lines:
                total = os.fstat(raw.fileno()).st_size
                for batch in _batches(lines, batch_lines):
                    # The worker parses this batch while the previous one is written.
                    decoding = loop.run_in_executor(worker, _decode_batch, batch)
                    if pending is not None:
                        _count(report, await store.add_rows(await pending))
                    pending = decoding
                    if progress is not None:
                        progress(raw.tell(), total)
                if pending is not None:
                    _count(report, await store.add_rows(await pending))
                report.bytes_read += total
        report.decode, spans = await loop.run_in_executor(worker, _finish_worker)
    for (venue, stream), span in spans.items():
        await store.add_span(venue, stream, span.start_ms, span.end_ms)
    return report


def _count(report: ReplayReport, result) -> None:
    report.stored += result.inserted
    report.duplicates += result.duplicates
