"""What every store beside the events `Store` (chats, alerts, digests, market
data) shares: the install's one `Database`."""

from __future__ import annotations

from typing import Protocol

from bot.storage.database import Database


class _HoldsDatabase(Protocol):
    db: Database


class SiblingStore:
    def __init__(self, storage: Database | _HoldsDatabase) -> None:
        """Over a `Database`, or over the `Store` of the same install (its `db`)."""
        self._db = storage if isinstance(storage, Database) else storage.db
