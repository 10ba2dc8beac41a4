"""Orders to chats as they happen, without lag: threshold matching, and burst
grouping under a per-chat message cap. Pure. Big-order alerts (bot.core.alerts)
and the live channel feed (bot.core.feed) both deliver through these.

- `ThresholdIndex`: per asset (and for any asset), subscribers sorted by their
  threshold in cents: an order finds the subscribers it reaches with one bisect,
  so its cost is proportional to the matches, not to the number of subscribers.
- `BurstGrouper`: the matched orders of one chat are collected for `group_ms`
  from the first one (a couple of seconds), then released together as one
  `Burst` that lists them, largest first (at most `max_listed`; the rest are
  counted). Past `listed_per_minute` listing messages in a chat's last minute,
  a burst is released as a count and a sum only (one "N more orders, $X" line),
  never held back until the minute is over; while a chat is past that cap its
  bursts are collected for `capped_group_ms` (a few seconds), so a cascade that
  lasts minutes keeps the chat under `listed_per_minute + 60 s / capped_group_ms`
  messages a minute, which a platform's per-chat limit (Telegram: 20 a minute in
  a group) can carry without queueing them ever later. Whether a burst lists its
  orders is decided when it opens.
- Durable copies (big-order alerts, bot.services.alerts): `unwritten(now_ms)`
  snapshots the bursts whose copy lacks orders or that are due (`final`);
  `written(burst)` records the copy; `missed(burst)` says the copy could not take
  more orders (its message was already being sent), so the orders it lacks open
  the chat's next burst. Nothing a copy holds is lost with the process, nothing
  is listed twice.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from operator import itemgetter

from bot.core.models import MINUTE_MS, LiquidationEvent, Side

ANY_ASSET = "*"
_UNREACHABLE_CENTS = 2**63
_threshold_of = itemgetter(0)


def cents_of(usd: float) -> int:
    """A threshold in integer cents (exact comparisons with order sizes)."""
    cents = usd * 100
    # A threshold stored before amounts were bounded (inf, nan, 1e308) is one no order reaches.
    return round(cents) if math.isfinite(cents) else _UNREACHABLE_CENTS


class ThresholdIndex:
    """Subscribers (a rule id, a chat key: any sortable key of one type) by asset and threshold."""

    __slots__ = ("_by_asset",)

    def __init__(self) -> None:
        self._by_asset: dict[str, list[tuple[int, Hashable]]] = {}  # asset | ANY_ASSET -> sorted (cents, key)

    def add(self, asset: str | None, threshold_usd: float, key: Hashable) -> None:
        """Subscribe `key` to orders of `asset` (None: any asset) of at least `threshold_usd`."""
        bisect.insort(self._by_asset.setdefault(asset or ANY_ASSET, []), (cents_of(threshold_usd), key))

    def remove(self, asset: str | None, threshold_usd: float, key: Hashable) -> None:
        entries = self._by_asset.get(asset or ANY_ASSET, [])
        entry = (cents_of(threshold_usd), key)
        at = bisect.bisect_left(entries, entry)
        if at < len(entries) and entries[at] == entry:
            del entries[at]

    def matches(self, asset: str, cents: int) -> list[Hashable]:
        """The keys an order of `asset` and size `cents` reaches (its asset's, then any asset's)."""
        found: list[Hashable] = []
        for entries in (self._by_asset.get(asset), self._by_asset.get(ANY_ASSET)):
            if entries:
                end = bisect.bisect_right(entries, cents, key=_threshold_of)
                found += [key for _cents, key in entries[:end]]
        return found


@dataclass(frozen=True, slots=True)
class BurstSettings:
    group_ms: int = 2_000  # orders of one chat arriving within this are one message
    listed_per_minute: int = 6  # listing messages per chat and minute; further bursts are one summary line
    max_listed: int = 10  # orders listed in one message (the rest are counted)
    capped_group_ms: int = 0  # past the cap, bursts are collected this long (at least group_ms)


@dataclass(frozen=True, slots=True)
class Burst:
    """The orders of one chat released together."""

    chat_key: str
    opened_ms: int  # when its first order arrived
    due_ms: int  # when its collection ends
    tags: frozenset  # what matched them (alerts: the rule ids)
    orders: tuple[LiquidationEvent, ...]  # listed, largest first; () past the chat's cap
    more_orders: int  # matched but not listed
    long_usd: float
    short_usd: float
    assets: frozenset[str]
    seen: int  # the orders it covers: the chat's first `seen` of this burst, in arrival order
    final: bool  # due: no order joins it any more

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    @property
    def count(self) -> int:
        return len(self.orders) + self.more_orders


@dataclass(slots=True)
class _Open:
    opened_ms: int
    due_ms: int
    listed: bool  # under the chat's cap of listing messages when it opened
    tags: set
    orders: dict[tuple, LiquidationEvent]  # in arrival order
    written: int = 0  # orders a durable copy holds (the first ones)


def _order_key(event: LiquidationEvent) -> tuple:
    return (event.at_ms, event.venue, event.instrument, event.liquidated, event.quantity, event.price)


class BurstGrouper:
    """`add` matched orders as they arrive; `due(now_ms)` (about every second, or
    at `next_due_ms()`) releases the bursts whose collection time has passed.
    With durable copies: `unwritten`, then `written` or `missed` (module doc)."""

    def __init__(self, settings: BurstSettings = BurstSettings()) -> None:
        self.settings = settings
        self._open: dict[str, _Open] = {}
        self._listed_ms: dict[str, deque[int]] = {}  # chat -> when its recent listing messages went out

    def add(self, chat_key: str, event: LiquidationEvent, now_ms: int, tag: Hashable | None = None) -> None:
        """One order for one chat (the same order twice counts once)."""
        group = self._open.get(chat_key)
        if group is None:
            settings = self.settings
            listed = self._may_list(chat_key, now_ms)
            collect_ms = settings.group_ms if listed else max(settings.group_ms, settings.capped_group_ms)
            group = self._open[chat_key] = _Open(now_ms, now_ms + collect_ms, listed, set(), {})
        if tag is not None:
            group.tags.add(tag)
        group.orders[_order_key(event)] = event

    def next_due_ms(self) -> int | None:
        return min((group.due_ms for group in self._open.values()), default=None)

    def discard(self, chat_key: str) -> None:
        """Forget a chat's open burst (its subscription ended)."""
        self._open.pop(chat_key, None)

    def due(self, now_ms: int) -> list[Burst]:
        """Release the bursts whose collection time has passed."""
        due_keys = [key for key, group in self._open.items() if group.due_ms <= now_ms]
        return [self._snapshot(key, self._open.pop(key), now_ms) for key in due_keys]

    def unwritten(self, now_ms: int) -> list[Burst]:
        """Snapshots of the open bursts whose durable copy lacks orders, and of the due ones (`final`)."""
        return [
            self._snapshot(key, group, now_ms)
            for key, group in self._open.items()
            if group.written < len(group.orders) or group.due_ms <= now_ms
        ]

    def written(self, burst: Burst, now_ms: int) -> None:
        """`burst` (a snapshot of `unwritten`) has its durable copy. A final one ends its
        burst; orders that joined after the snapshot open the chat's next one."""
        group = self._group_of(burst)
        if group is not None:
            group.written = max(group.written, burst.seen)
            if burst.final:
                self._reopen_after_written(burst.chat_key, group, now_ms)

    def missed(self, burst: Burst, now_ms: int) -> None:
        """`burst`'s copy could not take its new orders (its message was already being
        sent as it stood): those orders open the chat's next burst."""
        group = self._group_of(burst)
        if group is not None:
            self._reopen_after_written(burst.chat_key, group, now_ms)

    def _group_of(self, burst: Burst) -> _Open | None:
        group = self._open.get(burst.chat_key)
        return group if group is not None and group.opened_ms == burst.opened_ms else None

    def _reopen_after_written(self, chat_key: str, group: _Open, now_ms: int) -> None:
        """End `group`; the orders its copy lacks start the chat's next burst (matched by the same tags)."""
        del self._open[chat_key]
        for event in list(group.orders.values())[group.written:]:
            self.add(chat_key, event, now_ms)
        if chat_key in self._open:
            self._open[chat_key].tags.update(group.tags)

    def _snapshot(self, chat_key: str, group: _Open, now_ms: int) -> Burst:
        orders = sorted(group.orders.values(), key=lambda e: -e.notional_usd)
        listed = self.settings.max_listed if group.listed else 0
        return Burst(
            chat_key=chat_key,
            opened_ms=group.opened_ms,
            due_ms=group.due_ms,
            tags=frozenset(group.tags),
            orders=tuple(orders[:listed]),
            more_orders=max(0, len(orders) - listed),
            long_usd=sum(e.notional_usd for e in orders if e.liquidated is Side.LONG),
            short_usd=sum(e.notional_usd for e in orders if e.liquidated is Side.SHORT),
            assets=frozenset(e.asset for e in orders),
            seen=len(orders),
            final=group.due_ms <= now_ms,
        )

    def _may_list(self, chat_key: str, now_ms: int) -> bool:
        """Whether the chat is under its cap of listing messages in the last minute (and count this one)."""
        listed_ms = self._listed_ms.setdefault(chat_key, deque())
        while listed_ms and listed_ms[0] <= now_ms - MINUTE_MS:
            listed_ms.popleft()
        if len(listed_ms) >= self.settings.listed_per_minute:
            return False
        listed_ms.append(now_ms)
        return True
