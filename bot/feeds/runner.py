"""One reconnecting websocket runner for every venue stream.

A `FeedRunner` owns one (venue, stream): it connects (websockets 17), sends the
stream's subscribe messages, keeps the connection alive (websocket pings, the
venue's app-level heartbeat), decodes and parses every message with the same
code a recording replays through (`bot.feeds.recording`), and hands frames and
events to a `FeedSink`. What differs per venue (URL, subscriptions, contract
sizes, heartbeat) comes from a `StreamSource` (see `bot.feeds.sources`).

Reconnect policy (every delay goes through the injected `sleep`):
- a failed connect, or a connection that opened but dropped before
  `healthy_after_s`, counts as a failure: the next delay is
  `backoff_base_s * 2**(failures-1)`, capped at `backoff_max_s`, times a
  jitter in [0.5, 1) (websockets' own `async for connect()` loop reconnects at
  once after an open-then-drop, hence our own loop);
- after a connection that stayed healthy the count restarts: one short delay;
- a handshake refused with HTTP 5xx waits at least `unavailable_backoff_s`,
  with 403/418/429 at least `refused_backoff_s` or the server's Retry-After
  (backoff, Retry-After and blocking statuses: `bot.feeds.http_policy`);
- no frame and no pong for `watchdog_s` (clock time) means a dead connection:
  it is aborted and reopened;
- a stream with `max_connection_s` (Binance: 24 h cut-off) is closed and
  reopened at once before the venue would cut it.

Malformed frames are counted and logged (first few, then every 1000th); they
never stop the runner. Cancelling `run()` closes the socket, reports the
disconnect to the sink and re-raises CancelledError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bot.plumbing.clock import wall_clock_ms
from bot.core.models import LiquidationEvent
from bot.feeds.contract import Heartbeat
from bot.feeds.errors import FrameError, UnknownInstrument
from bot.feeds.http_policy import BLOCKING_STATUSES, backoff_delay, retry_after_s
from bot.feeds.instruments import ContractBook
from bot.feeds.settings import RunnerTuning
from bot.feeds.recording import control_error, decode, decoder_for

log = logging.getLogger(__name__)

NowMs = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]

# A Retry-After longer than this is treated as this (a typo must not park a stream for days).
MAX_RETRY_AFTER_S = 3600.0
# Malformed-frame logging: the first LOG_FIRST of a kind, then every LOG_EVERY-th.
LOG_FIRST = 5
LOG_EVERY = 1000




# -- the sink -------------------------------------------------------------


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


# -- what a venue stream tells the runner ---------------------------------


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


# -- status ---------------------------------------------------------------


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


class _Connection:
    """Per-connection bookkeeping shared by the receive loop and the keeper."""

    __slots__ = (
        "ws", "opened_ms", "last_activity_ms", "last_frame_ms", "last_ping_ms",
        "last_heartbeat_ms", "last_refresh_ms", "reason", "planned", "aborted", "tasks", "ping",
    )

    def __init__(self, ws: ClientConnection, opened_ms: int) -> None:
        self.ws = ws
        self.opened_ms = opened_ms
        self.last_activity_ms = opened_ms
        self.last_frame_ms = opened_ms
        self.last_ping_ms = opened_ms
        self.last_heartbeat_ms = opened_ms
        self.last_refresh_ms = opened_ms
        self.reason: str | None = None
        self.planned = False
        self.aborted = False
        self.tasks: set[asyncio.Task] = set()
        self.ping: asyncio.Task | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    opened_ms: int | None  # None: the connection never opened
    closed_ms: int
    reason: str
    planned: bool = False
    refused_status: int | None = None
    retry_after_s: float | None = None


class _LogLimiter:
    """Counts occurrences per kind; says whether this one deserves a log line."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def __call__(self, kind: str) -> int | None:
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        return count if count <= LOG_FIRST or count % LOG_EVERY == 0 else None


