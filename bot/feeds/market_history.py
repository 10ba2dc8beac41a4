"""The market poller's history fills (mixed into `bot.feeds.market.MarketPoller`,
whose docstring says when they run): the open-interest backfill and the klines
the levels model's bars are built from.

Both work the same way: ask the store for the holes in what it has of one
asset on one venue, fetch what falls in them through the poller's budgeted,
recorded requests, and store what the venue's pure reader makes of the
responses. A rate limit or a venue that is down ends the fill and leaves it due
for the next cycle; a malformed response is counted and skips that asset.

Klines (`bot.feeds.venues.KLINES`, with `klines` a `KlineSink`): on the
poller's first cycle, and after a gap that makes the open-interest backfill
due, the holes of the whole `backfill_days`; then, each time a kline has
closed, the holes of the last `KLINE_TAIL_MS` (so a kline a venue published
late is picked up at the next close). A kline is asked `KLINE_SETTLE_MS` after
it closed: the venues' statistics (OKX's taker volume) lag their candles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.feeds.contract import OpenInterestResponse
from bot.feeds.marketdata import MarketDataError, VenueError
from bot.feeds.venues import BY_NAME, KLINES

log = logging.getLogger(__name__)

KLINE_TAIL_MS = HOUR_MS
KLINE_SETTLE_MS = 2 * MINUTE_MS


class Blocked(Exception):
    """The venue told us to stop for a while: abandon the rest of this poll."""


class RequestFailed(Exception):
    """One request failed for good (retries exhausted, or a client error).

    `venue_down`: 5xx / timeouts / connection errors outlasted the retries, so
    the rest of the poll is abandoned rather than retried request by request.
    """

    def __init__(self, message: str, venue_down: bool = False) -> None:
        super().__init__(message)
        self.venue_down = venue_down


@dataclass(frozen=True, slots=True)
class _Fill:
    """One kind of history of one venue: what is missing, how to fetch it, where it goes."""

    gaps: Callable[[str, int, int], Awaitable[list[tuple[int, int]]]]  # (asset, since, until) -> holes
    fetch: Callable[..., Awaitable[None]]  # a spec's fetch(api, asset, after, before, into)
    store: Callable[[Sequence[OpenInterestResponse]], Awaitable[int]]


class HistoryFills:
    """`MarketPoller.backfill` and `MarketPoller.follow_klines`."""

    async def backfill(self, venue: str) -> int:
        """Fetch and store the open-interest history `history` lacks for each
        tracked asset of `venue`; returns the points stored. Never raises."""
        spec = BY_NAME[venue].MARKET.open_interest_history
        self._backfill_due[venue] = False
        if self._history is None or spec is None:
            return 0
        history = self._history
        min_gap_ms = round(self.settings.backfill_gap_s * 1000)
        at_ms = self._now_ms()
        reach_ms = round(self.settings.backfill_days * DAY_MS)
        if spec.reach_ms is not None:
            reach_ms = min(reach_ms, spec.reach_ms)
        fill = _Fill(
            gaps=lambda asset, since, until: history.open_interest_gaps(asset, venue, since, until, min_gap_ms),
            fetch=spec.fetch,
            store=lambda responses: self._store_history(venue, history.add_backfill, spec.samples(responses)),
        )
        stored, finished = await self._fill(venue, fill, at_ms, at_ms - reach_ms, at_ms)
        self._backfill_due[venue] = not finished
        self.stats[venue].backfilled += stored
        if stored:
            log.info("market %s: backfilled %d open-interest points", venue, stored)
        return stored

    async def follow_klines(self, venue: str) -> int:
        """Fetch and store the closed klines `klines` lacks (see the module
        docstring for which); returns the klines stored. Never raises."""
        spec = KLINES.get(venue)
        if self._klines is None or spec is None:
            return 0
        sink = self._klines
        at_ms = self._now_ms()
        until_ms = at_ms - KLINE_SETTLE_MS - spec.interval_ms + 1  # klines opening before it have closed
        closed = until_ms // spec.interval_ms
        full = self._klines_full_due.get(venue, True)
        if not full and self._klines_seen.get(venue) == closed:
            return 0  # no kline closed since the last fill
        reach_ms = round(self.settings.backfill_days * DAY_MS) if full else KLINE_TAIL_MS
        if spec.reach_ms is not None:
            reach_ms = min(reach_ms, spec.reach_ms)
        fill = _Fill(
            gaps=lambda asset, since, until: sink.kline_gaps(asset, venue, since, until, spec.interval_ms),
            fetch=spec.fetch,
            store=lambda responses: self._store_history(venue, sink.add_klines, spec.klines(responses)),
        )
        stored, finished = await self._fill(venue, fill, at_ms, until_ms - reach_ms, until_ms)
        if finished:
            self._klines_full_due[venue] = False
            self._klines_seen[venue] = closed
        self.stats[venue].klines += stored
        return stored

    async def _fill(self, venue: str, fill: _Fill, at_ms: int, since_ms: int, until_ms: int) -> tuple[int, bool]:
        """(what was stored, whether every asset was filled) of one fill; never raises."""
        api = self._venue_api(venue, at_ms)
        stored = 0
        try:
            for asset in self._assets:
                stored += await self._fill_asset(venue, fill, api, asset, since_ms, until_ms)
        except asyncio.CancelledError:
            raise
        except (Blocked, RequestFailed):  # rate limited or down: again next cycle
            return stored, False
        except Exception as error:  # a bug, not a venue: keep polling, loudly
            self.stats[venue].last_error = f"{type(error).__name__}: {error}"
            log.exception("market %s: history fill failed", venue)
        return stored, True

    async def _fill_asset(self, venue: str, fill: _Fill, api, asset: str, since_ms: int, until_ms: int) -> int:
        """Fill the holes of one asset; raises Blocked / RequestFailed (venue down) to stop the fill."""
        stored = 0
        for after_ms, before_ms in await fill.gaps(asset, since_ms, until_ms):
            responses: list = []
            problem: Exception | None = None
            try:
                await fill.fetch(api, asset, after_ms, before_ms, responses)
            except (Blocked, RequestFailed, MarketDataError) as error:
                problem = error
            stored += await fill.store(responses)
            if problem is not None:
                self._fill_failed(venue, problem)
                return stored
        return stored

    def _fill_failed(self, venue: str, error: Exception) -> None:
        """Count a failed history request; re-raise what stops the whole fill."""
        if isinstance(error, Blocked):
            raise error
        if isinstance(error, RequestFailed):
            self.stats[venue].last_error = str(error)
            if error.venue_down:
                raise error
        elif isinstance(error, VenueError) and error.rate_limited:
            self._block(venue, 429, None, str(error))
            raise Blocked from None
        else:
            self._malformed(venue, error)

    async def _store_history(self, venue: str, store: Callable[[list], Awaitable[int]], found: list) -> int:
        if not found:
            return 0
        try:
            return await store(found)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats[venue].sink_errors += 1
            log.exception("market %s: storing %d backfilled rows failed", venue, len(found))
            return 0
