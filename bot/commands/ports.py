"""What command handlers need from the rest of the bot, as protocols. The
composition root passes implementations in; commands never import storage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.core.models import LiquidationEvent, Window
from bot.core.risk import RiskReport
from bot.core.status import StatusReport
from bot.core.summary import Summary


class DataPort(Protocol):
    async def summary(self, asset: str | None, window: Window) -> Summary: ...

    async def largest(self, asset: str | None, window: Window, limit: int) -> list[LiquidationEvent]: ...

    def silent_streams(self) -> tuple[tuple[str, str], ...]: ...

    async def status(self, now_ms: int) -> StatusReport: ...

    async def assets(self) -> list[str]: ...

    async def chat_locale(self, chat_key: str) -> str | None: ...

    async def set_chat_locale(self, chat_key: str, locale: str, now_ms: int) -> None: ...

    async def chat_timezone(self, chat_key: str) -> str | None: ...

    async def set_chat_timezone(self, chat_key: str, tz: str | None, now_ms: int) -> None: ...


class RiskPort(Protocol):
    async def report(self, asset: str, now_ms: int) -> RiskReport: ...


async def _always_admin() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a command, where. Built by each adapter from a platform event."""

    platform: str  # "telegram", "discord", "console"
    chat_key: str  # platform-qualified: "telegram:-1001234"
    user_key: str  # platform-qualified: "telegram:42"
    is_group: bool = False
    rate_limited: bool = True  # the local console is not
    # Asked only when a command needs admin rights (a network call on chat platforms).
    is_admin: Callable[[], Awaitable[bool]] = _always_admin
