"""Which work a person is waiting for. A command is answered `in_foreground()`:
the SQLite backend serves its reads on a connection of their own, so a reply
never queues behind the reads of background work (alert messages worded for
thousands of chats, a digest fan-out), which share the other one."""

from __future__ import annotations

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
