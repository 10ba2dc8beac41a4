"""The console adapter: one command per line, plain-text replies on stdout.

At a terminal the line is read with prompt_toolkit (editing, history, completion
of commands and assets). Anywhere else (a pipe, a file) lines are read plainly.
Either way the read is a cancellable await on the event loop, never a blocked
thread, so Ctrl-C and SIGTERM stop the process at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_input
from prompt_toolkit.output import create_output

from bot.commands.dispatch import Dispatcher
from bot.commands.parse import ALL_ASSETS, LOCALES, WELL_KNOWN_ASSETS
from bot.commands.ports import Caller
from bot.commands.registry import COMMANDS, ArgKind, find
from bot.replies.model import Reply
from bot.replies.render_plain import render_plain

CONSOLE_CALLER = Caller(platform="console", chat_key="console:local", user_key="console:local", rate_limited=False)
PROMPT = "liqbot> "
COMMON_WINDOWS = ("1h", "4h", "12h", "24h", "7d", "30d")
READ_CHUNK_BYTES = 65_536


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


class CommandCompleter(Completer):
    """Completes command names, then each argument from the registry: assets
    (the recorded ones, kept in `assets`), windows, languages, command names,
    and for free-text commands the words of their registered examples."""

    def __init__(self, assets: Iterable[str] = ()) -> None:
        self.assets = list(assets)

    def get_completions(self, document: Document, complete_event: CompleteEvent):
        before = document.text_before_cursor
        words = before.split()
        current = "" if not words or before[-1:].isspace() else words[-1]
        position = len(words) if not current else len(words) - 1
        if position == 0:
            slash = "/" if current.startswith("/") else ""
            candidates = [slash + name for spec in COMMANDS for name in (spec.name, *spec.aliases)]
        else:
            spec = find(for_this_bot(words[0]).strip())
            candidates = self._argument_words(spec, words[1:position]) if spec else []
        typed = current.lower()
        for candidate in dict.fromkeys(candidates):  # unique, in order
            if candidate.lower().startswith(typed):
                yield Completion(candidate, start_position=-len(current))

    def _assets(self, extra: tuple[str, ...] = ()) -> list[str]:
        return [*self.assets, *sorted(WELL_KNOWN_ASSETS - set(self.assets)), ALL_ASSETS, *extra]

    def _argument_words(self, spec, typed: list[str]) -> list[str]:
        if any(arg.kind is ArgKind.TEXT for arg in spec.args):
            return self._example_words(spec, typed)
        words: list[str] = []
        for arg in spec.args:
            words += {
                ArgKind.ASSET: lambda: self._assets(arg.extra_values),
                ArgKind.WINDOW: lambda: list(COMMON_WINDOWS),
                ArgKind.LOCALE: lambda: list(LOCALES),
                ArgKind.COMMAND: lambda: [s.name for s in COMMANDS],
            }[arg.kind]()
        return words

    def _example_words(self, spec, typed: list[str]) -> list[str]:
        """The next word of the examples that start like the typed words; assets where an example has one."""
        position = len(typed) + 1
        nexts = [
            tokens[position]
            for tokens in (example.split() for example in spec.examples)
            if len(tokens) > position and [t.lower() for t in tokens[1:position]] == [t.lower() for t in typed]
        ]
        if any(word.upper() in WELL_KNOWN_ASSETS for word in nexts):
            return [w for w in nexts if w.upper() not in WELL_KNOWN_ASSETS] + self._assets()
        return nexts


def _pollable(fd: int) -> bool:
    """Whether the event loop can wait for `fd` to be readable: pipes, sockets and terminals."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))


async def _plain_lines(stdin: TextIO) -> AsyncIterator[str]:
    """Lines of a pipe or terminal, read when the event loop says they are ready."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):  # io.StringIO and friends: nothing blocks
        fd = None
    if fd is None or not _pollable(fd):  # a file or /dev/null never blocks (and epoll refuses them)
        for line in stdin:
            yield line
        return
    loop = asyncio.get_running_loop()
    pending = b""
    while True:
        ready = loop.create_future()

        def on_ready(ready: asyncio.Future = ready) -> None:
            loop.remove_reader(fd)
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        chunk = os.read(fd, READ_CHUNK_BYTES)  # readable, so this returns at once
        if not chunk:
            if pending:
                yield pending.decode("utf-8", "replace")
            return
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace") + "\n"


async def _prompted_lines(dispatcher: Dispatcher, stdin: TextIO, stdout: TextIO) -> AsyncIterator[str]:
    """Lines typed at a terminal, with editing, history (Up/Down) and Tab completion."""
    completer = CommandCompleter()
    session: PromptSession[str] = PromptSession(
        input=create_input(stdin), output=create_output(stdout), history=InMemoryHistory(), completer=completer
    )
    while True:
        completer.assets = await dispatcher.assets()
        try:
            # handle_sigint=False: prompt_toolkit would otherwise replace asyncio's own SIGINT handling.
            line = await session.prompt_async(PROMPT, handle_sigint=False)
        except EOFError:  # Ctrl-D
            return
        except KeyboardInterrupt:
            # Ctrl-C is a key in the prompt's raw mode: make it the SIGINT it is at any other
            # terminal, so it stops the process the same way (the handler cancels this wait).
            signal.raise_signal(signal.SIGINT)
            await asyncio.Event().wait()
        yield line


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
    interactive = stdin.isatty() and stdout.isatty()
    lines = _prompted_lines(dispatcher, stdin, stdout) if interactive else _plain_lines(stdin)
    async for line in lines:
        text = line.strip()
        if not text:
            continue
        if not text.startswith("/"):
            text = "/" + text  # at a terminal, "liq btc" is as good as "/liq btc"
        reply = await dispatcher.handle(for_this_bot(text), CONSOLE_CALLER)
        if reply is not None:
            stdout.write(render_plain(reply) + "\n")
            if reply.image is not None:
                if images is None:
                    images = Path(tempfile.mkdtemp(prefix="liqbot-images-"))
                stdout.write(f"image saved: {save_image(reply, images)}\n")
            stdout.write("\n")
            stdout.flush()
