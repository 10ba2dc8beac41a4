"""One open websocket connection of a venue stream, from subscribe to close.

`FeedRunner` (`bot.feeds.runner`) decides when to connect and how long to wait
after a drop; a `Session` is what happens on one connection it opened: the
stream's subscribe messages, the receive loop (decode with the recording's
decoder, answer the venue's own pings, parse, hand frames and events to the
sink, count malformed frames and venue errors) and a keeper task on the
injected clock (websocket pings, the venue's app-level heartbeat, metadata
refreshes, the no-frame watchdog, planned reconnects and reconnects requested
from outside). Also defined here: what a stream source tells it
(`StreamSource`) and what it updates for `/status` (`RunnerStatus`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bot.feeds.contract import Heartbeat
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.instruments import ContractBook
from bot.feeds.recording import control_error, decode
from bot.feeds.settings import RunnerTuning
from bot.feeds.sinks import FeedSink, LogLimiter
from bot.plumbing.priority import make_way

log = logging.getLogger(__name__)
YIELD_EVERY_FRAMES = 32  # frames parsed between two turns of the event loop (~2 ms of work)

NowMs = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]


class StreamSource(Protocol):
    """Per venue-stream specifics; implementations live in `bot.feeds.sources`."""

    venue: str
    stream: str
    url: str
    heartbeat: Heartbeat | None
    max_connection_s: float | None  # planned reconnect after this long, None: never
    unwrap: Callable[[str | bytes], str | bytes] | None  # raw message -> text to decode (gunzip)
    answer: Callable[[object], str | None] | None  # a frame the venue wants answered -> the reply
    headers: tuple[tuple[str, str], ...]  # extra handshake headers
    stamp: Callable[[str, int], str] | None  # (message, now_ms) -> the message as sent
    refresh_s: float | None  # call refresh() this often while connected, None: never

    def contracts(self) -> ContractBook | None:
        """The contract sizes to parse with now (None when the stream needs none)."""
        ...

    async def prepare(self) -> None:
        """Before each connect: load metadata that is missing or stale. Raising
        makes the attempt a failure (backoff), so only raise when nothing usable is known."""
        ...

    def subscribe_messages(self) -> list[str]:
        """Messages to send right after each connect (and remember as subscribed)."""
        ...

    async def refresh(self) -> list[str]:
        """Periodic metadata refresh; returns messages for the live connection (new symbols)."""
        ...

    def unknown_instruments(self, instruments: Sequence[str]) -> Awaitable[None] | None:
        """A frame named instruments without a contract size: a refresh to run in
        the background, or None when one ran recently (rate limit) or is under way."""
        ...


@dataclass(slots=True)
class RunnerStatus:
    """What `/status` shows of one stream; updated in place by its runner."""

    venue: str
    stream: str
    state: str = "reconnecting"  # "live" | "reconnecting" | "disabled"
    last_frame_ms: int | None = None
    attempts: int = 0  # connect attempts
    connects: int = 0  # connections opened
    drops: int = 0  # connections that ended (for any reason)
    frames: int = 0  # messages received
    events: int = 0  # liquidations parsed
    bad_frames: int = 0  # messages that are not what the venue documents
    unpriced_events: int = 0  # liquidations dropped for want of a contract size
    venue_errors: int = 0  # error frames the venue sent
    last_error: str | None = None  # why the last connection ended / attempt failed
    last_backoff_s: float | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a connection attempt ended."""

    opened_ms: int | None  # None: the connection never opened
    closed_ms: int
    reason: str
    planned: bool = False  # a reconnect we chose (no backoff)
    refused_status: int | None = None
    retry_after_s: float | None = None


