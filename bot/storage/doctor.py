"""`liqbot doctor`: is this database whole and self-consistent?

Each check returns a `Finding` (ok or not, one line a person can act on):

- integrity: the backend's own check (SQLite's `PRAGMA integrity_check`);
- rollups: minute and hour rollups equal a recomputation from the raw events
  still stored (older buckets, whose events retention removed, are trusted);
- alert rules: a known kind, a finite positive threshold, a readable state;
- digest schedules: a valid HH:MM, a known time zone, a readable last-sent date;
- spans, recorded and backfilled: start before end, none in the future, no
  overlaps within a stream (the store merges them on write, so an overlap means
  a bug or a hand edit).

`--repair` rebuilds the rollups (`maintenance.rebuild_rollups`) when they differ
or lack their largest order's time (buckets written before schema 14); the other
findings name the rows to look at and are left to the operator.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import date
from zoneinfo import ZoneInfo

from bot.core.alert_rules import RuleKind, RuleState
from bot.core.digest import parse_local_time
from bot.storage.maintenance import rollup_difference_sql, rollup_horizon_ms
from bot.storage.rows import ROLLUP_TABLES
from bot.storage.store import Store

SHOWN_PROBLEMS = 5


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    ok: bool
    detail: str
    repairable: bool = False  # `--repair` would fix or complete it

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}: {self.detail}"


def _finding(check: str, problems: list[str], counted: str) -> Finding:
    if not problems:
        return Finding(check, True, counted)
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    return Finding(check, False, f"{len(problems)} problem(s): {shown}{more}")


async def check_integrity(store: Store) -> Finding:
    return _finding("integrity", await store.db.integrity_problems(), store.db.integrity_ok)


async def check_rollups(store: Store) -> Finding:
    problems = []
    unrecorded = 0  # buckets from before schema 14, without their largest order's time: not a fault
    for table, bucket_ms in ROLLUP_TABLES:
        horizon = await rollup_horizon_ms(store, bucket_ms)
        if horizon is None:
            continue
        (differing,) = await store.db.fetchone(rollup_difference_sql(table, bucket_ms), (horizon,) * 4)
        if differing:
            problems.append(f"{table}: {differing} bucket(s) differ from the raw events (liqbot doctor --repair rebuilds)")
        (missing,) = await store.db.fetchone(
            f"SELECT COUNT(*) FROM {table} WHERE bucket_ms >= ? AND max_at_ms IS NULL", (horizon,)
        )
        unrecorded += missing
    if problems:
        return replace(_finding("rollups", problems, ""), repairable=True)
    if unrecorded:
        return Finding("rollups", True, f"minute and hour rollups match the raw events; {unrecorded:,} bucket(s)"
                       " written before schema 14 without their largest order's time (--repair records it)", True)
    return _finding("rollups", problems, "minute and hour rollups match the raw events")


def _rule_problem(kind: str, threshold: object, state: str | None) -> str | None:
    try:
        RuleKind(kind)
    except ValueError:
        return f"unknown kind {kind!r}"
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold) or threshold < 0:
        return f"threshold {threshold!r} is not a finite amount"
    try:
        RuleState.from_dict(json.loads(state or "{}"))
    except (ValueError, TypeError, AttributeError) as error:
        return f"unreadable state ({type(error).__name__})"
    return None


async def check_alert_rules(store: Store) -> Finding:
    rows = await store.db.fetch("SELECT id, kind, threshold_usd, state FROM alert_rules ORDER BY id")
    problems = [
        f"rule {rule_id}: {problem}"
        for rule_id, kind, threshold, state in rows
        if (problem := _rule_problem(kind, threshold, state)) is not None
    ]
    return _finding("alert rules", problems, f"{len(rows):,} rule(s) readable")


def _digest_problem(local_time: str, tz: str, last_sent: str | None) -> str | None:
    if parse_local_time(local_time) != local_time:
        return f"time {local_time!r} is not HH:MM"
    try:
        ZoneInfo(tz)
    except (ValueError, KeyError, OSError):  # not found is a KeyError, a zoneinfo directory an OSError
        return f"unknown time zone {tz!r}"
    if last_sent is not None:
        try:
            date.fromisoformat(last_sent)
        except (ValueError, TypeError):
            return f"last sent date {last_sent!r} is not YYYY-MM-DD"
    return None


async def check_digests(store: Store) -> Finding:
    rows = await store.db.fetch(
        "SELECT chat_key, local_time, tz, last_sent_local_date FROM digest_schedules ORDER BY chat_key"
    )
    problems = [
        f"{chat_key}: {problem}"
        for chat_key, local_time, tz, last_sent in rows
        if (problem := _digest_problem(local_time, tz, last_sent)) is not None
    ]
    return _finding("digest schedules", problems, f"{len(rows):,} schedule(s) readable")


async def check_spans(store: Store, now_ms: int, table: str = "recorded_spans") -> Finding:
    """Spans of `table`: recorded live (`recorded_spans`) or filled by a backfill (`backfilled_spans`)."""
    rows = await store.db.fetch(f"SELECT venue, stream, start_ms, end_ms FROM {table} ORDER BY venue, stream, start_ms")
    problems = []
    previous: tuple[str, str, int] | None = None
    for venue, stream, start_ms, end_ms in rows:
        if end_ms < start_ms:
            problems.append(f"{venue}/{stream} span at {start_ms} ends before it starts")
        if start_ms > now_ms:
            problems.append(f"{venue}/{stream} span at {start_ms} starts in the future")
        if previous is not None and previous[:2] == (venue, stream) and start_ms < previous[2]:
            problems.append(f"{venue}/{stream} spans overlap at {start_ms}")
        previous = (venue, stream, end_ms)
    return _finding(table.replace("_", " "), problems, f"{len(rows):,} span(s) consistent")


async def examine(store: Store, now_ms: int) -> list[Finding]:
    """Every check, in the order a person would want to read them."""
    integrity = await check_integrity(store)
    if not integrity.ok:
        return [integrity]  # the other checks would read a damaged file
    return [
        integrity,
        await check_rollups(store),
        await check_alert_rules(store),
        await check_digests(store),
        await check_spans(store, now_ms),
        await check_spans(store, now_ms, "backfilled_spans"),
    ]
