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

- `reconnect(reason)` (the silent-stream watchdog of `bot.services.live`) closes
  the open connection and reopens it at once.

What happens on one open connection (subscribe, receive, parse, keep alive) is
a `Session` (`bot.feeds.session`). Malformed frames are counted and logged
(first few, then every 1000th); they never stop the runner. Cancelling `run()`
closes the socket, reports the disconnect to the sink and re-raises CancelledError.
"""

from __future__ import annotations

import asyncio
import logging
import random

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bot.plumbing.clock import wall_clock_ms
from bot.feeds.http_policy import BLOCKING_STATUSES, backoff_delay, retry_after_s
from bot.feeds.recording import decoder_for
from bot.feeds.session import NowMs, Outcome, RunnerStatus, Session, Sleep, StreamSource
from bot.feeds.settings import RunnerTuning
from bot.feeds.sinks import FeedSink, LogLimiter

log = logging.getLogger(__name__)

# A Retry-After longer than this is treated as this (a typo must not park a stream for days).
MAX_RETRY_AFTER_S = 3600.0


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
        self._should_log = LogLimiter()
        self._session: Session | None = None  # the open connection, if any

    @property
    def key(self) -> tuple[str, str]:
        return (self.source.venue, self.source.stream)

    def reconnect(self, reason: str) -> bool:
        """Close the open connection (within a tick) and reconnect at once,
        logging `reason`; False when no connection is open."""
        if self._session is None:
            return False
        self._session.request_reconnect(reason)
        return True

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

    async def _attempt(self) -> Outcome:
        source, status = self.source, self.status
        status.attempts += 1
        try:
            await source.prepare()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return Outcome(None, self._now_ms(), f"metadata unavailable: {error}")
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
            return Outcome(
                None,
                self._now_ms(),
                f"handshake refused: HTTP {response.status_code}",
                refused_status=response.status_code,
                retry_after_s=retry_after_s(response.headers.get("Retry-After"), self._now_ms(), MAX_RETRY_AFTER_S),
            )
        except Exception as error:
            return Outcome(None, self._now_ms(), f"connect failed: {type(error).__name__}: {error}")
        session = self._session = Session(
            ws, source, self._sink, status, tuning=self._tuning, parse=self._parse,
            now_ms=self._now_ms, sleep=self._sleep, tick_s=self._tick_s, should_log=self._should_log,
        )
        try:
            return await session.run()
        finally:
            self._session = None

