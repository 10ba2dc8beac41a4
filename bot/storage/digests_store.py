"""Digest schedules in the liqbot database (tables from migrations 0003, 0004, 0005 and 0007)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.digest import DigestSchedule
from bot.storage.database import Transaction
from bot.storage.sibling import SiblingStore

_DIGEST_COLUMNS = "chat_key, local_time, tz, enabled, last_sent_local_date, locale, chart, since_ms, style"


def _digest_of(row: Sequence) -> DigestSchedule:
    chat_key, local_time, tz, enabled, last_sent, locale, chart, since_ms, style = row
    return DigestSchedule(chat_key, local_time, tz, bool(enabled), last_sent, locale, bool(chart), since_ms, style)


class DigestsStore(SiblingStore):
    """Each chat's digest schedule and what was sent."""

    async def set_digest(self, schedule: DigestSchedule, now_ms: int) -> None:
        """Create or change a chat's digest; keeps `last_sent_local_date` and the
        chart choice of an existing one."""
        await self._db.execute(
            f"INSERT INTO digest_schedules ({_DIGEST_COLUMNS}, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (chat_key) DO UPDATE SET local_time = excluded.local_time, tz = excluded.tz,"
            " enabled = excluded.enabled, locale = excluded.locale, since_ms = excluded.since_ms,"
            " updated_ms = excluded.updated_ms",
            (schedule.chat_key, schedule.local_time, schedule.tz, int(schedule.enabled),
             schedule.last_sent_local_date, schedule.locale, int(schedule.chart), schedule.since_ms, schedule.style,
             now_ms),
        )
        await self._db.changed("digests")  # the leader's scheduler fires at the new time

    async def set_digest_style(self, chat_key: str, style: str, now_ms: int) -> bool:
        """A chat's digest style ("full" or "brief"); False when the chat has no digest."""
        return bool(await self._db.execute(
            "UPDATE digest_schedules SET style = ?, updated_ms = ? WHERE chat_key = ?", (style, now_ms, chat_key)
        ))

    async def set_digest_chart(self, chat_key: str, chart: bool, now_ms: int) -> bool:
        """Attach the day's chart to a chat's digest (or not); False when the chat has no digest."""
        return bool(await self._db.execute(
            "UPDATE digest_schedules SET chart = ?, updated_ms = ? WHERE chat_key = ?", (int(chart), now_ms, chat_key)
        ))

    async def disable_digest(self, chat_key: str, now_ms: int) -> bool:
        disabled = bool(await self._db.execute(
            "UPDATE digest_schedules SET enabled = 0, updated_ms = ? WHERE chat_key = ?", (now_ms, chat_key)
        ))
        await self._db.changed("digests")
        return disabled

    async def digest(self, chat_key: str) -> DigestSchedule | None:
        rows = await self._db.fetch(f"SELECT {_DIGEST_COLUMNS} FROM digest_schedules WHERE chat_key = ?", (chat_key,))
        return _digest_of(rows[0]) if rows else None

    async def digests(self, enabled_only: bool = True) -> list[DigestSchedule]:
        where = " WHERE enabled = 1" if enabled_only else ""
        rows = await self._db.fetch(f"SELECT {_DIGEST_COLUMNS} FROM digest_schedules{where} ORDER BY chat_key")
        return [_digest_of(r) for r in rows]

    async def mark_digests_sent(self, tx: Transaction, due: dict[str, str], now_ms: int) -> set[str]:
        """Record the sends of many chats ({chat_key: local date}) inside `tx` (with the
        sends themselves, bot.services.digests), each only when its date is newer than
        the one recorded (check-and-set: the guard against double sends); returns the
        chats whose date was recorded now."""
        if not due:
            return set()
        last = dict(await tx.fetch("SELECT chat_key, last_sent_local_date FROM digest_schedules"))
        fresh = {
            chat: date for chat, date in due.items()
            if chat in last and (last[chat] is None or last[chat] < date)
        }
        await tx.executemany(
            "UPDATE digest_schedules SET last_sent_local_date = ?, updated_ms = ? WHERE chat_key = ?",
            [(date, now_ms, chat) for chat, date in fresh.items()],
        )
        return set(fresh)
