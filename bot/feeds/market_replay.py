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
(`MarketReplayer.backfilled`). So are the klines' (`KLINES`, read by their
pure `klines`: `MarketReplayer.klines`) and the margin tiers' (`MARGINS`, of
any venue, market-polled or not: `MarketReplayer.margin_rates`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from bot.core.bars import Kline
from bot.core.market import MarketSample
from bot.feeds.contract import Collector
from bot.feeds.margin_tiers import rates_of
from bot.feeds.market import has_measure, query_path
from bot.feeds.marketdata import MarketDataError
from bot.feeds.venues import BY_NAME, KLINES, MARGINS, history_of


def is_market_path(venue: str, path: str) -> bool:
    """A REST path of `venue` that is market data (not contract metadata)."""
    module = BY_NAME.get(venue)
    endpoint = path.partition("?")[0]
    if module is not None and venue in MARGINS and endpoint == MARGINS[venue].path:
        return True
    return (
        module is not None and module.MARKET is not None
        and endpoint not in module.METADATA and history_of(venue, path) is None
    )


def _fill_paths(venue: str) -> set[str]:
    """The paths of `venue` that history fills and margin-tier reads ask (no collector's)."""
    market = BY_NAME[venue].MARKET
    paths = set(market.open_interest_history.paths) if market and market.open_interest_history else set()
    paths |= set(KLINES[venue].paths) if venue in KLINES else set()
    return paths | ({MARGINS[venue].path} if venue in MARGINS else set())


def _responses(poll: MarketPoll, paths: tuple[str, ...]) -> list[tuple[str, dict[str, str], object]]:
    """(path, query, body) of the poll's responses to `paths`."""
    found = []
    for key, body in poll.responses.items():
        path, _, query = key.partition("?")
        if path in paths:
            found.append((path, dict(parse_qsl(query)), body))
    return found


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
        """The samples of the poll's collector responses (none when it holds only a fill's)."""
        fills = _fill_paths(poll.venue)
        if BY_NAME[poll.venue].MARKET is None or all(key.partition("?")[0] in fills for key in poll.responses):
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
        market = BY_NAME[poll.venue].MARKET
        history = market.open_interest_history if market is not None else None
        return self._read(poll, history.paths, history.samples) if history is not None else []

    def klines(self, poll: MarketPoll) -> list[Kline]:
        """The klines the poll's kline responses hold ([] without any), like `backfilled`."""
        spec = KLINES.get(poll.venue)
        return self._read(poll, spec.paths, spec.klines) if spec is not None else []

    def margin_rates(self, poll: MarketPoll) -> list[tuple[str, str, float]]:
        """(asset, venue, lowest-tier maintenance margin rate) of the poll's margin-tier responses."""
        return rates_of(poll.venue, list(poll.responses.items()), self._assets)

    def _read(self, poll: MarketPoll, paths: tuple[str, ...], read: Callable[[list], list]) -> list:
        responses = _responses(poll, paths)
        if not responses:
            return []
        try:
            return read(responses)
        except MarketDataError:
            self.failed_polls += 1
            return []
