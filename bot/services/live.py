"""Live ingest: the feed sink that stores events in batches and records spans.

`LiveIngest` receives what the runners see (see `bot.feeds.sinks.FeedSink`):
- events are buffered from every stream and written with `Store.add_events`
  when `batch_events` are pending or every `batch_ms`, whichever comes first;
  a write runs in its own task (parsing goes on meanwhile) and is never
  cancelled half-way; `close()` writes what is pending (call it on shutdown);
- a connection opens a recorded span, every timed flush extends it to now (a
  crash loses at most `batch_ms` of span) and the disconnect closes it, so
  every disconnect shows up as a gap between spans (`Store.add_span` merges);
- `live_states()` answers QueryService's `(venue, stream) -> (state, last frame ms)`;
- a connected stream that stops carrying liquidations while others report
  (`bot.core.silence`) is reconnected once through its runner (`reconnect`),
  and shown "silent" (and logged) if that does not help.

`LiveFeeds` is what `liqbot run` starts: the runners of every enabled stream
feeding one LiveIngest (and any extra sink, such as a Recorder), in one task,
with the backfill of the streams whose venue keeps a REST history
(`bot.services.backfill`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx

from bot.core.models import LiquidationEvent
from bot.core.silence import SilenceRule, SilenceWatch
from bot.feeds.runner import FeedRunner
from bot.feeds.session import NowMs, RunnerStatus, Sleep
from bot.feeds.settings import RunnerTuning
from bot.feeds.sinks import FanOutSink, FeedSink
from bot.plumbing.clock import wall_clock_ms
from bot.feeds.sources import FeedsSettings, VenueStream, build_sources, disabled_streams
from bot.services.backfill import build_backfiller
from bot.services.supervisor import supervise
from bot.storage.store import Store

log = logging.getLogger(__name__)

StreamKey = tuple[str, str]
# Ask the runner of a stream to reconnect it (with the reason to log); False: it has no open connection.
Reconnect = Callable[[StreamKey, str], bool]
# Never hold more than this many events in memory: on_events waits for the writer.
MAX_PENDING_EVENTS = 200_000
# One add_events call writes at most this many events.
MAX_WRITE_EVENTS = 20_000


@dataclass(slots=True)
class LiveIngestStats:
    events_received: int = 0
    events_stored: int = 0
    duplicates: int = 0
    batches: int = 0
    spans_written: int = 0
    write_errors: int = 0


class LiveIngest:
    """A FeedSink that writes to the Store. Run `run()` (the timer) while feeds
    run, and `await close()` after they stop."""

    def __init__(
        self,
        store: Store,
        *,
        now_ms: NowMs = wall_clock_ms,
        sleep: Sleep = asyncio.sleep,
        batch_events: int = 500,
        batch_ms: int = 1000,
        max_pending_events: int = MAX_PENDING_EVENTS,
        silence: SilenceRule = SilenceRule(),
        reconnect: Reconnect | None = None,
    ) -> None:
        self._store = store
        self._silence = SilenceWatch(silence)
        self._reconnect = reconnect
        self._silent: set[StreamKey] = set()
        self._now_ms = now_ms
        self._sleep = sleep
        self._batch_events = max(1, batch_events)
        self._batch_s = max(1, batch_ms) / 1000
        self._max_pending = max(self._batch_events, max_pending_events)
        self.stats = LiveIngestStats()
        self._pending: list[LiquidationEvent] = []
        # Spans to write: (venue, stream, start) -> end; merged by the store.
        self._span_writes: dict[tuple[str, str, int], int] = {}
        self._open: dict[StreamKey, int] = {}  # connected streams -> span start
        self._states: dict[StreamKey, str] = {}
        self._last_frame: dict[StreamKey, int] = {}
        self._writer: asyncio.Task | None = None
        self._closed = False

    # -- what QueryService asks -----------------------------------------

    def expect(self, streams: Iterable[StreamKey]) -> None:
        """Show these streams as "reconnecting" until they connect."""
        for key in streams:
            self._states.setdefault(key, "reconnecting")

    def disable(self, streams: Iterable[StreamKey]) -> None:
        """Show these streams as "disabled" (turned off in the config)."""
        for key in streams:
            self._states[key] = "disabled"

    def live_states(self) -> dict[StreamKey, tuple[str, int | None]]:
        self._check_silence()
        return {
            key: ("silent" if state == "live" and key in self._silent else state, self._last_frame.get(key))
            for key, state in self._states.items()
        }

    def _check_silence(self) -> None:
        """Reconnect each stream that turns silent once (see bot.core.silence); log each
        that stays silent after it, and each that recovers."""
        now = self._now_ms()
        watch = self._silence
        for key in sorted(watch.to_reconnect(now)):
            reason = "silent: no liquidation while other venues report; reconnecting once"
            reconnected = self._reconnect is not None and self._reconnect(key, reason)
            watch.reconnected(key, now if reconnected else None)
            if reconnected:
                log.warning("%s/%s: %s", *key, reason)
        silent = watch.flagged(now)
        for venue, stream in sorted(silent - self._silent):
            log.warning("%s/%s is connected but silent: no liquidation while other venues report", venue, stream)
        for venue, stream in sorted(self._silent - silent):
            log.info("%s/%s carries liquidations again", venue, stream)
        self._silent = silent

    @property
    def pending_events(self) -> int:
        return len(self._pending)

    # -- FeedSink ---------------------------------------------------------

    async def on_connected(self, venue: str, stream: str, at_ms: int) -> None:
        key = (venue, stream)
        previous = self._open.pop(key, None)
        if previous is not None:  # a missed disconnect: close the old span here
            self._queue_span(venue, stream, previous, at_ms)
        self._open[key] = at_ms
        self._states[key] = "live"
        self._silence.connected(key, at_ms)
        self._queue_span(venue, stream, at_ms, at_ms)

    async def on_frame(self, venue: str, stream: str, at_ms: int, frame: object) -> None:
        self._last_frame[(venue, stream)] = at_ms

    async def on_events(self, venue: str, stream: str, events: list[LiquidationEvent]) -> None:
        if events:
            self._silence.delivered((venue, stream), self._now_ms())
        pending = self._pending
        pending += events
        self.stats.events_received += len(events)
        if len(pending) >= self._batch_events:
            writer = self._kick()
            if len(pending) >= self._max_pending:
                # Backpressure: the store is behind; wait for it (shielded: our
                # caller's cancellation must not cancel a write).
                await asyncio.shield(writer)

    async def on_disconnected(self, venue: str, stream: str, at_ms: int, reason: str) -> None:
        key = (venue, stream)
        start = self._open.pop(key, None)
        self._silence.disconnected(key)
        if start is not None:
            self._queue_span(venue, stream, start, at_ms)
        if self._states.get(key) != "disabled":
            self._states[key] = "reconnecting"

    async def on_rest(self, venue: str, at_ms: int, path: str, body: object) -> None:
        pass

    # -- writing ------------------------------------------------------------

    def _queue_span(self, venue: str, stream: str, start_ms: int, end_ms: int) -> None:
        key = (venue, stream, start_ms)
        if end_ms >= self._span_writes.get(key, end_ms):
            self._span_writes[key] = end_ms

    def _extend_open_spans(self) -> None:
        now = self._now_ms()
        for (venue, stream), start in self._open.items():
            self._queue_span(venue, stream, start, max(start, now))

    def _kick(self) -> asyncio.Task:
        """The write task, started if none is running; it drains everything pending."""
        writer = self._writer
        if writer is None or writer.done():
            writer = self._writer = asyncio.create_task(self._drain(), name="live ingest writer")
        return writer

    async def _drain(self) -> None:
        """Write what is pending: all of it once, then more while a full batch waits."""
        store, stats = self._store, self.stats
        while True:
            batch = self._pending[:MAX_WRITE_EVENTS]
            if batch:
                del self._pending[: len(batch)]
                try:
                    result = await store.add_events(batch)
                except Exception:
                    stats.write_errors += 1
                    log.exception("storing %d live events failed; will retry", len(batch))
                    self._pending[:0] = batch  # keep them for the next flush
                    return
                stats.events_stored += result.inserted
                stats.duplicates += result.duplicates
                stats.batches += 1
            spans, self._span_writes = self._span_writes, {}
            for (venue, stream, start), end in spans.items():
                try:
                    await store.add_span(venue, stream, start, end)
                except Exception:
                    stats.write_errors += 1
                    log.exception("recording a span of %s/%s failed; will retry", venue, stream)
                    self._queue_span(venue, stream, start, end)
                    return
                stats.spans_written += 1
            if len(self._pending) < self._batch_events and not self._span_writes:
                return

    async def flush(self) -> None:
        """Write everything pending now (events, and spans extended to now)."""
        self._extend_open_spans()
        errors_before = self.stats.write_errors
        while self._pending or self._span_writes or (self._writer is not None and not self._writer.done()):
            await asyncio.shield(self._kick())
            if self.stats.write_errors > errors_before:
                log.error("live ingest: %d events not written yet", len(self._pending))
                return

    async def run(self) -> None:
        """Flush every `batch_ms` (spans extended to now) until cancelled."""
        while True:
            await self._sleep(self._batch_s)
            self._extend_open_spans()
            self._check_silence()
            await asyncio.shield(self._kick())

    async def close(self) -> None:
        """Close the spans of still-connected streams at now and write everything."""
        if self._closed:
            return
        self._closed = True
        now = self._now_ms()
        for (venue, stream), start in list(self._open.items()):
            self._queue_span(venue, stream, start, max(start, now))
        self._open.clear()
        for key, state in self._states.items():
            if state == "live":
                self._states[key] = "reconnecting"
        await self.flush()


class LiveFeeds:
    """Every enabled venue stream, feeding a LiveIngest (and `extra_sinks`).

    `live_states` is ready from construction (for QueryService); `run()` runs
    the runners and the flush timer until cancelled, then writes whatever is
    pending and closes the spans. One `httpx.AsyncClient` is shared by the
    metadata loaders; the caller owns it.
    """

    def __init__(
        self,
        feeds: FeedsSettings,
        store: Store,
        http: httpx.AsyncClient,
        *,
        tuning: object | None = None,
        extra_sinks: Sequence[FeedSink] = (),
        now_ms: NowMs = wall_clock_ms,
        sleep: Sleep = asyncio.sleep,
        tick_s: float = 1.0,
    ) -> None:
        self._sleep = sleep
        self.tuning = RunnerTuning.of(tuning if tuning is not None else getattr(feeds, "runner", None))
        self.ingest = LiveIngest(
            store,
            now_ms=now_ms,
            sleep=sleep,
            batch_events=self.tuning.batch_events,
            batch_ms=self.tuning.batch_ms,
            silence=SilenceRule(
                gap_factor=self.tuning.silence_gap_factor,
                floor_ms=round(self.tuning.silence_floor_s * 1000),
                others_min=self.tuning.silence_others_min,
                recheck_floor_ms=round(self.tuning.silence_recheck_s * 1000),
            ),
            reconnect=self._reconnect,
        )
        sources_by_key: dict[StreamKey, VenueStream] = {}

        async def record_page(venue: str, at_ms: int, path: str, body: object) -> None:
            await self.sink.on_rest(venue, at_ms, path, body)  # a recorder among the sinks keeps it

        # Fills what the streams missed from the venues' REST histories; its orders go
        # to the store only, never to the live sinks (alerts).
        self.backfiller = build_backfiller(
            feeds, store, http, contracts_of=lambda venue, stream: sources_by_key[venue, stream].contracts(),
            on_response=record_page, now_ms=now_ms, sleep=sleep,
        )
        sinks = [self.ingest, *extra_sinks, *([self.backfiller] if self.backfiller else [])]
        self.sink: FeedSink = FanOutSink(*sinks) if len(sinks) > 1 else self.ingest
        sources = build_sources(feeds, http, self.sink, tuning=self.tuning, now_ms=now_ms)
        sources_by_key.update(((source.venue, source.stream), source) for source in sources)
        self.runners = [
            FeedRunner(source, self.sink, tuning=self.tuning, now_ms=now_ms, sleep=sleep, tick_s=tick_s)
            for source in sources
        ]
        self._runners_by_key = {runner.key: runner for runner in self.runners}
        self.ingest.expect(runner.key for runner in self.runners)
        self.ingest.disable(disabled_streams(feeds))

    def live_states(self) -> dict[StreamKey, tuple[str, int | None]]:
        return self.ingest.live_states()

    def _reconnect(self, key: StreamKey, reason: str) -> bool:
        runner = self._runners_by_key.get(key)
        return runner is not None and runner.reconnect(reason)

    def statuses(self) -> list[RunnerStatus]:
        return [runner.status for runner in self.runners]

    async def run(self) -> None:
        timer = asyncio.create_task(self.ingest.run(), name="live ingest timer")
        try:
            async with asyncio.TaskGroup() as group:
                for runner in self.runners:
                    name = f"feed {runner.key[0]}/{runner.key[1]}"
                    # One runner's crash (a bug) restarts that runner only.
                    group.create_task(supervise(name, runner.run, sleep=self._sleep), name=name)
                if self.backfiller is not None:
                    group.create_task(supervise("backfill", self.backfiller.run, sleep=self._sleep), name="backfill")
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
            await self.ingest.close()
            self._log_totals()

    def _log_totals(self) -> None:
        """One line on the way out: what was received, stored, and lost if anything was."""
        stats, lost = self.ingest.stats, self.ingest.pending_events
        log.log(
            logging.ERROR if lost else logging.INFO,
            "feeds stopped: %s events received, %s stored, %s duplicates%s",
            f"{stats.events_received:,}",
            f"{stats.events_stored:,}",
            f"{stats.duplicates:,}",
            f"; {lost:,} NOT stored (the final write failed)" if lost else "",
        )
