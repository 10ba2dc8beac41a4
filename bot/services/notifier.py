"""One notifier over every enabled chat adapter: alerts and digests go out
through it.

- Routes by the chat key's platform prefix ("telegram:-100..." -> the
  "telegram" destination); the console prints.
- Paced: at most `rate_per_s` sends a second per destination (a digest to
  10k chats takes a while; nothing is dropped), one queue and sender per
  destination, so a slow or failing platform never holds up another.
- Urgent sends (alerts, the live feed: `submit(..., urgent=True)`) go before
  every queued ordinary one (digests), so a live message never waits behind a
  digest fan-out; within each kind, first in, first out.
- Retries transient failures (any exception but DestinationGone) with
  exponential backoff, `retries` times.
- DestinationGone: never retried, only counted. The adapter that raises it
  has already reported the chat gone (its `on_chat_gone`, the one path a gone
  chat takes, whether found by an alert or by a command's reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.plumbing.delivery import DestinationGone
from bot.replies.model import Reply
from bot.replies.render_plain import render_plain

log = logging.getLogger(__name__)


class Destination(Protocol):
    async def send(self, chat_key: str, reply: Reply) -> None: ...


class ConsoleDestination:
    """Prints replies (the local console, `liqbot run` without chat platforms)."""

    def __init__(self, write: Callable[[str], object] = print) -> None:
        self._write = write

    async def send(self, chat_key: str, reply: Reply) -> None:
        self._write(f"[{chat_key}]\n{render_plain(reply)}")


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    rate_per_s: float = 25.0  # sends per second per destination (platform); 0: unpaced
    retries: int = 3  # retries of a transient failure
    backoff_base_s: float = 1.0  # first retry after this, doubling
    backoff_max_s: float = 30.0


@dataclass(slots=True)
class NotifierStats:
    sent: int = 0
    failed: int = 0
    gone: int = 0
    retried: int = 0
    unroutable: int = 0


def platform_of(chat_key: str) -> str:
    return chat_key.partition(":")[0]


class Notifier:
    """`await deliver(chat_keys, reply)` queues and waits for all sends;
    `submit(...)` queues without waiting. Run `run()` while the bot runs."""

    def __init__(
        self,
        destinations: Mapping[str, Destination],
        settings: NotifierSettings = NotifierSettings(),
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._destinations = dict(destinations)
        self.settings = settings
        self._sleep = sleep
        self._monotonic = monotonic
        self.stats = NotifierStats()
        # (0 urgent | 1 ordinary, submission number, chat key, reply, future) per platform
        self._queues: dict[str, asyncio.PriorityQueue] = {name: asyncio.PriorityQueue() for name in self._destinations}
        self._submitted = itertools.count()
        self._next_slot: dict[str, float] = {name: 0.0 for name in self._destinations}
        self._workers: list[asyncio.Task] = []

    def add_destination(self, platform: str, destination: Destination) -> None:
        """Route `platform:` chat keys to `destination` (adapters are often built after the notifier)."""
        if platform in self._destinations:
            raise ValueError(f"a destination for {platform!r} is already set")
        self._destinations[platform] = destination
        self._queues[platform] = asyncio.PriorityQueue()
        self._next_slot[platform] = 0.0
        if self._workers:
            self._workers.append(asyncio.create_task(self._work(platform), name=f"notifier {platform}"))

    # -- submitting ---------------------------------------------------------

    def submit(self, chat_keys: Iterable[str], reply: Reply, *, urgent: bool = False) -> list[asyncio.Future]:
        """Queue `reply` for each chat (`urgent`: ahead of every ordinary send); returns
        futures that resolve to True (sent) or False."""
        loop = asyncio.get_running_loop()
        futures = []
        for chat_key in chat_keys:
            future = loop.create_future()
            queue = self._queues.get(platform_of(chat_key))
            if queue is None:
                self.stats.unroutable += 1
                log.warning("notifier: no destination for %s", chat_key)
                future.set_result(False)
            else:
                queue.put_nowait((0 if urgent else 1, next(self._submitted), chat_key, reply, future))
            futures.append(future)
        self._ensure_workers()
        return futures

    async def deliver(self, chat_keys: Iterable[str], reply: Reply) -> int:
        """Send and wait; returns how many were delivered."""
        futures = self.submit(chat_keys, reply)
        results = await asyncio.gather(*futures) if futures else []
        return sum(1 for ok in results if ok)

    # -- running --------------------------------------------------------------

    def _ensure_workers(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(name), name=f"notifier {name}") for name in self._queues
            ]

    async def run(self) -> None:
        """Run the senders until cancelled (optional: `submit` starts them too)."""
        self._ensure_workers()
        try:
            await asyncio.gather(*self._workers)
        finally:
            await self.close()

    async def close(self) -> None:
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _pace(self, name: str) -> None:
        interval = 1.0 / self.settings.rate_per_s if self.settings.rate_per_s > 0 else 0.0
        if not interval:
            return
        now = self._monotonic()
        wait = self._next_slot[name] - now
        self._next_slot[name] = max(now, self._next_slot[name]) + interval
        if wait > 0:
            await self._sleep(wait)

    async def _work(self, name: str) -> None:
        queue, destination = self._queues[name], self._destinations[name]
        while True:
            _urgency, _number, chat_key, reply, future = await queue.get()
            try:
                ok = await self._send_one(name, destination, chat_key, reply)
            except asyncio.CancelledError:
                if not future.done():
                    future.set_result(False)
                raise
            except Exception:  # never let a worker die
                log.exception("notifier: sending to %s failed", chat_key)
                ok = False
            if not future.done():
                future.set_result(ok)

    async def _send_one(self, name: str, destination: Destination, chat_key: str, reply: Reply) -> bool:
        settings = self.settings
        for attempt in range(settings.retries + 1):
            await self._pace(name)
            try:
                await destination.send(chat_key, reply)
            except DestinationGone:
                self.stats.gone += 1
                return False
            except Exception as error:
                if attempt >= settings.retries:
                    self.stats.failed += 1
                    log.warning("notifier: giving up on %s after %d attempts: %s", chat_key, attempt + 1, error)
                    return False
                self.stats.retried += 1
                delay = min(settings.backoff_max_s, settings.backoff_base_s * 2**attempt)
                log.info("notifier: %s failed (%s); retry in %.1fs", chat_key, error, delay)
                await self._sleep(delay)
            else:
                self.stats.sent += 1
                return True
        return False
