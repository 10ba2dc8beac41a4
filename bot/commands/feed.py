"""/feed: a channel's live feed of liquidation orders, handed to the Dispatcher by
the composition root. The service behind it comes in as a port (`FeedPort`).

    /feed on MIN_USD [ASSET...]   every order of at least MIN_USD (on those assets), as it happens
    /feed off                     stop it
    /feed status | /feed          what this chat gets

Anyone may ask for the status; turning it on or off needs an admin in groups
(as for /digest). Amounts and assets are read as /alert reads them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from bot.commands.dispatch import Context, Handler, message_reply
from bot.commands.subgrammar import (
    ANY_ASSET_WORDS,
    SubgrammarError,
    amount_arg,
    asset_arg,
    denied_reply,
    may_change,
    subgrammar_reply,
    suggest,
)
from bot.core.feed import MAX_FEED_ASSETS, FeedSubscription
from bot.replies import numbers as fmt
from bot.replies.feed import describe_feed
from bot.replies.locales import text
from bot.replies.model import Reply

FEED_ACTIONS = ("on", "off", "status")


class FeedPort(Protocol):
    group_ms: int  # orders arriving within this are one message

    async def assets(self) -> list[str]: ...

    async def set_feed(self, subscription: FeedSubscription) -> None: ...

    async def remove_feed(self, chat_key: str) -> bool: ...

    async def feed(self, chat_key: str) -> FeedSubscription | None: ...


def feed_handlers(feeds: FeedPort | None) -> dict[str, Handler]:
    """The "feed" handler for the Dispatcher's `features` (none without a feed service)."""
    return {} if feeds is None else {"feed": _feed_handler(feeds)}


def parse_feed(words: list[str], known_assets: Collection[str], chat_key: str, user_key: str,
               now_ms: int) -> FeedSubscription:
    """The subscription of `/feed on MIN_USD [ASSET...]` (`words`: after "on"). Raises SubgrammarError."""
    if not words:
        raise SubgrammarError("error.feed_no_amount")
    min_usd = amount_arg(words[0])
    named = words[1:]
    if any(word.lower() in ANY_ASSET_WORDS for word in named):
        if len(named) > 1:
            raise SubgrammarError("error.feed_all_and_assets")
        named = []
    assets = tuple(dict.fromkeys(asset_arg(word, known_assets, allow_any=False) for word in named))
    if len(assets) > MAX_FEED_ASSETS:
        raise SubgrammarError("error.feed_too_many_assets", str(MAX_FEED_ASSETS))
    return FeedSubscription(chat_key, min_usd, assets, user_key, now_ms)


def _feed_handler(port: FeedPort) -> Handler:
    async def handle(ctx: Context) -> Reply:
        locale, chat_key = ctx.locale, ctx.caller.chat_key
        words = str(ctx.invocation.args.get("setting") or "").split()
        action = words[0].lower() if words else "status"
        try:
            if action not in FEED_ACTIONS:
                raise SubgrammarError("error.feed_unknown", words[0], suggest(words[0], FEED_ACTIONS, "/feed"))
            if action != "on" and len(words) > 1:
                raise SubgrammarError("error.feed_extra", words[1])
            if action == "status":
                return await _status(port, ctx)
            if not await may_change(ctx):
                return denied_reply(locale)
            if action == "off":
                key = "feed.off" if await port.remove_feed(chat_key) else "feed.off_none"
                return message_reply("title.feed_settings", locale, text(locale, key))
            subscription = parse_feed(words[1:], await port.assets(), chat_key, ctx.caller.user_key, ctx.now_ms)
        except SubgrammarError as error:
            return subgrammar_reply(error, locale, "feed.usage")
        await port.set_feed(subscription)
        body = text(locale, "feed.on", rule=describe_feed(subscription, locale),
                    group=fmt.duration(port.group_ms, locale))
        return message_reply("title.feed_settings", locale, body)

    return handle


async def _status(port: FeedPort, ctx: Context) -> Reply:
    locale = ctx.locale
    subscription = await port.feed(ctx.caller.chat_key)
    if subscription is None:
        return message_reply("title.feed_settings", locale, text(locale, "feed.status_off"))
    since = fmt.timestamp(subscription.since_ms, locale, ctx.zone)
    body = text(locale, "feed.status_on", since=since, rule=describe_feed(subscription, locale))
    return message_reply("title.feed_settings", locale, body)
