"""What every store beside `Store` (alerts, digests) shares: its connections and
the one-statement read and write."""

from __future__ import annotations

from collections.abc import Sequence

from bot.storage.store import Store


class SiblingStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def _write(self, sql: str, args: Sequence = ()) -> int:
        """One statement under the Store's write lock; returns the rows it changed."""
        async with self._store.write_lock:
            cursor = await self._store.writer.execute(sql, args)
            return cursor.rowcount

    async def _read(self, sql: str, args: Sequence = ()) -> list:
        cursor = await self._store.reader.execute(sql, args)
        return list(await cursor.fetchall())
