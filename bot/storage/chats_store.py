"""Each chat's settings (language, time zone, whether liqbot can still post there)
in the liqbot database (tables from migrations 0001 and 0006).

Every command asks for its chat's language and zone, and only this store
changes them, so both are cached: keep one `ChatsStore` per install (`Store.chats`).
"""

from __future__ import annotations

from bot.storage.sibling import SiblingStore


class ChatsStore(SiblingStore):
    def __init__(self, storage) -> None:
        super().__init__(storage)
        self._locales: dict[str, str | None] = {}
        self._timezones: dict[str, str | None] = {}

    async def set_locale(self, chat_key: str, locale: str, now_ms: int) -> None:
        await self._db.execute(
            "INSERT INTO chats (chat_key, locale, updated_ms) VALUES (?,?,?)"
            " ON CONFLICT (chat_key) DO UPDATE SET locale = excluded.locale, updated_ms = excluded.updated_ms",
            (chat_key, locale, now_ms),
        )
        self._locales[chat_key] = locale

    async def set_timezone(self, chat_key: str, tz: str | None, now_ms: int) -> None:
        """The chat's own IANA zone for every time shown; None goes back to UTC."""
        if tz is None:
            await self._db.execute("DELETE FROM chat_timezones WHERE chat_key = ?", (chat_key,))
        else:
            await self._db.execute(
                "INSERT INTO chat_timezones (chat_key, tz, updated_ms) VALUES (?,?,?)"
                " ON CONFLICT (chat_key) DO UPDATE SET tz = excluded.tz, updated_ms = excluded.updated_ms",
                (chat_key, tz, now_ms),
            )
        self._timezones[chat_key] = tz

    async def set_active(self, chat_key: str, active: bool, now_ms: int) -> None:
        await self._db.execute(
            "INSERT INTO chats (chat_key, active, updated_ms) VALUES (?,?,?)"
            " ON CONFLICT (chat_key) DO UPDATE SET active = excluded.active, updated_ms = excluded.updated_ms",
            (chat_key, int(active), now_ms),
        )

    async def locale(self, chat_key: str) -> str | None:
        return await self._cached(self._locales, "SELECT locale FROM chats WHERE chat_key = ?", chat_key)

    async def timezone(self, chat_key: str) -> str | None:
        return await self._cached(self._timezones, "SELECT tz FROM chat_timezones WHERE chat_key = ?", chat_key)

    async def _cached(self, cache: dict[str, str | None], sql: str, chat_key: str) -> str | None:
        if chat_key not in cache:
            row = await self._db.fetchone(sql, (chat_key,))
            # setdefault: a write that landed while this read was in flight wins.
            cache.setdefault(chat_key, row[0] if row else None)
        return cache[chat_key]

    async def active(self, chat_key: str) -> bool:
        row = await self._db.fetchone("SELECT active FROM chats WHERE chat_key = ?", (chat_key,))
        return bool(row[0]) if row else True

