"""`liqbot migrate`: the demo install (the sample day, plus a chat's settings, an alert
rule with its state and its queued send, a digest, a feed, backfilled spans, klines,
margin rates and liquidation levels) copied from SQLite into a fresh PostgreSQL
database: every row arrives, and /liq and /status answer the same from both."""

from __future__ import annotations

import asyncio
import sqlite3
import sys

import pytest

from bot.app import App
from bot.cli import SAMPLE_RECORDING, main
from bot.commands.ports import Caller
from bot.config import Config
from bot.core.alert_rules import AlertRule, RuleKind
from bot.core.bars import Kline
from bot.core.digest import DigestSchedule
from bot.core.feed import FeedSubscription
from bot.core.models import HOUR_MS, MINUTE_MS, Side
from bot.replies.render_plain import render_plain
from bot.services.ingest import replay
from bot.storage.digests_store import DigestsStore
from bot.storage.feed_store import FeedStore
from bot.storage.levels_inputs_store import KlineStore, MarginRateStore
from bot.storage.store import Store
from bot.storage.transfer import copy_database, row_counts, tables
from tests.support import liquidation
from tests.terminal import Terminal

CHAT = "telegram:-100"
QUESTIONS = ("/liq", "/liq BTC 4h", "/liq ETH 1h", "/status", "/alert list", "/digest status", "/feed status")


async def build_demo(path) -> int:
    """The install `liqbot demo` builds, with a community's settings on top; returns its clock."""
    config = Config()
    app = await App.open(config, db_path=path)
    try:
        await replay(app.store, [SAMPLE_RECORDING], market_assets=config.market.asset_list)
        end_ms = (await app.store.stats()).last_at_ms + 1
    finally:
        await app.close()
    clock = [end_ms]
    app = await App.open(config, db_path=path, clock_ms=lambda: clock[0])
    try:
        await app.store.chats.set_locale(CHAT, "zh", end_ms)
        await app.store.chats.set_timezone(CHAT, "Asia/Shanghai", end_ms)
        await app.alerts.start()
        await app.alerts.create_rule(AlertRule(0, CHAT, "telegram:1", RuleKind.BIG, "BTC", 1_000_000.0), end_ms)
        await app.alerts.on_events("binance", "usdm", [liquidation(end_ms - 1, 2_000_000, Side.SHORT)])
        clock[0] += MINUTE_MS  # past the grouping: the alert fires, its state and its send are stored
        await app.alerts.tick()
        await DigestsStore(app.store).set_digest(DigestSchedule(CHAT, "08:00", "Asia/Shanghai", locale="zh"), end_ms)
        await FeedStore(app.store).set_feed(FeedSubscription(CHAT, 500_000.0, ("BTC", "ETH"), "telegram:1", end_ms))
        await app.store.add_backfilled_span("okx", "swap", end_ms - 26 * HOUR_MS, end_ms - 24 * HOUR_MS)
        await KlineStore(app.store).add_klines([
            Kline("binance", "BTC", end_ms - (k + 1) * MINUTE_MS, end_ms - k * MINUTE_MS, 97e3, 97.2e3, 96.9e3, 97.1e3,
                  2.5e6, 1.2e6)
            for k in range(30)
        ])
        await MarginRateStore(app.store).set_rates([("BTC", "binance", 0.004), ("BTC", "bybit", 0.005)], end_ms)
        await app.levels.update_all(config.market.asset_list, end_ms)
    finally:
        await app.close()
    return end_ms


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    return path, asyncio.run(build_demo(path))


@pytest.fixture
def postgres_url(database_location):
    return database_location  # an emptied PostgreSQL database (skips without one)


async def contents(location) -> dict[str, list[tuple]]:
    store = await Store.open(location)
    try:
        return {table: sorted(await store.db.fetch(f"SELECT {', '.join(columns)} FROM {table}"), key=repr)
                for table, columns in (await tables(store.db)).items()}
    finally:
        await store.close()


