"""Shared fixtures: a fresh store per test (WAL needs a real file), on SQLite unless
the module asks for both backends (`from tests.backends import backend`)."""

from __future__ import annotations

import pytest

from bot.storage.store import Store
from tests.backends import empty_schema, postgres_session_database


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(scope="session")
def postgres_database():
    yield from postgres_session_database()


@pytest.fixture
def database_location(backend, request, tmp_path):
    """Where this test's database lives: a SQLite file, or an emptied PostgreSQL database (its URL)."""
    if backend == "sqlite":
        return tmp_path / "liqbot.sqlite"
    url = request.getfixturevalue("postgres_database")
    empty_schema(url)
    return url


@pytest.fixture
async def store(database_location):
    store = await Store.open(database_location)
    try:
        yield store
    finally:
        await store.close()
