"""Keeping a database for a year: retention in small batches, `liqbot doctor
[--repair]`, and `liqbot backup` of a database that is being written; retention
and doctor on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, LiquidationEvent, Side, Window
from bot.core.levels import Crossing
from bot.storage.levels_store import LevelsStore
from bot.storage.maintenance import RetentionPolicy, apply_retention
from bot.storage.store import Store
from tests.backends import backend, cli_target, execute  # noqa: F401  (retention and doctor on both backends)
from tests.support import until

NOW = 1_750_000_000_000 - 1_750_000_000_000 % HOUR_MS
FAR_FUTURE = 4_102_444_800_000  # 2100-01-01: doctor runs on the wall clock
PROJECT = Path(__file__).resolve().parent.parent


def event(at_ms: int, usd: float = 1_000.0, asset: str = "BTC", side: Side = Side.LONG) -> LiquidationEvent:
    return LiquidationEvent("binance", "usdm", f"{asset}USDT", asset, side, 100.0, usd / 100, usd, at_ms)


def daily_events(days: int, per_day: int) -> list[LiquidationEvent]:
    """`per_day` events a day over the last `days` days, $1,000 each."""
    return [event(NOW - d * DAY_MS - k * (DAY_MS // per_day) - 7) for d in range(days) for k in range(per_day)]


async def count(store: Store, table: str, where: str = "TRUE") -> int:
    return (await store.db.fetchone(f"SELECT COUNT(*) FROM {table} WHERE {where}"))[0]


async def test_retention_keeps_hour_totals_and_drops_old_detail(store):
    await store.add_events(daily_events(days=120, per_day=48))
    old_day = Window(NOW - 100 * DAY_MS, NOW - 99 * DAY_MS)
    recent = Window.trailing(DAY_MS, NOW - 3 * MINUTE_MS - 11)  # ragged edges: raw events and minute rollups
    old_before, recent_before = await store.totals("BTC", old_day), await store.totals("BTC", recent)

    pruned = await apply_retention(store, RetentionPolicy(events_days=90, minute_rollups_days=30), NOW, batch_rows=500)

    assert pruned.events == 30 * 48 and await count(store, "events", f"at_ms < {NOW - 90 * DAY_MS}") == 0
    assert await count(store, "rollup_minute", f"bucket_ms < {NOW - 30 * DAY_MS}") == 0
    assert await count(store, "rollup_hour", f"bucket_ms < {NOW - 90 * DAY_MS}") > 0  # kept forever
    assert await store.totals("BTC", old_day) == old_before  # a whole-hour window 100 days back: still exact
    assert await store.totals("BTC", recent) == recent_before
    again = await apply_retention(store, RetentionPolicy(events_days=90, minute_rollups_days=30), NOW)
    assert (again.events, again.minute_rollups) == (0, 0)


async def test_retention_lets_ingest_in_between_its_batches(store):
    await store.add_events(daily_events(days=200, per_day=100))
    policy = RetentionPolicy(events_days=30, minute_rollups_days=30)
    retention = asyncio.create_task(apply_retention(store, policy, NOW, batch_rows=200))
    await asyncio.sleep(0)  # retention has taken the lock for its first batch
    await asyncio.wait_for(store.add_events([event(NOW - 5)]), timeout=10)
    assert not retention.done()  # the live write went through between two batches, long before the end
    pruned = await asyncio.wait_for(retention, timeout=60)
    assert pruned.events == 170 * 100
    assert await count(store, "events", f"at_ms = {NOW - 5}") == 1


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
async def filled_db(database_location) -> Path | str:
    path = database_location
    store = await Store.open(path)
    await store.add_events(daily_events(days=3, per_day=200))
    await store.add_span("binance", "usdm", NOW - 3 * DAY_MS, NOW)
    await store.close()
    return path


async def test_doctor_passes_a_healthy_database(filled_db, tmp_path, capsys):
    assert await cli("doctor", *cli_target(filled_db, tmp_path)) == 0
    out = capsys.readouterr().out
    for check in ("integrity", "rollups", "alert rules", "digest schedules", "recorded spans", "backfilled spans"):
        assert f"ok   {check}:" in out


async def test_doctor_finds_drifted_rollups_and_repair_rebuilds_them(filled_db, tmp_path, capsys):
    await execute(filled_db, f"UPDATE rollup_hour SET usd_cents = usd_cents + 1, events = events + 1 WHERE bucket_ms = {NOW - HOUR_MS}")
    await execute(filled_db, f"DELETE FROM rollup_minute WHERE bucket_ms = {NOW - MINUTE_MS}")
    assert await cli("doctor", *cli_target(filled_db, tmp_path)) == 1
    out = capsys.readouterr().out
    assert "FAIL rollups:" in out and "rollup_minute: 1 bucket(s)" in out and "rollup_hour: 1 bucket(s)" in out
    assert "--repair" in out

    assert await cli("doctor", *cli_target(filled_db, tmp_path), "--repair") == 0
    out = capsys.readouterr().out
    assert "repair: rollups rebuilt" in out and out.rstrip().splitlines()[-4:] == [
        line for line in out.rstrip().splitlines()[-4:] if line.startswith("ok")
    ]
    store = await Store.open(filled_db)
    try:
        totals = await store.totals("BTC", Window.trailing(DAY_MS, NOW))
    finally:
        await store.close()
    assert sum(t.usd for t in totals) == 200 * 1_000.0 and sum(t.events for t in totals) == 200


async def test_doctor_checks_each_buckets_largest_order_and_repair_records_the_missing_ones(filled_db, tmp_path, capsys):
    # Buckets from before schema 14 have no largest order's time: not a fault, and --repair records it.
    await execute(filled_db, "UPDATE rollup_minute SET max_at_ms = NULL")
    await execute(filled_db, "UPDATE rollup_hour SET max_at_ms = NULL")
    assert await cli("doctor", *cli_target(filled_db, tmp_path)) == 0
    assert "without their largest order's time (--repair records it)" in capsys.readouterr().out
    assert await cli("doctor", *cli_target(filled_db, tmp_path), "--repair") == 0
    assert "repair: rollups rebuilt" in capsys.readouterr().out
    store = await Store.open(filled_db)
    try:
        # all but the bucket of the oldest event, which retention may have cut (left as it was)
        oldest_ms = min(e.at_ms for e in daily_events(days=3, per_day=200))
        for table, bucket_ms in (("rollup_minute", MINUTE_MS), ("rollup_hour", HOUR_MS)):
            assert await count(store, table, "max_at_ms IS NULL") == 1
            assert await count(store, table, f"max_at_ms IS NULL AND bucket_ms > {oldest_ms - bucket_ms}") == 1
    finally:
        await store.close()

    await execute(filled_db, f"UPDATE rollup_hour SET max_at_ms = bucket_ms + 1 WHERE bucket_ms = {NOW - HOUR_MS}")
    assert await cli("doctor", *cli_target(filled_db, tmp_path)) == 1
    assert "rollup_hour: 1 bucket(s)" in capsys.readouterr().out


@pytest.mark.parametrize("events_days, minute_rollups_days, expected", [
    (2, 30, [(1.0, 1)]),  # the edge's events are gone: it counts none of them, never its whole minute
    (30, 2, [(1.0, 1), (555.0, 2)]),  # its minute rollup is gone: the kept events still count exactly
])
async def test_a_window_edge_older_than_one_retention_is_never_overcounted_nor_lost(store, events_days, minute_rollups_days, expected):
    minute = NOW - 5 * DAY_MS + 17 * MINUTE_MS
    before_start, inside = event(minute + 1_000, 111.0), [event(minute + 30_000, 222.0), event(minute + 50_000, 333.0)]
    await store.add_events([before_start, *inside, event(NOW - HOUR_MS, 1.0)])
    await apply_retention(store, RetentionPolicy(events_days=events_days, minute_rollups_days=minute_rollups_days), NOW)
    edge = sorted((r.usd, r.events) for r in await store.totals("BTC", Window(minute + 10_000, minute + MINUTE_MS)))
    window = sorted((r.usd, r.events) for r in await store.totals("BTC", Window(minute + 10_000, NOW)))
    assert edge == [x for x in expected if x != (1.0, 1)]
    assert sum(usd for usd, _ in window) == sum(usd for usd, _ in expected)
    # the largest order of the edge: the kept events are still found without their minute's bucket
    largest = await store.largest("BTC", Window(minute + 10_000, minute + MINUTE_MS), 1)
    assert [e.notional_usd for e in largest] == ([333.0] if events_days > minute_rollups_days else [])


@pytest.mark.parametrize(
    "sql, says",
    [
        ("INSERT INTO alert_rules (chat_key, user_key, kind, threshold_usd, created_ms)"
         " VALUES ('telegram:1', 'telegram:2', 'bogus', 1e6, 0)", "rule 1: unknown kind 'bogus'"),
        ("INSERT INTO alert_rules (chat_key, user_key, kind, threshold_usd, state, created_ms)"
         " VALUES ('telegram:1', 'telegram:2', 'big', 1e6, '{not json', 0)", "rule 1: unreadable state"),
        ("INSERT INTO digest_schedules (chat_key, local_time, tz) VALUES ('telegram:1', '08:00', 'America')",
         "telegram:1: unknown time zone 'America'"),
        ("INSERT INTO digest_schedules (chat_key, local_time, tz, last_sent_local_date)"
         " VALUES ('telegram:1', '25:00', 'UTC', NULL)", "telegram:1: time '25:00' is not HH:MM"),
        (f"INSERT INTO recorded_spans VALUES ('okx', 'public', {FAR_FUTURE}, {FAR_FUTURE + DAY_MS})",
         "starts in the future"),
        (f"INSERT INTO backfilled_spans VALUES ('okx', 'public', {NOW}, {NOW - DAY_MS})", "ends before it starts"),
    ],
)
async def test_doctor_names_inconsistent_state(filled_db, tmp_path, capsys, sql, says):
    await execute(filled_db, sql)
    assert await cli("doctor", *cli_target(filled_db, tmp_path)) == 1
    out = capsys.readouterr().out
    assert says in out and out.count("FAIL") == 1


async def test_doctor_and_backup_without_a_database_say_so(tmp_path, capsys):
    missing = tmp_path / "nowhere.sqlite"
    assert await cli("doctor", "--db", str(missing)) == 2
    assert await cli("backup", "--db", str(missing), str(tmp_path / "copy.sqlite")) == 2
    err = capsys.readouterr().err
    assert err.count(f"no database at {missing}") == 2
    assert not missing.exists()  # never created by looking


async def run_cli_process(*argv: str, timeout_s: float = 60) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *argv, cwd=PROJECT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    return process.returncode, out.decode()


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's online backup API; PostgreSQL has pg_dump
async def test_a_backup_taken_during_writes_restores_and_passes_doctor(filled_db, tmp_path, capsys):
    writer = await Store.open(filled_db)
    written = 0
    stop = asyncio.Event()

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            await writer.add_events([event(NOW + written * 1000 + k, asset="ETH") for k in range(50)])
            written += 50
            await asyncio.sleep(0.005)

    writing = asyncio.create_task(keep_writing())
    try:
        await until(lambda: written >= 500, timeout=30)
        # In a thread, on its own connection, while this loop keeps writing: an online backup.
        assert await cli("backup", "--db", str(filled_db), str(tmp_path / "backup.sqlite")) == 0
        assert await cli("backup", "--db", str(filled_db), str(tmp_path / "backup.sqlite")) == 1
    finally:
        stop.set()
        await writing
        await writer.close()

    restored = tmp_path / "restored" / "liqbot.sqlite"
    restored.parent.mkdir()
    restored.write_bytes((tmp_path / "backup.sqlite").read_bytes())  # a restore is a file copy
    said = capsys.readouterr()
    assert "copied to" in said.out and "never overwrites" in said.err
    assert not Path(str(tmp_path / "backup.sqlite") + "-wal").exists()
    code, out = await run_cli_process("doctor", "--db", str(restored))
    assert code == 0, out
    store = await Store.open(restored)
    try:
        eth = await store.totals("ETH", Window(NOW, NOW + DAY_MS))
    finally:
        await store.close()
    copied = sum(t.events for t in eth)
    assert 500 <= copied <= written and copied % 50 == 0  # whole batches: a consistent snapshot



@pytest.mark.parametrize("backend", ["postgresql"])
async def test_backup_of_postgresql_points_to_pg_dump(filled_db, tmp_path, capsys):
    assert await cli("backup", *cli_target(filled_db, tmp_path), str(tmp_path / "copy.sqlite")) == 2
    err = capsys.readouterr().err
    assert "back it up with pg_dump" in err and err.count("\n") == 1
    assert not (tmp_path / "copy.sqlite").exists()


async def test_every_subcommand_on_an_unreachable_postgresql_is_one_line_and_a_failing_exit(tmp_path):
    config = tmp_path / "unreachable.toml"
    config.write_text('[storage]\nurl = "postgresql://liqbot@127.0.0.1:1/liqbot"\nconnect_timeout_s = 2\n', encoding="utf-8")
    recording = PROJECT / "bot" / "data" / "sample.jsonl.gz"
    for argv in (["run"], ["console"], ["replay", str(recording)], ["doctor"], ["backup", str(tmp_path / "copy")]):
        code, out = await run_cli_process(*argv, "--config", str(config), timeout_s=30)
        assert code == 2 and out.count("\n") == 1, (argv, out)
        assert out.startswith(f"liqbot {argv[0]}: ") and "127.0.0.1:1/liqbot" in out and "Traceback" not in out
    code, out = await run_cli_process("health", "--config", str(config), timeout_s=30)
    assert code == 1 and out.startswith("unhealthy: cannot open PostgreSQL at postgresql://liqbot@127.0.0.1:1/liqbot")


@pytest.mark.parametrize("events_days, minute_rollups_days", [(2, 30), (30, 2)])
async def test_rows_written_older_than_a_retention_cutoff_later_change_no_edge(store, events_days, minute_rollups_days):
    """A replay of an old recording after a retention pass writes rows older than its cutoff:
    an edge whose events (or whose minute rollups) were pruned reads as it did before."""
    minute = NOW - 5 * DAY_MS + 17 * MINUTE_MS
    await store.add_events([event(minute + 5_000, 111.0), event(minute + 30_000, 333.0), event(NOW - HOUR_MS, 1.0)])
    await apply_retention(store, RetentionPolicy(events_days=events_days, minute_rollups_days=minute_rollups_days), NOW)
    edge = Window(minute + 10_000, minute + MINUTE_MS)

    async def read() -> tuple:
        return (sorted((r.usd, r.events) for r in await store.totals("BTC", edge)),
                [e.notional_usd for e in await store.largest("BTC", edge, 1)])

    before = await read()
    assert before == (([], []) if events_days < minute_rollups_days else ([(333.0, 1)], [333.0]))
    await store.add_events([event(NOW - 10 * DAY_MS, 5.0, asset="ETH")])
    assert await read() == before


async def test_an_edge_read_while_retention_runs_is_never_overcounted(store):
    """Retention deletes whole minutes per batch: between batches an edge in the minute being
    pruned reads what is there or nothing, never the minute's rollup less a half-pruned rest."""
    minute = NOW - 5 * DAY_MS + 17 * MINUTE_MS
    inside = [event(minute + 30_000 + k, 10.0) for k in range(5)]
    await store.add_events([*(event(minute + 1_000 + k, 1.0) for k in range(5)), *inside, event(NOW - HOUR_MS, 1.0)])
    window = Window(minute + 20_000, minute + MINUTE_MS)
    retention = asyncio.create_task(
        apply_retention(store, RetentionPolicy(events_days=4, minute_rollups_days=30), NOW, batch_rows=2)
    )
    seen = set()
    while not retention.done():
        seen.add(tuple((r.usd, r.events) for r in await store.totals("BTC", window)))
        await asyncio.sleep(0)
    await retention
    assert seen <= {((50.0, 5),), ()}, seen


async def test_retention_drops_old_level_snapshots_and_crossings_with_the_market_samples(store):
    levels = LevelsStore(store)
    old, recent = NOW - 40 * DAY_MS, NOW - 2 * DAY_MS
    graded = [(Crossing(Side.LONG, 80_000.0, 1e6, at, at + HOUR_MS), 5e5) for at in (old, recent)]
    await levels.save("BTC", {"book": "now"}, graded, [(old, {"book": "old"}), (recent, {"book": "recent"})], NOW)

    pruned = await apply_retention(store, RetentionPolicy(market_days=35), NOW)

    assert pruned.level_rows == 2 and "2 liquidation-level rows deleted" in pruned.one_line()
    assert [at for at, _ in await levels.snapshots("BTC", 0, NOW)] == [recent]
    assert (await levels.grade("BTC", 0, NOW)).crossings == 1
    assert await levels.book_state("BTC") == {"book": "now"}  # the current book is kept
