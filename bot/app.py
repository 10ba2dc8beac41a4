"""The composition root: the only module that wires every layer together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.adapters.console import run_console
from bot.adapters.discord import DiscordAdapter, DiscordLoginError
from bot.adapters.telegram import TelegramAdapter, TelegramTokenError
from bot.commands.dispatch import Dispatcher, Limits
from bot.config import Config, Secrets
from bot.core.models import DAY_MS
from bot.core.ratelimit import RateLimit
from bot.feeds.market import MarketPoller, make_client
from bot.services.live import LiveFeeds
from bot.services.queries import QueryService
from bot.services.supervisor import supervise
from bot.storage.market_store import MarketStore
from bot.storage.store import Store

log = logging.getLogger("liqbot")

MARKET_PRUNE_EVERY_S = 3600.0


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
    market_store: MarketStore
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    async def open(
        cls,
        config: Config,
        secrets: Secrets | None = None,
        db_path: str | Path | None = None,
        clock_ms: Callable[[], int] = system_clock_ms,
    ) -> App:
        return cls.build(config, secrets, await Store.open(db_path or config.storage.path), clock_ms)

    @classmethod
    def build(
        cls,
        config: Config,
        secrets: Secrets | None,
        store: Store,
        clock_ms: Callable[[], int] = system_clock_ms,
        live_feeds: LiveFeeds | None = None,
    ) -> App:
        queries = QueryService(store, live_feeds.live_states) if live_feeds else QueryService(store)
        bot = config.bot
        dispatcher = Dispatcher(
            queries,
            clock_ms,
            default_locale=bot.default_locale,
            limits=Limits(
                RateLimit(bot.user_burst, bot.user_per_minute), RateLimit(bot.chat_burst, bot.chat_per_minute)
            ),
        )
        return cls(config, secrets or Secrets(), store, queries, dispatcher, clock_ms, MarketStore(store))

    async def close(self) -> None:
        await self.store.close()

    async def mark_chat_gone(self, chat_key: str) -> None:
        await self.store.set_chat_active(chat_key, False, self.clock_ms())


async def _adapter_forever(adapter) -> None:
    """Start a chat adapter and keep it until cancelled."""
    await adapter.start()
    try:
        await asyncio.Event().wait()
    finally:
        await adapter.stop()


async def _prune_market_data(app: App) -> None:
    while True:
        await app.market_store.prune(app.clock_ms() - app.config.market.retention_days * DAY_MS)
        await asyncio.sleep(MARKET_PRUNE_EVERY_S)


async def run_bot(config: Config, secrets: Secrets, db_path: str | Path | None = None, console: bool | None = None) -> None:
    """`liqbot run`: feeds, market data, chat adapters and the console, supervised,
    until cancelled (SIGINT/SIGTERM). Pending writes are flushed on the way out."""
    store_path = db_path or config.storage.path
    store = await Store.open(store_path)
    http = make_client(config)
    feeds = LiveFeeds(config.feeds, store, http)
    app = App.build(config, secrets, store, live_feeds=feeds)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(supervise("feeds", feeds.run))
            if config.market.enabled:
                poller = MarketPoller(config, http, app.market_store.add_samples, now_ms=app.clock_ms)
                group.create_task(supervise("market data", poller.run))
                group.create_task(supervise("market data retention", lambda: _prune_market_data(app)))
            if config.telegram.enabled:
                if secrets.telegram_token:
                    telegram = TelegramAdapter(config.telegram, secrets.telegram_token, app.dispatcher, app.mark_chat_gone)
                    group.create_task(
                        supervise("telegram", lambda: _adapter_forever(telegram), permanent=(TelegramTokenError,))
                    )
                else:
                    log.error("telegram is enabled but LIQBOT_TELEGRAM_TOKEN is not set; telegram stays off")
            if config.discord.enabled:
                if secrets.discord_token:
                    discord = DiscordAdapter(config.discord, secrets.discord_token, app.dispatcher, app.mark_chat_gone)
                    group.create_task(
                        supervise("discord", lambda: _adapter_forever(discord), permanent=(DiscordLoginError,))
                    )
                else:
                    log.error("discord is enabled but LIQBOT_DISCORD_TOKEN is not set; discord stays off")
            if console if console is not None else sys.stdin.isatty():
                group.create_task(supervise("console", lambda: run_console(app.dispatcher)))
            log.info("liqbot running: %d feed streams, database %s", len(feeds.runners), store_path)
    finally:
        with contextlib.suppress(Exception):
            await http.aclose()
        await app.close()
