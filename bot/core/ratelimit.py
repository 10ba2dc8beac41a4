"""Per-key token buckets (per user, per chat). Pure: the caller passes `now_ms`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    burst: int  # commands allowed at once
    per_minute: float  # sustained refill rate


class TokenBuckets:
    """Keyed token buckets. Idle keys are pruned so memory stays bounded."""

    def __init__(self, limit: RateLimit, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, int]] = {}  # key -> (tokens, updated_ms)

    def _tokens(self, key: str, now_ms: int) -> float:
        tokens, updated_ms = self._buckets.get(key, (float(self._limit.burst), now_ms))
        refill = (now_ms - updated_ms) / 60_000 * self._limit.per_minute
        return min(float(self._limit.burst), tokens + refill)

    def try_take(self, key: str, now_ms: int) -> float:
        """0 when allowed (a token is taken), else the seconds until one is free."""
        tokens = self._tokens(key, now_ms)
        if tokens >= 1:
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._prune(now_ms)
            self._buckets[key] = (tokens - 1, now_ms)
            return 0.0
        return (1 - tokens) * 60 / self._limit.per_minute

    def _prune(self, now_ms: int) -> None:
        full = [k for k in self._buckets if self._tokens(k, now_ms) >= self._limit.burst]
        for key in full:
            del self._buckets[key]


@dataclass(frozen=True, slots=True)
class Refusal:
    wait_s: float  # until the refused bucket has a token again
    notify: bool  # the first refusal of its bucket key this period: say so; the rest are dropped


class CommandGate:
    """Admits commands per user and per chat. A refused key hears "slow down" at
    most once per `notice_period_ms`; the refusals in between are only counted,
    so a flood costs the bot no messages (and the chat no pacing delay)."""

    def __init__(self, per_user: RateLimit, per_chat: RateLimit, notice_period_ms: int = 60_000,
                 max_keys: int = 100_000) -> None:
        self._users = TokenBuckets(per_user, max_keys)
        self._chats = TokenBuckets(per_chat, max_keys)
        self._notice_period_ms = notice_period_ms
        self._max_keys = max_keys
        self._quiet_until_ms: dict[str, int] = {}  # bucket key -> end of its notice period
        self.dropped = 0

    def check(self, user_key: str, chat_key: str, now_ms: int) -> Refusal | None:
        """None when admitted (a token of each bucket taken), else the refusal."""
        wait_s = self._users.try_take(user_key, now_ms)
        refused_key = f"user {user_key}"
        if not wait_s:
            wait_s = self._chats.try_take(chat_key, now_ms)
            refused_key = f"chat {chat_key}"
        if not wait_s:
            return None
        if now_ms < self._quiet_until_ms.get(refused_key, now_ms):
            self.dropped += 1
            return Refusal(wait_s, notify=False)
        if len(self._quiet_until_ms) >= self._max_keys:
            self._quiet_until_ms = {k: t for k, t in self._quiet_until_ms.items() if t > now_ms}
        self._quiet_until_ms[refused_key] = now_ms + self._notice_period_ms
        return Refusal(wait_s, notify=True)