class FeedRunner:
    """Runs one venue stream until cancelled. See the module docstring."""

    def __init__(
        self,
        source: StreamSource,
        sink: FeedSink,
        *,
        tuning: object | None = None,
        now_ms: NowMs = wall_clock_ms,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        tick_s: float = 1.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        max_message_bytes: int = 4 * 2**20,
    ) -> None:
        self.source = source
        self._sink = sink
        self._tuning = RunnerTuning.of(tuning)
        self._now_ms = now_ms
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._tick_s = tick_s
        self._open_timeout_s = open_timeout_s
        self._close_timeout_s = close_timeout_s
        self._max_message_bytes = max_message_bytes
        self._parse = decoder_for(source.venue, source.stream)
        self.status = RunnerStatus(source.venue, source.stream)
        self._should_log = _LogLimiter()

    @property
    def key(self) -> tuple[str, str]:
        return (self.source.venue, self.source.stream)

    async def run(self) -> None:
        """Connect, stream, reconnect; forever, until cancelled."""
        status = self.status
        tuning = self._tuning
        name = f"{self.source.venue}/{self.source.stream}"
        failures = 0
        while True:
            outcome = await self._attempt()
            status.state = "reconnecting"
            status.last_error = outcome.reason
            if outcome.planned:
                failures, delay = 0, 0.0
            else:
                lived_ms = outcome.closed_ms - outcome.opened_ms if outcome.opened_ms is not None else -1
                healthy = lived_ms >= tuning.healthy_after_s * 1000
                failures = 1 if healthy else failures + 1
                delay = backoff_delay(failures, tuning.backoff_base_s, tuning.backoff_max_s, self._rng.random())
                if outcome.refused_status is not None:
                    if outcome.refused_status in BLOCKING_STATUSES:
                        floor = max(tuning.refused_backoff_s, outcome.retry_after_s or 0.0)
                        # Keep growing past the floor on repeated refusals, up to 6x it.
                        delay = max(delay, floor * min(failures, 6) * (0.9 + 0.2 * self._rng.random()))
                        delay = max(delay, outcome.retry_after_s or 0.0)
                    elif outcome.refused_status >= 500:
                        delay = max(delay, tuning.unavailable_backoff_s * (1.0 + 0.25 * self._rng.random()))
            status.consecutive_failures = failures if not outcome.planned else 0
            status.last_backoff_s = delay
            level = logging.INFO if outcome.planned or failures <= 1 else logging.WARNING
            log.log(level, "%s: %s; reconnecting in %.1f s", name, outcome.reason, delay)
            await self._sleep(delay)

    # -- one connection ---------------------------------------------------

    async def _attempt(self) -> _Outcome:
        source, status = self.source, self.status
        status.attempts += 1
        try:
            await source.prepare()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return _Outcome(None, self._now_ms(), f"metadata unavailable: {error}")
        try:
            ws = await connect(
                source.url,
                open_timeout=self._open_timeout_s,
                close_timeout=self._close_timeout_s,
                ping_interval=None,  # our keeper pings on the injected clock
                ping_timeout=None,
                max_size=self._max_message_bytes,
                additional_headers=source.headers or None,
            )
        except asyncio.CancelledError:
            raise
        except InvalidStatus as refused:
            response = refused.response
            return _Outcome(
                None,
                self._now_ms(),
                f"handshake refused: HTTP {response.status_code}",
                refused_status=response.status_code,
                retry_after_s=retry_after_s(response.headers.get("Retry-After"), self._now_ms(), MAX_RETRY_AFTER_S),
            )
        except Exception as error:
            return _Outcome(None, self._now_ms(), f"connect failed: {type(error).__name__}: {error}")
        return await self._session(ws)

    async def _session(self, ws: ClientConnection) -> _Outcome:
        source, status, sink = self.source, self.status, self._sink
        venue, stream = source.venue, source.stream
        opened_ms = self._now_ms()
        connection = _Connection(ws, opened_ms)
        status.connects += 1
        status.state = "live"
        await self._notify(sink.on_connected(venue, stream, opened_ms), "on_connected")
        keeper: asyncio.Task | None = None
        reason = "closed"
        try:
            for message in source.subscribe_messages():
                await self._send(ws, message)
            keeper = asyncio.create_task(self._keep(connection), name=f"keeper {venue}/{stream}")
            await self._receive(connection)
        except ConnectionClosed as closed:
            reason = connection.reason or _closed_reason(closed)
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        except Exception as error:  # a bug: log it, reconnect
            log.exception("%s/%s: receive loop failed", venue, stream)
            reason = f"error: {type(error).__name__}: {error}"
        finally:
            closed_ms = self._now_ms()
            status.drops += 1
            status.state = "reconnecting"
            for task in (keeper, connection.ping, *connection.tasks):
                if task is not None:
                    task.cancel()
            # Report first: the span ends when we stop receiving, not when the close handshake ends.
            await self._notify(sink.on_disconnected(venue, stream, closed_ms, reason), "on_disconnected")
            if connection.aborted:
                ws.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await ws.close()
            for task in (keeper, connection.ping, *connection.tasks):
                if task is None:
                    continue
                if not task.done():
                    with contextlib.suppress(BaseException):
                        await task
                elif not task.cancelled() and task.exception() is not None:
                    log.debug("%s/%s: %s ended with %r", venue, stream, task.get_name(), task.exception())
        return _Outcome(opened_ms, closed_ms, reason, planned=connection.planned)

    async def _receive(self, connection: _Connection) -> None:
        ws = connection.ws
        source, status, sink = self.source, self.status, self._sink
        venue, stream = source.venue, source.stream
        parse, now_ms = self._parse, self._now_ms
        unwrap, answer = source.unwrap, source.answer
        recv = ws.recv
        while True:
            message = await recv()
            at_ms = now_ms()
            connection.last_activity_ms = connection.last_frame_ms = at_ms
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
                await ws.send(reply)
                continue
            try:
                events = parse(frame, source.contracts(), at_ms)
            except UnknownInstrument as unknown:
                events = unknown.events
                status.unpriced_events += unknown.unpriced_count
                count = self._should_log("unknown")
                if count is not None:
                    log.warning("%s/%s: %s (%d frames so far)", venue, stream, unknown, count)
                refresh = source.unknown_instruments(unknown.instruments)
                if refresh is not None:
                    self._spawn(connection, refresh, "contracts refresh")
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
                        log.warning("%s/%s: venue sent %s (%d so far)", venue, stream, error_text, count)

    async def _keep(self, connection: _Connection) -> None:
        """Pings, heartbeats, metadata refreshes, the watchdog and planned reconnects."""
        source, tuning, now_ms = self.source, self._tuning, self._now_ms
        ws = connection.ws
        watchdog_ms = tuning.watchdog_s * 1000
        ping_ms = tuning.ping_interval_s * 1000
        max_ms = source.max_connection_s * 1000 if source.max_connection_s else None
        refresh_ms = source.refresh_s * 1000 if source.refresh_s else None
        heartbeat = source.heartbeat
        while True:
            await self._sleep(self._tick_s)
            now = now_ms()
            idle_ms = now - connection.last_activity_ms
            if idle_ms > watchdog_ms:
                connection.reason = f"watchdog: no frame or pong for {idle_ms / 1000:.0f} s"
                connection.aborted = True
                ws.transport.abort()
                return
            if max_ms is not None and now - connection.opened_ms >= max_ms:
                connection.reason = "planned reconnect"
                connection.planned = True
                await ws.close()
                return
            if now - connection.last_ping_ms >= ping_ms and (connection.ping is None or connection.ping.done()):
                connection.last_ping_ms = now
                connection.ping = asyncio.create_task(self._ping(connection))
            if heartbeat is not None:
                every_ms = heartbeat.every_s * 1000
                since_beat = now - connection.last_heartbeat_ms
                quiet = now - connection.last_frame_ms if heartbeat.idle_only else since_beat
                if quiet >= every_ms and since_beat >= every_ms:
                    connection.last_heartbeat_ms = now
                    await self._send(ws, heartbeat.message)
            if refresh_ms is not None and now - connection.last_refresh_ms >= refresh_ms:
                connection.last_refresh_ms = now
                self._spawn(connection, self._refresh(connection), "refresh")

    async def _send(self, ws: ClientConnection, message: str) -> None:
        stamp = self.source.stamp
        await ws.send(message if stamp is None else stamp(message, self._now_ms()))

    async def _ping(self, connection: _Connection) -> None:
        pong = await connection.ws.ping()
        await pong
        connection.last_activity_ms = self._now_ms()

    async def _refresh(self, connection: _Connection) -> None:
        messages = await self.source.refresh()
        for message in messages:
            await self._send(connection.ws, message)
        if messages:
            log.info("%s/%s: subscribed %d more message(s) on the live connection",
                     self.source.venue, self.source.stream, len(messages))

    def _spawn(self, connection: _Connection, work: Awaitable[None], what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except ConnectionClosed:
                pass
            except Exception as error:
                log.warning("%s/%s: %s failed: %s", self.source.venue, self.source.stream, what, error)

        task = asyncio.create_task(guarded())
        connection.tasks.add(task)
        task.add_done_callback(connection.tasks.discard)

    def _bad_frame(self, message: str) -> None:
        self.status.bad_frames += 1
        count = self._should_log("bad frame")
        if count is not None:
            log.warning("%s/%s: bad frame #%d: %s", self.source.venue, self.source.stream, count, message)

    async def _notify(self, call: Awaitable[None], method: str) -> None:
        try:
            await call
        except asyncio.CancelledError:
            raise
        except Exception:
            count = self._should_log(f"sink {method}")
            if count is not None:
                log.exception("%s/%s: sink %s failed (%d so far)", self.source.venue, self.source.stream, method, count)


def _closed_reason(closed: ConnectionClosed) -> str:
    frame = closed.rcvd or closed.sent
    if frame is None:
        return "connection lost"
    text = f"closed {frame.code}"
    return f"{text} {frame.reason}" if frame.reason else text
