"""The leader lock of replicas sharing one PostgreSQL: a session advisory lock
(`pg_try_advisory_lock` on one constant key) held on a connection of its own.

The connection's life is the lease. When the holder dies (kill -9, a crash, a
reboot) its socket closes and the server releases the lock at once. When the
holder is cut off instead (a network partition, a frozen VM), the server ends
the session after `lease_s` without a statement (`idle_session_timeout`,
PostgreSQL 14+), which releases the lock, while the holder's own checks fail
and it steps down (bot.services.leadership). TCP keepalives on both ends catch
a dead peer on servers older than 14, more slowly.

Nothing here decides anything: `try_acquire` and `still_held` answer, and any
error of the connection is raised for the caller to treat as "not the leader".
"""

from __future__ import annotations

import logging

import asyncpg

from bot.plumbing.bounds import Url
from bot.storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x6C69716C  # "liql": one advisory lock id per database for the leader
# A single bigint key shows in pg_locks as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
_HELD = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND classid = 0 AND objid = $1 AND objsubid = 1 AND granted)"
)


class LeaderLock:
    """One dedicated connection and the leader lock it may hold. `await LeaderLock.open(...)`."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    @classmethod
    async def open(cls, url: str, password: str | None, connect_timeout_s: float, lease_s: float) -> LeaderLock:
        """Connect (bounded by `connect_timeout_s`); DatabaseUnavailable (one line) when it cannot."""
        try:
            connection = await asyncpg.connect(
                url,
                password=password,
                timeout=connect_timeout_s,
                # The server notices a vanished holder by these too (libpq's names, per session).
                server_settings={
                    "application_name": "liqbot leader lock",
                    "tcp_keepalives_idle": str(max(1, int(lease_s / 2))),
                    "tcp_keepalives_interval": "1",
                    "tcp_keepalives_count": "3",
                },
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            raise DatabaseUnavailable(f"cannot open the leader lock connection to {Url.without_password(url)}: {reason}") from None
        try:
            # The lease: a holder silent this long (cut off) loses its session, so its lock.
            await connection.execute(f"SET idle_session_timeout = {int(lease_s * 1000)}")
        except asyncpg.UndefinedObjectError:  # PostgreSQL 13 or older
            log.warning("PostgreSQL before 14 has no idle_session_timeout: a cut-off leader is noticed by TCP keepalives only")
        except BaseException:
            connection.terminate()
            raise
        return cls(connection)

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this connection holds it now."""
        return await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY)

    async def still_held(self) -> bool:
        """Does this connection still hold the lock (the session is alive and its lock granted)?"""
        return await self._connection.fetchval(_HELD, LEADER_LOCK_KEY)

    async def close(self) -> None:
        """Release the lock (closing the session does) so a follower takes over without waiting."""
        try:
            await self._connection.close(timeout=2)
        except Exception:  # already cut: the server has released it, or will at the lease's end
            self._connection.terminate()
