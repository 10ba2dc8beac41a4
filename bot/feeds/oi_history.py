"""Where the market poller's history fills (`bot.feeds.market_history`) learn
what is missing and put what they fetched: open interest in a `HistoryStore`
(the storage layer's `MarketStore`), klines in a `KlineSink` (its `KlineStore`);
`NothingStored` is both for `liqbot record`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.core.bars import Kline
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


class KlineSink(Protocol):
    """Where fetched klines go (`KlineStore`)."""

    async def kline_gaps(
        self, asset: str, venue: str, after_ms: int, before_ms: int, interval_ms: int
    ) -> list[tuple[int, int]]:
        """(after, before) instants between which klines of `asset` on `venue` are missing."""
        ...

    async def add_klines(self, klines: Sequence[Kline]) -> int:
        """Store klines; returns how many were written."""
        ...


class NothingStored:
    """The `HistoryStore` and `KlineSink` of `liqbot record`, which keeps responses,
    not samples: it has nothing, so a fill asks for the whole window."""

    async def open_interest_gaps(
        self, asset: str, venue: str, after_ms: int, before_ms: int, min_gap_ms: int
    ) -> list[tuple[int, int]]:
        return [(after_ms, before_ms)]

    async def add_backfill(self, samples: Sequence[MarketSample]) -> int:
        return 0

    async def kline_gaps(
        self, asset: str, venue: str, after_ms: int, before_ms: int, interval_ms: int
    ) -> list[tuple[int, int]]:
        return [(after_ms, before_ms)]

    async def add_klines(self, klines: Sequence[Kline]) -> int:
        return 0
