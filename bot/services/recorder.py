"""Record live venue traffic as a JSON Lines recording (`liqbot record`).

`Recorder` is a FeedSink that writes every websocket message and every REST
response a parser needs as recording lines (`bot.feeds.recording.frame_line`
/ `rest_line`), plain or gzip-compressed (`.gz`). `record()` runs the feeds of
every enabled venue into one for a while; `liqbot replay` ingests the result
through the same parsers the live feeds use.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.core.models import LiquidationEvent
from bot.feeds.margin_tiers import MarginTierReader
from bot.feeds.market import MarketPoller
from bot.feeds.oi_history import NothingStored
from bot.feeds.recording import frame_line, rest_line
from bot.feeds.runner import FeedRunner
from bot.feeds.session import NowMs, RunnerStatus, Sleep
from bot.feeds.settings import RunnerTuning
from bot.plumbing.clock import wall_clock_ms
from bot.feeds.sources import FeedsSettings, build_sources

log = logging.getLogger(__name__)

# Push buffered lines to the file at most this far apart (a crash keeps the rest).
FLUSH_EVERY_MS = 5_000


@dataclass(slots=True)
class RecordReport:
    path: Path
    frames: int = 0
    rest_responses: int = 0
    events: int = 0
    connects: int = 0
    disconnects: int = 0
    streams: list[RunnerStatus] = field(default_factory=list)

    def one_line(self) -> str:
        return (
            f"recorded {self.frames:,} frames ({self.events:,} liquidations) and"
            f" {self.rest_responses:,} REST responses to {self.path};"
            f" {self.connects} connects, {self.disconnects} disconnects"
        )


class Recorder:
    """A FeedSink writing recording lines to `path` (`.gz`: gzip). Close it."""

    def __init__(self, path: str | Path, *, now_ms: NowMs = wall_clock_ms) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._now_ms = now_ms
        self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        binary = gzip.GzipFile(fileobj=self._raw, mode="wb") if self.path.suffix == ".gz" else self._raw
        self._gzip = binary if binary is not self._raw else None
        self._out = io.TextIOWrapper(binary, encoding="utf-8", newline="\n", write_through=False)
        self._last_flush_ms = now_ms()
        self.report = RecordReport(self.path)
        self.closed = False

    def _write(self, line: str) -> None:
        self._out.write(line)
        self._out.write("\n")
        now = self._now_ms()
        if now - self._last_flush_ms >= FLUSH_EVERY_MS:
            self.flush()

    def flush(self) -> None:
        """Push what is buffered to the file (a gzip member stays readable)."""
        self._last_flush_ms = self._now_ms()
        self._out.flush()
        if self._gzip is not None:
            self._gzip.flush()
        self._raw.flush()

    async def on_connected(self, venue: str, stream: str, at_ms: int) -> None:
        self.report.connects += 1

    async def on_frame(self, venue: str, stream: str, at_ms: int, frame: object) -> None:
        if self.closed:
            return
        self._write(frame_line(venue, stream, at_ms, frame))
        self.report.frames += 1

    async def on_events(self, venue: str, stream: str, events: list[LiquidationEvent]) -> None:
        self.report.events += len(events)

    async def on_disconnected(self, venue: str, stream: str, at_ms: int, reason: str) -> None:
        self.report.disconnects += 1

    async def on_rest(self, venue: str, at_ms: int, path: str, body: object) -> None:
        if self.closed:
            return
        self._write(rest_line(venue, at_ms, path, body))
        self.report.rest_responses += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._out.close()  # closes the gzip stream, which closes nothing below it
        finally:
            self._raw.close()


async def record(
    config: FeedsSettings,
    out: Path,
    duration_s: float | None,
    *,
    tuning: object | None = None,
    http: httpx.AsyncClient | None = None,
    now_ms: NowMs = wall_clock_ms,
    sleep: Sleep = asyncio.sleep,
    tick_s: float = 1.0,
    progress: Callable[[RecordReport], None] | None = None,
    market: object | None = None,
) -> RecordReport:
    """Record every enabled venue stream of `config` (a FeedsConfig) to `out`
    for `duration_s` seconds (None: until cancelled, e.g. Ctrl-C), then close
    the file. Returns what was written; `progress(report)` is called every few
    seconds. The metadata REST client is created here unless `http` is given.
    With `market` (the whole Config), the market poller runs too and every
    response it receives is recorded, so a replay has `/risk`'s data.
    """
    tuning = RunnerTuning.of(tuning if tuning is not None else getattr(config, "runner", None))
    recorder = Recorder(out, now_ms=now_ms)
    own_http = http is None
    client = http if http is not None else httpx.AsyncClient(timeout=tuning.rest_timeout_s)
    try:
        sources = build_sources(config, client, recorder, tuning=tuning, now_ms=now_ms)
        runners = [
            FeedRunner(source, recorder, tuning=tuning, now_ms=now_ms, sleep=sleep, tick_s=tick_s)
            for source in sources
        ]
        recorder.report.streams = [runner.status for runner in runners]
        if not runners and market is None:
            log.warning("record: every venue is disabled in the config; nothing to record")
            return recorder.report
        tasks = [asyncio.create_task(runner.run(), name=f"record {runner.key}") for runner in runners]
        if market is not None:
            poller = MarketPoller(
                market, client, _samples_not_stored, now_ms, sleep, on_response=recorder.on_rest,
                history=NothingStored(), klines=NothingStored(),
            )
            tasks.append(asyncio.create_task(poller.run(), name="record market"))
            if market.levels.enabled:
                tiers = MarginTierReader(market, client, _not_stored, now_ms, sleep, on_response=recorder.on_rest)
                tasks.append(asyncio.create_task(tiers.run(), name="record margin tiers"))
        try:
            await _wait(duration_s, sleep, now_ms, recorder, progress)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        recorder.close()
        if own_http:
            await client.aclose()
    return recorder.report


async def _samples_not_stored(_samples) -> None:
    """Recording keeps the poller's responses (`on_response`), not its samples."""


async def _not_stored(_rates, _at_ms) -> None:
    """Recording keeps the margin tiers' responses, not the rates read from them."""


async def _wait(
    duration_s: float | None,
    sleep: Sleep,
    now_ms: NowMs,
    recorder: Recorder,
    progress: Callable[[RecordReport], None] | None,
) -> None:
    step_s = 5.0
    deadline = None if duration_s is None else now_ms() + duration_s * 1000
    while True:
        remaining_s = step_s if deadline is None else min(step_s, (deadline - now_ms()) / 1000)
        if remaining_s <= 0:
            return
        await sleep(remaining_s)
        recorder.flush()
        if progress is not None:
            progress(recorder.report)
