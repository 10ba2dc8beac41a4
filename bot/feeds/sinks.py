"""Where the feed runners report: the `FeedSink` protocol, a do-nothing base and
a fan-out that isolates a failing sink, plus the log limiter they share."""

from __future__ import annotations

import logging
from typing import Protocol

from bot.core.models import LiquidationEvent

log = logging.getLogger(__name__)

# Repeated failures and malformed frames are logged the first LOG_FIRST times, then every LOG_EVERY-th.
LOG_FIRST = 5
LOG_EVERY = 1000


class LogLimiter:
    """Counts occurrences per kind; says whether this one deserves a log line."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def __call__(self, kind: str) -> int | None:
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        return count if count <= LOG_FIRST or count % LOG_EVERY == 0 else None


class FeedSink(Protocol):
    """Where runners (and the metadata loaders of `bot.feeds.sources`) report.

    Every method is awaited by the runner's receive loop: keep them quick (a
    sink may await to apply backpressure). `on_frame` sees every message as
    received (decoded JSON, or the raw text of a message that is not JSON),
    `on_rest` every REST response a parser needs (for recordings).
    """

    async def on_connected(self, venue: str, stream: str, at_ms: int) -> None: ...

    async def on_frame(self, venue: str, stream: str, at_ms: int, frame: object) -> None: ...

    async def on_events(self, venue: str, stream: str, events: list[LiquidationEvent]) -> None: ...

    async def on_disconnected(self, venue: str, stream: str, at_ms: int, reason: str) -> None: ...

    async def on_rest(self, venue: str, at_ms: int, path: str, body: object) -> None: ...


class NullSink:
    """A sink that ignores everything (a base to override selectively)."""

    async def on_connected(self, venue: str, stream: str, at_ms: int) -> None:
        pass

    async def on_frame(self, venue: str, stream: str, at_ms: int, frame: object) -> None:
        pass

    async def on_events(self, venue: str, stream: str, events: list[LiquidationEvent]) -> None:
        pass

    async def on_disconnected(self, venue: str, stream: str, at_ms: int, reason: str) -> None:
        pass

    async def on_rest(self, venue: str, at_ms: int, path: str, body: object) -> None:
        pass


class FanOutSink:
    """Forwards to several sinks; one that raises is logged and counted, never
    keeps the others (or the runner) from their calls."""

    def __init__(self, *sinks: FeedSink) -> None:
        self.sinks: tuple[FeedSink, ...] = sinks
        self.failures: dict[int, int] = {index: 0 for index in range(len(sinks))}

    def _failed(self, index: int, method: str) -> None:
        count = self.failures[index] = self.failures[index] + 1
        if count <= LOG_FIRST or count % LOG_EVERY == 0:
            log.exception(
                "sink %s failed in %s (%d failures so far)", type(self.sinks[index]).__name__, method, count
            )

    async def on_connected(self, venue: str, stream: str, at_ms: int) -> None:
        for index, sink in enumerate(self.sinks):
            try:
                await sink.on_connected(venue, stream, at_ms)
            except Exception:
                self._failed(index, "on_connected")

    async def on_frame(self, venue: str, stream: str, at_ms: int, frame: object) -> None:
        for index, sink in enumerate(self.sinks):
            try:
                await sink.on_frame(venue, stream, at_ms, frame)
            except Exception:
                self._failed(index, "on_frame")

    async def on_events(self, venue: str, stream: str, events: list[LiquidationEvent]) -> None:
        for index, sink in enumerate(self.sinks):
            try:
                await sink.on_events(venue, stream, events)
            except Exception:
                self._failed(index, "on_events")

    async def on_disconnected(self, venue: str, stream: str, at_ms: int, reason: str) -> None:
        for index, sink in enumerate(self.sinks):
            try:
                await sink.on_disconnected(venue, stream, at_ms, reason)
            except Exception:
                self._failed(index, "on_disconnected")

    async def on_rest(self, venue: str, at_ms: int, path: str, body: object) -> None:
        for index, sink in enumerate(self.sinks):
            try:
                await sink.on_rest(venue, at_ms, path, body)
            except Exception:
                self._failed(index, "on_rest")
