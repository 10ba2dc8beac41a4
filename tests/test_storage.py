"""Storage: exact windows at any boundary, dedup, rollups, spans, migrations;
each store test on SQLite and on PostgreSQL."""

from __future__ import annotations

import random

import aiosqlite
import pytest

from bot.core.bars import Kline
from bot.core.feed import FeedSubscription
from bot.core.levels import Crossing, Grade
from bot.core.market import MarketSample
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Side, Window
from bot.storage.database import DatabaseUnavailable
from bot.storage.feed_store import FeedStore
from bot.storage.levels_inputs_store import KlineStore, MarginRateStore
from bot.storage.levels_store import LevelsStore
from bot.storage.market_store import MarketStore
from bot.storage.migrations import BACKENDS, migrations
from bot.storage.series import largest_day, liquidation_bars, minute_totals
from bot.storage.chats_store import ChatSettings
from bot.storage.store import Store
from bot.storage.windows import Piece, decompose, minute_rest
from tests.backends import backend, execute  # noqa: F401  (every store test on both backends)
from tests.support import liquidation as event

T0 = 1_742_558_400_000  # 2025-03-21 12:00:00 UTC, on an hour boundary



def brute_force(events, asset, window):
    chosen = [
        e for e in events if window.start_ms <= e.at_ms < window.end_ms and (asset is None or e.asset == asset)
    ]
    return round(sum(e.notional_usd for e in chosen), 2), len(chosen)


async def test_a_compact_read_returns_what_a_plain_read_does(store):
    """Reads of integers and text come packed on SQLite (bot.storage.sqlite_db): the same
    values, large integers exact, any text as stored, NULL as None, no rows as none."""
    sql = (
        "SELECT 9007199254740993 AS n, 'it''s \"ü\" ' || ? AS t, 7 AS z"
        " UNION ALL SELECT -5, '', NULL UNION ALL SELECT 0, ?, NULL"
    )
    args = ("\n\\\t💥", "[1, 2]")
    plain = await store.db.fetch(sql, args)
    assert sorted(await store.db.fetch_compact(sql, args, 3)) == sorted(plain)
    assert (9007199254740993, 'it\'s "ü" \n\\\t💥', 7) in plain and (0, "[1, 2]", None) in plain
    assert await store.db.fetch_compact("SELECT 1, 'a' WHERE 1 = 0", (), 2) == []


async def test_any_window_matches_a_brute_force_sum_to_the_cent(store):
    rng = random.Random(7)
    events = [
        event(
            T0 + rng.randrange(0, 6 * HOUR_MS),
            round(rng.uniform(10, 2_000_000), 2),
            rng.choice([Side.LONG, Side.SHORT]),
            rng.choice(["BTC", "ETH", "SOL"]),
            rng.choice(["binance", "bybit", "okx"]),
        )
        for _ in range(3_000)
    ]
    await store.add_events(events)
    windows = [Window(T0 + rng.randrange(0, 6 * HOUR_MS), 0) for _ in range(40)]
    windows = [Window(w.start_ms, w.start_ms + rng.randrange(1, 4 * HOUR_MS)) for w in windows]
    windows += [Window(T0, T0 + 6 * HOUR_MS), Window(T0 + MINUTE_MS, T0 + HOUR_MS + 1)]
    for window in windows:
        for asset in ("BTC", None):
            rows = await store.totals(asset, window)
            got = (round(sum(r.usd for r in rows), 2), sum(r.events for r in rows))
            assert got == brute_force(events, asset, window), window


