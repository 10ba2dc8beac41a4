"""The silent-stream rule: a connected stream that stopped carrying liquidations.

A websocket can stay connected and answer pings while sending nothing (Binance's
retired `/ws` path accepted subscriptions and went quiet in 2026). A stream is
*silent* when it has carried no liquidation for longer than

    max(gap_factor x its longest gap between liquidations over its last
        `history_gaps` gaps, floor_ms)

(only `floor_ms` until it has a history) while at least `others_min` other
streams delivered liquidations in that time, so a quiet market flags nothing.
It stops being silent with its next liquidation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

StreamKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class SilenceRule:
    gap_factor: float = 6.0  # times the stream's longest recent gap
    floor_ms: int = 10 * 60_000  # never flag a stream silent for less than this
    others_min: int = 2  # other streams that must have delivered meanwhile
    history_gaps: int = 50  # how many recent gaps make "its own history"


class SilenceWatch:
    def __init__(self, rule: SilenceRule = SilenceRule()) -> None:
        self._rule = rule
        self._since: dict[StreamKey, int] = {}  # connected stream -> last liquidation (or connect) ms
        self._last: dict[StreamKey, int] = {}  # stream -> last liquidation ms, connected or not
        self._gaps: dict[StreamKey, deque[int]] = {}

    def connected(self, key: StreamKey, at_ms: int) -> None:
        # A reconnect does not reset the silence: the feed has to deliver to count as alive.
        self._since[key] = self._last.get(key, at_ms)

    def disconnected(self, key: StreamKey) -> None:
        self._since.pop(key, None)

    def delivered(self, key: StreamKey, at_ms: int) -> None:
        previous = self._last.get(key)
        if previous is not None and at_ms > previous:
            self._gaps.setdefault(key, deque(maxlen=self._rule.history_gaps)).append(at_ms - previous)
        self._last[key] = max(at_ms, previous or at_ms)
        if key in self._since:
            self._since[key] = self._last[key]

    def threshold_ms(self, key: StreamKey) -> int:
        longest = max(self._gaps.get(key, ()), default=0)
        return max(round(self._rule.gap_factor * longest), self._rule.floor_ms)

    def silent(self, now_ms: int) -> set[StreamKey]:
        found = set()
        for key, since in self._since.items():
            if now_ms - since <= self.threshold_ms(key):
                continue
            others = sum(1 for other, last in self._last.items() if other != key and last > since)
            if others >= self._rule.others_min:
                found.add(key)
        return found
