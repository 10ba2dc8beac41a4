"""The composition root: the only module that wires every layer together."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.commands.dispatch import Dispatcher, Limits
from bot.config import Config, Secrets
from bot.core.ratelimit import RateLimit
from bot.services.queries import QueryService
from bot.storage.store import Store


def system_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class App:
    config: Config
    secrets: Secrets
    store: Store
    queries: QueryService
    dispatcher: Dispatcher
    clock_ms: Callable[[], int]

    @classmethod
    async def open(
        cls,
        config: Config,
        secrets: Secrets | None = None,
        db_path: str | Path | None = None,
        clock_ms: Callable[[], int] = system_clock_ms,
    ) -> App:
        store = await Store.open(db_path or config.storage.path)
        queries = QueryService(store)
        bot = config.bot
        dispatcher = Dispatcher(
            queries,
            clock_ms,
            default_locale=bot.default_locale,
            limits=Limits(RateLimit(bot.user_burst, bot.user_per_minute), RateLimit(bot.chat_burst, bot.chat_per_minute)),
        )
        return cls(config, secrets or Secrets(), store, queries, dispatcher, clock_ms)

    async def close(self) -> None:
        await self.store.close()