async def test_a_breakdown_has_every_venue_and_the_largest_assets_to_the_cent(store):
    rng = random.Random(11)
    assets = [f"A{i}" for i in range(30)]
    events = [
        event(
            T0 + rng.randrange(0, 3 * HOUR_MS),
            round(rng.uniform(10, 100_000) * (1 + assets.index(asset)), 2),
            rng.choice([Side.LONG, Side.SHORT]),
            asset,
            rng.choice(["binance", "bybit", "okx"]),
        )
        for asset in rng.choices(assets, k=3_000)
    ]
    await store.add_events(events)
    window = Window(T0 + 41_017, T0 + 2 * HOUR_MS + 7 * MINUTE_MS + 3)
    breakdown = await store.breakdown(None, window, 5)
    in_window = [e for e in events if window.start_ms <= e.at_ms < window.end_ms]
    for venue in ("binance", "bybit", "okx"):
        for side in Side:
            chosen = [e for e in in_window if e.venue == venue and e.liquidated is side]
            [row] = [r for r in breakdown.by_venue if (r.name, r.liquidated) == (venue, side)]
            assert (round(row.usd, 2), row.events) == (round(sum(e.notional_usd for e in chosen), 2), len(chosen))
    by_asset_usd = {a: round(sum(e.notional_usd for e in in_window if e.asset == a), 2) for a in assets}
    top_five = sorted(assets, key=lambda a: -by_asset_usd[a])[:5]
    assert {r.name for r in breakdown.by_asset} == set(top_five)
    for asset in top_five:
        assert round(sum(r.usd for r in breakdown.by_asset if r.name == asset), 2) == by_asset_usd[asset]
    assert await store.breakdown("A0", Window(T0, T0), 5) == type(breakdown)((), ())


async def test_largest_orders_match_a_brute_force_sort(store):
    rng = random.Random(3)
    events = [
        event(T0 + rng.randrange(0, 3 * HOUR_MS), round(rng.uniform(10, 5_000_000), 2))
        for _ in range(2_000)
    ]
    await store.add_events(events)
    window = Window(T0 + 17_123, T0 + 3 * HOUR_MS - 5_000)
    top = await store.largest("BTC", window, limit=5)
    expected = sorted(
        (e for e in events if window.start_ms <= e.at_ms < window.end_ms), key=lambda e: -e.notional_usd
    )[:5]
    assert [e.notional_usd for e in top] == [e.notional_usd for e in expected]
    assert top[0] == expected[0]


async def test_the_largest_order_of_any_window_matches_a_brute_force_max(store, database_location):
    """Found from each rollup bucket's record of its largest order (and its time), edges
    included; and the same once those records are gone (buckets from before schema 14)."""
    rng = random.Random(19)
    sizes = rng.sample(range(1_000, 500_000_000), 4_000)  # distinct cents: one right answer
    events = [
        event(T0 + rng.randrange(0, 4 * HOUR_MS), cents / 100, rng.choice(list(Side)),
              rng.choice(["BTC", "ETH", "SOL"]), rng.choice(["binance", "bybit", "okx"]))
        for cents in sizes
    ]
    await store.add_events(events)
    windows = [Window(T0 - MINUTE_MS, T0 + 5 * HOUR_MS), Window(T0 + 59_000, T0 + 61_000)]
    for _ in range(60):
        start = T0 + rng.randrange(-MINUTE_MS, 4 * HOUR_MS)
        windows.append(Window(start, start + rng.choice([1, 30_000, 90_000, 40 * MINUTE_MS, 3 * HOUR_MS])
                              + rng.randrange(0, MINUTE_MS)))

    async def check() -> None:
        for window in windows:
            for asset in ("SOL", None):
                chosen = [e for e in events if window.start_ms <= e.at_ms < window.end_ms and asset in (None, e.asset)]
                expected = [max(chosen, key=lambda e: e.notional_usd)] if chosen else []
                assert await store.largest(asset, window, 1) == expected, (window, asset)

    await check()
    await execute(database_location, "UPDATE rollup_minute SET max_at_ms = NULL")
    await execute(database_location, "UPDATE rollup_hour SET max_at_ms = NULL")
    await check()


async def test_of_orders_of_one_size_the_largest_is_the_earliest(store):
    hour = T0 + HOUR_MS
    early, late = event(hour + 5_000, 5_000.0, asset="ETH"), event(hour + 30 * MINUTE_MS, 5_000.0, asset="BTC")
    across = [event(T0 + k * HOUR_MS + 7_000, 9_000.0, asset=a) for k, a in ((4, "SOL"), (3, "ETH"), (5, "BTC"))]
    await store.add_events([late, early, event(T0 + 2 * HOUR_MS + 1, 10.0), *across])
    assert await store.largest(None, Window(T0, T0 + 3 * HOUR_MS), 1) == [early]  # within one hour's buckets
    assert await store.largest(None, Window(T0, T0 + 6 * HOUR_MS), 1) == [across[1]]  # across hours
    minute = hour + 30 * MINUTE_MS
    assert await store.largest(None, Window(hour, minute + 1), 1) == [early]  # an edge minute among them


