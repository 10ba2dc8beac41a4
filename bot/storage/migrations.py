"""Append-only schema migrations, numbered per backend.

Each migration is a file `migrations_sql/<backend>/NNNN_name.sql`, applied in
number order; SQLite tracks the applied number in PRAGMA user_version,
PostgreSQL in the `schema_migrations` table. A migration of one backend has a
twin of the same number and name in the other (a test holds them in step).
Never edit a migration that has shipped: add a new file.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

BACKENDS = ("sqlite", "postgresql")


@cache
def migrations(backend: str) -> tuple[tuple[str, str], ...]:
    """(file name, script) of `backend`'s migrations, in order."""
    root = files("bot.storage").joinpath("migrations_sql")
    stray = sorted(entry.name for entry in root.iterdir() if entry.name.endswith(".sql"))
    if stray:
        raise RuntimeError(f"migrations live in migrations_sql/<backend>/, not beside them: {stray}")
    folder = root.joinpath(backend)
    scripts = sorted(
        (entry.name, entry.read_text(encoding="utf-8")) for entry in folder.iterdir() if entry.name.endswith(".sql")
    )
    numbers = [int(name[:4]) for name, _ in scripts]
    if numbers != list(range(1, len(scripts) + 1)):
        raise RuntimeError(f"{backend} migrations must be numbered 0001.. without gaps, found {numbers}")
    return tuple(scripts)


def newer_schema(found: int, known: int) -> RuntimeError:
    return RuntimeError(f"database schema version {found} is newer than this liqbot ({known}); upgrade liqbot")
