"""What every venue's market-data parsers share: their errors and field checks.

The parsers themselves live in the venue modules (`bot.feeds.venues.<venue>`,
`MARKET`); each takes a decoded JSON body and returns `MarketSample`s or the
numbers that make one. Anything that is not what the venue documents raises
`MarketDataError`; a venue's error envelope raises `VenueError` (rate-limit
codes flagged). Entries for untracked symbols are skipped without checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping

from bot.feeds.errors import MAX_AT_MS, MIN_AT_MS, FrameError, shown


# -- errors -------------------------------------------------------------


class MarketDataError(FrameError):
    """A market-data response that is not what the venue documents."""


class VenueError(MarketDataError):
    """The venue answered with an error envelope (retCode / code != 0)."""

    def __init__(self, venue: str, code: object, message: object, rate_limited: bool = False) -> None:
        self.venue = venue
        self.code = code
        self.rate_limited = rate_limited
        super().__init__(f"{venue} error {shown(code)}: {shown(message)}")


# -- field checks -------------------------------------------------------


def finite_number(value: object, what: str) -> float:
    """A JSON number or numeric string, finite."""
    if value is True or value is False or value is None:
        raise MarketDataError(f"{what} is not a number: {shown(value)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int above 1.8e308
        raise MarketDataError(f"{what} is not a number: {shown(value)}") from None
    if not math.isfinite(number):
        raise MarketDataError(f"{what} is not finite: {shown(value)}")
    return number


def optional_number(value: object, what: str) -> float | None:
    """Like `finite_number`, but a missing or empty value (venues send "") is None."""
    if value is None or value == "":
        return None
    return finite_number(value, what)


def instant_ms(value: object, what: str) -> int:
    """A JSON number or numeric string of epoch milliseconds, between 2010 and 2100."""
    number = finite_number(value, what)
    if not number.is_integer() or not MIN_AT_MS <= number <= MAX_AT_MS:
        raise MarketDataError(f"{what} is not a time in ms: {shown(value)}")
    return int(number)


def positive(value: object, what: str) -> float:
    number = finite_number(value, what)
    if number <= 0:
        raise MarketDataError(f"{what} must be positive: {shown(value)}")
    return number


def not_negative(value: object, what: str) -> float:
    number = finite_number(value, what)
    if number < 0:
        raise MarketDataError(f"{what} must not be negative: {shown(value)}")
    return number


def funding(value: object, what: str) -> float:
    number = finite_number(value, what)
    if abs(number) >= 1:  # 100 % per interval: a corrupt field, not a funding rate
        raise MarketDataError(f"{what} out of range: {shown(value)}")
    return number


def tracked(
    entries: Iterable[object], wanted: Mapping[str, str], key: str, what: str
) -> Iterator[tuple[str, str, dict]]:
    """(asset, instrument, entry) for the entries of tracked instruments; the rest
    are skipped. A non-string instrument id is untracked, never a crash."""
    for entry in entries:
        entry = json_object(entry, what)
        instrument = entry.get(key)
        asset = wanted.get(instrument) if type(instrument) is str else None
        if asset is not None:
            yield asset, instrument, entry


def json_object(value: object, what: str) -> dict:
    if type(value) is not dict:
        raise MarketDataError(f"{what} is not an object: {shown(value)}")
    return value


def json_list(value: object, what: str) -> list:
    if type(value) is not list:
        raise MarketDataError(f"{what} is not a list: {shown(value)}")
    return value


def latest_entry(entries: list, time_key: str, what: str) -> dict | None:
    """The entry with the largest `time_key` (venues differ in list order)."""
    best: dict | None = None
    best_at = -1.0
    for entry in entries:
        entry = json_object(entry, what)
        at = finite_number(entry.get(time_key), f"{what}.{time_key}")
        if at > best_at:
            best, best_at = entry, at
    return best


async def fetch_windows(
    api, path: str, params_of: Callable[[int, int], dict[str, str]], check: Callable[[object], object],
    after_ms: int, before_ms: int, span_ms: int, into: list,
) -> None:
    """GET `path` for each window of `windows(after_ms, before_ms, span_ms)` with
    `params_of(first, last)`; each body is checked (`check` raises on a bad one) and
    kept in `into` as (path, params, body), as recordings replay them."""
    for first, last in windows(after_ms, before_ms, span_ms):
        params = params_of(first, last)
        body = await api.get(path, params)
        check(body)
        into.append((path, params, body))


def parsed_responses(responses, path: str, parse: Callable[[object, str], list]) -> list:
    """What `parse(body, symbol)` reads from every kept response of `path` for a USDT symbol."""
    return [
        item
        for response_path, params, body in responses
        if response_path == path and params.get("symbol", "").endswith("USDT")
        for item in parse(body, params["symbol"])
    ]


def windows(after_ms: int, before_ms: int, span_ms: int) -> Iterator[tuple[int, int]]:
    """[first, last] ranges (inclusive, each at most `span_ms` long) that tile the
    instants strictly between `after_ms` and `before_ms`, oldest first: the
    pages of a history request that returns at most span / period points."""
    first = after_ms + 1
    while first < before_ms:
        last = min(before_ms - 1, first + span_ms - 1)
        yield first, last
        first = last + 1