async def test_a_replayed_batch_is_stored_once(store):
    batch = [event(T0 + i * 1000, 1000.0 + i) for i in range(100)]
    first = await store.add_events(batch)
    again = await store.add_events(batch[50:] + [event(T0 + 999_999, 5.0)])
    assert (first.inserted, first.duplicates) == (100, 0)
    assert (again.inserted, again.duplicates) == (1, 50)
    rows = await store.totals("BTC", Window(T0, T0 + HOUR_MS))
    assert sum(r.events for r in rows) == 101
    assert round(sum(r.usd for r in rows), 2) == round(sum(1000.0 + i for i in range(100)) + 5.0, 2)


async def test_a_duplicate_inside_one_batch_counts_once(store):
    one = event(T0 + 5, 250_000.0)
    result = await store.add_events([one, one, event(T0 + 6, 1.0)])
    assert (result.inserted, result.duplicates) == (2, 1)
    rows = await store.totals(None, Window(T0, T0 + HOUR_MS))
    assert sum(r.usd for r in rows) == 250_001.0


def test_window_pieces_tile_the_window_without_overlap():
    window = Window(T0 + 1234, T0 + 5 * HOUR_MS + 3 * MINUTE_MS + 17)
    pieces = decompose(window)
    assert pieces[0].start_ms == window.start_ms and pieces[-1].end_ms == window.end_ms
    assert all(a.end_ms == b.start_ms for a, b in zip(pieces, pieces[1:]))
    assert [p.table for p in pieces] == ["events", "rollup_minute", "rollup_hour", "rollup_minute", "events"]


def test_an_end_edge_is_read_as_its_minute_less_the_rest_and_a_start_edge_when_its_rest_is_shorter():
    minute = T0 + 7 * MINUTE_MS
    assert minute_rest(Piece("events", minute, minute + 50_000)) == Piece("events", minute + 50_000, minute + MINUTE_MS)
    # a window ending now, early in the minute: what comes after now is nothing yet
    assert minute_rest(Piece("events", minute, minute + 2_000)) == Piece("events", minute + 2_000, minute + MINUTE_MS)
    assert minute_rest(Piece("events", minute + 1_000, minute + MINUTE_MS)) == Piece("events", minute, minute + 1_000)
    assert minute_rest(Piece("events", minute + 40_000, minute + MINUTE_MS)) is None  # the rest is longer
    assert minute_rest(Piece("events", minute + 1_000, minute + 59_000)) is None  # inside the minute
    assert minute_rest(Piece("events", minute + 1_000, minute + MINUTE_MS + 1)) is None  # across two minutes
    assert minute_rest(Piece("rollup_minute", minute, minute + MINUTE_MS)) is None


async def test_a_window_ending_mid_minute_leaves_out_what_came_after_it(store):
    """The edge minute read as its rollup less the rest: a venue whose orders all came
    after the window's end has no line (not a $0 one), and the rest is subtracted to the cent."""
    minute = T0 + 7 * MINUTE_MS
    await store.add_events([
        event(minute + 1_000, 1_000.01), event(minute + 40_000, 2_000.02),
        event(minute + 50_000, 3_000.03), event(minute + 59_999, 4_000.04, venue="okx"),
    ])
    breakdown = await store.breakdown(None, Window(minute - HOUR_MS, minute + 45_000), 5)
    assert [(r.name, r.usd, r.events) for r in breakdown.by_venue] == [("binance", 3_000.03, 2)]
    rows = await store.totals("BTC", Window(minute + 10_000, minute + MINUTE_MS))
    assert sorted((r.venue, r.usd, r.events) for r in rows) == [("binance", 5_000.05, 2), ("okx", 4_000.04, 1)]
    assert sum(r.events for r in await store.totals("BTC", Window(minute + 10_000, minute + MINUTE_MS + 1))) == 3


