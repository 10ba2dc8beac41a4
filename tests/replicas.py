"""Real `liqbot run` replicas for the replica-set tests (tests/test_failover.py): each a
subprocess with its own ops port, its log kept; and a TCP relay to PostgreSQL that can
cut them off from the database without closing a connection (a network partition)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from bot.feeds.venues import BY_NAME

WAIT_S = 30.0  # bound of each start-up wait on a loaded 2-core machine


@dataclass
class Replica:
    name: str
    ops_port: int
    hook_port: int
    process: asyncio.subprocess.Process | None = None
    log: list[str] = field(default_factory=list)
    reader: asyncio.Task | None = None

    async def start(self, config_path, env) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config_path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self.process.stderr.readline():
            self.log.append(line.decode(errors="replace"))

    async def running(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while not any("liqbot running" in line for line in self.log):
            assert self.process.returncode is None, f"{self.name} ended:\n{''.join(self.log)}"
            assert time.monotonic() < deadline, f"{self.name} did not start:\n{''.join(self.log)}"
            await asyncio.sleep(0.1)

    async def role(self, http: httpx.AsyncClient) -> str | None:
        try:
            response = await http.get(f"http://127.0.0.1:{self.ops_port}/healthz", timeout=2)
        except httpx.HTTPError:
            return None
        return response.json()["role"]

    async def metrics(self, http: httpx.AsyncClient) -> dict[str, float]:
        response = await http.get(f"http://127.0.0.1:{self.ops_port}/metrics", timeout=5)
        return {
            name: float(value)
            for name, _, value in (line.partition(" ") for line in response.text.splitlines())
            if name and not name.startswith("#")
        }


async def stop_replicas(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.process is not None and replica.process.returncode is None:
            replica.process.send_signal(signal.SIGTERM)
    for replica in replicas:
        if replica.process is None:
            continue
        try:
            await asyncio.wait_for(replica.process.wait(), 20)
        except TimeoutError:
            replica.process.kill()
            await replica.process.wait()
        if replica.reader is not None:
            await asyncio.wait_for(replica.reader, 5)
        # Shown by pytest only when the test failed: what each replica logged.
        print(f"--- {replica.name} (exit {replica.process.returncode}) ---\n{''.join(replica.log)}")


def role_is(replica: Replica, http: httpx.AsyncClient, role: str):
    async def check() -> bool:
        return await replica.role(http) == role

    return check


async def until(predicate, what: str, timeout: float) -> float:
    """Poll an async predicate (bounded); the seconds it took."""
    started = time.monotonic()
    while not await predicate():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:g} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


class Partition:
    """A TCP relay to PostgreSQL that `cut()` stops passing bytes through in both
    directions while every connection stays open: a network partition."""

    def __init__(self, url: str) -> None:
        self._target = urlsplit(url)
        self._passing = asyncio.Event()
        self._passing.set()
        self._relays: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Partition:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = urlunsplit(self._target._replace(netloc=f"{self._target.username}@127.0.0.1:{port}"))
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        for relay in self._relays:
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    def cut(self) -> None:
        self._passing.clear()

    def heal(self) -> None:
        self._passing.set()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        relay = asyncio.create_task(self._relay(reader, writer))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)

    async def _relay(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._target.hostname, self._target.port)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                end.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await self._passing.wait()
            writer.write(data)
            await writer.drain()
        writer.close()


def quiet_config(pg_url: str, ops_port: int) -> str:
    """No venue, no chat platform: the election and /healthz alone, at the default heartbeat and lease."""
    return "\n".join([
        f'[storage]\nurl = "{pg_url}"',
        *(f"[feeds.{venue}]\nenabled = false" for venue in BY_NAME),
        "[market]\nenabled = false",
        f"[ops]\nhttp_port = {ops_port}",
    ]) + "\n"
