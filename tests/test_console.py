"""The console adapter: a pipe gets plain line reading, a terminal a prompt with
editing, history and completion; both answer like every other surface."""

from __future__ import annotations

import io

from bot.adapters.console import run_console
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
