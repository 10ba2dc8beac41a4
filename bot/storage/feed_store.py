"""Live feed subscriptions (/feed) in the liqbot database, on the connections of a
`Store` (table from migration 0010). Writes share the Store's write lock."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.feed import FeedSubscription
from bot.storage.sibling import SiblingStore

_COLUMNS = "chat_key, min_usd, assets, user_key, since_ms"


def _subscription_of(row: Sequence) -> FeedSubscription:
    chat_key, min_usd, assets, user_key, since_ms = row
    return FeedSubscription(chat_key, min_usd, tuple(assets.split()), user_key, since_ms)


class FeedStore(SiblingStore):
    """One feed subscription per chat."""

    async def set_feed(self, subscription: FeedSubscription) -> None:
        """Create or replace the chat's subscription."""
        s = subscription
        await self._db.execute(
            f"INSERT INTO feed_subscriptions ({_COLUMNS}) VALUES (?,?,?,?,?)"
            " ON CONFLICT (chat_key) DO UPDATE SET min_usd = excluded.min_usd, assets = excluded.assets,"
            " user_key = excluded.user_key, since_ms = excluded.since_ms",
            (s.chat_key, s.min_usd, " ".join(s.assets), s.user_key, s.since_ms),
        )
        await self._db.changed("feeds")

    async def remove_feed(self, chat_key: str) -> bool:
        """False when the chat had no feed."""
        removed = bool(await self._db.execute("DELETE FROM feed_subscriptions WHERE chat_key = ?", (chat_key,)))
        await self._db.changed("feeds")
        return removed

    async def feed(self, chat_key: str) -> FeedSubscription | None:
        rows = await self._db.fetch(f"SELECT {_COLUMNS} FROM feed_subscriptions WHERE chat_key = ?", (chat_key,))
        return _subscription_of(rows[0]) if rows else None

    async def feeds(self) -> list[FeedSubscription]:
        return [_subscription_of(r) for r in await self._db.fetch(f"SELECT {_COLUMNS} FROM feed_subscriptions ORDER BY chat_key")]
