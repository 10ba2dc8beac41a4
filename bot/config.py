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
from typing import Any, get_args, get_origin, get_type_hints

from bot.core.risk import RiskThresholds
from bot.feeds.venues import MARKET_VENUES
from bot.feeds.venues import SETTINGS as VENUE_SETTINGS


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class StorageConfig:
    path: str = "data/liqbot.sqlite"  # relative paths are relative to the working directory


@dataclass(frozen=True)
class RetentionConfig:
    """[retention]: how long raw detail is kept (hour rollups and spans are kept forever)."""

    events_days: float = 90.0  # raw liquidations: /big and the exact edges of windows; 1 to 3650
    minute_rollups_days: float = 90.0  # minute totals: history ranks of short windows; 1 to 3650
    every_s: float = 3600.0  # seconds between two retention passes; 60 to 86400

    def __post_init__(self) -> None:
        for key, low, high in (("events_days", 1, 3650), ("minute_rollups_days", 1, 3650), ("every_s", 60, 86400)):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise ConfigError(f"'retention.{key}' must be from {low} to {high}, not {value!r}")


@dataclass(frozen=True)
class BotConfig:
    default_locale: str = "en"  # en | zh, until a chat picks its own with /lang
    user_burst: int = 5  # commands one user may send at once
    user_per_minute: float = 10.0  # and sustained per minute
    chat_burst: int = 20
    chat_per_minute: float = 30.0


@dataclass(frozen=True)
class FeedRunnerConfig:
    """Tuning of the reconnecting feed runner and of live ingest (`[feeds.runner]`)."""

    backoff_base_s: float = 1.0  # first reconnect delay after a failure; doubles per failure, with jitter
    backoff_max_s: float = 120.0  # cap of the reconnect delay after ordinary failures
    healthy_after_s: float = 60.0  # a connection open this long resets the backoff; shorter ones count as failures
    unavailable_backoff_s: float = 30.0  # at least this long after a handshake refused with HTTP 5xx
    refused_backoff_s: float = 300.0  # at least this long after HTTP 403/418/429 at handshake (longer if Retry-After says so)
    watchdog_s: float = 60.0  # no frame and no pong for this long: the connection is dead, reconnect
    ping_interval_s: float = 20.0  # websocket ping (and Bybit's {"op":"ping"}) every this many seconds
    okx_idle_ping_s: float = 25.0  # send OKX a text "ping" after this long without a frame (OKX cuts at 30 s)
    binance_reconnect_after_s: float = 85800.0  # planned reconnect before Binance's 24 h cut-off (23 h 50 m)
    symbols_refresh_s: float = 86400.0  # re-read Bybit's symbol list this often; new symbols join the live connection
    contracts_refresh_s: float = 21600.0  # re-read OKX / Binance COIN-M contract sizes this often
    unknown_refresh_min_s: float = 60.0  # an unknown instrument triggers a contract refresh at most this often
    rest_timeout_s: float = 10.0  # timeout of each metadata REST request
    batch_events: int = 500  # store live events in batches of this many...
    batch_ms: int = 1000  # ...or after this many milliseconds, whichever comes first; spans are extended as often


# [feeds.<venue>] for every venue of the registry (enabled, websocket and REST
# URLs, as its module declares them), then [feeds.runner].
FeedsConfig = make_dataclass(
    "FeedsConfig",
    [(venue, settings, field(default_factory=settings)) for venue, settings in VENUE_SETTINGS.items()]
    + [("runner", FeedRunnerConfig, field(default_factory=FeedRunnerConfig))],
    frozen=True,
    namespace={"__module__": __name__},
)


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool = False  # also needs LIQBOT_TELEGRAM_TOKEN in the environment
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: str = "polling"  # polling (no public URL needed) | webhook (Telegram calls webhook_url)
    webhook_url: str = ""  # webhook mode: public https:// URL that reaches webhook_listen:webhook_port
    webhook_listen: str = "127.0.0.1"  # webhook mode: local address to listen on (behind a TLS proxy)
    webhook_port: int = 8443  # webhook mode: local port; needs LIQBOT_TELEGRAM_WEBHOOK_SECRET in the environment


