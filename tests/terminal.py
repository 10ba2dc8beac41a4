"""A child process at a pseudo-terminal, for tests of what a terminal user sees."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXIT_WITHIN_S = 5.0
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b\][^\x07]*\x07|\r")
CURSOR_POSITION_REQUEST = b"\x1b[6n"


class Terminal:
    """A child process whose stdin (and stdout, stderr unless piped) is a pseudo-terminal."""

    def __init__(self, args: list[str], pipe_stdout: bool = False, pipe_stderr: bool = False) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 160, 0, 0))
        stdout = subprocess.PIPE if pipe_stdout else slave
        stderr = subprocess.PIPE if pipe_stderr else slave
        env = {**os.environ, "TERM": "xterm", "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(args, stdin=slave, stdout=stdout, stderr=stderr, cwd=ROOT, env=env)
        os.close(slave)
        self.screen = b""
        self.matched_upto = 0

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def expect(self, text: str, timeout_s: float = 15.0) -> None:
        """Wait until `text` appears on the terminal (escape codes removed) after the previous match."""
        deadline = time.monotonic() + timeout_s
        while (found := self.plain().find(text, self.matched_upto)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen; screen: {self.plain()[self.matched_upto:][-2000:]!r}")
            if select.select([self.master], [], [], min(left, 0.2))[0]:
                try:
                    chunk = os.read(self.master, 65_536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if CURSOR_POSITION_REQUEST in chunk:
                    self.type("\x1b[1;1R")  # answer like a terminal emulator does
                self.screen += chunk
        self.matched_upto = found + len(text)

    def plain(self) -> str:
        return ANSI.sub(b"", self.screen).decode("utf-8", "replace")

    def exit_code(self, within_s: float = EXIT_WITHIN_S) -> int:
        try:
            return self.process.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=within_s)
            raise AssertionError(f"still running {within_s} s after being told to stop") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EXIT_WITHIN_S)
        os.close(self.master)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


