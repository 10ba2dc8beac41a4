"""Configuration: TOML in, frozen dataclasses out, with clear errors.

Every key has a default, so no file is needed. Secrets (bot tokens) are never
read from the file: only from environment variables (see `Secrets`).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class StorageConfig:
    path: str = "data/liqbot.sqlite"  # relative paths are relative to the working directory


@dataclass(frozen=True)
class BotConfig:
    default_locale: str = "en"  # en | zh, until a chat picks its own with /lang
    user_burst: int = 5  # commands one user may send at once
    user_per_minute: float = 10.0  # and sustained per minute
    chat_burst: int = 20
    chat_per_minute: float = 30.0


@dataclass(frozen=True)
class BinanceFeedConfig:
    enabled: bool = True
    usdm_ws_url: str = "wss://fstream.binance.com/market/ws/!forceOrder@arr"
    coinm_ws_url: str = "wss://dstream.binance.com/ws/!forceOrder@arr"
    usdm_rest_url: str = "https://fapi.binance.com"
    coinm_rest_url: str = "https://dapi.binance.com"


@dataclass(frozen=True)
class BybitFeedConfig:
    enabled: bool = True
    linear_ws_url: str = "wss://stream.bybit.com/v5/public/linear"
    inverse_ws_url: str = "wss://stream.bybit.com/v5/public/inverse"
    rest_url: str = "https://api.bybit.com"


@dataclass(frozen=True)
class OkxFeedConfig:
    enabled: bool = True
    ws_url: str = "wss://ws.okx.com:8443/ws/v5/public"
    rest_url: str = "https://www.okx.com"


@dataclass(frozen=True)
class FeedsConfig:
    binance: BinanceFeedConfig = field(default_factory=BinanceFeedConfig)
    bybit: BybitFeedConfig = field(default_factory=BybitFeedConfig)
    okx: OkxFeedConfig = field(default_factory=OkxFeedConfig)


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool = False  # also needs LIQBOT_TELEGRAM_TOKEN in the environment
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"


@dataclass(frozen=True)
class DiscordConfig:
    enabled: bool = False  # also needs LIQBOT_DISCORD_TOKEN in the environment
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    bot: BotConfig = field(default_factory=BotConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


@dataclass(frozen=True)
class Secrets:
    """Tokens from the environment. repr never shows them."""

    telegram_token: str | None = field(default=None, repr=False)
    discord_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        return cls(
            telegram_token=env.get("LIQBOT_TELEGRAM_TOKEN") or None,
            discord_token=env.get("LIQBOT_DISCORD_TOKEN") or None,
        )

    def values(self) -> list[str]:
        return [v for v in (self.telegram_token, self.discord_token) if v]


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
