"""Which work a person is waiting for. A command is answered `in_foreground()`:
the SQLite backend serves its reads on a connection of their own, so a reply
never queues behind the reads of background work (alert messages worded for
thousands of chats, a digest fan-out), which share the other one; and while
such a read is in flight, a firehose being parsed `make_way`s for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_FOREGROUND: ContextVar[bool] = ContextVar("foreground", default=False)


@contextmanager
def foreground() -> Iterator[None]:
    """What runs inside (and the awaits it makes, in its task) is a person's request."""
    token = _FOREGROUND.set(True)
    try:
        yield
    finally:
        _FOREGROUND.reset(token)


def in_foreground() -> bool:
    return _FOREGROUND.get()


# Reads a person is waiting for, in flight now (counted by the SQLite backend).
_reads_waited_for = 0
# While one is in flight, work that can wait pauses this long at a time, at most MAX_PAUSE_S a turn.
PAUSE_S = 0.001
MAX_PAUSE_S = 0.05


@contextmanager
def waited_for() -> Iterator[None]:
    """Around a read a person is waiting for: work that can wait (`make_way`) pauses meanwhile."""
    global _reads_waited_for
    _reads_waited_for += 1
    try:
        yield
    finally:
        _reads_waited_for -= 1


async def make_way(max_s: float = MAX_PAUSE_S) -> None:
    """Pause (at most `max_s`) while a person's read is in flight.

    Why: SQLite reads run on a thread, and every row it steps needs the GIL back;
    a loop busy parsing a firehose hands the GIL over only every switch interval
    (5 ms, `sys.getswitchinterval`), so a 60-row reply took seconds, and replies
    queued behind each other. Sleeping idles the loop in its selector, which
    releases the GIL to the reader at once."""
    if not _reads_waited_for:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_s
    while _reads_waited_for and loop.time() < deadline:
        await asyncio.sleep(PAUSE_S)