async def test_spans_merge_when_they_overlap(store):
    await store.add_span("okx", "public", T0, T0 + 10 * MINUTE_MS)
    await store.add_span("okx", "public", T0 + 5 * MINUTE_MS, T0 + 20 * MINUTE_MS)
    await store.add_span("okx", "public", T0 + HOUR_MS, T0 + 2 * HOUR_MS)
    spans = await store.spans(Window(T0, T0 + 3 * HOUR_MS))
    assert [(s.start_ms, s.end_ms) for s in spans] == [
        (T0, T0 + 20 * MINUTE_MS),
        (T0 + HOUR_MS, T0 + 2 * HOUR_MS),
    ]


async def test_chat_locale_survives_a_restart(database_location):
    path = database_location
    store = await Store.open(path)
    await store.chats.set_locale("telegram:-100", "zh", now_ms=T0)
    await store.close()
    store = await Store.open(path)
    try:
        assert await store.chats.locale("telegram:-100") == "zh"
        assert await store.chats.locale("telegram:-200") is None
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_replica_reads_the_language_and_zone_another_replica_set(database_location):
    """A leader composing an alert in a chat's language, set by /lang on another replica."""
    leader, other = await Store.open(database_location), await Store.open(database_location)
    try:
        assert (await leader.chats.locale("telegram:-100"), await leader.chats.timezone("telegram:-100")) == (None, None)
        await other.chats.set_locale("telegram:-100", "zh", now_ms=T0)
        await other.chats.set_timezone("telegram:-100", "Asia/Shanghai", now_ms=T0)
        await other.chats.set_active("telegram:-200", False, now_ms=T0)
        assert (await leader.chats.locale("telegram:-100"), await leader.chats.timezone("telegram:-100")) == (
            "zh", "Asia/Shanghai"
        )
        settings = await leader.chats.settings(["telegram:-100", "telegram:-200", "telegram:-300"])
        assert settings["telegram:-100"] == ChatSettings(True, "zh", "Asia/Shanghai")
        assert settings["telegram:-200"].active is False
        assert settings["telegram:-300"] == ChatSettings()
    finally:
        await leader.close()
        await other.close()


async def test_migrations_are_recorded_and_a_newer_schema_is_refused_on_sqlite(tmp_path):
    path = tmp_path / "db.sqlite"
    await (await Store.open(path)).close()
    known = len(migrations("sqlite"))
    async with aiosqlite.connect(path) as db:
        assert (await (await db.execute("PRAGMA user_version")).fetchone())[0] == known
        await db.execute(f"PRAGMA user_version = {known + 1}")
        await db.commit()
    with pytest.raises(RuntimeError, match="newer than this liqbot"):
        await Store.open(path)


async def test_stats_count_events_per_venue(store):
    await store.add_events([event(T0, 1.0), event(T0 + 1, 2.0, venue="okx"), event(T0 + 2, 3.0, venue="okx")])
    stats = await store.stats()
    assert stats.events == 3
    assert stats.events_by_venue == {"binance": 1, "okx": 2}
    assert (stats.first_at_ms, stats.last_at_ms) == (T0, T0 + 2)
    assert await store.assets() == ["BTC"]


async def test_the_largest_orders_of_a_long_window_with_a_large_limit(store):
    """A limit above the window's order count opens every bucket: more pieces than
    one SQLite compound SELECT may hold, read in several."""
    start = 1_742_515_200_000 + 7 * MINUTE_MS  # not hour-aligned: minute and raw pieces at both edges
    await store.add_events([event(start + k * 3 * MINUTE_MS + 1, 1_000 + k) for k in range(600)])
    found = await store.largest("BTC", Window(start, start + 30 * HOUR_MS), 2_000)
    assert len(found) == 600 and found[0].notional_usd == 1_599 and found[-1].notional_usd == 1_000


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_migrations_are_recorded_and_a_newer_schema_is_refused_on_postgresql(database_location):
    await (await Store.open(database_location)).close()
    await (await Store.open(database_location)).close()  # a second start applies nothing twice
    store = await Store.open(database_location)
    try:
        applied = await store.db.fetch("SELECT number, name FROM schema_migrations ORDER BY number")
    finally:
        await store.close()
    assert applied == [(n, name) for n, (name, _) in enumerate(migrations("postgresql"), start=1)]
    await execute(database_location, f"INSERT INTO schema_migrations VALUES ({len(applied) + 1}, 'later', 0)")
    with pytest.raises(RuntimeError, match="newer than this liqbot"):
        await Store.open(database_location)


