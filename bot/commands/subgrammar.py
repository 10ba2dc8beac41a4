"""What the commands with a sub-grammar (/alert, /digest, /feed) share: their
usage error, its reply, suggestions, amounts and assets as traders write them,
and the admin check for changes in groups."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection

from bot.commands.dispatch import Context, message_reply
from bot.commands.parse import WELL_KNOWN_ASSETS, normalize_asset, suggest_asset
from bot.core.alert_rules import MAX_THRESHOLD_USD, MIN_THRESHOLD_USD
from bot.replies import numbers as fmt
from bot.replies.locales import sentences, text
from bot.replies.model import Reply, Tone

_AMOUNT = re.compile(r"^\$?(\d+(?:\.\d+)?)([kmb]?)$", re.IGNORECASE)
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
ANY_ASSET_WORDS = ("any", "all", "*")


class SubgrammarError(Exception):
    """A sub-grammar error: a message key, its values, a suggestion."""

    def __init__(self, key: str, value: str = "", suggestion: str | None = None) -> None:
        super().__init__(key)
        self.key, self.value, self.suggestion = key, value, suggestion


def subgrammar_reply(error: SubgrammarError, locale: str, usage_key: str) -> Reply:
    values = {
        "value": error.value,
        "asset": error.value,
        "min": fmt.usd(MIN_THRESHOLD_USD, locale),
        "max": fmt.usd(MAX_THRESHOLD_USD, locale),
    }
    parts = [text(locale, error.key, **values)]
    if error.suggestion:
        parts.append(text(locale, "error.did_you_mean", suggestion=error.suggestion))
    parts.append(text(locale, usage_key))
    return message_reply("title.usage_error", locale, sentences(locale, parts), Tone.ERROR, ephemeral=True)


def suggest(word: str, choices: tuple[str, ...], prefix: str) -> str | None:
    close = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.5)
    return f"{prefix} {close[0]}" if close else None


def denied_reply(locale: str) -> Reply:
    return message_reply("title.denied", locale, text(locale, "denied.body"), Tone.WARNING, ephemeral=True)


async def may_change(ctx: Context) -> bool:
    return not ctx.caller.is_group or await ctx.caller.is_admin()


def parse_amount(token: str) -> float | None:
    """"1M" -> 1e6, "500k", "2.5m", "$10M", "1000000"; None when not an amount."""
    match = _AMOUNT.match(token.replace(",", "").replace("_", ""))
    if not match:
        return None
    value = float(match.group(1)) * _SCALE[match.group(2).lower()]
    return value if value > 0 else None


def amount_arg(token: str) -> float:
    """An amount a rule or feed may name (MIN_THRESHOLD_USD to MAX_THRESHOLD_USD)."""
    value = parse_amount(token)
    if value is None:
        raise SubgrammarError("error.alert_bad_amount", token)
    if not MIN_THRESHOLD_USD <= value <= MAX_THRESHOLD_USD:
        raise SubgrammarError("error.alert_amount_range", token)
    return value


def asset_arg(token: str, known: Collection[str], allow_any: bool) -> str | None:
    """A recorded (or well-known) asset; None for "any"/"all" where `allow_any`."""
    if allow_any and token.lower() in ANY_ASSET_WORDS:
        return None
    pool = set(known) | WELL_KNOWN_ASSETS
    asset = normalize_asset(token, pool)
    if asset is None:
        raise SubgrammarError("error.unknown_asset", token.upper(), suggest_asset(token, pool))
    return asset
