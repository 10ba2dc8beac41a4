"""Where an open-interest backfill (`bot.feeds.market.MarketPoller.backfill`)
learns what is missing and puts what it fetched: a `HistoryStore`, which the
storage layer's `MarketStore` is; `NothingStored` for `liqbot record`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.core.market import MarketSample


class HistoryStore(Protocol):
    """Where backfilled open interest goes (`MarketStore`)."""

    async def open_interest_gaps(
        self, asset: str, venue: str, after_ms: int, before_ms: int, min_gap_ms: int
    ) -> list[tuple[int, int]]:
        """(after, before) instants between which no open interest of `asset` on
        `venue` is stored, each hole longer than `min_gap_ms`, within the two given."""
        ...

    async def add_backfill(self, samples: Sequence[MarketSample]) -> int:
        """Store samples unless one is stored at the same key; returns how many were new."""
        ...


class NothingStored:
    """The `HistoryStore` of `liqbot record`, which keeps responses, not samples:
    it has nothing, so a backfill asks for the whole window."""

    async def open_interest_gaps(
        self, asset: str, venue: str, after_ms: int, before_ms: int, min_gap_ms: int
    ) -> list[tuple[int, int]]:
        return [(after_ms, before_ms)]

    async def add_backfill(self, samples: Sequence[MarketSample]) -> int:
        return 0