@dataclass(frozen=True)
class DiscordConfig:
    enabled: bool = False  # also needs LIQBOT_DISCORD_TOKEN in the environment
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    # Test guilds: register slash commands in these guilds only (they appear instantly);
    # empty registers them globally.
    guild_ids: tuple[int, ...] = ()
    # Hash of the last synced command definitions; commands sync at start only when they
    # changed. Empty: sync at every start.
    sync_state_path: str = "data/discord_commands.json"


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR


@dataclass(frozen=True)
class MarketDataConfig:
    """[market]: funding, open interest and long/short ratios polled over REST."""

    enabled: bool = True  # poll market context for leverage-risk reports
    venues: str = " ".join(MARKET_VENUES)  # which venues to poll, space or comma separated
    assets: str = "BTC ETH SOL XRP DOGE BNB"  # USDT perpetuals to track, space or comma separated
    interval_s: float = 60.0  # seconds between two polls of a venue
    retention_days: int = 35  # samples older than this are pruned (30-day percentiles need 30)
    request_timeout_s: float = 10.0  # per request (connect, read, write, pool)
    retries: int = 3  # retries of a request after a 5xx, timeout or connection error
    backoff_base_s: float = 1.0  # first retry after ~this, doubling each time (with jitter)
    backoff_max_s: float = 30.0  # cap of one retry delay
    rate_limit_backoff_s: float = 60.0  # pause of a venue after a 429 without Retry-After
    ban_backoff_s: float = 600.0  # pause of a venue after a 418/403 without Retry-After
    budget_fraction: float = 0.5  # share of each venue's published request limit liqbot may use

    def __post_init__(self) -> None:
        def fail(key: str, rule: str, value: object) -> None:
            raise ConfigError(f"'market.{key}' must be {rule}, not {value!r}")

        if not self.asset_list:
            fail("assets", "a list of assets like \"BTC ETH\"", self.assets)
        unknown = [venue for venue in self.venue_list if venue not in MARKET_VENUES]
        if unknown:
            fail("venues", f"some of {', '.join(MARKET_VENUES)}", self.venues)
        for key in ("interval_s", "request_timeout_s", "backoff_base_s", "backoff_max_s"):
            if not getattr(self, key) > 0:
                fail(key, "positive", getattr(self, key))
        for key in ("rate_limit_backoff_s", "ban_backoff_s"):
            if not getattr(self, key) >= 0:
                fail(key, "zero or more", getattr(self, key))
        if self.retention_days < 1:
            fail("retention_days", "at least 1", self.retention_days)
        if self.retries < 0:
            fail("retries", "zero or more", self.retries)
        if not 0 < self.budget_fraction <= 1:
            fail("budget_fraction", "in (0, 1]", self.budget_fraction)

    @property
    def asset_list(self) -> list[str]:
        return [a.upper() for a in self.assets.replace(",", " ").split()]

    @property
    def venue_list(self) -> list[str]:
        return [v.lower() for v in self.venues.replace(",", " ").split()]


@dataclass(frozen=True)
class RiskConfig(RiskThresholds):
    """[risk]: thresholds of the /risk rules (documented in bot/core/risk.py)."""

    def __post_init__(self) -> None:
        def fail(key: str, rule: str, value: object) -> None:
            raise ConfigError(f"'risk.{key}' must be {rule}, not {value!r}")

        for f in fields(self):
            if not getattr(self, f.name) > 0:
                fail(f.name, "positive", getattr(self, f.name))
        if not self.elevated_at < self.high_at < self.extreme_at:
            fail("high_at", "between elevated_at and extreme_at", self.high_at)
        if self.funding_extreme_annual < self.funding_high_annual:
            fail("funding_extreme_annual", "at least funding_high_annual", self.funding_extreme_annual)
        if self.long_short_extreme < self.long_short_crowded or self.long_short_crowded <= 1:
            fail("long_short_extreme", "at least long_short_crowded (which must exceed 1)", self.long_short_extreme)
        if self.skew_share > 1:
            fail("skew_share", "at most 1", self.skew_share)


@dataclass(frozen=True)
class ChartsConfig:
    """[charts]: /chart pictures."""

    theme: str = "dark"  # dark | light
    cache_entries: int = 64  # rendered charts kept, per (asset, window, minute)

    def __post_init__(self) -> None:
        if self.theme not in ("dark", "light"):
            raise ConfigError(f"'charts.theme' must be dark or light, not {self.theme!r}")
        if self.cache_entries < 1:
            raise ConfigError(f"'charts.cache_entries' must be at least 1, not {self.cache_entries!r}")


