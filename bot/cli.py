"""`liqbot` command line: run, console, demo, replay, record, doctor, backup, health, migrate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from contextlib import nullcontext
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from bot import __version__
from bot.adapters.console import run_console
from bot.app import App, run_bot
from bot.plumbing.clock import wall_clock_ms
from bot.config import ConfigError, Secrets, load_config
from bot.logsetup import install_logging
from bot.plumbing.bounds import Url
from bot.plumbing.progress import progress_bar
from bot.feeds.sources import enabled_streams
from bot.services.health import check_health, live_health
from bot.services.ingest import replay
from bot.services.parse_worker import ParseWorkerError
from bot.services.recorder import record
from bot.storage.doctor import examine
from bot.storage.maintenance import backup_database, rebuild_rollups
from bot.storage.runlock import AlreadyRunning, single_runner
from bot.storage.backends import is_postgres
from bot.storage.database import DatabaseUnavailable
from bot.storage.store import Store
from bot.storage.transfer import DEFAULT_BATCH_ROWS, TargetNotEmpty, copy_database

log = logging.getLogger("liqbot")

SAMPLE_RECORDING = Path(__file__).parent / "data" / "sample.jsonl.gz"
SQLITE_SCHEME = "sqlite:///"


def _instant_ms(text: str) -> int:
    """--now: an ISO 8601 instant (UTC unless it names an offset)."""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (try 2025-03-21T12:00Z)") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return int(at.timestamp() * 1000)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liqbot", description="Crypto liquidation bot for chat communities.")
    parser.add_argument("--version", action="version", version=f"liqbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # LIQBOT_CONFIG lets `liqbot run` and a container's `liqbot health` read the same file.
    config_help = "TOML config (default: $LIQBOT_CONFIG, else built-in defaults)"

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="PATH", default=os.environ.get("LIQBOT_CONFIG") or None, help=config_help)
        p.add_argument("--db", metavar="PATH", help="SQLite database (overrides storage.path and storage.url)")

    console = sub.add_parser("console", help="answer commands typed on stdin, one per line")
    common(console)
    console.add_argument("--now", type=_instant_ms, metavar="ISO8601", help="pin the clock (for recorded data)")
    console.add_argument("--locale", choices=("en", "zh"), help="reply language")

    replay_cmd = sub.add_parser("replay", help="ingest recordings (JSON Lines, .gz ok)")
    common(replay_cmd)
    replay_cmd.add_argument("files", nargs="+", type=Path, metavar="FILE.jsonl")

    demo = sub.add_parser("demo", help="load the bundled sample recording and open the console")
    demo.add_argument("--locale", choices=("en", "zh"), help="reply language")

    run = sub.add_parser("run", help="record live feeds and answer on every enabled chat platform")
    common(run)

    doctor = sub.add_parser("doctor", help="check the database: integrity, rollups, alert and digest state, spans")
    common(doctor)
    doctor.add_argument("--repair", action="store_true", help="rebuild rollups from the raw events")

    health = sub.add_parser("health", help="one line and exit 0 when the database opens and the feeds record, else 1")
    common(health)
    health.add_argument(
        "--stale-after", type=_duration_s, default=600.0, metavar="10m",
        help="a stream that recorded nothing for this long is stale (default: 10m)",
    )

    backup = sub.add_parser("backup", help="copy the database while liqbot keeps running (SQLite backup API)")
    common(backup)
    backup.add_argument("target", type=Path, metavar="PATH", help="the copy to write (must not exist)")

    migrate = sub.add_parser(
        "migrate", help="copy the whole database into a new, empty one (SQLite to PostgreSQL), counts verified"
    )
    migrate.add_argument("--config", metavar="PATH", default=os.environ.get("LIQBOT_CONFIG") or None, help=config_help)
    migrate.add_argument(
        "--from", dest="source", required=True, type=_database_url, metavar="URL",
        help="the database to copy: sqlite:////absolute/path.sqlite (or a postgresql:// URL)",
    )
    migrate.add_argument(
        "--to", dest="target", required=True, type=_database_url, metavar="URL",
        help="the empty database to fill: postgresql://user@host:5432/name (password: $LIQBOT_DB_PASSWORD)",
    )
    migrate.add_argument(
        "--batch-rows", type=int, default=DEFAULT_BATCH_ROWS, metavar="N", help=f"rows per batch (default {DEFAULT_BATCH_ROWS:,})"
    )

    record = sub.add_parser("record", help="record venue frames to a file you can replay")
    record.add_argument("--config", metavar="PATH", default=os.environ.get("LIQBOT_CONFIG") or None, help=config_help)
    record.add_argument("--out", type=Path, required=True, metavar="FILE.jsonl", help=".gz compresses")
    record.add_argument("--duration", type=_duration_s, metavar="10m", help="stop after this long (default: Ctrl-C)")
    return parser


def _database_url(text: str) -> str | Path:
    """--from/--to: sqlite:///PATH (four slashes for an absolute path) or a postgresql:// URL."""
    if is_postgres(text):
        return text
    if text.startswith(SQLITE_SCHEME) and len(text) > len(SQLITE_SCHEME):
        return Path(text[len(SQLITE_SCHEME):])
    raise argparse.ArgumentTypeError(f"not a database URL: {text!r} (try sqlite:////srv/liqbot.sqlite or postgresql://...)")


