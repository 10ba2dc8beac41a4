"""Opening the install's `Database`: the SQLite file of `[storage] path`."""

from __future__ import annotations

from pathlib import Path

from bot.storage.database import Database
from bot.storage.sqlite_db import SqliteDatabase


async def open_database(location: str | Path) -> Database:
    """The database at `location`: a SQLite file path."""
    return await SqliteDatabase.open(location)