def test_each_migration_has_a_twin_on_the_other_backend():
    names = [[name for name, _ in migrations(b)] for b in BACKENDS]
    assert names[0] == names[1]


async def test_amounts_stay_exact_integer_cents(store):
    huge = [event(T0 + i, 92_233_720_368.47) for i in range(3)]  # ~$92bn each: sums of big amounts stay exact
    await store.add_events(huge + [event(T0 + 10, 0.01)])
    rows = await store.totals("BTC", Window(T0, T0 + HOUR_MS))
    assert sum(r.usd for r in rows) == (3 * 9_223_372_036_847 + 1) / 100
    assert isinstance((await store.db.fetchone("SELECT SUM(usd_cents) FROM rollup_hour"))[0], int)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_an_unreachable_postgresql_is_one_line_within_seconds(database_location):
    closed_port = database_location.replace(":5432/", ":1/") if ":5432/" in database_location else None
    if closed_port is None:
        pytest.skip("the test server is not on port 5432")
    with pytest.raises(DatabaseUnavailable, match=r"^cannot open PostgreSQL at postgresql://[^:]+@[^ ]+:1/\S+: "):
        await Store.open(closed_port, connect_timeout_s=2)
    wrong_name = database_location.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(DatabaseUnavailable, match="no_such_database"):
        await Store.open(wrong_name, connect_timeout_s=2)


async def test_bars_minutes_history_and_best_day_agree_with_the_events(store):
    rng = random.Random(11)
    events = [
        event(T0 + rng.randrange(0, 3 * HOUR_MS), round(rng.uniform(10, 90_000), 2), rng.choice(list(Side)),
              rng.choice(["BTC", "ETH"]))
        for _ in range(1_500)
    ]
    await store.add_events(events)
    window = Window(T0 + 7_000, T0 + 3 * HOUR_MS - 11)
    for step_ms in (15 * MINUTE_MS, HOUR_MS):
        bars = await liquidation_bars(store, "BTC", window, step_ms)
        assert (round(sum(b.total_usd for b in bars), 2), sum(b.events for b in bars)) == brute_force(events, "BTC", window)
    minutes = await minute_totals(store, None, T0, T0 + 3 * HOUR_MS)
    assert sum(split.events for m in minutes for split in m.by_asset) == len(events)
    hours = await store.window_totals(None, T0 + 3 * HOUR_MS, HOUR_MS, 3)
    assert [round(h, 2) for h in hours] == [
        brute_force(events, None, Window(T0 + (2 - k) * HOUR_MS, T0 + (3 - k) * HOUR_MS))[0] for k in range(3)
    ]
    day_ms, usd = await largest_day(store, None)
    assert day_ms == T0 - T0 % (24 * HOUR_MS) and round(usd, 2) == round(sum(e.notional_usd for e in events), 2)
    assert await store.events_since_by_stream(T0) == {("binance", "usdm"): len(events)}


