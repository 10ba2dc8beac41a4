"""Replay recordings into the store: the same parsers as the live feeds, in
batches, with parsing of the next batch overlapping the write of the last."""

from __future__ import annotations

import asyncio
import gzip
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.models import LiquidationEvent
from bot.feeds.recording import DecodeStats, RecordingDecoder
from bot.storage.store import Store

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


def _decode_batch(decoder: RecordingDecoder, batch: list[bytes]) -> list[LiquidationEvent]:
    events: list[LiquidationEvent] = []
    for line_bytes in batch:
        events += decoder.feed(line_bytes)
    return events


async def replay(
    store: Store,
    paths: Iterable[Path],
    progress: Callable[[int, int], None] | None = None,
    batch_lines: int = REPLAY_BATCH_LINES,
) -> ReplayReport:
    """Ingest recordings; `progress(done, total)` gets the bytes of the current file read."""
    report = ReplayReport()
    decoder = RecordingDecoder()
    for path in paths:
        report.files += 1
        pending: asyncio.Task | None = None
        with open(path, "rb") as raw, _lines(raw, path) as lines:
            total = os.fstat(raw.fileno()).st_size
            for batch in _batches(lines, batch_lines):
                # Parse in a thread while the previous batch is written.
                events = await asyncio.to_thread(_decode_batch, decoder, batch)
                if pending is not None:
                    _count(report, await pending)
                pending = asyncio.create_task(store.add_events(events))
                if progress is not None:
                    progress(raw.tell(), total)
            if pending is not None:
                _count(report, await pending)
            report.bytes_read += total
    for (venue, stream), span in decoder.spans().items():
        await store.add_span(venue, stream, span.start_ms, span.end_ms)
    report.decode = decoder.stats
    return report


def _count(report: ReplayReport, result) -> None:
    report.stored += result.inserted
    report.duplicates += result.duplicates
