"""The one function that reads the wall clock. Everything else takes `now_ms`
(or a clock callable) as an argument, so tests inject time."""

from __future__ import annotations

import time


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000
