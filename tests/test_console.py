"""The console adapter: a pipe gets plain line reading, a terminal a prompt with
editing, history and completion; both answer like every other surface."""

from __future__ import annotations

import io
import os

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from bot.adapters.console import CommandCompleter, run_console
from bot.commands.dispatch import Dispatcher
from bot.services.queries import QueryService
from tests.support import liquidation

NOW_MS = 1_742_601_600_000


async def console_output(store, lines: str) -> str:
    await store.add_events([liquidation(NOW_MS - 60_000, 2_500_000.0)])
    stdout = io.StringIO()
    await run_console(Dispatcher(QueryService(store), lambda: NOW_MS), io.StringIO(lines), stdout)
    return stdout.getvalue()


async def test_a_command_addressed_to_the_bot_is_answered(store):
    out = await console_output(store, "/liq@liqbot BTC\n/liq@some_other_name BTC 4h\n")
    assert out.count("BTC liquidations") == 2
    assert "$2.50M" in out


async def test_a_pipe_is_read_line_by_line_to_its_end(store, tmp_path):
    await store.add_events([liquidation(NOW_MS - 60_000, 2_500_000.0)])
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"/liq BTC\nstatus\n/top")  # the last line has no newline
    os.close(write_fd)
    stdout = io.StringIO()
    with os.fdopen(read_fd) as stdin:
        await run_console(Dispatcher(QueryService(store), lambda: NOW_MS), stdin, stdout)
    out = stdout.getvalue()
    assert "BTC liquidations" in out and "liqbot status" in out and "Most liquidated" in out


async def test_a_file_is_read_too(store, tmp_path):
    commands = tmp_path / "commands.txt"
    commands.write_text("/liq BTC\n")
    stdout = io.StringIO()
    with commands.open() as stdin:
        await run_console(Dispatcher(QueryService(store), lambda: NOW_MS), stdin, stdout)
    assert "BTC liquidations" in stdout.getvalue()


async def test_an_empty_input_like_dev_null_ends_the_console_quietly(store):
    stdout = io.StringIO()
    with open(os.devnull) as stdin:  # a character device: epoll refuses to watch it
        await run_console(Dispatcher(QueryService(store), lambda: NOW_MS), stdin, stdout)
    assert "Traceback" not in stdout.getvalue()


def completions(text: str, assets=("BTC", "ETH", "PEPE")) -> list[str]:
    completer = CommandCompleter(assets)
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("/li", ["/liq", "/liquidations", "/liqs"]),
        ("li", ["liq", "liquidations", "liqs"]),  # the console takes commands without the slash
        ("/liq ", ["BTC", "ETH", "PEPE"]),  # recorded assets first
        ("/liq e", ["ETH"]),
        ("/liq BTC 1", ["1h", "12h"]),
        ("/chart t", ["TON", "TRX", "top"]),
        ("/lang ", ["en", "zh"]),
        ("/help ri", ["risk"]),
        ("/alert ", ["big", "total", "skew", "risk", "cascade", "near", "list"]),  # from the registry's examples
        ("/alert total p", ["PEPE"]),
        ("/digest chart ", ["on"]),
    ],
)
def test_completion_of_commands_and_their_arguments(typed, expected):
    assert completions(typed)[: len(expected)] == expected


def test_nothing_to_complete_after_an_unknown_command():
    assert completions("/nosuch ") == []


async def test_chinese_replies_say_this_chat_and_use_full_width_punctuation(store):
    await store.add_events([liquidation(NOW_MS - 60_000, 2_500_000.0)])
    stdout = io.StringIO()
    await run_console(Dispatcher(QueryService(store), lambda: NOW_MS), io.StringIO("/lang zh\n/liq BTC\n/liqq\n"), stdout)
    out = stdout.getvalue()
    assert "本聊天将使用中文回复。" in out and "本群" not in out  # the console is no group
    assert "总计：" in out and "[🔄 刷新：/liq BTC" in out
    assert "未知命令 /liqq。你是不是想输入 /liq？" in out
