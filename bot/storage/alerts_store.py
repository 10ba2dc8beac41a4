"""Alert rules and their state in the liqbot database (tables from migration 0003)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from bot.core.alert_rules import AlertRule, Caps, CapReached, RuleKind, RuleState, cap_exceeded
from bot.core.models import Side, Window
from bot.storage.database import Transaction
from bot.storage.sibling import SiblingStore

_RULE_COLUMNS = "id, chat_key, user_key, kind, asset, threshold_usd, window_ms, share, paused, state"


def _rule_of(row: Sequence) -> tuple[AlertRule, RuleState]:
    rule_id, chat_key, user_key, kind, asset, threshold, window_ms, share, paused, state = row
    rule = AlertRule(rule_id, chat_key, user_key, RuleKind(kind), asset, threshold, window_ms, share, bool(paused))
    return rule, RuleState.from_dict(json.loads(state or "{}"))


class AlertsStore(SiblingStore):
    """Alert rules and their state."""

    # -- alert rules ----------------------------------------------------------

    async def add_rule(self, rule: AlertRule, now_ms: int, caps: Caps) -> AlertRule:
        """Store a new rule (its id is ignored); returns it with its id. Raises
        CapReached when its user or chat has as many rules as `caps` allow: counted
        and inserted in one transaction, so concurrent commands cannot overshoot."""
        async with self._db.transaction() as tx:
            counts = []
            for column, key in (("user_key", rule.user_key), ("chat_key", rule.chat_key)):
                (count,) = await tx.fetchone(f"SELECT COUNT(*) FROM alert_rules WHERE {column} = ?", (key,))
                counts.append(count)
            over = cap_exceeded(caps, *counts)
            if over is not None:
                raise CapReached(over)
            (rule_id,) = await tx.fetchone(
                "INSERT INTO alert_rules (chat_key, user_key, kind, asset, threshold_usd, window_ms, share,"
                " paused, state, created_ms) VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (rule.chat_key, rule.user_key, rule.kind.value, rule.asset, rule.threshold_usd, rule.window_ms,
                 rule.share, int(rule.paused), "{}", now_ms),
            )
        await self._db.changed("alerts")
        return AlertRule(rule_id, rule.chat_key, rule.user_key, rule.kind, rule.asset, rule.threshold_usd,
                         rule.window_ms, rule.share, rule.paused)

    async def rules(self) -> list[tuple[AlertRule, RuleState]]:
        return [_rule_of(r) for r in await self._db.fetch(f"SELECT {_RULE_COLUMNS} FROM alert_rules ORDER BY id")]

    async def rules_of_chat(self, chat_key: str) -> list[tuple[AlertRule, RuleState]]:
        rows = await self._db.fetch(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE chat_key = ? ORDER BY id", (chat_key,))
        return [_rule_of(r) for r in rows]

    async def rule(self, rule_id: int) -> tuple[AlertRule, RuleState] | None:
        rows = await self._db.fetch(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE id = ?", (rule_id,))
        return _rule_of(rows[0]) if rows else None

    async def remove_rule(self, rule_id: int) -> bool:
        removed = bool(await self._db.execute("DELETE FROM alert_rules WHERE id = ?", (rule_id,)))
        await self._db.changed("alerts")
        return removed

    async def set_paused(self, chat_key: str, rule_id: int | None, paused: bool) -> list[int]:
        """Pause/resume one rule of a chat (or all of them); returns the ids changed."""
        if rule_id is None:
            rows = await self._db.fetch("SELECT id FROM alert_rules WHERE chat_key = ? AND paused != ?",
                                    (chat_key, int(paused)))
        else:
            rows = await self._db.fetch("SELECT id FROM alert_rules WHERE chat_key = ? AND id = ? AND paused != ?",
                                    (chat_key, rule_id, int(paused)))
        ids = [r[0] for r in rows]
        if ids:
            async with self._db.transaction() as tx:
                await tx.executemany("UPDATE alert_rules SET paused = ? WHERE id = ?", [(int(paused), i) for i in ids])
            await self._db.changed("alerts")
        return ids

    async def save_states(self, tx: Transaction, states: dict[int, RuleState]) -> None:
        """The rules' new state, inside `tx` (with the alerts the change fired, bot.services.alerts)."""
        if not states:
            return
        rows = [(json.dumps(state.to_dict()), rule_id) for rule_id, state in states.items()]
        await tx.executemany("UPDATE alert_rules SET state = ? WHERE id = ?", rows)

    async def minute_totals(self, assets: Iterable[str], window: Window) -> list[tuple[str, int, Side, float]]:
        """(asset, minute start, side, usd) from the minute rollup, to seed window sums at start."""
        assets = sorted(set(assets))
        if not assets:
            return []
        marks = ",".join("?" * len(assets))
        rows = await self._db.fetch(
            f"SELECT asset, bucket_ms, liquidated, SUM(usd_cents) FROM rollup_minute WHERE asset IN ({marks})"
            " AND bucket_ms >= ? AND bucket_ms < ? GROUP BY asset, bucket_ms, liquidated",
            (*assets, window.start_ms, window.end_ms),
        )
        return [(asset, bucket, Side(side), cents / 100) for asset, bucket, side, cents in rows]

    async def minute_rollups(self, window: Window) -> list[tuple[str, int, Side, float, int, float]]:
        """(asset, minute start, side, usd, orders, largest order usd) of every asset,
        to seed the cascade watch at start."""
        rows = await self._db.fetch(
            "SELECT asset, bucket_ms, liquidated, SUM(usd_cents), SUM(events), MAX(max_cents) FROM rollup_minute"
            " WHERE bucket_ms >= ? AND bucket_ms < ? GROUP BY asset, bucket_ms, liquidated",
            (window.start_ms, window.end_ms),
        )
        return [(asset, bucket, Side(side), cents / 100, n, top / 100) for asset, bucket, side, cents, n, top in rows]
