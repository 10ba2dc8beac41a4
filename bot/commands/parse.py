"""Parse a command line into an Invocation, or a UsageError that says what is
wrong and what was probably meant. Shared by every surface."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from bot.commands.registry import COMMANDS, ArgKind, CommandSpec, find
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.core.symbols import asset_of

MAX_COMMAND_LENGTH = 256
MAX_WINDOW_MS = 30 * DAY_MS
DEFAULT_WINDOW_MS = DAY_MS
LOCALES = ("en", "zh")
ALL_ASSETS = "all"

# Tickers people type that mean a recorded asset.
ASSET_ALIASES = {"XBT": "BTC", "BITCOIN": "BTC", "ETHER": "ETH", "ETHEREUM": "ETH", "SOLANA": "SOL"}
# Majors accepted before anything is recorded, so a fresh bot answers "nothing
# recorded" rather than "unknown asset".
WELL_KNOWN_ASSETS = frozenset(
    "BTC ETH SOL XRP BNB DOGE ADA TRX AVAX LINK TON SUI LTC BCH DOT PEPE WIF SHIB".split()
)
_WINDOW = re.compile(r"^(\d{1,4})([mhdw])$")
# Digits and a short unit, even a wrong one (25x, 30min); 1INCH or 1000PEPE-USDT-SWAP are assets.
_WINDOW_LIKE = re.compile(r"^\d+[a-z]{0,3}$", re.IGNORECASE)
_UNIT_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


@dataclass(frozen=True, slots=True)
class Invocation:
    spec: CommandSpec
    args: dict[str, object]
    given: frozenset[str] = frozenset()  # the arguments the user typed (the rest are defaults)

    def canonical(self) -> str:
        """The command as text again (for refresh buttons): `/liq BTC 4h`."""
        parts = [f"/{self.spec.name}"]
        for arg in self.spec.args:
            value = self.args.get(arg.name)
            if arg.kind is ArgKind.WINDOW and value is not None:
                parts.append(format_window(value))
            elif value is not None and value != "":
                parts.append(str(value))
        return " ".join(parts)


@dataclass(frozen=True)
class UsageError(Exception):
    """A message key for the locale catalog, its values, and the command's usage."""

    key: str
    values: dict[str, str] = field(default_factory=dict)
    spec: CommandSpec | None = None
    suggestion: str | None = None


def format_window(window_ms: int) -> str:
    """Windows as traders write them: `30m`, `4h`, `24h`, `7d` (a day reads 24h)."""
    if window_ms % DAY_MS == 0 and window_ms >= 2 * DAY_MS:
        return f"{window_ms // DAY_MS}d"
    if window_ms % HOUR_MS == 0:
        return f"{window_ms // HOUR_MS}h"
    return f"{window_ms // MINUTE_MS}m"


def parse_window(token: str) -> int | None:
    match = _WINDOW.match(token.lower())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def normalize_asset(token: str, known: Collection[str]) -> str | None:
    candidate = token.upper().lstrip("$")
    if candidate in known:
        return candidate
    if candidate in ASSET_ALIASES:
        return None  # an alias is a suggestion, not a silent rewrite
    base = asset_of(candidate)  # an instrument id as the venues (and our replies) write it
    return base if base in known else None


def suggest_asset(token: str, known: Collection[str]) -> str | None:
    candidate = token.upper().lstrip("$")
    if candidate in ASSET_ALIASES:
        return ASSET_ALIASES[candidate]
    close = difflib.get_close_matches(candidate, sorted(known), n=1, cutoff=0.6)
    return close[0] if close else None


def _window_suggestion(token: str) -> str | None:
    """`25x` -> `25h`; nothing when the hours would not be a valid window (`0h`, `1000h`)."""
    digits = re.match(r"^(\d{1,4})", token)
    if not digits:
        return None
    hours = f"{int(digits.group(1))}h"
    window = parse_window(hours)
    return hours if window and window <= MAX_WINDOW_MS else None


