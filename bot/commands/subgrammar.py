"""What the commands with a sub-grammar (/alert, /digest) share: their usage
error, its reply, suggestions, and the admin check for changes in groups."""

from __future__ import annotations

import difflib

from bot.commands.dispatch import Context, message_reply
from bot.core.alert_rules import MAX_THRESHOLD_USD, MIN_THRESHOLD_USD
from bot.replies import numbers as fmt
from bot.replies.locales import sentences, text
from bot.replies.model import Reply, Tone


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
