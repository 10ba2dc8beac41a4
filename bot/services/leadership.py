"""This process's role among replicas of one database (leader or follower), and
the election that decides it.

The leader runs what must run once (the venue feeds and ingest, the market
poller, levels updates, alert evaluation, the channel feed, the digest scheduler,
retention, Telegram long polling): the composition root hands them over as one
coroutine, a *term*, which `Election` starts when this replica wins and cancels
when it loses. Every replica answers commands whatever its role.

- On SQLite there is exactly one runner (bot.storage.runlock): it is the leader
  from the start and its term runs until the process stops.
- On PostgreSQL every replica starts as a follower and tries the leader lock
  (bot.storage.leader_lock) every `heartbeat_s`. The winner checks every
  `heartbeat_s` that it still holds it; a check that fails or takes longer than
  `heartbeat_s` (the database cut off, the session ended by the server) makes it
  step down at once: role first, then the term cancelled (its feeds write what
  they hold), then the lock's connection closed. The server's lease
  (`lease_s`, at least three heartbeats) ends later than that, so two terms do
  not overlap unless the clock of one side stalls; if they ever do, both store
  each event once (the events table deduplicates) and nothing else is harmed.
- A replica that dies is replaced within `heartbeat_s` plus the new term's
  start (its lock is released when its connection closes); one cut off, within
  `lease_s` plus `heartbeat_s`. The new leader's streams open new recorded
  spans, so the time between shows as a gap in /status (or as backfilled, for
  venues with a REST history).

`/healthz` and `/metrics` read `Leadership` (role, changes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

log = logging.getLogger(__name__)

Role = Literal["leader", "follower"]


class Leadership:
    def __init__(self, role: Role = "leader") -> None:
        self.role: Role = role
        self.changes = 0  # times the role changed since start

    @property
    def is_leader(self) -> bool:
        return self.role == "leader"

    def become(self, role: Role) -> None:
        if role == self.role:
            return
        log.warning("this replica is now the %s (was the %s)", role, self.role)
        self.role = role
        self.changes += 1


class LeaderLock(Protocol):
    """What the election needs of bot.storage.leader_lock.LeaderLock."""

    async def try_acquire(self) -> bool: ...

    async def still_held(self) -> bool: ...

    async def close(self) -> None: ...


class LeadershipLost(Exception):
    """The lock is no longer held, or the term stopped by itself."""


class Election:
    """Run `term()` while this replica is the leader. `open_lock` None: the one
    runner of a SQLite database, leader for good."""

    def __init__(
        self,
        leadership: Leadership,
        term: Callable[[], Awaitable[None]],
        open_lock: Callable[[], Awaitable[LeaderLock]] | None,
        *,
        heartbeat_s: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._leadership = leadership
        self._term = term
        self._open_lock = open_lock
        self._heartbeat_s = heartbeat_s
        self._sleep = sleep

    async def run(self) -> None:
        """Until cancelled; on the way out the term stops first, then the lock is released."""
        if self._open_lock is None:
            self._leadership.become("leader")
            await self._term()
            return
        lock: LeaderLock | None = None
        term: asyncio.Task | None = None
        failing = False
        try:
            while True:
                try:
                    lock = lock or await self._open_lock()
                    if term is None:
                        if await asyncio.wait_for(lock.try_acquire(), self._heartbeat_s):
                            self._leadership.become("leader")
                            term = asyncio.create_task(self._term(), name="leader term")
                    elif term.done():
                        raise LeadershipLost(f"the leader's jobs ended: {_outcome(term)}")
                    elif not await asyncio.wait_for(lock.still_held(), self._heartbeat_s):
                        raise LeadershipLost("the leader lock is no longer held")
                    failing = False
                except Exception as error:
                    reason = _one_line(error)
                    if term is not None:
                        log.error("stepping down: %s", reason)
                    elif not failing:  # one line per run of failures (an unreachable server fails alike)
                        log.error("leader election: %s; trying again every %g s", reason, self._heartbeat_s)
                    failing = True
                    await self._step_down(term)
                    term = None
                    if lock is not None:
                        await lock.close()
                        lock = None
                await self._sleep(self._heartbeat_s)
        finally:
            await self._step_down(term)
            if lock is not None:
                await lock.close()

    async def _step_down(self, term: asyncio.Task | None) -> None:
        self._leadership.become("follower")
        if term is None:
            return
        term.cancel()
        await asyncio.gather(term, return_exceptions=True)  # its feeds write what they hold


def _outcome(task: asyncio.Task) -> str:
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return _one_line(error) if error is not None else "returned"


def _one_line(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "the database did not answer in time"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