def _parse_arg(
    spec: CommandSpec, kind: ArgKind, token: str, known_assets: Collection[str], extra: tuple[str, ...] = ()
):
    if kind is ArgKind.WINDOW:
        window = parse_window(token)
        if window is None or window <= 0:
            raise UsageError("error.bad_window", {"window": token}, spec, _window_suggestion(token))
        if window > MAX_WINDOW_MS:
            raise UsageError("error.window_too_long", {"window": token}, spec, "30d")
        return window
    if kind is ArgKind.ASSET:
        if token.lower() == ALL_ASSETS:
            return None
        if token.lower() in extra:
            return token.lower()
        asset = normalize_asset(token, known_assets)
        if asset is None:
            close = difflib.get_close_matches(token.lower(), extra, n=1, cutoff=0.6)
            suggestion = close[0] if close else suggest_asset(token, known_assets)
            raise UsageError("error.unknown_asset", {"asset": token.upper()}, spec, suggestion)
        return asset
    if kind is ArgKind.LOCALE:
        if token.lower() not in LOCALES:
            close = difflib.get_close_matches(token.lower(), LOCALES, n=1)
            raise UsageError("error.bad_locale", {"locale": token}, spec, close[0] if close else None)
        return token.lower()
    if find(token) is None:
        raise UsageError("error.unknown_command", {"name": token.lstrip("/")}, spec, _command_suggestion(token))
    return find(token).name


def _looks_like(kind: ArgKind, token: str) -> bool:
    """Whether a token is meant for an argument kind (so `/liq 4h BTC` works too)."""
    if kind is ArgKind.WINDOW:
        return _WINDOW_LIKE.match(token) is not None
    if kind is ArgKind.ASSET:
        return _WINDOW_LIKE.match(token) is None
    return True


def _command_suggestion(name: str) -> str | None:
    names = [n for spec in COMMANDS for n in (spec.name, *spec.aliases)]
    close = difflib.get_close_matches(name.lower().lstrip("/"), names, n=1, cutoff=0.5)
    return f"/{find(close[0]).name}" if close else None


def is_command_for(text: str, bot_username: str | None = None) -> bool:
    """Whether `text` is a command for this bot: not plain chat, not `/cmd@otherbot`."""
    text = text.strip()
    if not text.startswith("/"):
        return False
    addressee = text.split(maxsplit=1)[0][1:].partition("@")[2]
    return not addressee or (bot_username is not None and addressee.lower() == bot_username.lower())


def parse_command(
    text: str, known_assets: Collection[str], bot_username: str | None = None
) -> Invocation | None:
    """None when the text is not a command for this bot (plain chat, /cmd@otherbot)."""
    if not is_command_for(text, bot_username):
        return None
    text = text.strip()
    if len(text) > MAX_COMMAND_LENGTH:
        raise UsageError("error.too_long")
    head, *tokens = text.split()
    rest = text[len(head):].strip()  # raw, for a TEXT argument
    name = head[1:].partition("@")[0]
    spec = find(name)
    if spec is None:
        raise UsageError("error.unknown_command", {"name": name}, None, _command_suggestion(name))
    known = set(known_assets) | WELL_KNOWN_ASSETS
    args: dict[str, object] = {}
    open_args = list(spec.args)
    for position, token in enumerate(tokens):
        if open_args and open_args[0].kind is ArgKind.TEXT and len(open_args) == 1:
            # The rest of the line, as typed (spaces inside kept).
            args[open_args.pop().name] = rest.split(None, position)[-1] if position else rest
            break
        target = next((a for a in open_args if _looks_like(a.kind, token)), None)
        if target is None:
            if not open_args:
                raise UsageError("error.too_many_args", {"extra": token}, spec)
            target = open_args[0]
        args[target.name] = _parse_arg(spec, target.kind, token, known, target.extra_values)
        open_args.remove(target)
    given = frozenset(args)
    for arg in spec.args:
        if arg.kind is ArgKind.WINDOW:
            args.setdefault(arg.name, DEFAULT_WINDOW_MS)
        elif arg.kind is ArgKind.TEXT:
            args.setdefault(arg.name, "")
        else:
            args.setdefault(arg.name, None)
    return Invocation(spec, args, given)
