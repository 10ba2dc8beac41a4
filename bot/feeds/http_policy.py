"""One HTTP policy for every connection to a venue: the websocket runner's
reconnects (`bot.feeds.runner`) and the REST market poller (`bot.feeds.market`).

- Blocking statuses: 429 (too many requests), 418 (Binance: banned for
  ignoring 429s) and 403 (a WAF or an IP ban). A venue that answers one is
  left alone until its Retry-After (or the caller's default pause) has passed.
- Backoff: exponential from `base_s`, capped at `max_s`, with "equal jitter"
  (a uniform draw over the upper half), so a crowd of clients spreads out
  and no delay is ever ~0.
- Retry-After: delay-seconds or an HTTP-date (RFC 9110, section 10.2.3),
  clamped to [0, the caller's cap] so a typo cannot park a stream for days.
- Request budgets: at most `limit` units (requests, or Binance's request
  weight) in any sliding window, set under each venue's published limit.

Pure but for `take`, which waits with the caller's clock and sleep.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime

BLOCKING_STATUSES = frozenset({403, 418, 429})


def backoff_delay(failures: int, base_s: float, max_s: float, jitter: float) -> float:
    """The delay before attempt number `failures + 1` (failures >= 1):
    `base_s * 2**(failures - 1)` capped at `max_s`, times `0.5 + 0.5 * jitter`
    where `jitter` is a uniform draw in [0, 1)."""
    exponent = min(max(failures, 1) - 1, 60)
    ceiling = min(max_s, base_s * (2.0**exponent))
    return ceiling * (0.5 + 0.5 * jitter)


def retry_after_s(value: str | None, now_ms: int, max_s: float) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) as seconds from `now_ms`,
    within [0, max_s]; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_ms / 1000
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), max_s)


class RequestBudget:
    """At most `limit` units spent in any sliding window of `window_ms`. Pure."""

    def __init__(self, limit: float, window_ms: int) -> None:
        if limit <= 0 or window_ms <= 0:
            raise ValueError("a budget needs a positive limit and window")
        self.limit = limit
        self.window_ms = window_ms
        self._spent: deque[tuple[int, float]] = deque()
        self._used = 0.0

    def _expire(self, now_ms: int) -> None:
        while self._spent and self._spent[0][0] <= now_ms - self.window_ms:
            self._used -= self._spent.popleft()[1]

    def used(self, now_ms: int) -> float:
        self._expire(now_ms)
        return self._used

    def wait_ms(self, cost: float, now_ms: int) -> int:
        """0 when `cost` fits now, else the milliseconds until it does."""
        cost = min(cost, self.limit)
        self._expire(now_ms)
        excess = self._used + cost - self.limit
        if excess <= 1e-9:
            return 0
        for at_ms, spent in self._spent:
            excess -= spent
            if excess <= 1e-9:
                return max(1, at_ms + self.window_ms - now_ms)
        return self.window_ms  # not reached: cost <= limit

    def spend(self, cost: float, now_ms: int) -> None:
        self._expire(now_ms)
        self._spent.append((now_ms, cost))
        self._used += cost


async def take(
    budget: RequestBudget, cost: float, now_ms: Callable[[], int], sleep: Callable[[float], Awaitable[object]]
) -> None:
    """Wait (with `sleep`) until `cost` fits in `budget`, then spend it."""
    while True:
        now = now_ms()
        wait_ms = budget.wait_ms(cost, now)
        if wait_ms == 0:
            budget.spend(cost, now)
            return
        await sleep(wait_ms / 1000)
