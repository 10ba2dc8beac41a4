"""Daily digests: a chat's schedule, and when its digest is due. Pure.

A schedule is a local time in an IANA zone. The latest slot at or before now
is due once per local date, when it is at most `DIGEST_GRACE_MS` old and not
before the schedule was set: a cron firing twice on an autumn DST change, or
a restart after a send, finds the date already sent (`last_sent_local_date`).
"""

from __future__ import annotations

from dataclasses import dataclass

DIGEST_GRACE_MS = 6 * 3_600_000  # a digest missed while down is sent if less late than this


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    chat_key: str
    local_time: str  # "HH:MM"
    tz: str  # IANA zone, "Europe/Berlin"
    enabled: bool = True
    last_sent_local_date: str | None = None  # "YYYY-MM-DD" in `tz`
    locale: str = "en"
    chart: bool = False  # attach the day's /chart top picture
    since_ms: int = 0  # turned on (or its time changed) at; earlier slots are never due
    style: str = "full"  # "full": the write-up (/report); "brief": the table and notes

    @property
    def hour(self) -> int:
        return int(self.local_time[:2])

    @property
    def minute(self) -> int:
        return int(self.local_time[3:5])


def parse_local_time(token: str) -> str | None:
    """"8:00", "08:00", "0800" -> "08:00"; None when not a time of day."""
    token = token.strip()
    if ":" in token:
        hours, _, minutes = token.partition(":")
    elif len(token) == 4:
        hours, minutes = token[:2], token[2:]
    else:
        return None
    if not (_ascii_digits(hours) and _ascii_digits(minutes) and len(minutes) == 2 and 1 <= len(hours) <= 2):
        return None
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        return None
    return f"{h:02d}:{m:02d}"


def _ascii_digits(token: str) -> bool:
    # str.isdigit() accepts superscripts (²) that int() refuses.
    return token.isascii() and token.isdigit()


def _zone(tz: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


def valid_tz(tz: str) -> bool:
    from zoneinfo import ZoneInfoNotFoundError

    try:
        _zone(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory such as "America"
        return False
    return True


def latest_slot(schedule: DigestSchedule, now_ms: int) -> tuple[str, int]:
    """The most recent scheduled moment at or before now: (its local date, its epoch ms).

    A local time that does not exist that day (spring DST gap) counts as the
    moment after the gap; one that exists twice (autumn) as its first occurrence.
    """
    from datetime import datetime, timedelta

    zone = _zone(schedule.tz)
    local_now = datetime.fromtimestamp(now_ms / 1000, zone)
    for days_back in (0, 1, 2):
        day = (local_now - timedelta(days=days_back)).date()
        slot = datetime(day.year, day.month, day.day, schedule.hour, schedule.minute, tzinfo=zone, fold=0)
        slot_ms = round(slot.timestamp() * 1000)
        if slot_ms <= now_ms:
            return day.isoformat(), slot_ms
    raise AssertionError("unreachable: a slot within two days")


def due_digest(schedule: DigestSchedule, now_ms: int, grace_ms: int = DIGEST_GRACE_MS) -> str | None:
    """The local date whose digest should go out now, or None.

    Due when the latest slot is at most `grace_ms` old, not before the schedule
    was set, and no digest was sent for its local date: a cron firing twice on a DST change, or a restart
    after a send, finds the date already sent."""
    if not schedule.enabled:
        return None
    local_date, slot_ms = latest_slot(schedule, now_ms)
    if now_ms - slot_ms >= grace_ms or slot_ms < schedule.since_ms:
        return None
    if schedule.last_sent_local_date is not None and schedule.last_sent_local_date >= local_date:
        return None
    return local_date
