"""Fetching a venue's REST history of liquidations (its `HISTORY`, see
`bot.feeds.venues`), to fill the gaps of the stream it mirrors.

`HistoryFetcher.fetch(contracts, since_ms)` walks every series the venue asks
for (OKX: one per instrument family), newest page first, back to `since_ms`
or as far as the venue keeps it, and says from when on the history it read
is complete (`HistoryReport.complete_from_ms`): every order after that
instant was on a page it read. A series that failed (retries used up, a
body not as documented) makes the whole report claim nothing, so no stretch
is called backfilled on partial data; the orders it did read are still
returned (they are real and the store deduplicates them).

Requests share the venue's budget (`limit` per `window_ms`, times
`[feeds.backfill] budget_fraction`) and the one HTTP policy
(`bot.feeds.http_policy`): 429/418/403 wait out Retry-After (or a backoff),
as do 5xx, timeouts and the venue's rate-limit codes, up to `retries`. Each
page read is handed to `on_response` (a recorder's `on_rest`) under its path
and query, so a replay reads the same orders (`bot.feeds.recording`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson

from bot.core.models import LiquidationEvent
from bot.feeds.contract import HistoryPage, HistorySpec
from bot.feeds.errors import FrameError, shown
from bot.feeds.http_policy import BLOCKING_STATUSES, RequestBudget, backoff_delay, retry_after_s
from bot.feeds.instruments import ContractBook
from bot.feeds.market import query_path
from bot.feeds.marketdata import VenueError
from bot.feeds.settings import BackfillConfig

log = logging.getLogger(__name__)

# A Retry-After longer than this is treated as this: a backfill is worth little after an hour.
MAX_RETRY_AFTER_S = 3600.0

# on_response(venue, at_ms, path with query, body): every page read (a recorder's on_rest).
OnResponse = Callable[[str, int, str, object], Awaitable[None]]


@dataclass(slots=True)
class HistoryReport:
    """What one fetch read."""

    events: list[LiquidationEvent] = field(default_factory=list)
    # every order from here until the fetch started was read; None: nothing can be claimed
    complete_from_ms: int | None = None
    requests: int = 0
    pages: int = 0
    unpriced: int = 0  # orders without a contract size (not in `events`)
    failures: list[str] = field(default_factory=list)  # one line per series given up on


class _GaveUp(Exception):
    """A series could not be read: retries used up, or an answer that retrying cannot fix."""


class HistoryFetcher:
    """Reads one venue's liquidation history through a shared `httpx.AsyncClient`."""

    def __init__(
        self,
        venue: str,
        spec: HistorySpec,
        base_url: str,
        http: httpx.AsyncClient,
        settings: BackfillConfig,
        now_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        *,
        rng: Callable[[], float] = random.random,
        on_response: OnResponse | None = None,
    ) -> None:
        self.venue = venue
        self.spec = spec
        self._url = base_url.rstrip("/") + spec.path
        self._http = http
        self._settings = settings
        self._now_ms = now_ms
        self._sleep = sleep
        self._rng = rng
        self._on_response = on_response
        self._budget = RequestBudget(max(1.0, spec.limit * settings.budget_fraction), spec.window_ms)

    async def fetch(self, contracts: ContractBook | None, since_ms: int) -> HistoryReport:
        """Every series back to `since_ms` (or the venue's horizon). Never raises but CancelledError."""
        report = HistoryReport()
        started_ms = self._now_ms()
        complete_from = started_ms - self.spec.horizon_ms
        failed = False
        for query in self.spec.queries(contracts):
            try:
                series_from = await self._series(query, contracts, since_ms, started_ms, report)
            except _GaveUp as error:
                failed = True
                report.failures.append(str(error))
                log.warning("backfill %s: %s", self.venue, error)
                continue
            complete_from = max(complete_from, series_from)
        report.complete_from_ms = None if failed else complete_from
        return report

    async def _series(
        self, query: dict[str, str], contracts: ContractBook | None, since_ms: int, started_ms: int,
        report: HistoryReport,
    ) -> int:
        """Read one series newest first; the instant from which it is complete."""
        oldest_ms: int | None = None
        for _ in range(self._settings.max_pages):
            page = await self._page(query, contracts, report)
            report.events += page.events
            report.unpriced += page.unpriced
            if page.oldest_ms is not None and page.oldest_ms <= since_ms:
                return page.oldest_ms  # reached back far enough
            older = self.spec.older(query, page)
            if older is None:
                return started_ms - self.spec.horizon_ms  # the venue keeps nothing older
            if oldest_ms is not None and page.oldest_ms >= oldest_ms:
                # The cursor did not move (a venue ignoring it): what was read is all we get.
                return oldest_ms
            oldest_ms, query = page.oldest_ms, older
        return oldest_ms if oldest_ms is not None else started_ms

    async def _page(self, query: dict[str, str], contracts: ContractBook | None, report: HistoryReport) -> HistoryPage:
        """One page, read by the venue's parser, within the budget, with retries."""
        path = query_path(self.spec.path, query)
        attempt = 0
        while True:
            await self._take_budget()
            report.requests += 1
            wait_s, problem = None, ""
            try:
                response = await self._http.get(self._url, params=query, timeout=self._settings.request_timeout_s)
            except httpx.TransportError as error:  # timeouts, refused/reset connections
                problem = f"{path}: {type(error).__name__}"
            except httpx.HTTPError as error:
                raise _GaveUp(f"{path}: {type(error).__name__}") from None
            else:
                status = response.status_code
                if status == 200:
                    at_ms = self._now_ms()
                    body = _json(path, response)
                    try:
                        page = self.spec.page(body, contracts)
                    except VenueError as error:
                        if not error.rate_limited:
                            raise _GaveUp(f"{path}: {error}") from None
                        problem = f"{path}: {error}"
                    except FrameError as error:
                        raise _GaveUp(f"{path}: malformed: {error}") from None
                    else:
                        report.pages += 1
                        if self._on_response is not None:
                            await self._on_response(self.venue, at_ms, path, body)
                        return page
                elif status in BLOCKING_STATUSES or status >= 500:
                    problem = f"{path}: HTTP {status}"
                    wait_s = retry_after_s(response.headers.get("Retry-After"), self._now_ms(), MAX_RETRY_AFTER_S)
                else:
                    raise _GaveUp(f"{path}: HTTP {status} {shown(response.text)}")
            if attempt >= self._settings.retries:
                raise _GaveUp(f"{problem}, giving up after {attempt + 1} attempts")
            attempt += 1
            delay = backoff_delay(attempt, self._settings.backoff_base_s, self._settings.backoff_max_s, self._rng())
            delay = max(delay, wait_s or 0.0)
            log.info("backfill %s: %s, retry %d in %.1f s", self.venue, problem, attempt, delay)
            await self._sleep(delay)

    async def _take_budget(self) -> None:
        while True:
            now = self._now_ms()
            wait_ms = self._budget.wait_ms(1, now)
            if wait_ms == 0:
                self._budget.spend(1, now)
                return
            await self._sleep(wait_ms / 1000)


def _json(path: str, response: httpx.Response) -> object:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise _GaveUp(f"{path}: not JSON: {shown(response.content[:60])}") from None
