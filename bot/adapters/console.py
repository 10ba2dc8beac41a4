"""The console adapter: one command per line on stdin, plain-text replies on stdout."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.replies.model import Reply
from bot.replies.render_plain import render_plain

CONSOLE_CALLER = Caller(platform="console", chat_key="console:local", user_key="console:local", rate_limited=False)
PROMPT = "liqbot> "


def for_this_bot(text: str) -> str:
    """The console talks to one bot: `/liq@liqbot BTC` (copied from a group chat) is for it."""
    head, space, rest = text.partition(" ")
    return head.partition("@")[0] + space + rest


def save_image(reply: Reply, image_dir: Path) -> Path:
    """Write a reply's picture into `image_dir`; returns its path."""
    image_dir.mkdir(parents=True, exist_ok=True)
    path = image_dir / Path(reply.image.filename).name  # never a path from elsewhere
    path.write_bytes(reply.image.png)
    return path


async def run_console(
    dispatcher: Dispatcher,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    image_dir: str | Path | None = None,
) -> None:
    """Answer each line until end of input. Works in a pipe and interactively.

    Pictures (/chart) are written as PNG files into `image_dir` (a fresh
    temporary directory when None) and their path is printed.
    """
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    images = Path(image_dir) if image_dir is not None else None
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
        text = for_this_bot(text)
        reply = await dispatcher.handle(text, CONSOLE_CALLER)
        if reply is not None:
            stdout.write(render_plain(reply) + "\n")
            if reply.image is not None:
                if images is None:
                    images = Path(tempfile.mkdtemp(prefix="liqbot-images-"))
                stdout.write(f"image saved: {save_image(reply, images)}\n")
            stdout.write("\n")
            stdout.flush()
