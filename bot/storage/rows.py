"""Event rows as both backends store them, pure: the events table's columns (an
event's row is `core.models.row_of`), a row as an event, and a batch's rollup deltas.

Amounts are integer cents (BIGINT on PostgreSQL) so sums are exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.core.models import HOUR_MS, MINUTE_MS, LiquidationEvent, Side

# In `core.models.row_of`'s order.
EVENT_COLUMNS = "at_ms, venue, instrument, liquidated, quantity, price, stream, asset, notional_cents"
# The dedup identity of a venue report (the same frame replayed is the same key).
EVENT_KEY = "at_ms, venue, instrument, liquidated, quantity, price"
# max_at_ms: the time of the bucket's largest order (the earliest, if several tie), so
# `Store.largest` finds that order without scanning the bucket's events; NULL in
# buckets recorded before schema 14 (`liqbot doctor --repair` fills them).
ROLLUP_COLUMNS = "asset, bucket_ms, venue, liquidated, usd_cents, events, max_cents, max_at_ms"
ROLLUP_TABLES = (("rollup_minute", MINUTE_MS), ("rollup_hour", HOUR_MS))
# Adds deltas to a rollup table (columns qualified by the table, as PostgreSQL wants them).
ROLLUP_MERGE = """
ON CONFLICT (asset, bucket_ms, venue, liquidated) DO UPDATE SET
    usd_cents = {table}.usd_cents + excluded.usd_cents,
    events = {table}.events + excluded.events,
    max_cents = CASE WHEN excluded.max_cents > {table}.max_cents THEN excluded.max_cents ELSE {table}.max_cents END,
    max_at_ms = CASE WHEN excluded.max_cents > {table}.max_cents
        OR (excluded.max_cents = {table}.max_cents AND excluded.max_at_ms < {table}.max_at_ms)
        THEN excluded.max_at_ms ELSE {table}.max_at_ms END
"""
ROLLUP_UPSERT = f"INSERT INTO {{table}} ({ROLLUP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) {ROLLUP_MERGE}"


def event_of(row: Sequence) -> LiquidationEvent:
    at_ms, venue, instrument, liquidated, quantity, price, stream, asset, cents = row
    return LiquidationEvent(
        venue=venue,
        stream=stream,
        instrument=instrument,
        asset=asset,
        liquidated=Side(liquidated),
        price=price,
        quantity=quantity,
        notional_usd=cents / 100,
        at_ms=at_ms,
    )


def rollup_rows(rows: Iterable[tuple]) -> tuple[list[tuple], list[tuple]]:
    """Group event rows into (asset, bucket, venue, side) deltas: per minute, per hour.

    A delta is (cents, events, largest order's cents, its time: the earliest of a tie).
    """
    minutes: dict[tuple, list[int]] = {}
    for at_ms, venue, _instrument, liquidated, _q, _p, _stream, asset, cents in rows:
        key = (asset, at_ms - at_ms % MINUTE_MS, venue, liquidated)
        delta = minutes.get(key)
        if delta is None:
            minutes[key] = [cents, 1, cents, at_ms]
        else:
            delta[0] += cents
            delta[1] += 1
            if cents > delta[2] or (cents == delta[2] and at_ms < delta[3]):
                delta[2] = cents
                delta[3] = at_ms
    hours: dict[tuple, list[int]] = {}
    for (asset, minute, venue, liquidated), (cents, count, top, top_at_ms) in minutes.items():
        key = (asset, minute - minute % HOUR_MS, venue, liquidated)
        delta = hours.get(key)
        if delta is None:
            hours[key] = [cents, count, top, top_at_ms]
        else:
            delta[0] += cents
            delta[1] += count
            if top > delta[2] or (top == delta[2] and top_at_ms < delta[3]):
                delta[2] = top
                delta[3] = top_at_ms
    return (
        [(*key, *delta) for key, delta in minutes.items()],
        [(*key, *delta) for key, delta in hours.items()],
    )
