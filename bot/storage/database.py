"""One `Database`: the connections, the write path, transactions and migrations
of a backend, under which the sibling stores (events + rollups, chats, alerts,
digests, market data) keep their SQL.

Stores write portable SQL with `?` placeholders; each backend runs it on its
driver. Reads never wait for a write: both backends read on connections of
their own. Writes of one process go one at a time (a write lock), so a
check-then-write inside `transaction()` is never interleaved with another of
this process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext

# What `Database.changed` announces: settings that a replica's leader keeps in memory.
TOPICS = ("alerts", "feeds", "digests")


class DatabaseUnavailable(Exception):
    """The database cannot be opened (unreachable, refused, misnamed): one line for a person."""


class Transaction(ABC):
    """Statements inside one transaction (see `Database.transaction`)."""

    @abstractmethod
    async def fetch(self, sql: str, args: Sequence = ()) -> list[tuple]: ...

    async def fetchone(self, sql: str, args: Sequence = ()) -> tuple | None:
        rows = await self.fetch(sql, args)
        return rows[0] if rows else None

    @abstractmethod
    async def execute(self, sql: str, args: Sequence = ()) -> int:
        """Run one statement; returns the rows it changed."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence]) -> None: ...


class Database(ABC):
    """A backend's connections. Open with `open_database` (bot.storage.backends)."""

    backend: str  # "sqlite" or "postgresql"
    integrity_ok: str  # what `liqbot doctor` says when `integrity_problems` finds nothing

    @abstractmethod
    async def fetch(self, sql: str, args: Sequence = ()) -> list[tuple]:
        """Rows of one read."""

    async def fetchone(self, sql: str, args: Sequence = ()) -> tuple | None:
        rows = await self.fetch(sql, args)
        return rows[0] if rows else None

    async def fetch_compact(self, sql: str, args: Sequence, columns: int) -> list[tuple]:
        """`fetch` for a read of `columns` columns holding integers, text or NULL
        (never REAL), in no particular order (sort what needs an order). A backend
        may pass the rows packed (SQLite does: see its `fetch_compact`)."""
        return await self.fetch(sql, args)

    async def execute(self, sql: str, args: Sequence = ()) -> int:
        """One write statement in a transaction of its own; returns the rows it changed."""
        async with self.transaction() as tx:
            return await tx.execute(sql, args)

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """`async with db.transaction() as tx:` commits at the end, rolls back on an exception."""

    @abstractmethod
    def batches(self, sql: str, batch_rows: int) -> AsyncIterator[list[tuple]]:
        """The rows of one read, `batch_rows` at a time, all from one snapshot
        (copying a table of millions without holding it in memory)."""

    @abstractmethod
    async def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """Append `rows` to `table` in one transaction, by the driver's fast path."""

    @abstractmethod
    async def insert_events(self, rows: list[tuple]) -> int:
        """The bulk write path: store event rows (`core.models.row_of`) once each, a
        duplicate of a stored row or of another in the batch skipped, and add the
        new ones to the minute and hour rollups, in one transaction. Returns how
        many were new."""

    async def changed(self, topic: str) -> None:
        """Tell the other processes of this database that `topic` (one of TOPICS)
        changed in the store, so a leader that keeps it in memory reloads it. Nothing
        on SQLite: its one runner made the change itself."""

    def listen(self, on_change: Callable[[str], None]) -> AbstractAsyncContextManager[None]:
        """Inside the block, `on_change(topic)` for every `changed(topic)` of any
        process (the leader listens; bot.services.changes). Nothing on SQLite."""
        return nullcontext()

    @abstractmethod
    async def integrity_problems(self) -> list[str]:
        """What the backend's own integrity check reports (empty: fine)."""

    @abstractmethod
    async def close(self) -> None: ...
