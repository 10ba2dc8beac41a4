"""Replay recordings into the store through the same parsers as the live feeds.

Parsing runs in worker processes while this process writes to SQLite, so the
two overlap on two cores; with three cores or more, parsing (which costs more
per event than writing) is split across two workers. Writing a batch takes
this process less time than parsing one takes a worker, so this process
parses a share of each batch too, sized as it goes so that neither side waits
for the other. Each batch of lines is cut into one contiguous chunk per
decoder (this process's first). A decoder decodes its own chunk and passes over the others'
(applying the REST lines with contract sizes among them, counting nothing), so
every decoder's contract books are exactly those of a one-decoder replay at that
line; its counts, spans and market polls are merged back here in line order.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import itertools
import marshal
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.models import Window
from bot.feeds.market_replay import MarketPoll, MarketReplayer
from bot.feeds.recording import (
    DecodeStats,
    PollJoiner,
    RecordingDecoder,
    merged_spans,
    merged_stats,
)
from bot.services.parse_worker import Decoded, Share, decoded_share
from bot.services.parse_worker import running as running_parse_workers
from bot.storage.levels_inputs_store import KlineStore, MarginRateStore
from bot.storage.market_store import MarketStore
from bot.storage.store import Store

# Per batch: one transaction, one round trip to each worker. 20k lines replayed 1M
# events ~5 % faster than 5k (fewer commits and hour-rollup upserts); 50k was slower.
REPLAY_BATCH_LINES = 20_000
BATCHES_QUEUED = 2  # decoded or being decoded, not yet written
MAX_PARSE_WORKERS = 2
# Starting a worker costs ~0.2 s of CPU (an interpreter and the decoder's imports), about what
# parsing 5 MB costs: recordings under 8 MB are parsed here.
BYTES_PER_PARSE_WORKER = 8 << 20
# While the workers start, this process parses whole batches, this many at most before it
# waits for them (a worker that never starts must not leave every batch queued to it).
BATCHES_BEFORE_WORKERS_START = 8
WORKER_START_S = 60.0


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
    lines = iter(lines)
    while batch := list(itertools.islice(lines, size)):
        yield batch


def _shares(batch: list[bytes], local_lines: int, workers: int) -> list[Share]:
    """The batch cut into this process's chunk of `local_lines` and one chunk
    per worker, as each decoder gets it (this process's first)."""
    size = max(1, -(-(len(batch) - local_lines) // max(1, workers)))
    chunks = [batch[:local_lines], *(batch[start : start + size] for start in range(local_lines, len(batch), size))]
    return [[(own == decoder, chunk) for own, chunk in enumerate(chunks)] for decoder in range(workers + 1)]


class _LocalShare:
    """The fraction of each batch this process parses: grown while this process
    waits for the workers, shrunk while they wait for it."""

    STEP = 0.01
    MAX = 0.5  # workers keep at least half: this process also writes

    def __init__(self, fixed: float | None) -> None:
        self.fraction = 0.2 if fixed is None else fixed
        self._adapts = fixed is None

    def lines(self, batch_lines: int) -> int:
        return round(batch_lines * self.fraction)

    def balance(self, workers_done: bool) -> None:
        """Before a batch is written: whether the workers had parsed their chunks of it."""
        if self._adapts:
            step = -self.STEP if workers_done else self.STEP
            self.fraction = min(self.MAX, max(0.0, self.fraction + step))


def parse_workers(text_bytes: int, cores: int | None = None) -> int:
    """How many worker processes parse a replay of `text_bytes` (uncompressed):
    none for a small one, or on one core; one core is the writer's, so a second
    worker needs three cores (on two, three busy processes only share them, and
    passing over the other chunks costs extra)."""
    cores = cores or os.cpu_count() or 1
    return min(MAX_PARSE_WORKERS, cores - 1, text_bytes // BYTES_PER_PARSE_WORKER)


def _text_bytes(path: Path) -> int:
    """A recording's size uncompressed, at least: for `.gz`, what its trailer records
    (the last member's size, modulo 4 GiB; junk in a file cut off mid-write), never
    less than the compressed size."""
    size = os.path.getsize(path)
    if path.suffix != ".gz" or size < 4:
        return size
    with open(path, "rb") as raw:
        raw.seek(-4, os.SEEK_END)
        return max(size, int.from_bytes(raw.read(4), "little"))


# -- the writer ---------------------------------------------------------------


async def replay(
    store: Store,
    paths: Iterable[Path],
    progress: Callable[[int, int, int], None] | None = None,
    batch_lines: int = REPLAY_BATCH_LINES,
    stop: asyncio.Event | None = None,
    market_assets: Sequence[str] = (),
    workers: int | None = None,
    local_share: float | None = None,
) -> ReplayReport:
    """Ingest recordings; `progress(done, total, stored)` gets the bytes read of all
    the files (compressed bytes for `.gz`) and the liquidations stored so far.

    When `stop` is set, the batches already read (at most `BATCHES_QUEUED`) are
    written and the rest left unread (`report.interrupted`). Interrupted or cancelled, the spans of what
    was stored are recorded. Market polls in the recordings become market
    samples of `market_assets` (the assets the live poller tracks, `[market]
    assets`; none by default). `workers`: parse processes (default: by size,
    `parse_workers`; 0: all parsed here). `local_share`: the fraction of each
    batch this process parses beside the workers (default: balanced as it
    goes); what is stored is the same either way.
    """
    if local_share is not None and not 0.0 <= local_share <= 1.0:
        raise ValueError(f"local_share must be within [0, 1], not {local_share!r}")
    paths = list(paths)
    total_bytes = sum(os.path.getsize(path) for path in paths)
    if workers is None:
        workers = parse_workers(sum(map(_text_bytes, paths)))
    report = ReplayReport()
    stored_spans: dict[tuple[str, str], Window] = {}
    market = _MarketSink(store, market_assets)
    polls = PollJoiner()
    local_decoder = RecordingDecoder()
    local_share_of = _LocalShare(local_share if workers else 1.0)

    # Per worker, its last answer: a worker's counts and spans are of all it has decoded, and
    # a share it only passed over (no chunk of its own) is not answered, having changed neither.
    from_workers = [Decoded([], DecodeStats(), {}, []) for _ in range(workers)]

    async def write(batch: tuple[Decoded, list[asyncio.Future | None]]) -> None:
        local, decoding = batch
        answering = [future for future in decoding if future is not None]
        await asyncio.sleep(0)  # let the answers that have arrived be read first
        if answering:
            local_share_of.balance(workers_done=all(future.done() for future in answering))
        rows = local.rows
        polls_of_batch = list(local.polls)
        for worker, future in enumerate(decoding):  # in chunk order
            if future is not None:
                answer = from_workers[worker] = await future
                rows += marshal.loads(answer.rows)
                polls_of_batch += answer.polls
        decoded = [local, *from_workers]
        report.decode = merged_stats([share.stats for share in decoded])
        _count(report, await store.add_rows(rows))
        # cumulative: the spans of everything stored so far
        stored_spans.update(merged_spans(share.spans for share in decoded))
        report.market_samples += await market.add(polls.add(polls_of_batch))

    try:
        async with running_parse_workers(workers) as pool:
            batches_alone = 0
            for path in paths:
                if stop is not None and stop.is_set():
                    break
                report.files += 1
                pending: collections.deque[tuple[Decoded, list[asyncio.Future | None]]] = collections.deque()
                with open(path, "rb") as raw, _lines(raw, path) as lines:
                    for batch in _batches(lines, batch_lines):
                        # The workers parse this batch (queued behind the one they are on, so
                        # they never wait for this process) while an earlier one is written,
                        # then this process parses its share: all of it while a worker is still
                        # starting (only passing over it then) rather than wait for its first
                        # answer, unless the share is fixed.
                        if local_share is not None or batches_alone == BATCHES_BEFORE_WORKERS_START:
                            for worker in pool:
                                await worker.started(WORKER_START_S)
                        started_up = all(worker.ready for worker in pool)
                        batches_alone += not started_up
                        local_lines = local_share_of.lines(len(batch)) if started_up else len(batch)
                        local_chunk, *worker_chunks = _shares(batch, local_lines, workers)
                        decoding = [worker.decode(share) for worker, share in zip(pool, worker_chunks)]
                        if len(pending) == BATCHES_QUEUED:
                            await write(pending.popleft())
                        pending.append((decoded_share(local_decoder, local_chunk), decoding))
                        if progress is not None:
                            progress(report.bytes_read + raw.tell(), total_bytes, report.stored)
                        if stop is not None and stop.is_set():
                            break
                    while pending:
                        await write(pending.popleft())
                    report.bytes_read += raw.tell()
                if progress is not None:
                    progress(report.bytes_read, total_bytes, report.stored)
            report.market_samples += await market.add(polls.finish())
    finally:
        for (venue, stream), span in stored_spans.items():
            await store.add_span(venue, stream, span.start_ms, span.end_ms)
    report.interrupted = stop is not None and stop.is_set()
    return report


def _count(report: ReplayReport, result) -> None:
    report.stored += result.inserted
    report.duplicates += result.duplicates


class _MarketSink:
    """Recorded market polls -> samples (through the venues' collectors), klines and margin rates -> their stores."""

    def __init__(self, store: Store, assets: Sequence[str]) -> None:
        self._store = MarketStore(store)
        self._klines = KlineStore(store)
        self._margins = MarginRateStore(store)
        self._replayer = MarketReplayer(assets)

    async def add(self, polls: Sequence[MarketPoll]) -> int:
        samples = [sample for poll in polls for sample in await self._replayer.samples(poll)]
        backfilled = [sample for poll in polls for sample in self._replayer.backfilled(poll)]
        await self._store.add_backfill(backfilled)  # never over a polled sample, as live
        await self._klines.add_klines([kline for poll in polls for kline in self._replayer.klines(poll)])
        for poll in polls:
            await self._margins.set_rates(self._replayer.margin_rates(poll), poll.at_ms)
        return await self._store.add_samples(samples) + len(backfilled)