class Session:
    """One open connection: `await run()` streams until the connection ends
    (or is cancelled) and returns how it ended. See the module docstring."""

    def __init__(
        self,
        ws: ClientConnection,
        source: StreamSource,
        sink: FeedSink,
        status: RunnerStatus,
        *,
        tuning: RunnerTuning,
        parse: Callable,
        now_ms: NowMs,
        sleep: Sleep,
        tick_s: float,
        should_log: LogLimiter,
    ) -> None:
        self.ws = ws
        self.source = source
        self._sink = sink
        self._status = status
        self._tuning = tuning
        self._parse = parse
        self._now_ms = now_ms
        self._sleep = sleep
        self._tick_s = tick_s
        self._should_log = should_log
        self.opened_ms = now = now_ms()
        self.last_activity_ms = now  # a frame or a pong
        self.last_frame_ms = now
        self.last_ping_ms = now
        self.last_heartbeat_ms = now
        self.last_refresh_ms = now
        self.reason: str | None = None  # why the keeper ended the connection
        self.planned = False
        self.aborted = False
        self.requested: str | None = None  # a reconnect asked for from outside (the keeper acts on it)
        self._tasks: set[asyncio.Task] = set()
        self._ping: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return f"{self.source.venue}/{self.source.stream}"

    def request_reconnect(self, reason: str) -> None:
        """Close this connection at the keeper's next tick and reconnect at once."""
        self.requested = reason

    async def run(self) -> Outcome:
        source, status, sink, ws = self.source, self._status, self._sink, self.ws
        venue, stream = source.venue, source.stream
        status.connects += 1
        status.state = "live"
        await self._notify(sink.on_connected(venue, stream, self.opened_ms), "on_connected")
        keeper: asyncio.Task | None = None
        reason = "closed"
        try:
            for message in source.subscribe_messages():
                await self._send(message)
            keeper = asyncio.create_task(self._keep(), name=f"keeper {self.name}")
            await self._receive()
        except ConnectionClosed as closed:
            reason = self.reason or _closed_reason(closed)
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        except Exception as error:  # a bug: log it, reconnect
            log.exception("%s: receive loop failed", self.name)
            reason = f"error: {type(error).__name__}: {error}"
        finally:
            closed_ms = self._now_ms()
            status.drops += 1
            status.state = "reconnecting"
            tasks = [task for task in (keeper, self._ping, *self._tasks) if task is not None]
            for task in tasks:
                task.cancel()
            # Report first: the span ends when we stop receiving, not when the close handshake ends.
            await self._notify(sink.on_disconnected(venue, stream, closed_ms, reason), "on_disconnected")
            if self.aborted:
                ws.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await ws.close()
            for task in tasks:
                if not task.done():
                    with contextlib.suppress(BaseException):
                        await task
                elif not task.cancelled() and task.exception() is not None:
                    log.debug("%s: %s ended with %r", self.name, task.get_name(), task.exception())
        return Outcome(self.opened_ms, closed_ms, reason, planned=self.planned)

    async def _receive(self) -> None:
        source, status, sink = self.source, self._status, self._sink
        venue, stream = source.venue, source.stream
        parse, now_ms = self._parse, self._now_ms
        unwrap, answer = source.unwrap, source.answer
        recv = self.ws.recv
        while True:
            message = await recv()
            if status.frames % YIELD_EVERY_FRAMES == 0:
                # recv() returns buffered frames without suspending: under a burst, give the
                # other tasks (replies to commands) their turn every few milliseconds of parsing,
                # and pause while a reply's database read is in flight.
                await asyncio.sleep(0)
                await make_way()
            at_ms = now_ms()
            self.last_activity_ms = self.last_frame_ms = at_ms
            status.last_frame_ms = at_ms
            status.frames += 1
            try:
                frame = decode(message if unwrap is None else unwrap(message))
            except FrameError as error:
                self._bad_frame(str(error))
                raw = message if isinstance(message, str) else bytes(message).decode("utf-8", "replace")
                await self._notify(sink.on_frame(venue, stream, at_ms, raw), "on_frame")
                continue
            await self._notify(sink.on_frame(venue, stream, at_ms, frame), "on_frame")
            reply = answer(frame) if answer is not None else None
            if reply is not None:  # the venue's own ping: a control frame, answered at once
                await self.ws.send(reply)
                continue
            try:
                events = parse(frame, source.contracts(), at_ms)
            except UnknownInstrument as unknown:
                events = unknown.events
                status.unpriced_events += unknown.unpriced_count
                count = self._should_log("unknown")
                if count is not None:
                    log.warning("%s: %s (%d frames so far)", self.name, unknown, count)
                refresh = source.unknown_instruments(unknown.instruments)
                if refresh is not None:
                    self._spawn(refresh, "contracts refresh")
            except FrameError as error:
                self._bad_frame(str(error))
                continue
            if events:
                status.events += len(events)
                await self._notify(sink.on_events(venue, stream, events), "on_events")
            else:
                error_text = control_error(venue, frame)
                if error_text is not None:
                    status.venue_errors += 1
                    count = self._should_log("venue error")
                    if count is not None:
                        log.warning("%s: venue sent %s (%d so far)", self.name, error_text, count)

    async def _keep(self) -> None:
        """Pings, heartbeats, metadata refreshes, the watchdog and planned or requested reconnects."""
        source, tuning, now_ms, ws = self.source, self._tuning, self._now_ms, self.ws
        watchdog_ms = tuning.watchdog_s * 1000
        ping_ms = tuning.ping_interval_s * 1000
        max_ms = source.max_connection_s * 1000 if source.max_connection_s else None
        refresh_ms = source.refresh_s * 1000 if source.refresh_s else None
        heartbeat = source.heartbeat
        while True:
            await self._sleep(self._tick_s)
            now = now_ms()
            idle_ms = now - self.last_activity_ms
            if idle_ms > watchdog_ms:
                self.reason = f"watchdog: no frame or pong for {idle_ms / 1000:.0f} s"
                self.aborted = True
                ws.transport.abort()
                return
            if self.requested is not None or (max_ms is not None and now - self.opened_ms >= max_ms):
                self.reason = self.requested or "planned reconnect"
                self.planned = True
                await ws.close()
                return
            if now - self.last_ping_ms >= ping_ms and (self._ping is None or self._ping.done()):
                self.last_ping_ms = now
                self._ping = asyncio.create_task(self._ping_once())
            if heartbeat is not None:
                every_ms = heartbeat.every_s * 1000
                since_beat = now - self.last_heartbeat_ms
                quiet = now - self.last_frame_ms if heartbeat.idle_only else since_beat
                if quiet >= every_ms and since_beat >= every_ms:
                    self.last_heartbeat_ms = now
                    await self._send(heartbeat.message)
            if refresh_ms is not None and now - self.last_refresh_ms >= refresh_ms:
                self.last_refresh_ms = now
                self._spawn(self._refresh(), "refresh")

    async def _send(self, message: str) -> None:
        stamp = self.source.stamp
        await self.ws.send(message if stamp is None else stamp(message, self._now_ms()))

    async def _ping_once(self) -> None:
        pong = await self.ws.ping()
        await pong
        self.last_activity_ms = self._now_ms()

    async def _refresh(self) -> None:
        messages = await self.source.refresh()
        for message in messages:
            await self._send(message)
        if messages:
            log.info("%s: subscribed %d more message(s) on the live connection", self.name, len(messages))

    def _spawn(self, work: Awaitable[None], what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except ConnectionClosed:
                pass
            except Exception as error:
                log.warning("%s: %s failed: %s", self.name, what, error)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _bad_frame(self, message: str) -> None:
        self._status.bad_frames += 1
        count = self._should_log("bad frame")
        if count is not None:
            log.warning("%s: bad frame #%d: %s", self.name, count, message)

    async def _notify(self, call: Awaitable[None], method: str) -> None:
        try:
            await call
        except asyncio.CancelledError:
            raise
        except Exception:
            count = self._should_log(f"sink {method}")
            if count is not None:
                log.exception("%s: sink %s failed (%d so far)", self.name, method, count)


def _closed_reason(closed: ConnectionClosed) -> str:
    frame = closed.rcvd or closed.sent
    if frame is None:
        return "connection lost"
    text = f"closed {frame.code}"
    return f"{text} {frame.reason}" if frame.reason else text