def _duration_s(text: str) -> float:
    """--duration: 90s, 10m, 2h."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 10m or 2h)") from None


async def _console(app: App, locale: str | None) -> None:
    if locale:
        await app.store.chats.set_locale("console:local", locale, app.clock_ms())
    _stop_on_signals()
    try:
        await run_console(app.dispatcher)
    except asyncio.CancelledError:
        pass  # Ctrl-C or SIGTERM: stopped like at the end of input; the caller closes the store


async def _cmd_console(args, config) -> int:
    clock = (lambda: args.now) if args.now is not None else wall_clock_ms
    app = await App.open(config, Secrets.from_env(), args.db, clock)
    try:
        await _console(app, args.locale)
    finally:
        await app.close()
    return 0


async def _cmd_replay(args, config) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        print(f"liqbot replay: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    _stop_on_signals(stop.set)  # write the batches in hand and record their spans, then report
    app = await App.open(config, Secrets.from_env(), args.db)
    try:
        with progress_bar("replay", "liquidations stored", sys.stderr) as progress:
            report = await replay(
                app.store, args.files, progress=progress, stop=stop, market_assets=config.market.asset_list
            )
    except ParseWorkerError as error:  # killed (out of memory?): the spans of what was stored are recorded
        print(f"liqbot replay: {error}; what was stored before is kept", file=sys.stderr)
        return 1
    finally:
        await app.close()
    print(report.one_line())
    for sample in report.decode.error_samples:
        print(f"  {sample}")
    return 1 if report.interrupted else 0


async def _cmd_demo(args, config) -> int:
    with tempfile.TemporaryDirectory(prefix="liqbot-demo-") as folder:
        db = Path(folder) / "demo.sqlite"
        app = await App.open(config, Secrets(), db)
        try:
            report = await replay(app.store, [SAMPLE_RECORDING], market_assets=config.market.asset_list)
            stats = await app.store.stats()
        finally:
            await app.close()
        end_ms = stats.last_at_ms + 1
        pinned = datetime.fromtimestamp(end_ms / 1000, timezone.utc)
        print(f"liqbot demo: a synthetic sample day (made by `python -m bot.sample`, not real market data): {report.one_line()}.")
        print(f"The clock is pinned to the sample's end, {pinned:%Y-%m-%d %H:%M} UTC: \"24h\" means that day.")
        print("Try /liq, /liq BTC 4h, /report, /risk, /levels, /chart BTC, /top, /big, /status, /help; end with Ctrl-D.\n")
        app = await App.open(config, Secrets(), db, clock_ms=lambda: end_ms)
        try:
            await _console(app, args.locale)
        finally:
            await app.close()
    return 0


def _stop_on_signals(stop: Callable[[], None] | None = None) -> None:
    """SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd) ask once for a clean stop:
    `stop()`, by default cancelling the main task, so pending writes are flushed
    on the way out. A later signal never abandons that final write (asyncio's own
    second-Ctrl-C KeyboardInterrupt would); it only says so. SIGKILL still ends it."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.current_task().cancel
    stopping = False

    def on_signal(signum: int) -> None:
        nonlocal stopping
        if stopping:
            log.warning("already stopping (%s); finishing the final write first", signal.Signals(signum).name)
            return
        stopping = True
        log.info("stopping (%s)", signal.Signals(signum).name)
        stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' event loop
            loop.add_signal_handler(signum, on_signal, signum)


