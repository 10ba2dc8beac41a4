"""Keep long-running tasks alive: a crash is logged and the task restarted
with backoff, never lost silently. Cancellation always goes through."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# A task that ran this long before crashing starts again with the shortest delay.
HEALTHY_AFTER_S = 60.0


@dataclass
class TaskState:
    """A supervised task as `/status` shows it; `supervise` updates it in place."""

    state: str = "starting"  # "starting" | "running" (the task says so) | "retrying" | "stopped"
    last_error: str | None = None


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    permanent: tuple[type[BaseException], ...] = (),
    base_delay_s: float = 1.0,
    max_delay_s: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    state: TaskState | None = None,
) -> None:
    """Run `run()` until it returns, restarting it after each crash.

    An exception of a `permanent` type (a rejected token, a config error) is
    logged as one line and ends supervision: retrying cannot fix it. `state`,
    if given, follows along.
    """
    state = state or TaskState()
    failures = 0
    while True:
        started = monotonic()
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except permanent as error:
            log.error("%s stopped: %s", name, error)
            state.state, state.last_error = "stopped", str(error)
            return
        except Exception as error:
            state.state, state.last_error = "retrying", _one_line(error)
            failures = 1 if monotonic() - started >= HEALTHY_AFTER_S else failures + 1
            delay = min(max_delay_s, base_delay_s * 2 ** (failures - 1)) * (0.5 + random.random() / 2)
            # One line per retry (an unreachable server fails the same way every time);
            # the traceback once per run of failures, for whoever turns on DEBUG.
            log.error("%s failed: %s; retrying in %.1f s (failure %d in a row)", name, _one_line(error), delay, failures)
            if failures == 1:
                log.debug("%s: traceback of that failure", name, exc_info=True)
            await sleep(delay)


def _one_line(error: BaseException) -> str:
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
