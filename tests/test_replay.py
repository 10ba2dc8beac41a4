"""`liqbot replay` as a user runs it, stopped half way: Ctrl-C in its terminal,
SIGTERM, or `kill -9`. A real process on a recording long enough to be
interrupted (the bundled sample, repeated)."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.support import until

SAMPLE = Path(__file__).resolve().parent.parent / "bot" / "data" / "sample.jsonl.gz"
COPIES = 10  # ~350k lines: several seconds of replay, however fast the machine


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recording") / "long.jsonl"
    sample = gzip.decompress(SAMPLE.read_bytes())
    with open(path, "wb") as out:
        for _ in range(COPIES):
            out.write(sample)
    return path


def stored_events(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    with sqlite3.connect(db_path) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # nobody may reap an orphan's zombie here


def kill_leftovers(process: asyncio.subprocess.Process, workers: list[int]) -> None:
    for pid in [process.pid, *workers] if process.returncode is None else workers:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


async def start_replay(recording: Path, db_path: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "replay", "--db", str(db_path), str(recording),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, like a shell job
    )
    await until(lambda: stored_events(db_path) > 0, timeout=60)  # half way through its first batches
    return process


@pytest.mark.parametrize("how", ["ctrl-c in its terminal", "sigterm"])
async def test_an_interrupted_replay_reports_and_records_the_spans_of_what_it_stored(tmp_path, long_recording, how):
    db_path = tmp_path / "replay.sqlite"
    process = await start_replay(long_recording, db_path)
    workers = children_of(process.pid)
    try:
        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:  # the terminal signals the whole foreground group: parent and worker alike
            os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        kill_leftovers(process, workers)
    assert process.returncode == 1, stderr.decode()
    assert "Traceback" not in stderr.decode()
    report = stdout.decode()
    assert report.startswith("interrupted: replayed 1 file:")
    assert f"{spans_cover_what_was_stored(db_path):,} stored" in report


def spans_cover_what_was_stored(db_path: Path) -> int:
    """How many events the replay stored (some), each stream's covered by a recorded span."""
    with sqlite3.connect(db_path) as db:
        stored = db.execute(
            "SELECT venue, stream, MAX(at_ms) FROM events GROUP BY venue, stream"
        ).fetchall()
        spans = db.execute("SELECT venue, stream, start_ms, end_ms FROM recorded_spans").fetchall()
        count = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert 0 < count
    for venue, stream, last_ms in stored:  # /status and summaries know what was recorded
        assert any((v, s) == (venue, stream) and start <= last_ms < end for v, s, start, end in spans), spans
    return count


async def test_a_parse_worker_that_dies_ends_the_replay_in_one_line_keeping_what_was_stored(tmp_path, long_recording):
    db_path = tmp_path / "replay.sqlite"
    process = await start_replay(long_recording, db_path)
    workers = children_of(process.pid)
    try:
        assert workers  # one, or two from three cores
        os.kill(workers[0], signal.SIGKILL)  # as the kernel's OOM killer would
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        kill_leftovers(process, workers)
    assert process.returncode == 1
    assert stdout == b""
    assert stderr.decode().splitlines()[-1] == (
        "liqbot replay: replay's parse worker exited (code -9); what was stored before is kept"
    )
    assert "Traceback" not in stderr.decode()
    spans_cover_what_was_stored(db_path)


async def test_kill_9_of_replay_takes_its_worker_process_with_it(tmp_path, long_recording):
    db_path = tmp_path / "replay.sqlite"
    process = await start_replay(long_recording, db_path)
    workers = children_of(process.pid)
    try:
        assert workers  # the parsing worker
        process.kill()
        await asyncio.wait_for(process.wait(), timeout=10)
        await until(lambda: not any(alive(pid) for pid in workers), timeout=5)
    finally:
        kill_leftovers(process, workers)
