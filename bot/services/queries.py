"""Answers for command handlers (the commands layer's DataPort), from storage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from itertools import takewhile

from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, LiquidationEvent, Window
from bot.core.status import RuntimeStatus, StatusReport, StreamStatus
from bot.core.summary import ASSETS_RANKED, RecordedSpan, Summary, coverage_of, merge_ranges, summarize
from bot.storage.store import Store

# A summary is ranked against this many preceding windows of the same length,
# when they were fully recorded.
HISTORY_WINDOWS = 7

ASSETS_CACHE_S = 60.0

LiveStates = Callable[[], dict[tuple[str, str], tuple[str, int | None]]]


def _no_live_feeds() -> dict[tuple[str, str], tuple[str, int | None]]:
    return {}


class QueryService:
    def __init__(
        self,
        store: Store,
        live_states: LiveStates = _no_live_feeds,
        monotonic: Callable[[], float] = time.monotonic,
        runtime: Callable[[], RuntimeStatus] | None = None,
    ) -> None:
        self._store = store
        self._monotonic = monotonic
        self._assets: list[str] = []
        self._assets_until = float("-inf")
        # (venue, stream) -> (state, last frame ms) from the running feeds, if any.
        self._live_states = live_states
        # Chat platforms, market polling and stream errors of a running `liqbot run`.
        self._runtime = runtime

    async def summary(self, asset: str | None, window: Window) -> Summary:
        # Queued together, the reader thread runs them back to back.
        breakdown, largest, (spans, preceding) = await asyncio.gather(
            self._store.breakdown(asset, window, ASSETS_RANKED),
            self._store.largest(asset, window, 1),
            self._history(asset, window),
        )
        return summarize(
            asset, window, breakdown, largest[0] if largest else None, spans, preceding, self.silent_streams()
        )

    def silent_streams(self) -> tuple[tuple[str, str], ...]:
        """The live streams flagged silent now (connected, no liquidations; bot.core.silence)."""
        return tuple(sorted(key for key, (state, _) in self._live_states().items() if state == "silent"))

    async def _history(self, asset: str | None, window: Window) -> tuple[list[RecordedSpan], list[float]]:
        return await self.recorded_preceding(asset, window, HISTORY_WINDOWS)

    async def recorded_preceding(
        self, asset: str | None, window: Window, count: int
    ) -> tuple[list[RecordedSpan], list[float]]:
        """Spans touching the window and up to `count` windows of the same length
        before it, and the totals of those windows, newest first.

        The preceding windows end at the whole hour (whole minute for windows
        shorter than an hour) before this window starts, so rollups answer them
        in one query; only the newest run of fully recorded ones counts.
        """
        duration = window.duration_ms
        bucket = HOUR_MS if duration % HOUR_MS == 0 else MINUTE_MS
        history_end = window.start_ms - window.start_ms % bucket
        spans = await self._store.spans(Window(history_end - count * duration, window.end_ms))
        if duration % MINUTE_MS:
            return spans, []
        recorded = sum(
            1
            for _ in takewhile(
                lambda k: coverage_of(Window(history_end - k * duration, history_end - (k - 1) * duration), spans).complete,
                range(1, count + 1),
            )
        )
        if not recorded:
            return spans, []
        return spans, await self._store.window_totals(asset, history_end, duration, recorded)

    async def largest(self, asset: str | None, window: Window, limit: int) -> list[LiquidationEvent]:
        return await self._store.largest(asset, window, limit)

    async def assets(self) -> list[str]:
        """Recorded assets, most liquidated first. Every command asks (to validate
        its asset), so the ranking is cached briefly: a new listing shows within a minute."""
        if self._monotonic() >= self._assets_until:
            self._assets = await self._store.assets()
            self._assets_until = self._monotonic() + ASSETS_CACHE_S
        return self._assets

    async def chat_locale(self, chat_key: str) -> str | None:
        return await self._store.chats.locale(chat_key)

    async def chat_timezone(self, chat_key: str) -> str | None:
        return await self._store.chats.timezone(chat_key)

    async def set_chat_timezone(self, chat_key: str, tz: str | None, now_ms: int) -> None:
        await self._store.chats.set_timezone(chat_key, tz, now_ms)

    async def set_chat_locale(self, chat_key: str, locale: str, now_ms: int) -> None:
        await self._store.chats.set_locale(chat_key, locale, now_ms)

    async def status(self, now_ms: int) -> StatusReport:
        stats = await self._store.stats()
        day = Window(now_ms - DAY_MS, now_ms)
        spans = await self._store.spans(Window(0, now_ms + 1))
        events_last_hour = await self._store.events_since_by_stream(now_ms - HOUR_MS)
        live = self._live_states()
        runtime = self._runtime() if self._runtime else None
        errors = runtime.stream_errors if runtime else {}
        streams = sorted({(s.venue, s.stream) for s in spans} | set(live))
        return StatusReport(
            events_stored=stats.events,
            first_at_ms=stats.first_at_ms,
            last_at_ms=stats.last_at_ms,
            events_by_venue=stats.events_by_venue,
            streams=tuple(
                _stream_status(venue, stream, spans, live.get((venue, stream)), events_last_hour, day, errors)
                for venue, stream in streams
            ),
            runtime=runtime,
        )


def _stream_status(
    venue, stream, spans: list[RecordedSpan], live, events_last_hour, day: Window, errors
) -> StreamStatus:
    own = [s for s in spans if (s.venue, s.stream) == (venue, stream)]
    state, last_frame_ms = live if live is not None else ("recorded", None)
    if state in ("recorded", "leader"):  # recorded by a replay, or by the leader replica: its spans tell
        last_frame_ms = max((s.end_ms for s in own if not s.backfilled), default=None)
    backfilled = merge_ranges(
        (max(s.start_ms, day.start_ms), min(s.end_ms, day.end_ms))
        for s in own
        if s.backfilled and s.start_ms < day.end_ms and s.end_ms > day.start_ms
    )
    return StreamStatus(
        venue=venue,
        stream=stream,
        state=state,
        last_frame_ms=last_frame_ms,
        events_last_hour=events_last_hour.get((venue, stream), 0),
        gaps_last_day=coverage_of(day, own).gaps if own else (),
        last_error=errors.get((venue, stream)),
        backfilled_last_day=tuple(backfilled),
    )
