"""Answers for command handlers (the commands layer's DataPort), from storage."""

from __future__ import annotations

from collections.abc import Callable
from itertools import takewhile

from bot.core.models import DAY_MS, HOUR_MS, LiquidationEvent, Window
from bot.core.status import StatusReport, StreamStatus
from bot.core.summary import RecordedSpan, Summary, coverage_of, summarize
from bot.storage.store import Store

# A summary is ranked against this many preceding windows of the same length,
# when they were fully recorded.
HISTORY_WINDOWS = 7

LiveStates = Callable[[], dict[tuple[str, str], tuple[str, int | None]]]


def _no_live_feeds() -> dict[tuple[str, str], tuple[str, int | None]]:
    return {}


class QueryService:
    def __init__(self, store: Store, live_states: LiveStates = _no_live_feeds) -> None:
        self._store = store
        # (venue, stream) -> (state, last frame ms) from the running feeds, if any.
        self._live_states = live_states

    async def summary(self, asset: str | None, window: Window) -> Summary:
        duration = window.duration_ms
        history_start = window.start_ms - HISTORY_WINDOWS * duration
        spans = await self._store.spans(Window(history_start, window.end_ms))
        # Newest first, and only the contiguous run of fully recorded windows.
        preceding = list(
            takewhile(
                lambda w: coverage_of(w, spans).complete,
                (
                    Window(window.start_ms - k * duration, window.end_ms - k * duration)
                    for k in range(1, HISTORY_WINDOWS + 1)
                ),
            )
        )
        totals = await self._store.totals_many(asset, [window, *preceding])
        largest = await self._store.largest(asset, window, 1)
        return summarize(
            asset,
            window,
            totals[0],
            largest[0] if largest else None,
            spans,
            [sum(r.usd for r in rows) for rows in totals[1:]],
        )

    async def largest(self, asset: str | None, window: Window, limit: int) -> list[LiquidationEvent]:
        return await self._store.largest(asset, window, limit)

    async def assets(self) -> list[str]:
        return await self._store.assets()

    async def chat_locale(self, chat_key: str) -> str | None:
        return await self._store.chat_locale(chat_key)

    async def set_chat_locale(self, chat_key: str, locale: str, now_ms: int) -> None:
        await self._store.set_chat_locale(chat_key, locale, now_ms)

    async def status(self, now_ms: int) -> StatusReport:
        stats = await self._store.stats()
        day = Window(now_ms - DAY_MS, now_ms)
        spans = await self._store.spans(Window(0, now_ms + 1))
        events_last_hour = await self._store.events_since_by_stream(now_ms - HOUR_MS)
        live = self._live_states()
        streams = sorted({(s.venue, s.stream) for s in spans} | set(live))
        return StatusReport(
            events_stored=stats.events,
            first_at_ms=stats.first_at_ms,
            last_at_ms=stats.last_at_ms,
            events_by_venue=stats.events_by_venue,
            streams=tuple(
                _stream_status(venue, stream, spans, live.get((venue, stream)), events_last_hour, day)
                for venue, stream in streams
            ),
        )


def _stream_status(venue, stream, spans: list[RecordedSpan], live, events_last_hour, day: Window) -> StreamStatus:
    own = [s for s in spans if (s.venue, s.stream) == (venue, stream)]
    if live is not None:
        state, last_frame_ms = live
    else:
        state, last_frame_ms = "recorded", max((s.end_ms for s in own), default=None)
    return StreamStatus(
        venue=venue,
        stream=stream,
        state=state,
        last_frame_ms=last_frame_ms,
        events_last_hour=events_last_hour.get((venue, stream), 0),
        gaps_last_day=coverage_of(day, own).gaps if own else (),
    )
