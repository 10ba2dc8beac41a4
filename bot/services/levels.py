"""Estimated liquidation levels kept up to date from storage (the model is
`bot.core.levels`, its bars `bot.core.bars`).

Each asset's book folds in every closed bar since the last one it saw, built
from the stored klines and market samples; a fresh book starts `warmup_days`
back (so an install with an open-interest and kline backfill has levels at
once). New positions are placed with the asset's maintenance margin rate: the
mean of the stored lowest-tier rates of `margin_venues`
(`bot.core.levels.venue_margin_rate`), else the configured one. Bands the
price crossed are graded against the liquidations stored in that bar and kept;
an hourly snapshot of the bands feeds the heatmap. Book, crossings and
snapshots are saved together, so a restart continues where it stopped.

`update` runs on the leader's schedule (every bar) and before each `/levels`
answer, so the console and a replayed database answer without a scheduler. A
bar is folded in `SETTLE_MS` after it closes, once its last kline (asked two
minutes after the kline's close) and its last open-interest poll are stored.
A follower replica never folds: it reads the book the leader saved, so every
replica shows the same levels and each band is graded once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.core.bars import bars_from_samples
from bot.core.levels import (
    Crossing,
    LevelBook,
    LevelSettings,
    LevelsView,
    Realized,
    realized_near,
    venue_margin_rate,
)
from bot.core.market import DEFAULT_TOLERANCE_MS
from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS, Side, Window
from bot.replies.levels import levels_note
from bot.storage.levels_inputs_store import KlineStore, MarginRateStore
from bot.storage.levels_store import LevelsStore
from bot.storage.market_store import MarketStore
from bot.storage.store import Store

log = logging.getLogger(__name__)

# Liquidations of one bar read for the grade; a 15-minute bar with more is a
# cascade whose smallest orders change the grade by less than the rounding.
GRADE_ORDERS_PER_BAR = 20_000
SHOWN_BANDS = 3
SETTLE_MS = 4 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class LevelsSettings:
    model: LevelSettings = LevelSettings()
    bar_ms: int = 15 * MINUTE_MS
    warmup_days: float = 7.0
    grade_tolerance: float = 0.005  # a liquidation within 0.5 % of a crossed band counts for it
    margin_venues: tuple[str, ...] = ()  # whose stored margin tiers set each asset's rate


class LevelsService:
    def __init__(
        self,
        store: Store,
        market: MarketStore,
        levels: LevelsStore,
        price_venues: Sequence[str],
        settings: LevelsSettings = LevelsSettings(),
        folds: Callable[[], bool] = lambda: True,
    ) -> None:
        """`folds()`: whether this replica folds bars in (the leader) or reads the saved book."""
        self._store = store
        self._folds = folds
        self._market = market
        self._levels = levels
        self._klines = KlineStore(store)
        self._margins = MarginRateStore(store)
        self._venues = tuple(price_venues)
        self.settings = settings
        self._books: dict[str, LevelBook] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def update(self, asset: str, now_ms: int) -> LevelBook:
        """Fold in every bar of `asset` closed by `now_ms`; returns the book."""
        if not self._folds():
            saved = await self._levels.book_state(asset)
            return LevelBook.from_dict(saved, self.settings.model) if saved else LevelBook(self.settings.model)
        lock = self._locks.setdefault(asset, asyncio.Lock())
        async with lock:
            book = await self._book(asset)
            bar_ms = self.settings.bar_ms
            start = book.last_close_ms or (now_ms - round(self.settings.warmup_days * DAY_MS))
            start = -(-start // bar_ms) * bar_ms  # a changed bar length starts after the last folded bar
            settled = now_ms - SETTLE_MS
            end = settled - settled % bar_ms
            if end - start < bar_ms:
                return book
            samples = []
            for venue in self._venues:
                samples += await self._market.series(asset, venue, start - DEFAULT_TOLERANCE_MS, end)
            klines = await self._klines.klines(asset, start - start % bar_ms, end)
            await self._follow_margin_rate(asset, book)
            graded: list[tuple[Crossing, float]] = []
            snapshots: list[tuple[int, dict]] = []
            for bar in bars_from_samples(samples, start, end, bar_ms, self._venues, klines=klines):
                try:
                    crossings = book.apply(bar)
                except ValueError as error:  # a venue's kline out of order: that bar only is skipped
                    log.warning("levels %s: bar at %d skipped: %s", asset, bar.open_ms, error)
                    continue
                if crossings:
                    graded += zip(crossings, await self._realized(asset, crossings, bar.open_ms, bar.close_ms))
                if bar.open_ms // HOUR_MS != bar.close_ms // HOUR_MS:  # each hour's last bar, whatever its length
                    snapshots.append((bar.close_ms, book.to_dict()))
            if book.last_close_ms is None:
                return book  # nothing recorded yet: nothing to save
            await self._levels.save(asset, book.to_dict(), graded, snapshots, now_ms)
            return book

    async def update_all(self, assets: Sequence[str], now_ms: int) -> None:
        for asset in assets:
            await self.update(asset, now_ms)

    async def view(self, asset: str, now_ms: int) -> LevelsView:
        book = await self.update(asset, now_ms)
        price, at_ms = await self._price_now(asset, now_ms)
        if price is None:
            price, at_ms = book.last_close, book.last_close_ms
        grade_7d = await self._levels.grade(asset, now_ms - 7 * DAY_MS, now_ms)
        grade_30d = await self._levels.grade(asset, now_ms - 30 * DAY_MS, now_ms)
        longs = shorts = ()
        if price is not None:
            longs = tuple(book.densest(Side.LONG, price, SHOWN_BANDS))
            shorts = tuple(book.densest(Side.SHORT, price, SHOWN_BANDS))
        return LevelsView(
            asset=asset,
            price=price,
            at_ms=at_ms,
            first_bar_ms=book.first_bar_ms,
            longs_below=tuple(sorted(longs, key=lambda b: -b.mid)),
            shorts_above=tuple(sorted(shorts, key=lambda b: b.mid)),
            grade_7d=grade_7d,
            grade_30d=grade_30d,
            tolerance=self.settings.grade_tolerance,
            leverage=self.settings.model.leverage_range,
        )

    async def note(self, asset: str, now_ms: int, locale: str) -> str | None:
        """The nearest dense band on each side in one line (the full digest); None without levels."""
        return levels_note(await self.view(asset, now_ms), locale)

    async def price_and_book(self, asset: str, now_ms: int) -> tuple[float, LevelBook] | None:
        """The price now and the asset's book (for `/alert near`); None before the first bar."""
        book = await self.update(asset, now_ms)
        price, _ = await self._price_now(asset, now_ms)
        price = price if price is not None else book.last_close
        return None if price is None or not book.long_usd else (price, book)

    async def columns(self, asset: str, window: Window, now_ms: int) -> list[tuple[int, LevelBook]]:
        """The saved hourly books of `window`, then a copy of the book now: the heatmap's
        columns (drawn in a thread while the next bar may be folded into the live book)."""
        book = await self.update(asset, now_ms)
        columns = [
            (at_ms, LevelBook.from_dict(state, self.settings.model))
            for at_ms, state in await self._levels.snapshots(asset, window.start_ms, window.end_ms)
        ]
        if book.last_close_ms is not None and (not columns or book.last_close_ms > columns[-1][0]):
            columns.append((book.last_close_ms, LevelBook.from_dict(book.to_dict(), book.settings)))
        return [(at_ms, column) for at_ms, column in columns if column.long_usd]

    async def _price_now(self, asset: str, now_ms: int) -> tuple[float | None, int | None]:
        """The newest mark price of the first venue that has one from the last few polls."""
        latest = await self._market.latest(asset, since_ms=now_ms - DEFAULT_TOLERANCE_MS)
        for venue in self._venues:
            sample = latest.get(venue)
            if sample is not None and sample.mark_price:
                return sample.mark_price, sample.at_ms
        return None, None

    async def _book(self, asset: str) -> LevelBook:
        book = self._books.get(asset)
        if book is None:
            saved = await self._levels.book_state(asset)
            book = LevelBook.from_dict(saved, self.settings.model) if saved else LevelBook(self.settings.model)
            self._books[asset] = book
        return book

    async def _follow_margin_rate(self, asset: str, book: LevelBook) -> None:
        """Place the book's new positions with the asset's current margin rate."""
        stored = await self._margins.rates(asset)
        rate = venue_margin_rate(
            (rate for venue, rate in stored.items() if venue in self.settings.margin_venues), self.settings.model
        )
        if rate != book.settings.maintenance_margin_rate:
            book.settings = replace(book.settings, maintenance_margin_rate=rate)

    async def _realized(self, asset: str, crossings: list[Crossing], open_ms: int, close_ms: int) -> list[float]:
        orders = await self._store.largest(asset, Window(open_ms, close_ms), GRADE_ORDERS_PER_BAR)
        realized = [Realized(o.at_ms, o.liquidated, o.price, o.notional_usd) for o in orders]
        return realized_near(crossings, realized, self.settings.grade_tolerance)
