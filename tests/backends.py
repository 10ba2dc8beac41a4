"""The store contract runs on both backends: a test module that imports `backend`
from here runs each of its store tests on SQLite and on PostgreSQL.

PostgreSQL tests use the server named by LIQBOT_TEST_POSTGRES_URL (`.ci/run`
sets it): the session creates a database of its own there, each test starts
from an empty schema, and the database is dropped at the end. Without the
variable, or when the server does not answer, they skip with one line.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

POSTGRES_URL_ENV = "LIQBOT_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")
CONNECT_TIMEOUT_S = 3.0


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def postgres_session_database():
    """Create this run's database on the test server; yields its URL, then drops it."""
    server = os.environ.get(POSTGRES_URL_ENV)
    if not server:
        pytest.skip(f"PostgreSQL store tests: {POSTGRES_URL_ENV} is not set")
    name = f"liqbot_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_admin(server, f"CREATE DATABASE {name}"))
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        pytest.skip(f"PostgreSQL store tests: {urlsplit(server).hostname}:{urlsplit(server).port} unusable: {error}")
    try:
        yield with_database(server, name)
    finally:
        asyncio.run(_admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def empty_schema(url: str) -> None:
    """The run's database as new: what one test left behind is gone."""
    asyncio.run(_admin(url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"))


async def execute(location: str | Path, sql: str) -> None:
    """One statement straight into the database (a hand edit, a drifted row), bypassing liqbot."""
    if isinstance(location, Path):
        with sqlite3.connect(location) as db:
            db.execute(sql)
        db.close()
    else:
        await _admin(location, sql)


def cli_target(location: str | Path, folder: Path) -> list[str]:
    """The `liqbot` options that point a subcommand at `location`: --db for a SQLite
    file, a --config file with `[storage] url` for PostgreSQL (as an operator would)."""
    if isinstance(location, Path):
        return ["--db", str(location)]
    config = folder / "postgresql.toml"
    config.write_text(f'[storage]\nurl = "{location}"\n', encoding="utf-8")
    return ["--config", str(config)]
