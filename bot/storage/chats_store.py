"""Each chat's settings (language, time zone, whether liqbot can still post there)
in the liqbot database (tables from migrations 0001 and 0006).

Every command asks for its chat's language and zone. On SQLite one process
makes every change, through this store, so both are cached (keep one
`ChatsStore` per install: `Store.chats`); on PostgreSQL any replica may change
them, so each read goes to the database. Alerts and the live feed read the
settings of all the chats of a pass at once (`settings`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.storage.sibling import SiblingStore

# Chat keys per `IN (...)` list (SQLite's default cap on parameters is 32,766).
KEYS_PER_READ = 500


@dataclass(frozen=True, slots=True)
class ChatSettings:
    active: bool = True  # False once the platform said liqbot can no longer post there
    locale: str | None = None  # None: the install's default
    tz: str | None = None  # None: UTC


class ChatsStore(SiblingStore):
    def __init__(self, storage) -> None:
        super().__init__(storage)
        self._caches_settings = self._db.backend == "sqlite"
        self._locales: dict[str, str | None] = {}
        self._timezones: dict[str, str | None] = {}

    async def set_locale(self, chat_key: str, locale: str, now_ms: int) -> None:
        await self._db.execute(
            "INSERT INTO chats (chat_key, locale, updated_ms) VALUES (?,?,?)"
            " ON CONFLICT (chat_key) DO UPDATE SET locale = excluded.locale, updated_ms = excluded.updated_ms",
            (chat_key, locale, now_ms),
        )
        if self._caches_settings:
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
        if self._caches_settings:
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
        if chat_key in cache:
            return cache[chat_key]
        row = await self._db.fetchone(sql, (chat_key,))
        value = row[0] if row else None
        if not self._caches_settings:
            return value
        # setdefault: a write that landed while this read was in flight wins.
        return cache.setdefault(chat_key, value)

    async def settings(self, chat_keys: Iterable[str]) -> dict[str, ChatSettings]:
        """Each chat's settings, read in two queries per `KEYS_PER_READ` chats."""
        keys = sorted(set(chat_keys))
        found: dict[str, dict] = {key: {} for key in keys}
        for first in range(0, len(keys), KEYS_PER_READ):
            chunk = keys[first:first + KEYS_PER_READ]
            marks = ",".join("?" * len(chunk))
            for key, active, locale in await self._db.fetch(
                f"SELECT chat_key, active, locale FROM chats WHERE chat_key IN ({marks})", chunk
            ):
                found[key].update(active=bool(active), locale=locale)
            for key, tz in await self._db.fetch(
                f"SELECT chat_key, tz FROM chat_timezones WHERE chat_key IN ({marks})", chunk
            ):
                found[key]["tz"] = tz
        return {key: ChatSettings(**values) for key, values in found.items()}

