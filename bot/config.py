"""Configuration: TOML in, frozen dataclasses out, with clear errors.

Every key has a default, so no file is needed. Secrets (bot tokens) are never
read from the file: only from environment variables (see `Secrets`).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, make_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from bot.core.levels import LevelSettings, LeverageTier
from bot.core.risk import RiskThresholds
from bot.feeds.settings import BackfillConfig, MarketDataConfig, RunnerTuning
from bot.feeds.venues import KLINES, MARGINS
from bot.feeds.venues import SETTINGS as VENUE_SETTINGS

MARGIN_VENUES = tuple(MARGINS)
KLINE_MINUTES = max(spec.interval_ms for spec in KLINES.values()) // 60_000  # the venues' klines: 5 minutes
from bot.plumbing.bounds import HTTP_URL, POSTGRES_URL, SECONDS_A_DAY, WS_URL, Between, ConfigError, NonEmpty, Url


# Every numeric key carries its range (`Between`), checked when a file is loaded;
# string keys that must not be empty, and URLs, say so the same way.
# The feeds' own sections ([feeds.runner], [market]) are defined once, in
# `bot.feeds.settings`, where the code that reads them lives.


@dataclass(frozen=True)
class StorageConfig:
    path: Annotated[str, NonEmpty()] = "data/liqbot.sqlite"  # relative paths are relative to the working directory
    # postgresql://user@host:port/database: PostgreSQL instead of the SQLite file (password: LIQBOT_DB_PASSWORD)
    url: Annotated[str, POSTGRES_URL] = ""
    connect_timeout_s: Annotated[float, Between(0.5, 60)] = 5.0  # each PostgreSQL connection attempt
    pool_size: Annotated[int, Between(2, 64)] = 4  # PostgreSQL connections per process

    def location(self, db_path: str | Path | None = None) -> str | Path:
        """The database to open: `db_path` (--db, a SQLite file) when given, else `url`, else `path`."""
        return db_path or self.url or self.path


@dataclass(frozen=True)
class RetentionConfig:
    """[retention]: how long raw detail is kept (hour rollups and spans are kept forever)."""

    events_days: Annotated[float, Between(1, 3650)] = 90.0  # raw liquidations: /big and the exact edges of windows
    minute_rollups_days: Annotated[float, Between(1, 3650)] = 90.0  # minute totals: history ranks of short windows
    every_s: Annotated[float, Between(60, SECONDS_A_DAY)] = 3600.0  # seconds between two retention passes


@dataclass(frozen=True)
class BotConfig:
    default_locale: Literal["en", "zh"] = "en"  # until a chat picks its own with /lang
    user_burst: Annotated[int, Between(1, 1000)] = 5  # commands one user may send at once
    user_per_minute: Annotated[float, Between(0.1, 10_000)] = 10.0  # and sustained per minute
    chat_burst: Annotated[int, Between(1, 10_000)] = 20
    chat_per_minute: Annotated[float, Between(0.1, 100_000)] = 30.0


# [feeds.<venue>] for every venue of the registry (enabled, websocket and REST
# URLs, as its module declares them), then [feeds.runner] and [feeds.backfill].
FeedsConfig = make_dataclass(
    "FeedsConfig",
    [(venue, settings, field(default_factory=settings)) for venue, settings in VENUE_SETTINGS.items()]
    + [("runner", RunnerTuning, field(default_factory=RunnerTuning)),
       ("backfill", BackfillConfig, field(default_factory=BackfillConfig))],
    frozen=True,
    namespace={"__module__": __name__},
)


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool = False  # also needs LIQBOT_TELEGRAM_TOKEN in the environment
    base_url: Annotated[str, HTTP_URL] = "https://api.telegram.org/bot"
    base_file_url: Annotated[str, HTTP_URL] = "https://api.telegram.org/file/bot"
    # polling (no public URL needed) | webhook (Telegram calls webhook_url)
    mode: Literal["polling", "webhook"] = "polling"
    # webhook mode: public https:// URL that reaches webhook_listen:webhook_port
    webhook_url: Annotated[str, Url(("https",), optional=True)] = ""
    # webhook mode: local address to listen on (behind a TLS proxy)
    webhook_listen: Annotated[str, NonEmpty()] = "127.0.0.1"
    # webhook mode: local port; needs LIQBOT_TELEGRAM_WEBHOOK_SECRET in the environment
    webhook_port: Annotated[int, Between(1, 65535)] = 8443

    def __post_init__(self) -> None:
        if self.mode == "webhook" and not self.webhook_url:
            raise ConfigError("'telegram.mode' is webhook but 'telegram.webhook_url' is empty; set the public https:// URL")


@dataclass(frozen=True)
class DiscordConfig:
    enabled: bool = False  # also needs LIQBOT_DISCORD_TOKEN in the environment
    api_base: Annotated[str, HTTP_URL] = "https://discord.com/api/v10"
    gateway_url: Annotated[str, WS_URL] = "wss://gateway.discord.gg/"
    # Test guilds: register slash commands in these guilds only (they appear instantly);
    # empty registers them globally.
    guild_ids: tuple[Annotated[int, Between(1, 2**63 - 1)], ...] = ()
    # Hash of the last synced command definitions; commands sync at start only when they
    # changed. Empty: sync at every start.
    sync_state_path: str = "data/discord_commands.json"
    # Sharding (see bot/adapters/discord.py): 0 is one unsharded connection (Discord requires
    # shards from 2,500 guilds on). With N, this process connects `shard_ids` (empty: all of
    # 0..N-1); replicas share the shards by each listing its own ids with the same count.
    shard_count: Annotated[int, Between(0, 100_000)] = 0
    shard_ids: tuple[Annotated[int, Between(0, 99_999)], ...] = ()

    def __post_init__(self) -> None:
        if self.shard_ids and not self.shard_count:
            raise ConfigError("'discord.shard_ids' needs 'discord.shard_count' (the total over all replicas)")
        too_big = [i for i in self.shard_ids if i >= self.shard_count]
        if too_big:
            raise ConfigError(
                f"'discord.shard_ids' must be below 'discord.shard_count' ({self.shard_count}), not {too_big[0]}"
            )
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ConfigError(f"'discord.shard_ids' lists a shard twice: {list(self.shard_ids)}")


@dataclass(frozen=True)
class OpsConfig:
    """[ops]: the monitoring endpoint of `liqbot run` (GET /healthz and /metrics)."""

    # 0.0.0.0 (or the container's address) to be scraped from another machine or container
    http_host: Annotated[str, NonEmpty()] = "127.0.0.1"
    http_port: Annotated[int, Between(0, 65535)] = 8321  # 0: no endpoint
    # /healthz of the leader: unhealthy when no enabled stream recorded for this long
    stale_after_s: Annotated[float, Between(10, SECONDS_A_DAY)] = 600.0


@dataclass(frozen=True)
class ReplicasConfig:
    """[replicas]: the leader election of replicas sharing one PostgreSQL (bot.services.leadership)."""

    # a follower tries the leader lock, and the leader checks it still holds it, this often
    heartbeat_s: Annotated[float, Between(0.5, 10)] = 2.0
    # the server ends a lock connection silent this long (a cut-off leader), releasing the lock
    lease_s: Annotated[float, Between(3, 120)] = 10.0

    def __post_init__(self) -> None:
        if self.lease_s < 3 * self.heartbeat_s:
            raise ConfigError(
                f"'replicas.lease_s' must be at least three heartbeats (3 x {self.heartbeat_s:g} s), not {self.lease_s:g}"
            )


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True)
class RiskConfig(RiskThresholds):
    """[risk]: thresholds of the /risk rules (documented in bot/core/risk.py)."""

    def __post_init__(self) -> None:
        def fail(key: str, rule: str, value: object) -> None:
            raise ConfigError(f"'risk.{key}' must be {rule}, not {value!r}")

        if not self.elevated_at < self.high_at < self.extreme_at:
            fail("high_at", "between elevated_at and extreme_at", self.high_at)
        if self.funding_extreme_annual < self.funding_high_annual:
            fail("funding_extreme_annual", "at least funding_high_annual", self.funding_extreme_annual)
        if self.long_short_extreme < self.long_short_crowded:
            fail("long_short_extreme", "at least long_short_crowded", self.long_short_extreme)


@dataclass(frozen=True)
class ChartsConfig:
    """[charts]: /chart pictures."""

    theme: Literal["dark", "light"] = "dark"
    cache_entries: Annotated[int, Between(1, 10_000)] = 64  # rendered charts kept, per (asset, window, minute)


@dataclass(frozen=True)
class AlertsConfig:
    """[alerts]: threshold alerts (/alert) and their delivery."""

    enabled: bool = True  # match live events against /alert rules
    # at least this long between two alerts of one window or risk rule (big orders never wait)
    cooldown_s: Annotated[float, Between(0, 7 * SECONDS_A_DAY)] = 900.0
    # matching big orders are collected this long into one alert (bounded: never held back long)
    group_s: Annotated[float, Between(0, 5)] = 2.0
    max_per_user: Annotated[int, Between(1, 10_000)] = 20  # alert rules one user may own over all chats
    max_per_chat: Annotated[int, Between(1, 10_000)] = 50  # alert rules one chat may have
    # alert and digest messages sent per second per platform (paced, never dropped); 0: unpaced;
    # below Discord's 50 requests/s (Telegram's adapter paces its own sends to 25/s, replies first)
    send_rate_per_s: Annotated[float, Between(0, 1000)] = 40.0
    send_retries: Annotated[int, Between(0, 10)] = 3  # retries of a send that failed for a transient reason


@dataclass(frozen=True)
class ChannelFeedConfig:
    """[channel_feed]: live feeds that chat admins turn on with /feed (every order at or above a threshold)."""

    enabled: bool = True  # match live orders against /feed subscriptions
    # orders of one chat arriving within this are one message (bounded: never held back long)
    group_s: Annotated[float, Between(0, 3)] = 2.0
    # messages listing orders per chat and minute; past it a burst is one "N more orders, $X" line
    listed_per_minute: Annotated[int, Between(1, 60)] = 8
    # past that cap, a chat's orders are collected this long into one such line (bounded), so a long cascade
    # stays within listed_per_minute + 60 / capped_group_s messages a minute (Telegram allows 20 in a group)
    capped_group_s: Annotated[float, Between(0, 10)] = 6.0
    max_listed: Annotated[int, Between(1, 50)] = 15  # orders one message lists (the rest are counted)


@dataclass(frozen=True)
class DigestConfig:
    """[digest]: daily digests that chat admins schedule with /digest."""

    enabled: bool = True  # run the digest scheduler
    # a digest missed while liqbot was down is sent at start if less late than this
    grace_hours: Annotated[float, Between(0.1, 24)] = 6.0
    # the digest compares the last 24 h with the average of up to this many recorded days
    history_days: Annotated[int, Between(1, 365)] = 30


@dataclass(frozen=True)
class LevelsConfig:
    """[levels]: the estimated liquidation levels of /levels (the model: bot/core/levels.py)."""

    enabled: bool = True  # /levels and its bars; needs [market] polling for prices and open interest
    # the model folds in one bar this long at a time: a whole number of the venues' 5-minute klines
    bar_minutes: Annotated[int, Between(5, 240)] = 15
    warmup_days: Annotated[float, Between(0, 30)] = 7.0  # a fresh book starts from this much stored history
    # leverage tiers the opened notional spreads over, and the share of each (adding up to 1)
    leverage: tuple[Annotated[float, Between(1.5, 200)], ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    leverage_weights: tuple[Annotated[float, Between(0, 1)], ...] = (0.10, 0.25, 0.30, 0.20, 0.15)
    # the rate in the liquidation prices where no venue publishes margin tiers; below 1/leverage of every tier
    maintenance_margin_rate: Annotated[float, Between(0, 0.1)] = 0.005
    # venues whose public margin tiers give each asset's rate (the mean of their lowest tiers; Binance's are
    # signed); one whose [feeds.<venue>] is disabled is not asked
    margin_venues: tuple[Literal[MARGIN_VENUES], ...] = MARGIN_VENUES
    margin_refresh_hours: Annotated[float, Between(1, 168)] = 24.0  # margin tiers are read at start and this often
    direction_share: Annotated[float, Between(0.5, 1)] = 0.6  # longs' share of a rising bar without taker data
    grid_bins: Annotated[int, Between(20, 2000)] = 240  # price buckets per asset
    min_half_span: Annotated[float, Between(0.01, 0.9)] = 0.20  # the grid spans at least +-20 % of the price
    max_half_span: Annotated[float, Between(0.01, 0.9)] = 0.50  # and at most +-50 %
    span_sigmas: Annotated[float, Between(0.5, 50)] = 6.0  # half span in daily standard deviations
    grade_tolerance_pct: Annotated[float, Between(0.01, 10)] = 0.5  # a liquidation this near a crossed band counts

    def __post_init__(self) -> None:
        if self.bar_minutes % KLINE_MINUTES:
            raise ConfigError(f"'levels.bar_minutes' must be a multiple of {KLINE_MINUTES} (the klines' length)")
        if len(self.leverage) != len(self.leverage_weights):
            raise ConfigError("'levels.leverage' and 'levels.leverage_weights' must have as many entries")
        try:
            self.model()
        except ValueError as error:
            raise ConfigError(f"[levels]: {error}") from None

    def model(self) -> LevelSettings:
        return LevelSettings(
            tiers=tuple(LeverageTier(lev, w) for lev, w in zip(self.leverage, self.leverage_weights)),
            maintenance_margin_rate=self.maintenance_margin_rate,
            direction_share=self.direction_share,
            bins=self.grid_bins,
            min_half_span=self.min_half_span,
            max_half_span=self.max_half_span,
            span_sigmas=self.span_sigmas,
        )


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    bot: BotConfig = field(default_factory=BotConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)
    replicas: ReplicasConfig = field(default_factory=ReplicasConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    market: MarketDataConfig = field(default_factory=MarketDataConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    charts: ChartsConfig = field(default_factory=ChartsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    levels: LevelsConfig = field(default_factory=LevelsConfig)
    channel_feed: ChannelFeedConfig = field(default_factory=ChannelFeedConfig)


@dataclass(frozen=True)
class Secrets:
    """Tokens from the environment. repr never shows them."""

    telegram_token: str | None = field(default=None, repr=False)
    discord_token: str | None = field(default=None, repr=False)
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    db_password: str | None = field(default=None, repr=False)  # for [storage] url

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        return cls(
            telegram_token=env.get("LIQBOT_TELEGRAM_TOKEN") or None,
            discord_token=env.get("LIQBOT_DISCORD_TOKEN") or None,
            telegram_webhook_secret=env.get("LIQBOT_TELEGRAM_WEBHOOK_SECRET") or None,
            db_password=env.get("LIQBOT_DB_PASSWORD") or None,
        )

    def values(self) -> list[str]:
        return [v for v in (self.telegram_token, self.discord_token, self.telegram_webhook_secret, self.db_password) if v]


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _shown(value: object) -> str:
    """The value as the file had it, short enough for a one-line error."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _either(choices: tuple) -> str:
    return f"{', '.join(choices[:-1])} or {choices[-1]}" if len(choices) > 1 else choices[0]


