"""Small helpers several test modules share."""

from __future__ import annotations

import asyncio
import io
import os
import random
import socket
from pathlib import Path

from bot.core.models import LiquidationEvent, Side

PRICES = {"BTC": 84_000.0, "ETH": 2_000.0, "SOL": 130.0}


def free_port() -> int:
    """A port free now for a child process to listen on later. Drawn from below the
    kernel's ephemeral range: a port from that range can meanwhile become the local end
    of an outgoing connection (to PostgreSQL, to a fake), and the child's bind fails."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            ephemeral_low = int(ports.read().split()[0])
    except OSError:  # not Linux
        ephemeral_low = 32768
    while True:
        port = random.randrange(ephemeral_low // 2, ephemeral_low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def liquidation(
    at_ms: int, usd: float, side: Side = Side.LONG, asset: str = "BTC", venue: str = "binance"
) -> LiquidationEvent:
    """A Binance-USD-M-style event worth `usd` (quantity derived from the asset's price)."""
    price = PRICES.get(asset, 100.0)
    return LiquidationEvent(
        venue=venue,
        stream="usdm",
        instrument=f"{asset}USDT",
        asset=asset,
        liquidated=side,
        price=price,
        quantity=usd / price,
        notional_usd=usd,
        at_ms=at_ms,
    )


async def until(predicate, timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, polling briefly; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


def check_golden(name: str, actual: str) -> None:
    """`actual` equals tests/golden/NAME; `UPDATE_GOLDEN=1 pytest ...` rewrites it (review the diff)."""
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


async def ask(app, *commands: str) -> str:
    """What the console prints for `commands`, typed one per line into `app`'s dispatcher."""
    from bot.adapters.console import run_console

    out = io.StringIO()
    await run_console(app.dispatcher, io.StringIO("\n".join(commands) + "\n"), out)
    return out.getvalue()


class Sending:
    """A Notifier (unpaced) and the outbox over it, wired as the app wires them:
    services take `.outbox`; `close()` stops both."""

    def __init__(self, store, destinations, **outbox_options) -> None:
        from bot.services.notifier import Notifier, NotifierSettings
        from bot.services.outbox import Outbox

        self.notifier = Notifier(destinations, settings=NotifierSettings(rate_per_s=0))
        self.outbox = Outbox(store, self.notifier, **outbox_options)

    @property
    def stats(self):
        return self.notifier.stats

    def add_destination(self, platform: str, destination) -> None:
        self.notifier.add_destination(platform, destination)

    async def run(self) -> None:
        await asyncio.gather(self.notifier.run(), self.outbox.run())

    async def close(self) -> None:
        await self.outbox.close()
        await self.notifier.close()
