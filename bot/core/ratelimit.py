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
