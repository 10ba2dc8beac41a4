"""The silent-stream rule: a connected stream that stopped carrying liquidations.

A websocket can stay connected and answer pings while sending nothing (Binance's
retired `/ws` path accepted subscriptions and went quiet in 2026). A stream is
*silent* when it has carried no liquidation for longer than

    max(gap_factor x its longest gap between liquidations over its last
        `history_gaps` gaps, floor_ms)

(only `floor_ms` until it has a history) while at least `others_min` other
streams delivered liquidations in that time, so a quiet market flags nothing.

A stream judged silent first gets one reconnect (`to_reconnect`, then
`reconnected`): a dead subscription is often fixed by a new connection. It is
*flagged* (`flagged`) when it is still silent

    max(recheck_floor_ms, its longest recent gap)

after that reconnect while `others_min` other streams delivered meanwhile; or
at once when nothing could reconnect it. Its next liquidation ends both, and a
later silence gets a reconnect of its own.
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
    recheck_floor_ms: int = 2 * 60_000  # after the reconnect, still silent this long (at least): flagged


class SilenceWatch:
    def __init__(self, rule: SilenceRule = SilenceRule()) -> None:
        self._rule = rule
        self._since: dict[StreamKey, int] = {}  # connected stream -> last liquidation (or connect) ms
        self._last: dict[StreamKey, int] = {}  # stream -> last liquidation ms, connected or not
        self._gaps: dict[StreamKey, deque[int]] = {}
        # stream judged silent -> when it was reconnected for it (None: it could not be)
        self._reconnected: dict[StreamKey, int | None] = {}

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
        self._reconnected.pop(key, None)

    def threshold_ms(self, key: StreamKey) -> int:
        longest = max(self._gaps.get(key, ()), default=0)
        return max(round(self._rule.gap_factor * longest), self._rule.floor_ms)

    def _others_since(self, key: StreamKey, since_ms: int) -> int:
        """How many other streams delivered after `since_ms`."""
        return sum(1 for other, last in self._last.items() if other != key and last > since_ms)

    def silent(self, now_ms: int) -> set[StreamKey]:
        """Connected streams silent by the rule (reconnected for it or not)."""
        return {
            key
            for key, since in self._since.items()
            if now_ms - since > self.threshold_ms(key) and self._others_since(key, since) >= self._rule.others_min
        }

    def to_reconnect(self, now_ms: int) -> set[StreamKey]:
        """Silent streams that have not had their one reconnect yet."""
        return self.silent(now_ms) - self._reconnected.keys()

    def reconnected(self, key: StreamKey, at_ms: int | None) -> None:
        """`key` was reconnected for its silence at `at_ms`; None: it could not be (flag it at once)."""
        self._reconnected[key] = at_ms

    def flagged(self, now_ms: int) -> set[StreamKey]:
        """Silent streams that a reconnect did not cure (or that could not be reconnected)."""
        found = set()
        for key in self.silent(now_ms) & self._reconnected.keys():
            at_ms = self._reconnected[key]
            if at_ms is None:
                found.add(key)
                continue
            longest = max(self._gaps.get(key, ()), default=0)
            if now_ms - at_ms >= max(self._rule.recheck_floor_ms, longest) and (
                self._others_since(key, at_ms) >= self._rule.others_min
            ):
                found.add(key)
        return found
