"""One notifier over every enabled chat adapter: alerts and digests go out
through it.

- Routes by the chat key's platform prefix ("telegram:-100..." -> the
  "telegram" destination); the console prints.
- Paced: at most `rate_per_s` sends a second per destination (a digest to
  10k chats takes a while; nothing is dropped), with `senders_per_platform`
  senders and queues of its own per destination, so a slow or failing
  platform never holds up another.
- Urgent sends (alerts, the live feed: `submit(..., urgent=True)`) go before
  every queued ordinary one (digests), so a live message never waits behind a
  digest fan-out for more than the sends in flight.
- Urgent sends waiting for the same chat go out as one message (the joinable
  ones: text without buttons; up to `MAX_JOINED` and one platform message's
  text, in order; `bot.replies.compose.joined`): in a cascade, a chat's alerts
  arrive together instead of one per turn of a platform that allows ~30
  messages a second over all chats (Telegram). Each is answered as its message
  is; the stats count messages. A joined message the platform refuses
  (DeliveryRefused) is sent again one alert at a time, so only the alert it
  refuses fails.
- Chat by chat: each chat's messages go out in order, one at a time; chats
  take turns (round robin), so one chat's backlog, or a chat the platform
  makes wait (a per-chat limit, a retry), never delays the others.
- A send whose future is already done when its turn comes (its submitter
  cancelled it: the outbox withdrawing what it queued when it stops) is skipped.
- Retries transient failures (any exception but DestinationGone and
  DeliveryRefused) with exponential backoff, `retries` times.
- DeliveryRefused: the platform refused the message itself (malformed, too
  long); never retried as it is.
- DestinationGone: never retried, only counted. The adapter that raises it
  has already reported the chat gone (its `on_chat_gone`, the one path a gone
  chat takes, whether found by an alert or by a command's reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.plumbing.delivery import DeliveryRefused, DestinationGone
from bot.replies.compose import joinable, joined
from bot.replies.model import Reply
from bot.replies.render_plain import render_plain

log = logging.getLogger(__name__)

MAX_JOINED = 10  # urgent sends in one message: about a screen of alerts
# And no more text than one platform message holds with its markup (Telegram 4,096 UTF-16
# units, a Discord description 4,096): a joined message is never split, so it is sent, or
# fails, whole.
MAX_JOINED_CHARS = 3_000

# What became of one message.
SENT, FAILED, REFUSED = "sent", "failed", "refused"


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
    senders_per_platform: int = 8  # chats sent to at once per platform (each chat one at a time)
    retries: int = 3  # retries of a transient failure
    backoff_base_s: float = 1.0  # first retry after this, doubling
    backoff_max_s: float = 30.0


@dataclass(slots=True)
class NotifierStats:
    sent: int = 0
    failed: int = 0
    gone: int = 0
    refused: int = 0
    retried: int = 0
    unroutable: int = 0


def platform_of(chat_key: str) -> str:
    return chat_key.partition(":")[0]


class _Lane:
    """One platform's queued messages: per class (urgent first), per chat in turn."""

    def __init__(self) -> None:
        # urgent? -> chat key -> its queued (reply, future), chats in turn order
        self.pending: dict[bool, OrderedDict[str, deque[tuple[Reply, asyncio.Future]]]] = {
            True: OrderedDict(), False: OrderedDict()
        }
        self.busy: set[str] = set()  # chats a sender is sending to
        self.ready = asyncio.Event()

    def put(self, chat_key: str, reply: Reply, future: asyncio.Future, urgent: bool) -> None:
        self.pending[urgent].setdefault(chat_key, deque()).append((reply, future))
        self.ready.set()

    def take(self) -> tuple[str, list[tuple[Reply, asyncio.Future]]] | None:
        """The next message of the first chat in turn that no sender is busy with: one
        send, or for urgent ones, the joinable sends queued next for that chat."""
        for urgent in (True, False):
            chats = self.pending[urgent]
            for chat_key, queued in chats.items():
                if chat_key in self.busy:
                    continue
                taken = [queued.popleft()]
                if urgent and joinable(taken[0][0]):  # measured only then: digests go out one by one
                    chars = len(render_plain(taken[0][0]))
                    while queued and len(taken) < MAX_JOINED and joinable(queued[0][0]):
                        chars += len(render_plain(queued[0][0]))
                        if chars > MAX_JOINED_CHARS:
                            break
                        taken.append(queued.popleft())
                if queued:
                    chats.move_to_end(chat_key)  # the chat's next message waits for the others' turns
                else:
                    del chats[chat_key]
                self.busy.add(chat_key)
                return chat_key, taken
        return None

    def queued(self) -> int:
        return sum(len(queued) for chats in self.pending.values() for queued in chats.values()) + len(self.busy)

    def done(self, chat_key: str) -> None:
        self.busy.discard(chat_key)
        self.ready.set()


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
        self._lanes: dict[str, _Lane] = {name: _Lane() for name in self._destinations}
        self._next_slot: dict[str, float] = {name: 0.0 for name in self._destinations}
        self._workers: list[asyncio.Task] = []

    def add_destination(self, platform: str, destination: Destination) -> None:
        """Route `platform:` chat keys to `destination` (adapters are often built after the notifier)."""
        if platform in self._destinations:
            raise ValueError(f"a destination for {platform!r} is already set")
        self._destinations[platform] = destination
        self._lanes[platform] = _Lane()
        self._next_slot[platform] = 0.0
        if self._workers:
            self._workers += self._senders(platform)

    # -- submitting ---------------------------------------------------------

    def submit(self, chat_keys: Iterable[str], reply: Reply, *, urgent: bool = False) -> list[asyncio.Future]:
        """Queue `reply` for each chat (`urgent`: ahead of every ordinary send); returns
        futures that resolve to True (sent) or False."""
        loop = asyncio.get_running_loop()
        futures = []
        for chat_key in chat_keys:
            future = loop.create_future()
            lane = self._lanes.get(platform_of(chat_key))
            if lane is None:
                self.stats.unroutable += 1
                log.warning("notifier: no destination for %s", chat_key)
                future.set_result(False)
            else:
                lane.put(chat_key, reply, future, urgent)
            futures.append(future)
        self._ensure_workers()
        return futures

    async def deliver(self, chat_keys: Iterable[str], reply: Reply, *, urgent: bool = False) -> int:
        """Send and wait; returns how many were delivered."""
        futures = self.submit(chat_keys, reply, urgent=urgent)
        results = await asyncio.gather(*futures) if futures else []
        return sum(1 for ok in results if ok)

    def queued(self) -> int:
        """Messages waiting or being sent, over every platform."""
        return sum(lane.queued() for lane in self._lanes.values())

    # -- running --------------------------------------------------------------

    def _senders(self, name: str) -> list[asyncio.Task]:
        return [
            asyncio.create_task(self._work(name), name=f"notifier {name} #{n}")
            for n in range(max(1, self.settings.senders_per_platform))
        ]

    def _ensure_workers(self) -> None:
        if not self._workers:
            self._workers = [task for name in self._lanes for task in self._senders(name)]

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
        lane, destination = self._lanes[name], self._destinations[name]
        while True:
            taken = lane.take()
            if taken is None:
                lane.ready.clear()
                await lane.ready.wait()
                continue
            chat_key, taken_sends = taken
            # Sends withdrawn by their submitter (the outbox, when it stops) are skipped.
            sends = [(reply, future) for reply, future in taken_sends if not future.done()]
            if not sends:
                lane.done(chat_key)
                continue
            reply = sends[0][0] if len(sends) == 1 else joined([reply for reply, _ in sends])
            outcome = FAILED
            try:
                outcome = await self._send_one(name, destination, chat_key, reply)
                if outcome == REFUSED and len(sends) > 1:  # one alert's text may be the cause: each alone
                    log.info("notifier: sending the %d alerts of that message to %s one by one", len(sends), chat_key)
                    for alone in sends:
                        if not alone[1].done():  # not withdrawn meanwhile
                            _settle([alone], await self._send_one(name, destination, chat_key, alone[0]) == SENT)
            except asyncio.CancelledError:
                _settle(sends, False)
                raise
            except Exception:  # never let a worker die
                log.exception("notifier: sending to %s failed", chat_key)
            finally:
                lane.done(chat_key)
            _settle(sends, outcome == SENT)

    async def _send_one(self, name: str, destination: Destination, chat_key: str, reply: Reply) -> str:
        """SENT, FAILED (gone, or transient failures past the retries) or REFUSED."""
        settings = self.settings
        for attempt in range(settings.retries + 1):
            await self._pace(name)
            try:
                await destination.send(chat_key, reply)
            except DestinationGone:
                self.stats.gone += 1
                return FAILED
            except DeliveryRefused as error:
                self.stats.refused += 1
                log.warning("notifier: the platform refused a message: %s", error)
                return REFUSED
            except Exception as error:
                if attempt >= settings.retries:
                    self.stats.failed += 1
                    log.warning("notifier: giving up on %s after %d attempts: %s", chat_key, attempt + 1, error)
                    return FAILED
                self.stats.retried += 1
                delay = min(settings.backoff_max_s, settings.backoff_base_s * 2**attempt)
                log.info("notifier: %s failed (%s); retry in %.1fs", chat_key, error, delay)
                await self._sleep(delay)
            else:
                self.stats.sent += 1
                return SENT
        return FAILED


def _settle(sends: list[tuple[Reply, asyncio.Future]], ok: bool) -> None:
    for _reply, future in sends:
        if not future.done():
            future.set_result(ok)
