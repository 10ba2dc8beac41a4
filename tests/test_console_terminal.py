"""`liqbot console` as a real process at a pseudo-terminal: the prompt edits,
recalls and completes; Ctrl-C and SIGTERM stop it at once, whether it reads the
terminal through the prompt or plainly (stdout piped); a reader that leaves
(`| head -3`) ends it quietly. Every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.storage.store import Store
from tests.support import liquidation
from tests.terminal import EXIT_WITHIN_S, ROOT, Terminal

NOW_MS = 1_742_601_600_000
NOW_ISO = "2025-03-22T00:00Z"
PROMPT = "liqbot>"  # its trailing space is drawn as a cursor move


@pytest.fixture
def database(tmp_path) -> Path:
    path = tmp_path / "liqbot.sqlite"

    async def fill() -> None:
        store = await Store.open(path)
        await store.add_events([liquidation(NOW_MS - 60_000, 2_500_000.0), liquidation(NOW_MS - 120_000, 900_000.0)])
        await store.close()

    asyncio.run(fill())
    return path


def console_args(database: Path) -> list[str]:
    return [sys.executable, "-m", "bot", "console", "--db", str(database), "--now", NOW_ISO]


@pytest.fixture
def terminal(database):
    made: list[Terminal] = []

    def start(pipe_stdout: bool = False) -> Terminal:
        made.append(Terminal(console_args(database), pipe_stdout, pipe_stderr=pipe_stdout))
        return made[-1]

    yield start
    for each in made:
        each.close()


def test_the_prompt_edits_recalls_completes_and_ctrl_c_ends_it(terminal):
    term = terminal()
    term.expect(PROMPT)
    term.type("/liq BTC\r")
    term.expect("BTC liquidations")
    term.expect(PROMPT)
    term.type("\x1b[A\r")  # Up recalls the last command
    term.expect("BTC liquidations")
    term.expect(PROMPT)
    term.type("/liq ETH" + "\x1b[D" * 3 + "BTC \r")  # Left moves the cursor instead of typing ^[[D
    term.expect("Bad window ETH")  # the edited line, /liq BTC ETH, was sent
    term.expect(PROMPT)
    term.type("/ri\t")
    term.expect("/risk")  # the completion
    term.type("\t\r")
    term.expect("BTC leverage risk")
    term.expect(PROMPT)
    term.type("\x03")
    assert term.exit_code() == 0
    assert "Traceback" not in term.plain() and "^[[" not in term.plain()


def test_sigterm_at_the_prompt_stops_at_once(terminal):
    term = terminal()
    term.expect(PROMPT)
    term.process.send_signal(signal.SIGTERM)
    assert term.exit_code() == 0
    assert "Traceback" not in term.plain()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_terminal_read_plainly_stops_at_once(terminal, stop):
    term = terminal(pipe_stdout=True)  # like `liqbot demo | less`: no prompt, the terminal is still read
    term.type("/status\n")
    assert "liqbot status" in read_until(term.process.stdout, "liqbot status")
    term.process.send_signal(stop)  # what Ctrl-C at a terminal in cooked mode sends
    assert term.exit_code() == 0
    assert b"Traceback" not in term.process.stderr.read()


def read_until(stream, text: str, timeout_s: float = 15.0) -> str:
    seen, deadline = b"", time.monotonic() + timeout_s
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} not in {seen[-500:]!r}"
        if select.select([stream], [], [], min(left, 0.2))[0]:
            seen += os.read(stream.fileno(), 65_536)
    return seen.decode()


def test_a_reader_that_leaves_ends_the_output_quietly(database):
    process = subprocess.Popen(
        console_args(database), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        process.stdin.write(b"/liq BTC\n" * 300)  # far more than a pipe buffer of replies
        process.stdin.close()
        head = [process.stdout.readline() for _ in range(3)]  # `| head -3`
        process.stdout.close()
        assert process.wait(timeout=15) == 1
        errors = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=EXIT_WITHIN_S)
        process.stderr.close()
    assert head[0].strip() and errors == ""