@dataclass(frozen=True)
class AlertsConfig:
    """[alerts]: threshold alerts (/alert) and their delivery."""

    enabled: bool = True  # match live events against /alert rules
    cooldown_s: float = 900.0  # at least this long between two alerts of one rule (big orders: of one chat)
    group_s: float = 5.0  # matching big orders are collected this long into one alert
    max_per_user: int = 20  # alert rules one user may own over all chats
    max_per_chat: int = 50  # alert rules one chat may have
    send_rate_per_s: float = 25.0  # alert and digest messages sent per second per platform (paced, never dropped)
    send_retries: int = 3  # retries of a send that failed for a transient reason

    def __post_init__(self) -> None:
        for key in ("cooldown_s", "group_s", "send_rate_per_s"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"'alerts.{key}' must be zero or more, not {getattr(self, key)!r}")
        for key in ("max_per_user", "max_per_chat"):
            if getattr(self, key) < 1:
                raise ConfigError(f"'alerts.{key}' must be at least 1, not {getattr(self, key)!r}")
        if self.send_retries < 0:
            raise ConfigError(f"'alerts.send_retries' must be zero or more, not {self.send_retries!r}")


@dataclass(frozen=True)
class DigestConfig:
    """[digest]: daily digests that chat admins schedule with /digest."""

    enabled: bool = True  # run the digest scheduler
    grace_hours: float = 6.0  # a digest missed while liqbot was down is sent at start if less late than this
    history_days: int = 30  # the digest compares the last 24 h with the average of up to this many recorded days

    def __post_init__(self) -> None:
        if not self.grace_hours > 0:
            raise ConfigError(f"'digest.grace_hours' must be positive, not {self.grace_hours!r}")
        if self.history_days < 1:
            raise ConfigError(f"'digest.history_days' must be at least 1, not {self.history_days!r}")


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    bot: BotConfig = field(default_factory=BotConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    market: MarketDataConfig = field(default_factory=MarketDataConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    charts: ChartsConfig = field(default_factory=ChartsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)


@dataclass(frozen=True)
class Secrets:
    """Tokens from the environment. repr never shows them."""

    telegram_token: str | None = field(default=None, repr=False)
    discord_token: str | None = field(default=None, repr=False)
    telegram_webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        return cls(
            telegram_token=env.get("LIQBOT_TELEGRAM_TOKEN") or None,
            discord_token=env.get("LIQBOT_DISCORD_TOKEN") or None,
            telegram_webhook_secret=env.get("LIQBOT_TELEGRAM_WEBHOOK_SECRET") or None,
        )

    def values(self) -> list[str]:
        return [v for v in (self.telegram_token, self.discord_token, self.telegram_webhook_secret) if v]


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _build(cls: type, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"'{where}' must be a table like [{where}]")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(known))}"
            section = f"[{where}]" if where else "the top level"
            raise ConfigError(f"unknown key '{key}' in {section}{hint}")
    values = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        kind, value, path = hints[f.name], data[f.name], f"{where}.{f.name}" if where else f.name
        if is_dataclass(kind):
            values[f.name] = _build(kind, value, path)
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            values[f.name] = float(value)
        elif get_origin(kind) is tuple:  # tuple[T, ...] from a TOML array
            item = get_args(kind)[0]
            if not isinstance(value, list) or any(type(v) is not item for v in value):
                expected = _TYPE_NAMES.get(item, str(item))
                raise ConfigError(f"'{path}' must be a list of {expected.split(' ', 1)[-1]}s, not {value!r}")
            values[f.name] = tuple(value)
        elif type(value) is not kind:
            expected = _TYPE_NAMES.get(kind, str(kind))
            raise ConfigError(f"'{path}' must be {expected}, not {value!r}")
        else:
            values[f.name] = value
    return cls(**values)


def _validate(config: Config) -> None:
    if config.bot.default_locale not in ("en", "zh"):
        raise ConfigError(f"'bot.default_locale' must be en or zh, not {config.bot.default_locale!r}")
    if config.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"'logging.level' must be DEBUG, INFO, WARNING or ERROR, not {config.logging.level!r}")


def parse_config(text: str, source: str = "config") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source} is not valid TOML: {error}") from None
    config = _build(Config, data, "")
    _validate(config)
    return config


def load_config(path: str | Path | None) -> Config:
    """The config at `path`, or the defaults when no path is given."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    return parse_config(text, str(path))
