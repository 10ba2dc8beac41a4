"""The leader follows the settings other replicas change.

Commands run on every replica (bot.services.leadership), but the leader keeps
three kinds of settings in memory to act on them: alert rules (the alert engine),
feed subscriptions (the channel feed) and digest schedules (the scheduler's
jobs). A store that changes one announces it (`Database.changed`, a PostgreSQL
NOTIFY); the leader listens for its whole term and reloads what changed, from
the store, comparing with what it holds (rules it already knows keep their
in-memory state). A burst of changes costs one reload per `quiet_s`.

On SQLite nothing is announced: the one runner made every change itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)


class FollowChanges:
    def __init__(
        self,
        reloads: Mapping[str, Callable[[], Awaitable[None]]],
        *,
        quiet_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._reloads = reloads  # topic -> reload
        self._quiet_s = quiet_s
        self._sleep = sleep
        self._due: set[str] = set()
        self._announced = asyncio.Event()
        self.reloaded = 0  # reloads done (for tests and logs)

    def notify(self, topic: str) -> None:
        """`Database.listen`'s callback: `topic` changed somewhere."""
        if topic in self._reloads:
            self._due.add(topic)
            self._announced.set()

    async def run(self) -> None:
        """Reload what was announced, until cancelled."""
        while True:
            await self._announced.wait()
            self._announced.clear()
            due, self._due = self._due, set()
            for topic in sorted(due):
                await self._reloads[topic]()
                self.reloaded += 1
            log.debug("followed changes of %s", ", ".join(sorted(due)))
            await self._sleep(self._quiet_s)
