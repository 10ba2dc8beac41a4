"""Opening the install's `Database`: the SQLite file of `[storage] path` (the
default), or the PostgreSQL server of `[storage] url`."""

from __future__ import annotations

from pathlib import Path

from bot.storage.database import Database
from bot.storage.postgres_db import PostgresDatabase
from bot.storage.sqlite_db import SqliteDatabase

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


async def open_database(
    location: str | Path, password: str | None = None, connect_timeout_s: float = 5.0, pool_size: int = 4
) -> Database:
    """The database at `location`: a postgresql:// URL (with its password apart), else a SQLite file path."""
    if is_postgres(location):
        return await PostgresDatabase.open(str(location), password, connect_timeout_s, pool_size)
    return await SqliteDatabase.open(location)
