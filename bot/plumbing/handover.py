"""The GIL handed to a worker thread that a busy event loop starves (aiosqlite's).

A thread waiting for the GIL asks its holder to drop it only when a whole switch
interval (5 ms) passed with no release signalled to it. An event loop that is never
idle still releases the GIL for an instant on every turn (polling its sockets) and
takes it straight back: each release wakes the waiting thread early, it finds the
GIL taken again and starts a fresh 5 ms, so it asks for nothing and gets the GIL
only if it wins that instant's race (CPython's take_gil). A SQLite call
needs the GIL a few times (to pick up the call, after each step, to hand back the
result): behind a task computing 1 ms at a time, a read that takes 40 ms on an idle
loop took 1.6-2.6 s (p50) and up to 20 s (`benchmarks/busy_reads.py`, "event loop
busy"); handed over, 70-74 ms.

`handed_over(call)`: while any call has waited longer than `HANDOVER_AFTER_S`, the
loop sleeps `NAP_S` with the GIL released (the thread takes it) at most once a turn
and once every `NAP_EVERY_S`, so a loop of many short turns keeps most of them.
Nothing changes for calls that finish sooner: a loop that idles hands the GIL over
by itself.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

HANDOVER_AFTER_S = 0.02
NAP_S = 0.0001
NAP_EVERY_S = 0.001


class _Overdue:
    """A loop's calls in flight past HANDOVER_AFTER_S, and whether its naps run."""

    __slots__ = ("calls", "napping")

    def __init__(self) -> None:
        self.calls = 0
        self.napping = False


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Overdue] = weakref.WeakKeyDictionary()


async def handed_over(call: Awaitable[T]) -> T:
    """`await call`, the loop napping (at most once a turn and a millisecond) while it or another call is overdue."""
    loop = asyncio.get_running_loop()
    overdue = _by_loop.get(loop)
    if overdue is None:
        overdue = _by_loop[loop] = _Overdue()
    late = False

    def became_late() -> None:
        nonlocal late
        late = True
        overdue.calls += 1
        if not overdue.napping:
            overdue.napping = True
            loop.call_soon(_nap, loop, overdue)

    timer = loop.call_later(HANDOVER_AFTER_S, became_late)
    try:
        return await call
    finally:
        timer.cancel()
        if late:
            overdue.calls -= 1


def _nap(loop: asyncio.AbstractEventLoop, overdue: _Overdue) -> None:
    overdue.napping = False  # until rescheduled: an interrupted sleep leaves the next call free to start
    if not overdue.calls:
        return
    time.sleep(NAP_S)  # the GIL is released while sleeping: the waiting thread takes it
    # An idle loop waits in its selector meanwhile, the GIL released, rather than spinning through naps.
    overdue.napping = True
    loop.call_later(NAP_EVERY_S, _nap, loop, overdue)
