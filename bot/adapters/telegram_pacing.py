"""Telegram's flood limits, with replies to commands ahead of alerts and digests.

Telegram's Bot FAQ ("My bot is hitting limits, how do I avoid this?",
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
in one chat, avoid more than one message a second (short bursts are allowed,
then 429s come); no more than 20 messages a minute to one group; bulk
notifications to more than ~30 users a second get 429s. A 429 carries
`retry_after`; the FAQ does not say whether it holds for the chat or the bot.

PTB's AIORateLimiter grants its budget in arrival order and stops every request
on any 429, so under an alert burst a reply to `/help` queued behind the burst,
and each 429 stalled every chat for its `retry_after`. This limiter:
- one overall budget of `overall_per_s` messages a second (below Telegram's
  ~30), granted to replies to commands (every call without `rate_limit_args`)
  before bulk sends (alerts, digests: `rate_limit_args=BULK`);
- a budget per chat: private chats `private_per_s` with a burst of
  `private_burst`, groups and channels (negative ids) `group_per_minute`
  (a burst of as many, unless `group_burst` says fewer); bulk sends leave one
  message of each chat's burst to replies, so alerts streaming into a chat
  never make its next reply wait for the chat's budget;
- a 429 pauses the chat it came for by its `retry_after`, and all bulk sending
  with it (bulk volume is what floods a bot); replies in other chats go on.
  The request is retried up to `max_retries` times.
Reads (get*) and calls without a chat (getUpdates, answerCallbackQuery) are not paced.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

BULK = "bulk"  # rate_limit_args of alerts and digests: granted after replies
MAX_TRACKED_CHATS = 4096  # idle per-chat budgets are forgotten past this many
OVERALL_PER_S = 25.0  # messages a second over all chats: below Telegram's ~30, replies included


@dataclass(slots=True)
class _Bucket:
    """A token bucket: `capacity` at once, refilled at `per_s`; nothing before `paused_until`."""

    per_s: float
    capacity: float
    tokens: float
    at_s: float
    paused_until_s: float = 0.0

    def wait_s(self, now_s: float, keep: float = 0.0) -> float:
        """Seconds until a token may be taken leaving `keep` tokens (0: now)."""
        self.tokens = min(self.capacity, self.tokens + (now_s - self.at_s) * self.per_s)
        self.at_s = now_s
        if now_s < self.paused_until_s:
            return self.paused_until_s - now_s
        need = 1 + min(keep, self.capacity - 1)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.per_s

    def idle(self, now_s: float) -> bool:
        return self.wait_s(now_s) == 0.0 and self.tokens >= self.capacity


def retry_after_s(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # int or timedelta, depending on PTB_TIMEDELTA
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramPacing(BaseRateLimiter[str]):
    """See the module docstring."""

    def __init__(
        self,
        *,
        overall_per_s: float = OVERALL_PER_S,
        private_per_s: float = 1.0,
        private_burst: int = 3,
        group_per_minute: float = 20.0,
        group_burst: int | None = None,
        max_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._overall = _Bucket(overall_per_s, max(1.0, overall_per_s), max(1.0, overall_per_s), clock())
        self._private = (private_per_s, float(max(1, private_burst)))
        self._group = (group_per_minute / 60.0, float(max(1, group_burst or int(group_per_minute))))
        self._max_retries = max_retries
        self._chats: dict[int | str, _Bucket] = {}
        self._bulk_paused_until_s = 0.0
        self._waiting: dict[bool, deque[asyncio.Future]] = {False: deque(), True: deque()}  # bulk? -> waiters
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self.flood_waits = 0  # 429s received

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat = data.get("chat_id")
        paced = chat is not None and not endpoint.startswith("get")
        bulk = rate_limit_args == BULK
        for attempt in range(self._max_retries + 1):
            if paced:
                await self._chat_turn(chat, bulk)
                await self._overall_turn(bulk)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt == self._max_retries:
                    raise
                self.flood_waits += 1
                pause_until_s = self._clock() + retry_after_s(error)
                if chat is not None:
                    bucket = self._bucket(chat)
                    bucket.paused_until_s = max(bucket.paused_until_s, pause_until_s)
                self._bulk_paused_until_s = max(self._bulk_paused_until_s, pause_until_s)
                log.info("telegram: flood wait of %.1f s on %s (chat and bulk sends paused)", retry_after_s(error), endpoint)
                if not paced:
                    await asyncio.sleep(retry_after_s(error))
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- per chat ------------------------------------------------------------------

    def _bucket(self, chat: int | str) -> _Bucket:
        bucket = self._chats.get(chat)
        if bucket is None:
            now_s = self._clock()
            if len(self._chats) >= MAX_TRACKED_CHATS:
                self._chats = {key: b for key, b in self._chats.items() if not b.idle(now_s)}
            group = isinstance(chat, str) or int(chat) < 0  # @channelname or a negative group id
            per_s, capacity = self._group if group else self._private
            bucket = self._chats[chat] = _Bucket(per_s, capacity, capacity, now_s)
        return bucket

    async def _chat_turn(self, chat: int | str, bulk: bool) -> None:
        bucket = self._bucket(chat)
        keep = 1.0 if bulk else 0.0  # one message of the chat's burst stays free for a reply
        while (wait_s := bucket.wait_s(self._clock(), keep)) > 0:
            await asyncio.sleep(wait_s)
        bucket.tokens -= 1

    # -- overall, replies first ------------------------------------------------------

    async def _overall_turn(self, bulk: bool) -> None:
        ahead = self._waiting[False] or (bulk and self._waiting[True])
        if not ahead and self._grant_wait_s(bulk, self._clock()) == 0:
            self._overall.tokens -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[bulk].append(waiter)
        self._pump_soon()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._overall.tokens += 1  # granted, then cancelled: give the turn back
            raise

    def _grant_wait_s(self, bulk: bool, now_s: float) -> float:
        wait_s = self._overall.wait_s(now_s)
        return max(wait_s, self._bulk_paused_until_s - now_s) if bulk else wait_s

    def _pump_soon(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        """Grant turns while the budget allows: waiting replies first, then bulk."""
        self._timer = None
        while True:
            for queue in self._waiting.values():
                while queue and queue[0].done():  # cancelled while waiting
                    queue.popleft()
            bulk = not self._waiting[False]
            queue = self._waiting[bulk]
            if not queue:
                return
            wait_s = self._grant_wait_s(bulk, self._clock())
            if wait_s > 0:
                self._timer = asyncio.get_running_loop().call_later(wait_s, self._pump)
                return
            self._overall.tokens -= 1
            queue.popleft().set_result(None)
