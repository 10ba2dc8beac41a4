"""Per-asset minute rings: the window sums the alert engine matches `total` and
`skew` rules against. Pure.

A ring holds one asset's long and short liquidations per minute (integer cents,
so sums are exact) over the last `RING_MINUTES` minutes, and one running sum per
distinct window length in use. A window is "the current minute and the whole
minutes before it", resolution one minute; adding an order or moving time
forward costs one update per tracked window length, not per minute in it.
"""

from __future__ import annotations

from bot.core.alert_rules import MAX_ALERT_WINDOW_MS
from bot.core.models import MINUTE_MS, Side

RING_MINUTES = MAX_ALERT_WINDOW_MS // MINUTE_MS


class AssetRing:
    """Per-minute long/short cents of one asset over the last RING_MINUTES minutes,
    with running sums for the window lengths in use."""

    __slots__ = ("long", "short", "minute", "sums")

    def __init__(self, minute: int) -> None:
        self.long = [0] * RING_MINUTES
        self.short = [0] * RING_MINUTES
        self.minute = minute  # the current minute number (ms // MINUTE_MS)
        self.sums: dict[int, list[int]] = {}  # window minutes -> [long cents, short cents]

    def track(self, minutes: int) -> None:
        if minutes in self.sums:
            return
        lng = sht = 0
        for k in range(minutes):
            slot = (self.minute - k) % RING_MINUTES
            lng += self.long[slot]
            sht += self.short[slot]
        self.sums[minutes] = [lng, sht]

    def advance(self, minute: int) -> bool:
        """Move the current minute forward; True when any window sum changed."""
        if minute <= self.minute:
            return False
        changed = False
        steps = min(minute - self.minute, RING_MINUTES)
        if minute - self.minute >= RING_MINUTES:
            self.long = [0] * RING_MINUTES
            self.short = [0] * RING_MINUTES
            for sums in self.sums.values():
                changed = changed or sums != [0, 0]
                sums[0] = sums[1] = 0
            self.minute = minute
            return changed
        for _ in range(steps):
            self.minute += 1
            new = self.minute % RING_MINUTES
            # Every window drops the minute that leaves it.
            for minutes, sums in self.sums.items():
                old = (self.minute - minutes) % RING_MINUTES
                if self.long[old] or self.short[old]:
                    sums[0] -= self.long[old]
                    sums[1] -= self.short[old]
                    changed = True
            self.long[new] = 0
            self.short[new] = 0
        return changed

    def add(self, minute: int, side: Side, cents: int) -> bool:
        """Add an event of `minute` (at most the current one); False when too old."""
        age = self.minute - minute
        if age < 0 or age >= RING_MINUTES:
            return False
        slot = minute % RING_MINUTES
        is_long = side is Side.LONG
        if is_long:
            self.long[slot] += cents
        else:
            self.short[slot] += cents
        index = 0 if is_long else 1
        for minutes, sums in self.sums.items():
            if age < minutes:
                sums[index] += cents
        return True
