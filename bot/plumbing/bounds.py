"""Declared bounds of settings, attached with `typing.Annotated`:

    user_per_minute: Annotated[float, Between(0.1, 10_000)] = 10.0

The settings dataclasses (in `bot.config`, and wherever a layer defines its own
knobs) only declare them; `bot.config` checks them when a file is loaded, and
`config.example.toml` documents each one with `str(bound)`. Enumerations are
`typing.Literal` types, checked the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


SECONDS_A_DAY = 86_400


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key and the fix."""


def ordered(section: str, settings: object, low: str, high: str) -> None:
    """A relation between two keys that their ranges alone cannot state."""
    if getattr(settings, low) > getattr(settings, high):
        raise ConfigError(f"'{section}.{low}' must be at most '{section}.{high}' ({getattr(settings, high)!r})")


def _number(value: float) -> str:
    return repr(value) if isinstance(value, float) and not value.is_integer() else str(int(value))


@dataclass(frozen=True)
class Between:
    """A number from `low` to `high`, both included (never NaN or infinite)."""

    low: float
    high: float

    def admits(self, value: float) -> bool:
        return self.low <= value <= self.high  # False for NaN

    def __str__(self) -> str:
        return f"from {_number(self.low)} to {_number(self.high)}"


@dataclass(frozen=True)
class NonEmpty:
    """A string (or list) with something in it."""

    def admits(self, value: str | tuple) -> bool:
        return len(value.strip() if isinstance(value, str) else value) > 0

    def __str__(self) -> str:
        return "non-empty"


@dataclass(frozen=True)
class Url:
    """A URL with one of `schemes` and a host; `optional` admits "" (off)."""

    schemes: tuple[str, ...]
    optional: bool = False
    passwordless: bool = False  # a password comes from the environment, never from the file

    def admits(self, value: str) -> bool:
        if self.optional and value == "":
            return True
        try:
            parts = urlsplit(value)
            return (
                parts.scheme in self.schemes
                and bool(parts.hostname)
                and not any(c.isspace() for c in value)
                and not (self.passwordless and parts.password is not None)
            )
        except ValueError:  # e.g. an invalid port or IPv6 literal
            return False

    @staticmethod
    def without_password(value: str) -> str:
        """The URL as an error may quote it: a password in it replaced by ***."""
        try:
            parts = urlsplit(value)
            if parts.password is None:
                return value
            return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))
        except ValueError:
            return value

    def __str__(self) -> str:
        url = "a URL starting with " + " or ".join(f"{scheme}://" for scheme in self.schemes)
        if self.passwordless:
            url += " with no password in it (the password comes from the environment)"
        return f"empty or {url}" if self.optional else url


@dataclass(frozen=True)
class Matches:
    """A string matching `pattern` in full; `description` says it in words."""

    pattern: str
    description: str

    def admits(self, value: str) -> bool:
        return re.fullmatch(self.pattern, value) is not None

    def __str__(self) -> str:
        return self.description


Bound = Between | NonEmpty | Url | Matches

WS_URL = Url(("wss", "ws"))
HTTP_URL = Url(("https", "http"))
POSTGRES_URL = Url(("postgresql", "postgres"), optional=True, passwordless=True)
