"""One `liqbot run` per SQLite database, checked with real processes: a second `run`
refuses with one line, the read-mostly commands work beside the runner, and a runner
killed with SIGKILL leaves nothing that blocks the next start."""

from __future__ import annotations

import asyncio
import signal
import sys

from bot.feeds.venues import BY_NAME

QUIET = "\n".join(f"[feeds.{venue}]\nenabled = false" for venue in BY_NAME) + "\n[market]\nenabled = false\n"


async def liqbot(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *argv,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
    return process.returncode, out.decode(), err.decode()


async def start_runner(config) -> asyncio.subprocess.Process:
    """`liqbot run`, returned once it logged that everything started."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    head = b""
    while b"liqbot running" not in head:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=60)
        assert line, f"liqbot run ended before running:\n{head.decode()}"
        head += line
    return process


async def test_a_second_run_on_one_database_refuses_and_the_other_commands_work_beside_it(tmp_path):
    db, config = tmp_path / "bot.sqlite", tmp_path / "config.toml"
    config.write_text(f'[storage]\npath = "{db}"\n{QUIET}')
    first = await start_runner(config)
    runners = [first]
    try:
        code, out, err = await liqbot("run", "--config", str(config))
        assert (code, out) == (1, "")
        assert err.splitlines() == [
            f"liqbot run: another liqbot run (pid {first.pid}) is using {db}; one runner per SQLite database "
            "(stop it first; console, doctor, backup and replay work beside it)"
        ]

        code, _, _ = await liqbot("backup", "--config", str(config), str(tmp_path / "copy.sqlite"))
        assert code == 0 and (tmp_path / "copy.sqlite").is_file()
        code, out, _ = await liqbot("doctor", "--config", str(config))
        assert code == 0 and out.startswith("ok   integrity:")
        code, out, _ = await liqbot("console", "--config", str(config), stdin=b"/liq BTC\n")
        assert code == 0 and "BTC" in out

        first.send_signal(signal.SIGKILL)  # no clean-up at all: the kernel drops its lock
        await asyncio.wait_for(first.wait(), timeout=30)
        second = await start_runner(config)
        runners.append(second)
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.communicate(), timeout=30)
        assert second.returncode == 0
    finally:
        for process in runners:
            if process.returncode is None:
                process.kill()
                await process.wait()
