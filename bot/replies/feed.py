"""The live feed's messages (one line per order, or one "N more orders, $X" line
past the chat's cap) and the words /feed answers with. Wording:
bot.replies.locales_alerts."""

from __future__ import annotations

from datetime import UTC, tzinfo

from bot.core.bursts import Burst
from bot.core.feed import FeedSubscription
from bot.core.models import LiquidationEvent, Side
from bot.core.summary import Split, classify_squeeze
from bot.replies import numbers as fmt
from bot.replies.compose import tone_of, venue_name
from bot.replies.layout import TONE_EMOJI
from bot.replies.locales import listing, text
from bot.replies.model import Bullets, Paragraph, Reply, Tone, line

_SIDE_MARK = {Side.LONG: TONE_EMOJI[Tone.LONGS_HIT], Side.SHORT: TONE_EMOJI[Tone.SHORTS_HIT]}


def feed_reply(burst: Burst, min_usd: float, locale: str, tz: tzinfo = UTC) -> Reply:
    """One feed message: the burst's orders in the order they happened (the largest
    ones when there are more than a message lists), or past the chat's cap the
    count and sum only."""
    tone = tone_of(classify_squeeze(Split("all", burst.long_usd, burst.short_usd)))
    title = text(locale, "title.feed", threshold=fmt.usd(min_usd, locale))
    if not burst.orders:
        body = text(
            locale,
            "feed.summary",
            count=burst.more_orders,
            amount=fmt.usd(burst.total_usd, locale),
            long_amount=fmt.usd(burst.long_usd, locale),
            short_amount=fmt.usd(burst.short_usd, locale),
        )
        return Reply(title=title, blocks=(Paragraph(line(body)),), tone=tone)
    orders = sorted(burst.orders, key=lambda e: (e.at_ms, -e.notional_usd))
    blocks: list = [Bullets(tuple(line(order_text(e, locale, tz)) for e in orders))]
    if burst.more_orders:
        rest_usd = burst.total_usd - sum(e.notional_usd for e in burst.orders)
        more = text(locale, "feed.more", count=burst.more_orders, amount=fmt.usd(rest_usd, locale))
        blocks.append(Paragraph(line(more)))
    return Reply(title=title, blocks=tuple(blocks), tone=tone)


def order_text(event: LiquidationEvent, locale: str, tz: tzinfo = UTC) -> str:
    """`🔴 Binance BTCUSDT · long liquidated · $1.20M at $80,000 · 12:00:05 UTC`."""
    return text(
        locale,
        "feed.order",
        mark=_SIDE_MARK[event.liquidated],
        venue=venue_name(event.venue),
        instrument=event.instrument,
        side=text(locale, f"side.{event.liquidated.value}"),
        amount=fmt.usd(event.notional_usd, locale),
        price=fmt.price(event.price),
        time=fmt.time_of_day(event.at_ms, locale, tz),
    )


def describe_feed(subscription: FeedSubscription, locale: str) -> str:
    """What a subscription sends: `orders of $100K or more on BTC, ETH`."""
    scope = listing(locale, subscription.assets) if subscription.assets else text(locale, "alert.scope_all")
    return text(locale, "feed.rule", amount=fmt.usd(subscription.min_usd, locale), scope=scope)
