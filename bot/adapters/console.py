"""The console adapter: one command per line on stdin, plain-text replies on stdout."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.replies.render_plain import render_plain

CONSOLE_CALLER = Caller(platform="console", chat_key="console:local", user_key="console:local", rate_limited=False)
PROMPT = "liqbot> "


async def run_console(dispatcher: Dispatcher, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    """Answer each line until end of input. Works in a pipe and interactively."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    interactive = stdin.isatty()
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            stdout.write(PROMPT)
            stdout.flush()
        # A thread reads stdin so feeds keep running while we wait for a line.
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if not text.startswith("/"):
            text = "/" + text  # at a terminal, "liq btc" is as good as "/liq btc"
        reply = await dispatcher.handle(text, CONSOLE_CALLER)
        if reply is not None:
            stdout.write(render_plain(reply) + "\n\n")
            stdout.flush()
