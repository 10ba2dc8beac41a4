"""Leader election on a real PostgreSQL (the advisory lock on a dedicated
connection): one leader at a time, a clean stop hands over within a heartbeat,
a cut connection makes the leader step down, and the lease is the server's
`idle_session_timeout`. On SQLite the one runner leads from the start."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from bot.services.leadership import Election, Leadership
from bot.storage.database import DatabaseUnavailable
from bot.storage.leader_lock import LEADER_LOCK_KEY, LeaderLock
from tests.support import until

HEARTBEAT_S = 1.0  # each check must answer within it: short, but not so short that load flaps it (at 0.5 s a clean-stop test failed once beside the other test worker)
LEASE_S = 3.0


class Replica:
    """One replica's election, its term recorded as it starts and stops."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.leadership = Leadership("follower")
        self.terms = 0
        self.leading = False
        self.election = Election(
            self.leadership, self._term, lambda: LeaderLock.open(url, None, 3.0, LEASE_S), heartbeat_s=HEARTBEAT_S
        )
        self.task: asyncio.Task | None = None

    async def _term(self) -> None:
        self.terms += 1
        self.leading = True
        try:
            await asyncio.Event().wait()
        finally:
            self.leading = False

    def start(self) -> Replica:
        self.task = asyncio.create_task(self.election.run())
        return self

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
def pg_url(request):
    from tests.backends import empty_schema

    url = request.getfixturevalue("postgres_database")
    empty_schema(url)
    return url


async def lock_holders(url: str) -> list[int]:
    connection = await asyncpg.connect(url, timeout=3)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            LEADER_LOCK_KEY,
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


async def test_one_leader_and_a_clean_stop_hands_over_within_a_heartbeat(pg_url):
    replicas = [Replica(pg_url, name).start() for name in ("a", "b", "c")]
    try:
        await until(lambda: sum(r.leading for r in replicas) == 1, timeout=5)
        await asyncio.sleep(HEARTBEAT_S * 5)  # several rounds of the others trying
        (leader,) = [r for r in replicas if r.leading]
        assert [r.leadership.role for r in replicas].count("leader") == 1
        assert len(await lock_holders(pg_url)) == 1

        await leader.stop()  # its term ends first, then its connection closes: the lock is free
        assert not leader.leading and leader.leadership.role == "follower" and leader.leadership.changes == 2
        others = [r for r in replicas if r is not leader]
        await until(lambda: sum(r.leading for r in others) == 1, timeout=HEARTBEAT_S * 3 + 2)
    finally:
        for replica in replicas:
            await replica.stop()
    assert await lock_holders(pg_url) == []


async def test_a_leader_whose_connection_is_cut_steps_down_and_someone_leads_again(pg_url):
    replicas = [Replica(pg_url, name).start() for name in ("a", "b")]
    try:
        await until(lambda: sum(r.leading for r in replicas) == 1, timeout=5)
        (leader,) = [r for r in replicas if r.leading]
        (holder,) = await lock_holders(pg_url)
        connection = await asyncpg.connect(pg_url, timeout=3)
        try:
            await connection.execute("SELECT pg_terminate_backend($1)", holder)  # the session is gone
        finally:
            await connection.close()
        await until(lambda: leader.terms == 1 and not leader.leading or leader.terms == 2, timeout=HEARTBEAT_S * 3 + 2)
        assert leader.leadership.changes >= 2  # leader, then follower (and perhaps leader again)
        await until(lambda: sum(r.leading for r in replicas) == 1, timeout=HEARTBEAT_S * 3 + 2)
        assert len(await lock_holders(pg_url)) == 1
    finally:
        for replica in replicas:
            await replica.stop()


async def test_the_server_ends_a_silent_lock_session_after_the_lease(pg_url):
    """A leader cut off from the server (frozen, partitioned) sends nothing: the server
    ends its session after `lease_s` (idle_session_timeout), which releases the lock."""
    lock = await LeaderLock.open(pg_url, None, 3.0, LEASE_S)
    try:
        assert await lock.try_acquire() and await lock.still_held()
        assert len(await lock_holders(pg_url)) == 1
        await asyncio.sleep(LEASE_S + 1)  # real time: the server's own timer
        assert await lock_holders(pg_url) == []
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await lock.still_held()
    finally:
        with contextlib.suppress(Exception):
            await lock.close()


async def test_an_unreachable_server_is_one_line_and_no_leader():
    unreachable = "postgresql://postgres@127.0.0.1:9/nothing"
    with pytest.raises(DatabaseUnavailable, match="^cannot open the leader lock connection to postgresql://postgres@127.0.0.1:9/nothing: "):
        await LeaderLock.open(unreachable, None, 1.0, LEASE_S)
    replica = Replica(unreachable, "lonely").start()
    try:
        await asyncio.sleep(HEARTBEAT_S * 3)
        assert replica.terms == 0 and replica.leadership.role == "follower" and not replica.task.done()
    finally:
        await replica.stop()


async def test_on_sqlite_the_one_runner_leads_from_the_start():
    leadership, started = Leadership(), asyncio.Event()

    async def term() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(Election(leadership, term, None).run())
    try:
        await asyncio.wait_for(started.wait(), 5)
        assert leadership.role == "leader" and leadership.changes == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
