"""The composition root: the only module that wires every layer together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.adapters.console import run_console
from bot.commands.alerts import alert_handlers
from bot.commands.dispatch import Dispatcher, Limits
from bot.commands.clock import clock_handlers
from bot.commands.digest import digest_handlers
from bot.commands.levels import levels_handlers
from bot.commands.feed import feed_handlers
from bot.commands.report import report_handlers
from bot.commands.risk import risk_handlers
from bot.config import Config, Secrets
from bot.core.alert_rules import Caps
from bot.core.alerts import EngineSettings
from bot.core.bursts import BurstSettings
from bot.plumbing.clock import wall_clock_ms
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Window
from bot.core.ratelimit import RateLimit
from bot.core.status import RuntimeStatus, ServiceStatus
from bot.feeds.margin_tiers import MarginTierReader
from bot.feeds.market import MarketPoller, make_client
from bot.feeds.sources import enabled_streams
from bot.scheduler import DigestScheduler
from bot.services.alerts import AlertService
from bot.services.changes import FollowChanges
from bot.services.charts import ChartService
from bot.services.digests import DigestService
from bot.services.levels import SETTLE_MS, LevelsService, LevelsSettings
from bot.services.health import Health, live_health
from bot.services.leadership import Election, Leadership
from bot.services.feed import FeedService
from bot.services.live import LiveFeeds
from bot.services.metrics import Metrics
from bot.services.notifier import ConsoleDestination, Notifier, NotifierSettings
from bot.services.outbox import Outbox
from bot.services.queries import LiveStates, QueryService
from bot.services.reports import ReportService
from bot.services.risk import RiskService
from bot.services.supervisor import TaskState, supervise
from bot.storage.backends import is_postgres
from bot.storage.leader_lock import LeaderLock
from bot.storage.levels_store import LevelsStore
from bot.storage.maintenance import RetentionPolicy, apply_retention
from bot.storage.levels_inputs_store import KlineStore, MarginRateStore
from bot.storage.market_store import MarketStore
from bot.storage.store import Store

log = logging.getLogger("liqbot")




@dataclass
class App:
    config: Config
    secrets: Secrets
    store: Store
    clock_ms: Callable[[], int]
    queries: QueryService
    market_store: MarketStore
    notifier: Notifier
    outbox: Outbox
    alerts: AlertService
    digests: DigestService
    feed: FeedService
    dispatcher: Dispatcher
    leadership: Leadership
    metrics: Metrics
    levels: LevelsService | None = None

    @classmethod
    async def open(
        cls,
        config: Config,
        secrets: Secrets | None = None,
        db_path: str | Path | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        live_states: LiveStates | None = None,
        runtime: Callable[[], RuntimeStatus] | None = None,
    ) -> App:
        storage = config.storage
        store = await Store.open(
            storage.location(db_path),
            password=(secrets or Secrets()).db_password,
            connect_timeout_s=storage.connect_timeout_s,
            pool_size=storage.pool_size,
        )
        bot = config.bot
        # On SQLite the one runner is the leader (bot.storage.runlock); replicas of a
        # PostgreSQL start as followers and elect one (bot.services.leadership).
        leadership = Leadership("follower" if store.db.backend == "postgresql" else "leader")
        metrics = Metrics(clock_ms, leadership)
        notifier = Notifier(
            {"console": ConsoleDestination()},
            settings=NotifierSettings(rate_per_s=config.alerts.send_rate_per_s, retries=config.alerts.send_retries),
        )
        # Alerts and digests are sent through the outbox (exactly once, across restarts and replicas).
        outbox = Outbox(store, notifier, now_ms=clock_ms, on_done=metrics.send_done)
        metrics.watch_outbox(outbox.backlog)
        queries = QueryService(store, live_states, runtime=runtime) if live_states else QueryService(store, runtime=runtime)
        market_store = MarketStore(store)
        risk = RiskService(market_store, queries, config.risk)
        levels = None
        if config.levels.enabled:
            levels = LevelsService(
                store,
                market_store,
                LevelsStore(store),
                config.market.venue_list,
                LevelsSettings(
                    model=config.levels.model(),
                    bar_ms=config.levels.bar_minutes * MINUTE_MS,
                    warmup_days=config.levels.warmup_days,
                    grade_tolerance=config.levels.grade_tolerance_pct / 100,
                    margin_venues=config.levels.margin_venues,
                ),
                folds=lambda: leadership.is_leader,
            )
        alerts = AlertService(
            store,
            outbox,
            settings=EngineSettings(
                cooldown_ms=int(config.alerts.cooldown_s * 1000), group_ms=int(config.alerts.group_s * 1000)
            ),
            caps=Caps(config.alerts.max_per_user, config.alerts.max_per_chat),
            default_locale=bot.default_locale,
            now_ms=clock_ms,
            risk_level=risk.risk_level,
            levels_of=levels.price_and_book if levels is not None else None,
        )
        channel_feed = config.channel_feed
        feed = FeedService(
            store,
            metrics.counted(notifier, "feed"),
            settings=BurstSettings(
                int(channel_feed.group_s * 1000), channel_feed.listed_per_minute, channel_feed.max_listed,
                int(channel_feed.capped_group_s * 1000),
            ),
            default_locale=bot.default_locale,
            now_ms=clock_ms,
        )
        reports = ReportService(store, queries, market_store, config.risk)
        charts = ChartService(
            store, queries, market_store, theme=config.charts.theme, cache_entries=config.charts.cache_entries,
            levels=levels,
        )
        digests = DigestService(
            store,
            outbox,
            now_ms=clock_ms,
            grace_ms=int(config.digest.grace_hours * HOUR_MS),
            history_days=config.digest.history_days,
            risk_note=risk.note,
            chart_of=lambda end_ms, tz, locale: charts.top_image(DAY_MS, end_ms, tz, locale),
            write_up_of=lambda end_ms, tz: reports.write_up(None, Window(end_ms - DAY_MS, end_ms), end_ms, tz),
            levels_note=levels.note if levels is not None else None,
        )
        dispatcher = Dispatcher(
            queries,
            clock_ms,
            default_locale=bot.default_locale,
            limits=Limits(
                RateLimit(bot.user_burst, bot.user_per_minute), RateLimit(bot.chat_burst, bot.chat_per_minute)
            ),
            features={
                **alert_handlers(alerts if config.alerts.enabled else None),
                **digest_handlers(digests if config.digest.enabled else None),
                **feed_handlers(feed if channel_feed.enabled else None),
                **risk_handlers(risk, charts),
                **report_handlers(reports),
                **levels_handlers(levels, charts),
                **clock_handlers(queries),
            },
            risk=risk,  # /liq of one asset carries the one-line risk note
            on_answered=metrics.command_answered,
        )
        metrics.watch_dropped_commands(lambda: dispatcher.dropped_commands)
        return cls(
            config, secrets or Secrets(), store, clock_ms, queries, market_store, notifier, outbox, alerts, digests, feed,
            dispatcher, leadership, metrics, levels,
        )

    async def close(self) -> None:
        await self.outbox.close()  # first: sends the notifier abandons keep their claims, not a "failed"
        await self.notifier.close()
        await self.store.close()

    async def mark_chat_gone(self, chat_key: str) -> None:
        await self.store.chats.set_active(chat_key, False, self.clock_ms())


async def _adapter_forever(adapter, state: TaskState) -> None:
    """Start a chat adapter and keep it until cancelled."""
    await adapter.start()
    state.state = "running"
    try:
        await asyncio.Event().wait()
    finally:
        await adapter.stop()


async def _retention_forever(app: App) -> None:
    policy = RetentionPolicy(
        events_days=app.config.retention.events_days,
        minute_rollups_days=app.config.retention.minute_rollups_days,
        market_days=app.config.market.retention_days,
    )
    while True:
        pruned = await apply_retention(app.store, policy, app.clock_ms())
        log.info("%s", pruned.one_line())
        await asyncio.sleep(app.config.retention.every_s)


async def _levels_forever(app: App, levels: LevelsService) -> None:
    """Fold each closed bar into every polled asset's levels once it has settled
    (its last kline and poll stored: `SETTLE_MS` after its close)."""
    bar_ms = levels.settings.bar_ms
    while True:
        await levels.update_all(app.config.market.asset_list, app.clock_ms())
        until_settled = (app.clock_ms() - SETTLE_MS) % bar_ms
        await asyncio.sleep((bar_ms - until_settled) / 1000 + 1)


def _chat_adapters(app: App, secrets: Secrets) -> list[tuple[str, object, tuple[type[BaseException], ...]]]:
    """(platform, adapter, errors that retrying cannot fix) for each enabled platform with a token."""
    # Imported here: the platform libraries cost ~0.4 s to load, and the console needs neither.
    from bot.adapters.discord import DiscordAdapter, DiscordLoginError
    from bot.adapters.telegram import TelegramAdapter, TelegramTokenError

    config, adapters = app.config, []
    for platform, enabled, token, make, fatal, extra in (
        (
            "telegram", config.telegram.enabled, secrets.telegram_token, TelegramAdapter, TelegramTokenError,
            {"webhook_secret": secrets.telegram_webhook_secret},
        ),
        ("discord", config.discord.enabled, secrets.discord_token, DiscordAdapter, DiscordLoginError, {}),
    ):
        if not enabled:
            if token:  # probably meant to be on: say why nothing answers there
                log.warning("LIQBOT_%s_TOKEN is set but [%s] enabled = false; %s stays off", platform.upper(), platform, platform)
            continue
        if not token:
            log.error("%s is enabled but LIQBOT_%s_TOKEN is not set; %s stays off", platform, platform.upper(), platform)
            continue
        adapter = make(getattr(config, platform), token, app.dispatcher, app.mark_chat_gone, **extra)
        adapters.append((platform, adapter, (fatal,)))
    return adapters


@dataclass
class _Running:
    """What `/status` shows of this process; filled in as `run_bot` starts things."""

    platforms: dict[str, TaskState] = field(default_factory=dict)
    poller: MarketPoller | None = None
    feeds: LiveFeeds | None = None  # the feeds of this leader's term; None on a follower
    leader_streams: list[tuple[str, str]] = field(default_factory=list)  # what a follower's leader records

    def live_states(self):
        """QueryService's live stream states: this term's feeds; on a follower, the
        streams the leader records (its /status shows them as the spans tell)."""
        if self.feeds is not None:
            return self.feeds.live_states()
        return {key: ("leader", None) for key in self.leader_streams}

    def status(self) -> RuntimeStatus:
        market = self.poller.stats.items() if self.poller else ()
        return RuntimeStatus(
            platforms=tuple(ServiceStatus(name, s.state, s.last_error) for name, s in self.platforms.items()),
            market=tuple(
                ServiceStatus(venue, _poll_state(stats), stats.last_error, stats.last_success_ms, stats.backfilled)
                for venue, stats in market
            ),
            stream_errors={
                runner.key: runner.status.last_error
                for runner in (self.feeds.runners if self.feeds else ())
                if runner.status.last_error
            },
        )


def _ops_server(app: App, running: _Running, store_path: str | Path):
    """/healthz and /metrics of this process ([ops])."""
    # Imported here: aiohttp costs ~0.15 s to load, and the console does not serve HTTP.
    from bot.services.ops_http import OpsServer

    # The SQLite file to watch (the store has created it by now); a database URL has none.
    db_file = Path(store_path) if Path(store_path).is_file() else None
    streams = enabled_streams(app.config.feeds)
    stale_after_ms = int(app.config.ops.stale_after_s * 1000)

    async def health() -> Health:
        return await live_health(
            app.store, db_file, app.leadership.is_leader, streams, app.clock_ms(), stale_after_ms
        )

    ops = app.config.ops
    return OpsServer(ops.http_host, ops.http_port, health, app.leadership, app.metrics)


def _poll_state(stats) -> str:
    if stats.last_success_ms is not None:
        return "running"
    return "retrying" if stats.last_error else "starting"


def _start_line(config: Config, platforms: list[str], store_path) -> str:
    """What this process serves, in one line: chat platforms, venues (their streams), market polling,
    and on PostgreSQL that the leader runs the feeds."""
    venues: dict[str, list[str]] = {}
    for venue, stream in enabled_streams(config.feeds):
        venues.setdefault(venue, []).append(stream)
    market = config.market
    return "; ".join((
        f"chat: {', '.join(platforms) or 'none'}",
        "venues: " + (", ".join(f"{venue} ({' '.join(names)})" for venue, names in venues.items()) or "none"),
        f"market polling: {' '.join(market.venue_list)} for {' '.join(market.asset_list)}" if market.enabled
        else "market polling: off",
        f"database {store_path}" + (" (the elected leader runs feeds, polling, alerts and digests)"
                                    if is_postgres(store_path) else ""),
    ))


async def _leader_term(
    app: App, running: _Running, http, scheduler: DigestScheduler, polling: list[tuple[str, object, tuple]]
) -> None:
    """What only the leader runs (bot.services.leadership), until cancelled: the
    feeds and ingest (fresh each term: its streams open new recorded spans),
    alerts, the channel feed, retention, market polling, levels and margin tiers, Telegram
    long polling (`polling`) and the digest scheduler, and following the settings
    other replicas change (bot.services.changes)."""
    config = app.config
    extra_sinks = [app.alerts] if config.alerts.enabled else []
    if config.channel_feed.enabled:
        extra_sinks.append(app.feed)
    feeds = running.feeds = LiveFeeds(config.feeds, app.store, http, extra_sinks=extra_sinks)
    app.metrics.watch_feeds(feeds)
    # Settings changed by commands on other replicas, reloaded as announced (listening
    # from before the services load them, so no change falls between).
    changes = FollowChanges({
        **({"alerts": app.alerts.follow_rules} if config.alerts.enabled else {}),
        **({"feeds": app.feed.follow_subscriptions} if config.channel_feed.enabled else {}),
        **({"digests": scheduler.follow_schedules} if config.digest.enabled else {}),
    })
    try:
        async with app.store.db.listen(changes.notify), asyncio.TaskGroup() as group:
            group.create_task(supervise("changes", changes.run))
            group.create_task(supervise("outbox", app.outbox.run))
            if config.alerts.enabled:
                await app.alerts.start()
                group.create_task(supervise("alerts", app.alerts.run))
            if config.channel_feed.enabled:
                await app.feed.start()
                group.create_task(supervise("channel feed", app.feed.run))
            group.create_task(supervise("feeds", feeds.run))
            group.create_task(supervise("retention", lambda: _retention_forever(app)))
            if config.market.enabled:
                poller = running.poller = MarketPoller(
                    config, http, app.market_store.add_samples, now_ms=app.clock_ms, history=app.market_store,
                    klines=KlineStore(app.store),
                )
                group.create_task(supervise("market data", poller.run))
                if app.levels is not None:
                    group.create_task(supervise("levels", lambda: _levels_forever(app, app.levels)))
                    tiers = MarginTierReader(config, http, MarginRateStore(app.store).set_rates, now_ms=app.clock_ms)
                    group.create_task(supervise("margin tiers", tiers.run))
            for platform, adapter, fatal in polling:
                state = running.platforms[platform] = TaskState()
                group.create_task(
                    supervise(platform, lambda a=adapter, s=state: _adapter_forever(a, s), permanent=fatal, state=state)
                )
            if config.digest.enabled:
                await scheduler.start()
    finally:
        if config.digest.enabled:
            scheduler.shutdown()
        for platform, _, _ in polling:
            running.platforms[platform] = TaskState("stopped", "long polling runs on the leader")
        running.feeds = running.poller = None


async def run_bot(
    config: Config, secrets: Secrets, db_path: str | Path | None = None, console: bool | None = None
) -> None:
    """`liqbot run`: chat adapters, the console and the monitoring endpoint on
    every replica; feeds, market data, alerts, digests and the rest on the
    leader (`_leader_term`), each supervised, until cancelled (SIGINT/SIGTERM).
    Pending writes are flushed on the way out."""
    store_path = config.storage.location(db_path)
    running = _Running(leader_streams=enabled_streams(config.feeds) if is_postgres(store_path) else [])
    app = await App.open(config, secrets, store_path, live_states=running.live_states, runtime=running.status)
    http = make_client(config)
    scheduler = DigestScheduler(app.digests, now_ms=app.clock_ms)
    try:
        # Telegram long polling must have one poller (a second gets 409 Conflict): the leader's.
        everywhere, polling = [], []
        for platform, adapter, fatal in _chat_adapters(app, secrets):
            app.notifier.add_destination(platform, adapter)
            leader_only = platform == "telegram" and config.telegram.mode == "polling"
            (polling if leader_only else everywhere).append((platform, adapter, fatal))
        election = Election(
            app.leadership,
            lambda: _leader_term(app, running, http, scheduler, polling),
            _lock_opener(config, secrets, store_path),
            heartbeat_s=config.replicas.heartbeat_s,
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(supervise("notifier", app.notifier.run))
            if config.ops.http_port:
                group.create_task(supervise("ops http", _ops_server(app, running, store_path).run))
            group.create_task(election.run(), name="leadership")
            for platform, adapter, fatal in everywhere:
                state = running.platforms[platform] = TaskState()
                group.create_task(
                    supervise(platform, lambda a=adapter, s=state: _adapter_forever(a, s), permanent=fatal, state=state)
                )
            if console if console is not None else sys.stdin.isatty():
                group.create_task(supervise("console", lambda: run_console(app.dispatcher)))
                running.platforms["console"] = TaskState("running")
            platforms = [platform for platform, _, _ in everywhere + polling] + (
                ["console"] if "console" in running.platforms else []
            )
            log.info("liqbot running: %s", _start_line(config, platforms, store_path))
    finally:
        with contextlib.suppress(Exception):
            await http.aclose()
        await app.close()


def _lock_opener(config: Config, secrets: Secrets, location: str | Path):
    """How this replica opens the leader lock; None on SQLite (the one runner leads)."""
    if not is_postgres(location):
        return None
    storage = config.storage
    return lambda: LeaderLock.open(
        str(location), secrets.db_password, storage.connect_timeout_s, config.replicas.lease_s
    )
