"""FeedService: the live channel feed (`/feed`) over the live venue feeds.

- A FeedSink (add it to LiveFeeds' extra sinks): orders go through the pure
  `FeedMatcher` as they are parsed; a chat's first matching order opens its burst.
- `run()`: sleeps until the earliest open burst is due (woken when a new one
  opens), so a message leaves `group_ms` after its first order, never later,
  and goes to the Notifier in the chat's language and time zone.
- `start()` loads the subscriptions, which persist across restarts.
- It is the `/feed` command's FeedPort too (set, remove, status).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.core.bursts import BurstSettings
from bot.core.feed import FeedMatcher, FeedSubscription
from bot.core.models import LiquidationEvent
from bot.feeds.sinks import NullSink
from bot.plumbing.clock import wall_clock_ms
from bot.replies import numbers as fmt
from bot.replies.feed import feed_reply
from bot.services.notifier import Notifier
from bot.storage.feed_store import FeedStore
from bot.storage.store import Store

log = logging.getLogger(__name__)

# With no burst open, the timer still wakes this often (a missed wake-up costs at most this).
IDLE_S = 1.0


class FeedService(NullSink):
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        *,
        settings: BurstSettings = BurstSettings(),
        default_locale: str = "en",
        now_ms: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._feeds = FeedStore(store)
        self._notifier = notifier
        self.matcher = FeedMatcher(settings)
        self._default_locale = default_locale
        self._now_ms = now_ms
        self._sleep = sleep
        self._opened = asyncio.Event()  # a burst opened: the timer has a new due time
        self._started = False

    @property
    def group_ms(self) -> int:
        return self.matcher.settings.group_ms

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Load the subscriptions, from the store alone (a replica that becomes the
        leader again sees what other replicas changed meanwhile)."""
        self.matcher = FeedMatcher(self.matcher.settings)
        subscriptions = await self._feeds.feeds()
        for subscription in subscriptions:
            self.matcher.set(subscription)
        self._started = True
        log.info("feed: %d chat(s) subscribed", len(subscriptions))

    async def follow_subscriptions(self) -> None:
        """Take the subscriptions as the store has them now (other replicas change
        them; bot.services.changes); bursts in progress of unchanged ones go on."""
        stored = {subscription.chat_key: subscription for subscription in await self._feeds.feeds()}
        for chat_key in [chat_key for chat_key in self.matcher.subscriptions if chat_key not in stored]:
            self.matcher.remove(chat_key)
        for chat_key, subscription in stored.items():
            if self.matcher.subscriptions.get(chat_key) != subscription:
                self.matcher.set(subscription)

    async def run(self) -> None:
        """The timer: each burst goes out when due. Runs until cancelled."""
        if not self._started:
            await self.start()
        while True:
            due_ms = self.matcher.next_due_ms()
            wait_s = IDLE_S if due_ms is None else min(IDLE_S, max(0.0, (due_ms - self._now_ms()) / 1000))
            await self._wait(wait_s)
            try:
                await self.flush()
            except Exception:
                log.exception("feed: flush failed")

    async def _wait(self, seconds: float) -> None:
        """Sleep `seconds` on the injected clock, or until a burst opens."""
        self._opened.clear()
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        opened = asyncio.ensure_future(self._opened.wait())
        try:
            await asyncio.wait((sleeper, opened), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            opened.cancel()

    async def flush(self) -> None:
        """Send the bursts that are due."""
        bursts = self.matcher.due(self._now_ms())
        settings = await self._store.chats.settings(burst.chat_key for burst in bursts) if bursts else {}
        for burst in bursts:
            subscription = self.matcher.subscriptions.get(burst.chat_key)
            chat = settings[burst.chat_key]
            if subscription is None or not chat.active:
                continue
            # Urgent: a live message never waits behind a digest fan-out.
            reply = feed_reply(burst, subscription.min_usd, chat.locale or self._default_locale, fmt.zone(chat.tz))
            self._notifier.submit([burst.chat_key], reply, urgent=True)

    # -- FeedSink --------------------------------------------------------------

    async def on_events(self, venue: str, stream: str, events: list[LiquidationEvent]) -> None:
        before = self.matcher.next_due_ms()
        self.matcher.on_events(events, self._now_ms())
        if self.matcher.next_due_ms() != before:
            self._opened.set()

    # -- FeedPort (the /feed command) ----------------------------------------------

    async def assets(self) -> list[str]:
        return await self._store.assets()

    async def set_feed(self, subscription: FeedSubscription) -> None:
        await self._feeds.set_feed(subscription)
        self.matcher.set(subscription)

    async def remove_feed(self, chat_key: str) -> bool:
        self.matcher.remove(chat_key)
        return await self._feeds.remove_feed(chat_key)

    async def feed(self, chat_key: str) -> FeedSubscription | None:
        return await self._feeds.feed(chat_key)
