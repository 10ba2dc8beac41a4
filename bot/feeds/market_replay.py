"""Market data in recordings: the poller's REST responses, replayed through the
same venue collectors that handled them live.

A recording's `rest` line whose path is not one of the venue's contract
metadata paths nor its liquidation history (`HISTORY`), from a venue with
market polling (`MARKET`), is a market response. Its `path` carries the query exactly as the collector asked for it
(`/fapi/v1/openInterest?symbol=BTCUSDT`) and its `at` is the instant of the
poll it belongs to, so the lines of one poll share (venue, at). Replaying a
poll runs the venue's collector against those bodies: a request the poll did
not record fails like a failed request would (the main one ends the poll, a
secondary one leaves its measure empty), and the samples come out as the live
poll's did. Old recordings without market lines replay as before.

An open-interest backfill's responses (the paths of the venue's
`MARKET.open_interest_history`) are recorded the same way, stamped with the
backfill's start; replay hands them to the venue's pure `samples`, as live did
(`MarketReplayer.backfilled`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from bot.core.market import MarketSample
from bot.feeds.contract import Collector
from bot.feeds.market import has_measure, query_path
from bot.feeds.marketdata import MarketDataError
from bot.feeds.venues import BY_NAME, history_of


def is_market_path(venue: str, path: str) -> bool:
    """A REST path of `venue` that is market data (not contract metadata)."""
    module = BY_NAME.get(venue)
    return (
        module is not None and module.MARKET is not None
        and path.partition("?")[0] not in module.METADATA and history_of(venue, path) is None
    )


@dataclass(slots=True)
class MarketPoll:
    """The recorded responses of one poll of one venue."""

    venue: str
    at_ms: int
    responses: dict[str, object] = field(default_factory=dict)  # query_path -> body


class _RecordedApi:
    """A `MarketApi` answering from one recorded poll."""

    def __init__(self, poll: MarketPoll) -> None:
        self._poll = poll

    async def get(self, path: str, params: dict[str, str] | None) -> Any:
        key = query_path(path, params)
        if key not in self._poll.responses:
            raise MarketDataError(f"{self._poll.venue} {key} was not recorded in this poll")
        return self._poll.responses[key]

    async def optional(self, path: str, params: dict[str, str] | None, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(await self.get(path, params))
        except MarketDataError:
            return None


class MarketReplayer:
    """Turns recorded polls into samples, one collector per venue (they keep state
    across polls, e.g. Binance's funding intervals, as they do live)."""

    def __init__(self, assets: Sequence[str]) -> None:
        self._assets = list(assets)
        self._collectors: dict[str, Collector] = {}
        self.polls = 0
        self.failed_polls = 0

    async def samples(self, poll: MarketPoll) -> list[MarketSample]:
        """The samples of the poll's collector responses (none when it holds only a backfill's)."""
        history = BY_NAME[poll.venue].MARKET.open_interest_history
        if history is not None and all(key.partition("?")[0] in history.paths for key in poll.responses):
            return []
        collector = self._collectors.get(poll.venue)
        if collector is None:
            collector = self._collectors[poll.venue] = BY_NAME[poll.venue].MARKET.collector()
        found: dict[str, MarketSample] = {}
        self.polls += 1
        try:
            await collector(_RecordedApi(poll), self._assets, poll.at_ms, found)
        except MarketDataError:
            self.failed_polls += 1  # what was collected before the failure is kept, as live
        return [sample for sample in found.values() if has_measure(sample)]

    def backfilled(self, poll: MarketPoll) -> list[MarketSample]:
        """The open-interest history the poll's backfill responses hold ([] without any).

        A malformed body cannot be in a recording made live (the backfill checks each
        before keeping it); one edited in is left out and counted in `failed_polls`.
        """
        history = BY_NAME[poll.venue].MARKET.open_interest_history
        if history is None:
            return []
        responses = []
        for key, body in poll.responses.items():
            path, _, query = key.partition("?")
            if path in history.paths:
                responses.append((path, dict(parse_qsl(query)), body))
        if not responses:
            return []
        try:
            return history.samples(responses)
        except MarketDataError:
            self.failed_polls += 1
            return []
