"""`liqbot health`: one line, exit 0 when the database opens and the feeds record, else 1."""

from __future__ import annotations

import asyncio

from bot.cli import main
from bot.feeds.venues import BY_NAME
from bot.plumbing.clock import wall_clock_ms
from bot.storage.store import Store

MINUTE_MS = 60_000
ONLY_BINANCE = "\n".join(
    ["[feeds.binance]\nenabled = true"]
    + [f"[feeds.{venue}]\nenabled = false" for venue in BY_NAME if venue != "binance"]
)


def make_db(path, spans) -> None:
    async def fill() -> None:
        store = await Store.open(path)
        try:
            for venue, stream, start_ms, end_ms in spans:
                await store.add_span(venue, stream, start_ms, end_ms)
        finally:
            await store.close()

    asyncio.run(fill())


def health(capsys, *argv) -> tuple[int, list[str]]:
    code = main(["health", *argv])
    return code, capsys.readouterr().out.splitlines()


def test_fresh_feeds_are_healthy_and_a_stale_stream_is_named(tmp_path, capsys):
    db, config = tmp_path / "bot.sqlite", tmp_path / "config.toml"
    config.write_text(ONLY_BINANCE)
    now_ms = wall_clock_ms()
    make_db(db, [("binance", "usdm", now_ms - 60 * MINUTE_MS, now_ms - 2_000), ("binance", "coinm", 0, now_ms - 90 * MINUTE_MS)])
    code, lines = health(capsys, "--db", str(db), "--config", str(config))
    assert code == 0
    assert lines == [
        f"healthy: database {db} opens; 1 of 2 streams recorded in the last 10m; not recording: binance/coinm (1h 30m ago)"
    ]


def test_no_stream_recorded_lately_is_unhealthy(tmp_path, capsys):
    db, config = tmp_path / "bot.sqlite", tmp_path / "config.toml"
    config.write_text(ONLY_BINANCE)
    now_ms = wall_clock_ms()
    make_db(db, [("binance", "usdm", 0, now_ms - 20 * MINUTE_MS)])
    code, lines = health(capsys, "--db", str(db), "--config", str(config), "--stale-after", "15m")
    assert code == 1
    assert lines == [
        f"unhealthy: database {db} opens; 0 of 2 streams recorded in the last 15m; "
        "not recording: binance/usdm (20m ago), binance/coinm (never)"
    ]


def test_a_missing_or_broken_database_is_unhealthy(tmp_path, capsys):
    missing = tmp_path / "missing.sqlite"
    assert health(capsys, "--db", str(missing)) == (1, [f"unhealthy: no database at {missing}"])
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    code, lines = health(capsys, "--db", str(broken))
    assert code == 1
    assert lines == [f"unhealthy: cannot read the database {broken}: file is not a database"]
    assert not missing.exists()  # a health check creates nothing


def test_with_every_feed_off_an_opening_database_is_healthy(tmp_path, capsys):
    db, config = tmp_path / "bot.sqlite", tmp_path / "config.toml"
    config.write_text(ONLY_BINANCE.replace("enabled = true", "enabled = false"))
    make_db(db, [])
    assert health(capsys, "--db", str(db), "--config", str(config)) == (
        0, [f"healthy: database {db} opens; no feed is enabled"]
    )


def test_the_config_comes_from_liqbot_config_when_not_given(tmp_path, capsys, monkeypatch):
    db, config = tmp_path / "bot.sqlite", tmp_path / "config.toml"
    config.write_text(f'[storage]\npath = "{db}"\n' + ONLY_BINANCE.replace("enabled = true", "enabled = false"))
    make_db(db, [])
    monkeypatch.setenv("LIQBOT_CONFIG", str(config))
    assert health(capsys) == (0, [f"healthy: database {db} opens; no feed is enabled"])