def _build(cls: type, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"'{where}' must be a table like [{where}]")
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(known))}"
            section = f"[{where}]" if where else "the top level"
            raise ConfigError(f"unknown key '{key}' in {section}{hint}")
    hints = get_type_hints(cls, include_extras=True)
    return cls(**{
        f.name: _value(data[f.name], hints[f.name], f"{where}.{f.name}" if where else f.name)
        for f in fields(cls)
        if f.name in data
    })


def _value(value: Any, hint: Any, path: str) -> Any:
    """`value` from the file as the type `hint` declares, its bounds checked."""
    kind, bounds = (get_args(hint)[0], hint.__metadata__) if get_origin(hint) is Annotated else (hint, ())
    if is_dataclass(kind):
        return _build(kind, value, path)
    if get_origin(kind) is tuple:  # tuple[T, ...] from a TOML array (or, of strings, one separated string)
        item = get_args(kind)[0]
        items = value.replace(",", " ").split() if isinstance(value, str) and _plain(item) is not int else value
        if not isinstance(items, list):
            raise ConfigError(f"'{path}' must be a list, not {_shown(value)}")
        result = tuple(_value(v, item, path) for v in items)
    elif get_origin(kind) is Literal:
        if not (isinstance(value, str) and value in get_args(kind)):
            raise ConfigError(f"'{path}' must be {_either(get_args(kind))}, not {_shown(value)}")
        result = value
    elif kind is float and type(value) in (int, float) or type(value) is kind:
        result = value
    else:
        raise ConfigError(f"'{path}' must be {_TYPE_NAMES.get(kind, str(kind))}, not {_shown(value)}")
    for bound in bounds:
        if not bound.admits(result):  # checked before float(): a 400-digit integer must not overflow
            quoted = Url.without_password(value) if isinstance(bound, Url) else value
            raise ConfigError(f"'{path}' must be {bound}, not {_shown(quoted)}")
    return float(result) if kind is float else result


def _plain(hint: Any) -> Any:
    return get_args(hint)[0] if get_origin(hint) is Annotated else hint


def parse_config(text: str, source: str = "config") -> Config:
    try:
        data = tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError(f"{source} is not valid TOML: {error}") from None
    return _build(Config, data, "")


def load_config(path: str | Path | None) -> Config:
    """The config at `path`, or the defaults when no path is given."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {error.start})") from None
    return parse_config(text, str(path))
