"""APScheduler wiring, nothing else: one cron job per distinct digest schedule
(local time, IANA zone) firing `DigestService.send_due` for that group.

The schedules live in our own table (APScheduler's memory forgets runs missed
while down), with each chat's last sent local date. So:
- jobs are registered at `start()` and re-registered when a chat changes its
  schedule (`DigestService.on_change`);
- at start, a digest missed while down is sent once if less than the grace
  (6 h) late (`send_due` at start);
- a cron trigger fires twice when an autumn DST change repeats the hour: the
  second firing finds the local date already sent and sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.plumbing.clock import wall_clock_ms
from bot.core.digest import DigestSchedule
from bot.services.digests import DigestService

log = logging.getLogger(__name__)

JOB_PREFIX = "digest "



def job_id(local_time: str, tz: str) -> str:
    return f"{JOB_PREFIX}{local_time} {tz}"


class DigestScheduler:
    """Start with `await start()` inside the running loop; `shutdown()` at exit."""

    def __init__(
        self,
        digests: DigestService,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
        scheduler: AsyncIOScheduler | None = None,
    ) -> None:
        self._digests = digests
        self._now_ms = now_ms
        self.scheduler = scheduler or AsyncIOScheduler(timezone="UTC")
        self._groups: dict[tuple[str, str], set[str]] = {}  # (time, tz) -> chat keys
        digests.on_change(self._changed)

    async def start(self) -> int:
        """Register every enabled schedule, start APScheduler, catch up once.
        Returns how many digests the catch-up sent."""
        for schedule in await self._digests.schedules():
            self._register(schedule)
        if not self.scheduler.running:
            self.scheduler.start()
        log.info("scheduler: %d digest job(s) for %d chat(s)", len(self._groups),
                 sum(len(chats) for chats in self._groups.values()))
        return await self._digests.send_due(self._now_ms())

    async def follow_schedules(self) -> None:
        """Register each chat's job as the store has it now (other replicas change
        schedules; bot.services.changes)."""
        stored = {schedule.chat_key: schedule for schedule in await self._digests.schedules()}
        registered = {chat_key: key for key, chat_keys in self._groups.items() for chat_key in chat_keys}
        for chat_key in registered.keys() - stored.keys():
            self._unregister(chat_key)
        for chat_key, schedule in stored.items():
            if registered.get(chat_key) != (schedule.local_time, schedule.tz):
                self._register(schedule)

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def jobs(self) -> dict[str, CronTrigger]:
        return {job.id: job.trigger for job in self.scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)}

    async def fire(self, local_time: str, tz: str) -> int:
        """What a cron job runs (tests call it directly, with an injected clock)."""
        return await self._digests.send_due(self._now_ms(), only=[(local_time, tz)])

    # -- registration -------------------------------------------------------------

    def _register(self, schedule: DigestSchedule) -> None:
        self._unregister(schedule.chat_key)
        if not schedule.enabled:
            return
        key = (schedule.local_time, schedule.tz)
        chats = self._groups.setdefault(key, set())
        chats.add(schedule.chat_key)
        if len(chats) == 1:
            self.scheduler.add_job(
                self.fire,
                CronTrigger(hour=schedule.hour, minute=schedule.minute, timezone=schedule.tz),
                args=key,
                id=job_id(*key),
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                # Late firings (a busy loop) still run; restarts are covered by send_due at start.
                misfire_grace_time=int(self._digests.grace_ms / 1000),
            )

    def _unregister(self, chat_key: str) -> None:
        for key, chats in list(self._groups.items()):
            if chat_key in chats:
                chats.discard(chat_key)
                if not chats:
                    del self._groups[key]
                    job = self.scheduler.get_job(job_id(*key))
                    if job is not None:
                        job.remove()

    def _changed(self, schedule: DigestSchedule | None) -> None:
        if schedule is not None:
            self._register(schedule)