async def _cmd_run(args, config) -> int:
    _stop_on_signals()
    try:
        location = config.storage.location(args.db)
        # One runner per SQLite file; replicas sharing PostgreSQL coordinate in the database.
        with nullcontext() if is_postgres(location) else single_runner(location):  # before the database is opened
            await run_bot(config, Secrets.from_env(), args.db)
    except AlreadyRunning as error:
        print(f"liqbot run: {error}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        log.info("liqbot stopped")
    return 0


async def _cmd_record(args, config) -> int:
    _stop_on_signals()
    try:
        report = await record(config.feeds, args.out, args.duration, market=config)
    except asyncio.CancelledError:
        return 0
    print(report.one_line())
    return 0


def _existing_db(args, config) -> str | Path | None:
    """The database a maintenance command works on (a SQLite file or a PostgreSQL URL);
    None (and one line) when the SQLite file does not exist."""
    location = config.storage.location(args.db)
    if is_postgres(location):
        return location
    path = Path(location)
    if not path.is_file():
        print(f"liqbot {args.command}: no database at {path}", file=sys.stderr)
        return None
    return path


async def _open_store(location: str | Path, config) -> Store:
    storage = config.storage
    return await Store.open(
        location,
        password=Secrets.from_env().db_password,
        connect_timeout_s=storage.connect_timeout_s,
        pool_size=storage.pool_size,
    )


async def _cmd_doctor(args, config) -> int:
    location = _existing_db(args, config)
    if location is None:
        return 2
    store = await _open_store(location, config)
    try:
        findings = await examine(store, wall_clock_ms())
        if args.repair and any(f.repairable for f in findings):
            for finding in findings:
                print(finding.line())
            written = await rebuild_rollups(store)
            print(f"repair: rollups rebuilt from the raw events ({written:,} rows)")
            findings = await examine(store, wall_clock_ms())
    finally:
        await store.close()
    for finding in findings:
        print(finding.line())
    return 0 if all(f.ok for f in findings) else 1


async def _cmd_backup(args, config) -> int:
    path = _existing_db(args, config)
    if path is None:
        return 2
    if is_postgres(path):
        print(
            f"liqbot backup: the database is PostgreSQL ({path}); back it up with pg_dump,"
            f" e.g. pg_dump --format=custom --file=liqbot.dump '{path}'",
            file=sys.stderr,
        )
        return 2
    try:
        size = await asyncio.to_thread(backup_database, path, args.target)
    except (FileExistsError, sqlite3.Error, OSError) as error:
        print(f"liqbot backup: {error}", file=sys.stderr)
        return 1
    print(f"liqbot backup: {size / 1e6:,.1f} MB copied to {args.target}")
    return 0


async def _cmd_health(args, config) -> int:
    enabled = enabled_streams(config.feeds)
    location, now_ms, stale_after_ms = config.storage.location(args.db), wall_clock_ms(), int(args.stale_after * 1000)
    if is_postgres(location):
        try:
            store = await _open_store(location, config)
        except DatabaseUnavailable as error:
            print(f"unhealthy: {error}")
            return 1
        try:
            health = await live_health(store, None, True, enabled, now_ms, stale_after_ms)
        finally:
            await store.close()
    else:
        health = check_health(Path(location), enabled, now_ms, stale_after_ms)
    print(health.line)
    return 0 if health.ok else 1


async def _cmd_migrate(args, config) -> int:
    if isinstance(args.source, Path) and not args.source.is_file():  # opening would create an empty one
        print(f"liqbot migrate: no database at {args.source}", file=sys.stderr)
        return 2
    source = await _open_store(args.source, config)
    try:
        target = await _open_store(args.target, config)
        try:
            started = time.perf_counter()
            with progress_bar("migrate", "tables copied", sys.stderr, in_rows=True) as progress:
                copied = await copy_database(source.db, target.db, args.batch_rows, progress)
            elapsed_s = time.perf_counter() - started
        finally:
            await target.close()
    except TargetNotEmpty as error:
        print(f"liqbot migrate: {error}", file=sys.stderr)
        return 1
    finally:
        await source.close()
    if copied.differences:
        print(f"liqbot migrate: counts differ after the copy: {copied.difference_line()}", file=sys.stderr)
        return 1
    print(
        f"liqbot migrate: {copied.rows:,} rows of {len(copied.rows_by_table)} tables copied to {_shown(args.target)};"
        f" every table's count matches ({elapsed_s:.1f} s, {copied.rows / max(elapsed_s, 1e-9):,.0f} rows/s)"
    )
    return 0


def _shown(location: str | Path) -> str:
    """A database location as it may be printed (a URL without its password)."""
    return Url.without_password(location) if isinstance(location, str) else str(location)


COMMANDS = {
    "console": _cmd_console,
    "replay": _cmd_replay,
    "demo": _cmd_demo,
    "run": _cmd_run,
    "record": _cmd_record,
    "doctor": _cmd_doctor,
    "backup": _cmd_backup,
    "health": _cmd_health,
    "migrate": _cmd_migrate,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as error:
        print(f"liqbot: {error}", file=sys.stderr)
        return 2
    install_logging(config.logging.level, Secrets.from_env().values())
    try:
        return asyncio.run(COMMANDS[args.command](args, config))
    except DatabaseUnavailable as error:  # unreachable, refused, misnamed: one line, not a traceback
        print(f"liqbot {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`liqbot demo | head -3`): stop quietly like other Unix tools, and
        # point stdout at /dev/null so the interpreter's last flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
