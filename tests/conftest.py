"""Shared fixtures: a fresh on-disk store per test (WAL needs a real file)."""

from __future__ import annotations

import pytest

from bot.storage.store import Store


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(tmp_path / "liqbot.sqlite")
    try:
        yield store
    finally:
        await store.close()