async def answers(location, end_ms: int) -> list[str]:
    app = await App.open(Config(), db_path=location, clock_ms=lambda: end_ms)
    try:
        # One member per question: the per-user rate limit stays out of it.
        return [
            render_plain(await app.dispatcher.handle(question, Caller("telegram", CHAT, f"telegram:{n}", is_group=True)))
            for n, question in enumerate(QUESTIONS, start=1)
        ]
    finally:
        await app.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_demo_install_moves_to_postgresql_and_answers_the_same(demo, postgres_url, capsys):
    path, end_ms = demo
    assert main(["migrate", "--from", f"sqlite:///{path}", "--to", postgres_url]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.count("\n") == 1  # nothing drawn into a pipe; one line
    assert out.startswith("liqbot migrate: ") and "every table's count matches" in out and "rows/s)" in out
    before, after = asyncio.run(contents(path)), asyncio.run(contents(postgres_url))
    assert after == before
    assert all(before[table] for table in ("events", "rollup_minute", "rollup_hour", "recorded_spans",
                                           "backfilled_spans", "chats", "chat_timezones", "alert_rules",
                                           "digest_schedules", "feed_subscriptions", "market_samples", "klines",
                                           "margin_rates", "level_books", "outbox", "outbox_messages"))
    assert asyncio.run(answers(postgres_url, end_ms)) == asyncio.run(answers(path, end_ms))
    # A second run never merges into the copy: one line, nothing written.
    assert main(["migrate", "--from", f"sqlite:///{path}", "--to", postgres_url]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("liqbot migrate: the target is not empty: alert_rules (1 rows)")
    assert err.count("\n") == 1 and asyncio.run(contents(postgres_url)) == before



@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_way_back_to_sqlite_copies_the_same_rows(demo, postgres_url, tmp_path, capsys):
    path, _ = demo
    back = tmp_path / "back.sqlite"
    assert main(["migrate", "--from", f"sqlite:///{path}", "--to", postgres_url]) == 0
    assert main(["migrate", "--from", postgres_url, "--to", f"sqlite:///{back}"]) == 0
    assert capsys.readouterr().err == ""
    assert asyncio.run(contents(back)) == asyncio.run(contents(path))


@pytest.mark.parametrize("backend", ["postgresql"])
def test_new_rules_on_postgresql_continue_after_the_copied_ids(demo, postgres_url):
    path, end_ms = demo
    assert main(["migrate", "--from", f"sqlite:///{path}", "--to", postgres_url]) == 0

    async def create() -> str:
        app = await App.open(Config(), db_path=postgres_url, clock_ms=lambda: end_ms)
        try:
            return render_plain(await app.dispatcher.handle(
                "/alert big ETH 2M", Caller("telegram", CHAT, "telegram:1", is_group=True)
            ))
        finally:
            await app.close()

    assert "#2" in asyncio.run(create())


async def test_rows_written_to_the_source_during_the_copy_make_the_counts_differ(demo, tmp_path):
    path, _ = demo
    source = tmp_path / "busy.sqlite"
    source.write_bytes(path.read_bytes())
    from_store, to_store = await Store.open(source), await Store.open(tmp_path / "copy.sqlite")

    written = []

    def a_running_bot_writes(done_rows: int, total_rows: int, tables_done: int) -> None:
        if tables_done == 1 and not written:  # events are copied later, and the new row with them
            written.append(done_rows)
            with sqlite3.connect(source) as db:
                db.execute("INSERT INTO events SELECT at_ms + 1, venue, instrument, liquidated, quantity, price,"
                           " stream, asset, notional_cents FROM events LIMIT 1")
            db.close()

    try:
        copied = await copy_database(from_store.db, to_store.db, 5_000, a_running_bot_writes)
        in_source = (await row_counts(from_store.db, ["events"]))["events"]
    finally:
        await from_store.close()
        await to_store.close()
    assert copied.differences == {"events": (in_source - 1, in_source)}
    assert copied.difference_line() == f"events: {in_source - 1:,} in the source, {in_source:,} copied"


def test_a_missing_source_or_a_wrong_url_is_one_line(tmp_path, capsys):
    assert main(["migrate", "--from", f"sqlite:///{tmp_path}/none.sqlite", "--to", f"sqlite:///{tmp_path}/t.sqlite"]) == 2
    assert capsys.readouterr().err == f"liqbot migrate: no database at {tmp_path}/none.sqlite\n"
    with pytest.raises(SystemExit):
        main(["migrate", "--from", "mysql://x", "--to", f"sqlite:///{tmp_path}/t.sqlite"])
    assert "not a database URL: 'mysql://x'" in capsys.readouterr().err


def test_a_terminal_sees_the_rows_copied(demo, tmp_path):
    path, _ = demo
    args = [sys.executable, "-m", "bot", "migrate", "--from", f"sqlite:///{path}",
            "--to", f"sqlite:///{tmp_path}/copy.sqlite", "--batch-rows", "2000"]
    term = Terminal(args, pipe_stdout=True)
    try:
        term.expect("migrate")
        term.expect("100%", timeout_s=60)
        term.expect("tables copied")
        report = term.process.stdout.read().decode()
        assert term.exit_code() == 0
    finally:
        term.close()
    assert report.startswith("liqbot migrate: ") and report.count("\n") == 1
