"""Append-only schema migrations, tracked with PRAGMA user_version.

Each migration is a file `migrations_sql/NNNN_name.sql`, applied in number
order. Never edit a migration that has shipped: add a new file.
"""

from __future__ import annotations

from importlib.resources import files


def _load() -> tuple[str, ...]:
    folder = files("bot.storage").joinpath("migrations_sql")
    scripts = sorted(
        (entry.name, entry.read_text(encoding="utf-8")) for entry in folder.iterdir() if entry.name.endswith(".sql")
    )
    numbers = [int(name[:4]) for name, _ in scripts]
    if numbers != list(range(1, len(scripts) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps, found {numbers}")
    return tuple(script for _, script in scripts)


MIGRATIONS: tuple[str, ...] = _load()
