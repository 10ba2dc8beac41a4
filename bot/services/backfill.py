"""Backfill: on start and after every reconnect, fill what a stream missed from
its venue's REST history of liquidations (`bot.feeds.backfill`).

`Backfiller` is a FeedSink that only listens to `on_connected`: a connect of a
stream whose venue has a `HISTORY` makes that stream due. After `delay_s`
(the new connection's span is stored by then) it reads the stream's spans of
the venue's horizon (a day for OKX) up to that connect, live and backfilled,
and takes what neither covers as missing: on a fresh install the whole day,
later the gap a disconnect left. If any stretch is missing it fetches the
history and:

- stores every order read with `Store.add_events`, the live ingest's write
  (one transaction, rows deduplicated on the store's key, rollups updated), so
  an order the live feed also delivered is stored once and `/liq` counts it
  once. A replay of the recorded pages stores exactly these orders.
- records each missing stretch the history covers completely as backfilled
  (`Store.add_backfilled_span`): `/status` lists it under "backfilled" and
  `/liq`'s coverage note no longer calls it a gap.

Backfilled orders never reach the live sinks (alerts, the silence watch): an
alert is news, and an order from an hour ago is not. Alert windows seeded at
start (`AlertService.start`) read the rollups, so they include backfilled
orders after a restart.

A backfill that could not finish (the venue refused or answered garbage past
the retries) marks nothing and is tried again after `retry_s`; nothing here
stops the feeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from bot.core.models import LiquidationEvent, Window
from bot.core.summary import coverage_of
from bot.feeds.backfill import HistoryFetcher, OnResponse
from bot.feeds.instruments import ContractBook
from bot.feeds.session import NowMs, Sleep
from bot.feeds.settings import BackfillConfig
from bot.feeds.venues import HISTORIES, stream_spec
from bot.storage.store import Store

log = logging.getLogger(__name__)

StreamKey = tuple[str, str]
# A day of history is written in transactions of this many events, so live writes are never held up long.
WRITE_CHUNK_EVENTS = 5_000
# (venue, stream) -> the contract book its live parser prices with now (None: not loaded yet)
ContractsOf = Callable[[str, str], ContractBook | None]


@dataclass(slots=True)
class BackfillStats:
    runs: int = 0  # backfills that found something missing
    completed: int = 0  # ... and covered it
    failed: int = 0
    stored: int = 0
    duplicates: int = 0
    requests: int = 0
    stretches: int = 0  # stretches recorded as backfilled


class Backfiller:
    """Fills the gaps of the streams in `fetchers`; run `run()` while the feeds run."""

    def __init__(
        self,
        store: Store,
        fetchers: Mapping[StreamKey, HistoryFetcher],
        contracts_of: ContractsOf,
        settings: BackfillConfig,
        *,
        now_ms: NowMs,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._fetchers = dict(fetchers)
        self._contracts_of = contracts_of
        self._settings = settings
        self._now_ms = now_ms
        self._sleep = sleep
        self._due: dict[StreamKey, int] = {}  # stream -> the connect to fill up to
        self._wake = asyncio.Event()
        self.stats = BackfillStats()

    @property
    def streams(self) -> list[StreamKey]:
        return list(self._fetchers)

    # -- FeedSink: a connect makes the stream due --------------------------

    async def on_connected(self, venue: str, stream: str, at_ms: int) -> None:
        if (venue, stream) in self._fetchers:
            self._due[venue, stream] = at_ms
            self._wake.set()

    async def on_frame(self, venue: str, stream: str, at_ms: int, frame: object) -> None:
        pass

    async def on_events(self, venue: str, stream: str, events: list[LiquidationEvent]) -> None:
        pass

    async def on_disconnected(self, venue: str, stream: str, at_ms: int, reason: str) -> None:
        pass

    async def on_rest(self, venue: str, at_ms: int, path: str, body: object) -> None:
        pass

    # -- the work ---------------------------------------------------------------

    async def run(self) -> None:
        """Backfill each stream that became due, one at a time, until cancelled."""
        while True:
            if not self._due:
                await self._wake.wait()
                self._wake.clear()
                continue
            await self._sleep(self._settings.delay_s)
            key = next(iter(self._due))
            until_ms = self._due.pop(key)  # the latest connect, if it reconnected meanwhile
            if not await self.fill(*key, until_ms):
                await self._sleep(self._settings.retry_s)
                self._due.setdefault(key, until_ms)

    async def fill(self, venue: str, stream: str, until_ms: int) -> bool:
        """Fill what the stream misses of the venue's horizon before `until_ms`.
        True when nothing is missing any more (or nothing was); never raises but CancelledError."""
        try:
            return await self._fill(venue, stream, until_ms)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug, or the store failing: log, try again later
            self.stats.failed += 1
            log.exception("backfill %s/%s failed", venue, stream)
            return False

    async def _fill(self, venue: str, stream: str, until_ms: int) -> bool:
        fetcher = self._fetchers[venue, stream]
        horizon = Window(until_ms - fetcher.spec.horizon_ms, until_ms)
        own = [s for s in await self._store.spans(horizon) if (s.venue, s.stream) == (venue, stream)]
        min_gap_ms = self._settings.min_gap_s * 1000
        missing = [(start, end) for start, end in coverage_of(horizon, own).unrecorded if end - start >= min_gap_ms]
        if not missing:
            return True
        contracts = self._contracts_of(venue, stream)
        if contracts is None and stream_spec(venue, stream).metadata:  # it prices with a book not loaded yet
            log.info("backfill %s/%s: no contract sizes yet; later", venue, stream)
            return False
        stats = self.stats
        stats.runs += 1
        report = await fetcher.fetch(contracts, since_ms=missing[0][0])
        stats.requests += report.requests
        inserted = duplicates = 0
        for start in range(0, len(report.events), WRITE_CHUNK_EVENTS):
            result = await self._store.add_events(report.events[start : start + WRITE_CHUNK_EVENTS])
            inserted, duplicates = inserted + result.inserted, duplicates + result.duplicates
        stats.stored += inserted
        stats.duplicates += duplicates
        covered = [
            (max(start, report.complete_from_ms), end)
            for start, end in missing
            if report.complete_from_ms is not None and max(start, report.complete_from_ms) < end
        ]
        for start, end in covered:
            await self._store.add_backfilled_span(venue, stream, start, end)
        stats.stretches += len(covered)
        log.info(
            "backfill %s/%s: %d stretch(es) missing (%.0f min), %d request(s), %d order(s) read:"
            " %d stored, %d already stored%s; %d stretch(es) now backfilled",
            venue, stream, len(missing), sum(end - start for start, end in missing) / 60_000, report.requests,
            len(report.events), inserted, duplicates,
            f", {report.unpriced} without a contract size" if report.unpriced else "", len(covered),
        )
        if report.complete_from_ms is None:
            stats.failed += 1
            return False
        stats.completed += 1
        return True


def build_backfiller(
    feeds: object,
    store: Store,
    http: httpx.AsyncClient,
    *,
    contracts_of: ContractsOf,
    on_response: OnResponse,
    now_ms: NowMs,
    sleep: Sleep = asyncio.sleep,
) -> Backfiller | None:
    """A Backfiller for every enabled venue with a `HISTORY` (`feeds` is a
    FeedsConfig: `[feeds.backfill]` and each venue's REST base); None when
    backfill is off or no such venue is enabled."""
    settings: BackfillConfig = feeds.backfill  # type: ignore[attr-defined]
    if not settings.enabled:
        return None
    fetchers = {
        (venue, spec.stream): HistoryFetcher(
            venue, spec, getattr(getattr(feeds, venue), spec.rest_url_key), http, settings, now_ms, sleep,
            on_response=on_response,
        )
        for venue, spec in HISTORIES.items()
        if getattr(feeds, venue).enabled
    }
    if not fetchers:
        return None
    return Backfiller(store, fetchers, contracts_of, settings, now_ms=now_ms, sleep=sleep)
