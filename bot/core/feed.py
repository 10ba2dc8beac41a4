"""The live channel feed (`/feed on MIN_USD [ASSET...]`): every liquidation order
at or above a chat's threshold, as it happens. Pure.

A chat has at most one subscription: a minimum order size in USD and the assets
it covers (none named: every asset). Orders are matched through bot.core.bursts'
`ThresholdIndex` (one bisect per order, whatever the number of chats) and
delivered through its `BurstGrouper`, the same grouping and per-chat cap as
big-order alerts: orders of one chat arriving within `group_ms` are one message,
and past `listed_per_minute` listing messages in a chat's last minute a burst
is one "N more orders, $X" line. No order is held back longer than `group_ms`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.bursts import Burst, BurstGrouper, BurstSettings, ThresholdIndex
from bot.core.models import LiquidationEvent

# Assets one subscription may name (more is a list nobody reads; "all" covers them).
MAX_FEED_ASSETS = 10


@dataclass(frozen=True, slots=True)
class FeedSubscription:
    chat_key: str
    min_usd: float
    assets: tuple[str, ...] = ()  # () : every asset
    user_key: str = ""  # who turned it on
    since_ms: int = 0  # when it was turned on (or last changed)


class FeedMatcher:
    """`set`/`remove` subscriptions, `on_events` as orders arrive, `due(now_ms)`
    at `next_due_ms()` (or about every second) for the messages to send."""

    def __init__(self, settings: BurstSettings = BurstSettings()) -> None:
        self.subscriptions: dict[str, FeedSubscription] = {}
        self._index = ThresholdIndex()  # chat keys by asset and minimum
        self._bursts = BurstGrouper(settings)

    @property
    def settings(self) -> BurstSettings:
        return self._bursts.settings

    def set(self, subscription: FeedSubscription) -> None:
        """Add or replace the chat's subscription."""
        self.remove(subscription.chat_key)
        self.subscriptions[subscription.chat_key] = subscription
        for asset in subscription.assets or (None,):
            self._index.add(asset, subscription.min_usd, subscription.chat_key)

    def remove(self, chat_key: str) -> None:
        old = self.subscriptions.pop(chat_key, None)
        if old is None:
            return
        for asset in old.assets or (None,):
            self._index.remove(asset, old.min_usd, chat_key)
        self._bursts.discard(chat_key)

    def on_events(self, events: Iterable[LiquidationEvent], now_ms: int) -> None:
        bursts, index = self._bursts, self._index
        for event in events:
            for chat_key in index.matches(event.asset, round(event.notional_usd * 100)):
                bursts.add(chat_key, event, now_ms)

    def next_due_ms(self) -> int | None:
        return self._bursts.next_due_ms()

    def due(self, now_ms: int) -> list[Burst]:
        return self._bursts.due(now_ms)
