"""Alert rules and digest schedules in the liqbot database, on the connections
of a `Store` (tables from migrations 0003 and 0004). Writes share the Store's write lock."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from bot.core.alerts import AlertRule, DigestSchedule, RuleKind, RuleState
from bot.core.models import Side, Window
from bot.storage.store import Store

_RULE_COLUMNS = "id, chat_key, user_key, kind, asset, threshold_usd, window_ms, share, paused, state"
_DIGEST_COLUMNS = "chat_key, local_time, tz, enabled, last_sent_local_date, locale, chart, since_ms, style"


def _rule_of(row: Sequence) -> tuple[AlertRule, RuleState]:
    rule_id, chat_key, user_key, kind, asset, threshold, window_ms, share, paused, state = row
    rule = AlertRule(rule_id, chat_key, user_key, RuleKind(kind), asset, threshold, window_ms, share, bool(paused))
    return rule, RuleState.from_dict(json.loads(state or "{}"))


def _digest_of(row: Sequence) -> DigestSchedule:
    chat_key, local_time, tz, enabled, last_sent, locale, chart, since_ms, style = row
    return DigestSchedule(chat_key, local_time, tz, bool(enabled), last_sent, locale, bool(chart), since_ms, style)


class AlertsStore:
    """Alert rules, their state and digest schedules over a `Store`'s connections."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def _write(self, sql: str, args: Sequence = ()) -> int:
        async with self._store.write_lock:
            cursor = await self._store.writer.execute(sql, args)
            return cursor.rowcount

    async def _read(self, sql: str, args: Sequence = ()) -> list:
        cursor = await self._store.reader.execute(sql, args)
        return list(await cursor.fetchall())

    # -- alert rules ----------------------------------------------------------

    async def add_rule(self, rule: AlertRule, now_ms: int) -> AlertRule:
        """Store a new rule (its id is ignored); returns it with its id."""
        async with self._store.write_lock:
            cursor = await self._store.writer.execute(
                "INSERT INTO alert_rules (chat_key, user_key, kind, asset, threshold_usd, window_ms, share,"
                " paused, state, created_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (rule.chat_key, rule.user_key, rule.kind.value, rule.asset, rule.threshold_usd, rule.window_ms,
                 rule.share, int(rule.paused), "{}", now_ms),
            )
            rule_id = cursor.lastrowid
        return AlertRule(rule_id, rule.chat_key, rule.user_key, rule.kind, rule.asset, rule.threshold_usd,
                         rule.window_ms, rule.share, rule.paused)

    async def rules(self) -> list[tuple[AlertRule, RuleState]]:
        return [_rule_of(r) for r in await self._read(f"SELECT {_RULE_COLUMNS} FROM alert_rules ORDER BY id")]

    async def rules_of_chat(self, chat_key: str) -> list[tuple[AlertRule, RuleState]]:
        rows = await self._read(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE chat_key = ? ORDER BY id", (chat_key,))
        return [_rule_of(r) for r in rows]

    async def rule(self, rule_id: int) -> tuple[AlertRule, RuleState] | None:
        rows = await self._read(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE id = ?", (rule_id,))
        return _rule_of(rows[0]) if rows else None

    async def count_rules(self, chat_key: str, user_key: str) -> tuple[int, int]:
        """(rules of this user in all chats, rules of this chat)."""
        (user,) = (await self._read("SELECT COUNT(*) FROM alert_rules WHERE user_key = ?", (user_key,)))[0]
        (chat,) = (await self._read("SELECT COUNT(*) FROM alert_rules WHERE chat_key = ?", (chat_key,)))[0]
        return user, chat

    async def remove_rule(self, rule_id: int) -> bool:
        return bool(await self._write("DELETE FROM alert_rules WHERE id = ?", (rule_id,)))

    async def set_paused(self, chat_key: str, rule_id: int | None, paused: bool) -> list[int]:
        """Pause/resume one rule of a chat (or all of them); returns the ids changed."""
        if rule_id is None:
            rows = await self._read("SELECT id FROM alert_rules WHERE chat_key = ? AND paused != ?",
                                    (chat_key, int(paused)))
        else:
            rows = await self._read("SELECT id FROM alert_rules WHERE chat_key = ? AND id = ? AND paused != ?",
                                    (chat_key, rule_id, int(paused)))
        ids = [r[0] for r in rows]
        if ids:
            async with self._store.write_lock:
                await self._store.writer.executemany(
                    "UPDATE alert_rules SET paused = ? WHERE id = ?", [(int(paused), i) for i in ids]
                )
        return ids

    async def save_states(self, states: dict[int, RuleState]) -> None:
        if not states:
            return
        rows = [(json.dumps(state.to_dict()), rule_id) for rule_id, state in states.items()]
        async with self._store.write_lock:
            db = self._store.writer
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany("UPDATE alert_rules SET state = ? WHERE id = ?", rows)
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise

    async def minute_totals(self, assets: Iterable[str], window: Window) -> list[tuple[str, int, Side, float]]:
        """(asset, minute start, side, usd) from the minute rollup, to seed window sums at start."""
        assets = sorted(set(assets))
        if not assets:
            return []
        marks = ",".join("?" * len(assets))
        rows = await self._read(
            f"SELECT asset, bucket_ms, liquidated, SUM(usd_cents) FROM rollup_minute WHERE asset IN ({marks})"
            " AND bucket_ms >= ? AND bucket_ms < ? GROUP BY asset, bucket_ms, liquidated",
            (*assets, window.start_ms, window.end_ms),
        )
        return [(asset, bucket, Side(side), cents / 100) for asset, bucket, side, cents in rows]

    # -- digest schedules --------------------------------------------------------

    async def set_digest(self, schedule: DigestSchedule, now_ms: int) -> None:
        """Create or change a chat's digest; keeps `last_sent_local_date` and the
        chart choice of an existing one."""
        await self._write(
            f"INSERT INTO digest_schedules ({_DIGEST_COLUMNS}, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (chat_key) DO UPDATE SET local_time = excluded.local_time, tz = excluded.tz,"
            " enabled = excluded.enabled, locale = excluded.locale, since_ms = excluded.since_ms,"
            " updated_ms = excluded.updated_ms",
            (schedule.chat_key, schedule.local_time, schedule.tz, int(schedule.enabled),
             schedule.last_sent_local_date, schedule.locale, int(schedule.chart), schedule.since_ms, schedule.style,
             now_ms),
        )

    async def set_digest_style(self, chat_key: str, style: str, now_ms: int) -> bool:
        """A chat's digest style ("full" or "brief"); False when the chat has no digest."""
        return bool(await self._write(
            "UPDATE digest_schedules SET style = ?, updated_ms = ? WHERE chat_key = ?", (style, now_ms, chat_key)
        ))

    async def set_digest_chart(self, chat_key: str, chart: bool, now_ms: int) -> bool:
        """Attach the day's chart to a chat's digest (or not); False when the chat has no digest."""
        return bool(await self._write(
            "UPDATE digest_schedules SET chart = ?, updated_ms = ? WHERE chat_key = ?", (int(chart), now_ms, chat_key)
        ))

    async def disable_digest(self, chat_key: str, now_ms: int) -> bool:
        return bool(await self._write(
            "UPDATE digest_schedules SET enabled = 0, updated_ms = ? WHERE chat_key = ?", (now_ms, chat_key)
        ))

    async def digest(self, chat_key: str) -> DigestSchedule | None:
        rows = await self._read(f"SELECT {_DIGEST_COLUMNS} FROM digest_schedules WHERE chat_key = ?", (chat_key,))
        return _digest_of(rows[0]) if rows else None

    async def digests(self, enabled_only: bool = True) -> list[DigestSchedule]:
        where = " WHERE enabled = 1" if enabled_only else ""
        rows = await self._read(f"SELECT {_DIGEST_COLUMNS} FROM digest_schedules{where} ORDER BY chat_key")
        return [_digest_of(r) for r in rows]

    async def mark_digest_sent(self, chat_key: str, local_date: str, now_ms: int) -> bool:
        """Record a send for `local_date`; False when that date was already recorded
        (the guard against double sends: check-and-set in one statement)."""
        changed = await self._write(
            "UPDATE digest_schedules SET last_sent_local_date = ?, updated_ms = ? WHERE chat_key = ?"
            " AND (last_sent_local_date IS NULL OR last_sent_local_date < ?)",
            (local_date, now_ms, chat_key, local_date),
        )
        return bool(changed)

    async def mark_digests_sent(self, due: dict[str, str], now_ms: int) -> set[str]:
        """`mark_digest_sent` for many chats ({chat_key: local date}) in one transaction;
        returns the chats whose date was recorded now (the others had it already)."""
        if not due:
            return set()
        async with self._store.write_lock:
            db = self._store.writer
            await db.execute("BEGIN IMMEDIATE")
            try:
                cursor = await db.execute("SELECT chat_key, last_sent_local_date FROM digest_schedules")
                last = dict(await cursor.fetchall())
                fresh = {
                    chat: date for chat, date in due.items()
                    if chat in last and (last[chat] is None or last[chat] < date)
                }
                await db.executemany(
                    "UPDATE digest_schedules SET last_sent_local_date = ?, updated_ms = ? WHERE chat_key = ?",
                    [(date, now_ms, chat) for chat, date in fresh.items()],
                )
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise
        return set(fresh)

    async def inactive_chats(self) -> set[str]:
        """Chats marked inactive (the bot was blocked or removed there)."""
        return {row[0] for row in await self._read("SELECT chat_key FROM chats WHERE active = 0")}
