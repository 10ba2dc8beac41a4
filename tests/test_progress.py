"""`liqbot replay` draws its progress (rate, time left, count) at a terminal
and nothing at all when stderr is not one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.cli import SAMPLE_RECORDING
from tests.terminal import ROOT, Terminal


def replay_args(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "bot", "replay", "--db", str(tmp_path / "replayed.sqlite"), str(SAMPLE_RECORDING)]


def test_a_terminal_sees_rate_time_left_and_count(tmp_path):
    term = Terminal(replay_args(tmp_path), pipe_stdout=True)
    try:
        term.expect("replay")
        term.expect("100%", timeout_s=60)
        term.expect("/s")  # the rate
        term.expect("0:00:00")  # the time left, at the end
        term.expect("34,949 liquidations stored")
        report = term.process.stdout.read().decode()
        assert term.exit_code() == 0
    finally:
        term.close()
    assert report.startswith("replayed 1 file: ") and report.count("\n") == 1


def test_nothing_is_drawn_into_a_pipe(tmp_path):
    done = subprocess.run(
        replay_args(tmp_path), capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60
    )
    assert done.returncode == 0 and done.stderr == b""
    assert done.stdout.decode().startswith("replayed 1 file: ")