async def test_backfills_and_liquidation_levels_are_stored_alike_on_both_backends(store):
    await store.add_span("okx", "public", T0, T0 + HOUR_MS)
    await store.add_backfilled_span("okx", "public", T0 - HOUR_MS, T0)
    await store.add_backfilled_span("okx", "public", T0 - 2 * HOUR_MS, T0 - HOUR_MS + 1)
    spans = await store.spans(Window(T0 - 3 * HOUR_MS, T0 + HOUR_MS))
    assert [(s.start_ms, s.end_ms, s.backfilled) for s in spans] == [
        (T0 - 2 * HOUR_MS, T0, True), (T0, T0 + HOUR_MS, False)
    ]

    market = MarketStore(store)
    await market.add_samples([MarketSample("binance", "BTC", T0, open_interest_usd=1e9)])
    backfill = [MarketSample("binance", "BTC", T0 + k * MINUTE_MS, open_interest_usd=2e9) for k in (0, 5, 6)]
    assert await market.add_backfill(backfill) == 2  # the polled sample at T0 stays
    assert (await market.series("BTC", "binance", T0))[0].open_interest_usd == 1e9
    assert await market.open_interest_gaps("BTC", "binance", T0 - HOUR_MS, T0 + HOUR_MS, 2 * MINUTE_MS) == [
        (T0 - HOUR_MS, T0), (T0, T0 + 5 * MINUTE_MS), (T0 + 6 * MINUTE_MS, T0 + HOUR_MS)
    ]

    levels = LevelsStore(store)
    crossed = Crossing(Side.LONG, 80_000.5, 1_000_000.25, T0, T0 + HOUR_MS)
    overfull = Crossing(Side.SHORT, 90_000.5, 100_000.0, T0, T0 + HOUR_MS)  # more recorded near it than it held
    await levels.save("BTC", {"bands": [1, 2]}, [(crossed, 250_000.5), (overfull, 300_000.0)], [(T0, {"bands": [1]})],
                      now_ms=T0)
    await levels.save("BTC", {"bands": [3]}, [(crossed, 250_000.5)], [(T0, {"bands": [2]})], now_ms=T0 + 1)
    assert await levels.book_state("BTC") == {"bands": [3]}
    assert await levels.grade("BTC", T0, T0 + 2 * HOUR_MS) == Grade(2, 2, 1_100_000.25, 350_000.5, 550_000.5)
    assert await levels.snapshots("BTC", T0, T0 + 1) == [(T0, {"bands": [2]})]


async def test_feed_subscriptions_are_stored_alike_on_both_backends(store):
    feeds = FeedStore(store)
    await feeds.set_feed(FeedSubscription("telegram:-100", 1_000_000, ("BTC", "ETH"), "telegram:7", T0))
    await feeds.set_feed(FeedSubscription("telegram:-100", 250_000.5, (), "telegram:8", T0 + 1))
    assert await feeds.feeds() == [FeedSubscription("telegram:-100", 250_000.5, (), "telegram:8", T0 + 1)]
    assert await feeds.remove_feed("telegram:-100") and not await feeds.remove_feed("telegram:-100")
    assert await feeds.feed("telegram:-100") is None


async def test_klines_and_margin_rates_are_stored_alike_on_both_backends(store):
    klines = KlineStore(store)

    def kline(minute: int, taker: float | None) -> Kline:
        open_ms = T0 + minute * MINUTE_MS
        return Kline("binance", "BTC", open_ms, open_ms + 5 * MINUTE_MS, 100.0, 101.5, 99.25, 100.5, 1e6, taker)

    assert await klines.add_klines([kline(0, None), kline(5, 6e5), kline(15, 4e5)]) == 3
    await klines.add_klines([kline(0, 7e5)])  # a re-read carrying the taker split replaces the first
    assert await klines.klines("BTC", T0, T0 + HOUR_MS) == [kline(0, 7e5), kline(5, 6e5), kline(15, 4e5)]
    assert await klines.kline_gaps("BTC", "binance", T0 - HOUR_MS, T0 + HOUR_MS, 5 * MINUTE_MS) == [
        (T0 - HOUR_MS, T0), (T0 + 5 * MINUTE_MS, T0 + 15 * MINUTE_MS), (T0 + 15 * MINUTE_MS, T0 + HOUR_MS)
    ]
    rates = MarginRateStore(store)
    await rates.set_rates([("BTC", "bybit", 0.005), ("BTC", "okx", 0.004)], T0)
    await rates.set_rates([("BTC", "okx", 0.0045)], T0 + DAY_MS)
    assert await rates.rates("BTC") == {"bybit": 0.005, "okx": 0.0045}
    assert await rates.rates("ETH") == {}
