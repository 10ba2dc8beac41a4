"""The JSON Lines recording format, and the one dispatch table of parsers.

One object per line:

    {"venue": "binance", "stream": "usdm", "at": 1742558400000, "frame": {...}}
    {"venue": "okx", "at": 1742558400000,
     "rest": {"path": "/api/v5/public/instruments?instType=SWAP", "body": {...}}}

A `frame` line is a websocket message as received (decoded JSON, or the raw
text when it is not JSON, like OKX's "pong"); a `rest` line is a REST response
a parser needs: contract sizes (`at`: when it was received), one page of a
venue's liquidation history fetched to fill a gap (`at`: when it was received;
its orders replay as the stream's events, see `bot.feeds.backfill`), or one
response of a market poll (funding, open interest, long/short; `at`: the poll's
instant, shared by the poll's lines), of a history fill (open interest, klines) or of
a margin-tier read (`at`: when it began; see `bot.feeds.market_replay`). `at` is in ms since
the epoch. Venues and streams are those of the registry (`bot.feeds.venues`).

The live feed runner reuses `decode`, `decoder_for` and `control_error`, so a
recording replays through exactly the code that handled it live.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from bot.core.models import LiquidationEvent, Window, event_row
from bot.feeds.contract import FrameParser
from bot.feeds.errors import FrameError, UnknownInstrument, shown
from bot.feeds.instruments import EMPTY_BOOK, ContractBook
from bot.feeds.market_replay import MarketPoll, is_market_path
from bot.feeds.marketdata import MarketDataError
from bot.feeds.typed_frames import typed_line
from bot.feeds.venues import BY_NAME, PARSERS, apply_rest, history_of


def decoder_for(venue: str, stream: str) -> FrameParser:
    """The parser of a (venue, stream): `parser(frame, contracts, received_ms) -> events`.

    Raises ValueError for an unknown pair.
    """
    try:
        return PARSERS[venue, stream]
    except KeyError:
        raise ValueError(f"unknown venue/stream {venue!r}/{stream!r}") from None


def control_error(venue: str, frame: object) -> str | None:
    """A short message if `frame` is the venue's error frame, else None."""
    module = BY_NAME.get(venue)
    return module.error_message(frame) if module is not None else None


def decode(text: str | bytes) -> object:
    """A websocket message as the parsers take it: JSON decoded, "pong" as is."""
    if text == "pong" or text == b"pong":
        return "pong"
    try:
        return orjson.loads(text)
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
        raise FrameError(f"invalid JSON: {str(error)[:80]}") from None
    except RecursionError:
        raise FrameError("invalid JSON: nested too deeply") from None


def frame_line(venue: str, stream: str, at_ms: int, frame: object) -> str:
    """A recording line (no newline) for one received websocket message."""
    decoder_for(venue, stream)  # refuse to record what could never replay
    return json.dumps(
        {"venue": venue, "stream": stream, "at": at_ms, "frame": frame}, separators=(",", ":")
    )


def rest_line(venue: str, at_ms: int, path: str, body: object) -> str:
    """A recording line (no newline) for one REST response a parser needs."""
    if venue not in BY_NAME:
        raise ValueError(f"unknown venue {venue!r}")
    return json.dumps(
        {"venue": venue, "at": at_ms, "rest": {"path": path, "body": body}},
        separators=(",", ":"),
    )


@dataclass(slots=True)
class DecodeStats:
    """What a RecordingDecoder has seen so far."""

    frames: int = 0  # frame lines parsed, control frames (pong, errors) included
    rest_responses: int = 0  # REST lines applied to a contract book, or read as liquidation history
    market_responses: int = 0  # REST lines of market polls (funding, open interest, ...)
    events: int = 0  # events decoded and returned
    bad_lines: int = 0  # unusable lines: bad JSON or envelope, unknown venue, a frame or REST body refused
    unpriced_events: int = 0  # liquidations dropped for want of a contract size
    venue_errors: int = 0  # error frames the venue sent (control_error)
    error_samples: list[str] = field(default_factory=list)
    unknown_instruments: set[str] = field(default_factory=set)

    @property
    def lines(self) -> int:
        """Lines read, blank ones aside: each is a frame, a REST response (contract sizes or market) or unusable."""
        return self.frames + self.rest_responses + self.market_responses + self.bad_lines


# What a `rest` line holds and a frame line rarely does: the key "rest", which JSON
# spells with those letters or with escapes of some (`\u0072` for r: all begin `\u00`).
_REST_KEY = b"rest"
_ESCAPED_LETTER = b"\\u00"


def rest_line_candidates(lines: Sequence[bytes]) -> list[bytes]:
    """The lines that may be `rest` lines, found without decoding any: one search
    of the lines joined, then only the lines holding a mark: half the CPU of
    searching line by line. Escapes are looked for only where there is a backslash
    (a one-byte search, ~9x faster than a four-byte one; recordings rarely hold any)."""
    joined = b"\n".join(lines)  # no mark holds a newline: a match never spans two lines
    marks = (_REST_KEY, _ESCAPED_LETTER) if b"\\" in joined else (_REST_KEY,)
    starts: list[int] | None = None
    found: set[int] = set()
    for mark in marks:
        at = joined.find(mark)
        while at != -1:
            if starts is None:
                starts = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
            index = bisect.bisect_right(starts, at) - 1
            found.add(index)
            at = joined.find(mark, starts[index + 1])
    return [lines[index] for index in sorted(found)]


def merged_stats(parts: Sequence[DecodeStats], max_error_samples: int = 5) -> DecodeStats:
    """The stats of decoders that decoded shares of one recording (each passing
    over the others' lines), as one decoder of all of it would have counted."""
    total = DecodeStats()
    for part in parts:
        total.frames += part.frames
        total.rest_responses += part.rest_responses
        total.market_responses += part.market_responses
        total.events += part.events
        total.bad_lines += part.bad_lines
        total.unpriced_events += part.unpriced_events
        total.venue_errors += part.venue_errors
        total.unknown_instruments |= part.unknown_instruments
    # Each share kept its first samples, so the first of all of them are among those.
    samples = sorted((sample for part in parts for sample in part.error_samples), key=_sample_line)
    total.error_samples = samples[:max_error_samples]
    return total


def merged_spans(parts: Iterable[Mapping[tuple[str, str], Window]]) -> dict[tuple[str, str], Window]:
    """Spans (`RecordingDecoder.spans`) of decoders that decoded shares of one recording, as one."""
    spans: dict[tuple[str, str], Window] = {}
    for part in parts:
        for key, span in part.items():
            known = spans.get(key)
            if known is not None:
                span = Window(min(known.start_ms, span.start_ms), max(known.end_ms, span.end_ms))
            spans[key] = span
    return spans


class PollJoiner:
    """The market polls of decoders that decoded shares of one recording (each
    share's polls taken with `final`), joined back in line order: two adjacent
    polls of the same (venue, at) are one poll that a share boundary cut."""

    def __init__(self) -> None:
        self._open: MarketPoll | None = None  # the last poll: more of its lines may come

    def add(self, polls: Iterable[MarketPoll]) -> list[MarketPoll]:
        """The next share's polls -> the polls now complete."""
        complete = []
        for poll in polls:
            last = self._open
            if last is not None and (last.venue, last.at_ms) == (poll.venue, poll.at_ms):
                last.responses.update(poll.responses)
                continue
            if last is not None:
                complete.append(last)
            self._open = poll
        return complete

    def finish(self) -> list[MarketPoll]:
        """The last poll, once no share is left."""
        last, self._open = self._open, None
        return [last] if last is not None else []


_ABSENT = object()


class RecordingDecoder:
    """Turns recording lines into events, one line at a time; never raises.

    Holds one ContractBook per venue, updated by REST lines. Tracks, per
    (venue, stream), the span of receive times seen: `spans()`.
    """

    def __init__(
        self, books: Mapping[str, ContractBook] | None = None, max_error_samples: int = 5
    ) -> None:
        self.books: dict[str, ContractBook] = dict(books or {})
        self.stats = DecodeStats()
        self._max_error_samples = max_error_samples
        self._line_number = 0
        # (venue, stream) -> [parser, first, last receive time]
        self._streams: dict[tuple[str, str], list] = {}
        self._polls: list[MarketPoll] = []  # complete market polls not yet taken
        self._open_poll: MarketPoll | None = None  # the poll whose lines are still coming

    def feed(self, line_text: str | bytes) -> list[LiquidationEvent]:
        """The events of one recording line ([] for anything else)."""
        self._line_number += 1
        try:
            record = orjson.loads(line_text)
        except (ValueError, RecursionError):
            if not line_text.strip():
                return []  # a blank line, e.g. the file's trailing newline
            self._bad("line is not JSON")
            return []
        if type(record) is not dict:
            self._bad("line is not a JSON object")
            return []
        venue = record.get("venue")
        at_ms = record.get("at")
        if type(at_ms) is not int:
            self._bad(f"'at' is not an integer: {shown(at_ms)}")
            return []
        frame = record.get("frame", _ABSENT)
        if frame is not _ABSENT:
            return self._feed_frame(venue, record.get("stream"), at_ms, frame)
        if "rest" in record:
            return self._feed_rest(venue, at_ms, record["rest"])
        self._bad("line has neither 'frame' nor 'rest'")
        return []

    def feed_rows(self, lines: Iterable[bytes]) -> list[tuple]:
        """`feed` each line, the events as rows (`core.models.row_of`): what replay
        stores. Frame lines of typed streams skip the dicts (`bot.feeds.typed_frames`)."""
        rows: list[tuple] = []
        stats = self.stats
        for line in lines:
            typed = typed_line(line, self.books)
            if typed is None:
                rows += map(event_row, self.feed(line))
                continue
            venue, stream, at_ms, line_rows = typed
            self._line_number += 1
            self._stream(venue, stream, at_ms)
            stats.frames += 1
            stats.events += len(line_rows)
            rows += line_rows
        return rows

    def take_market_polls(self, final: bool = False) -> list[MarketPoll]:
        """The market polls completed since the last call (with `final`, the last one too)."""
        if final and self._open_poll is not None:
            self._polls.append(self._open_poll)
            self._open_poll = None
        polls, self._polls = self._polls, []
        return polls

    def _feed_market(self, venue: str, at_ms: int, path: str, body: object) -> None:
        poll = self._open_poll
        if poll is None or (poll.venue, poll.at_ms) != (venue, at_ms):
            if poll is not None:
                self._polls.append(poll)
            poll = self._open_poll = MarketPoll(venue, at_ms)
        poll.responses[path] = body
        self.stats.market_responses += 1

    def spans(self) -> dict[tuple[str, str], Window]:
        """Per (venue, stream), the receive times recorded: [first, last + 1 ms)."""
        return {key: Window(first, last + 1) for key, (_, first, last) in self._streams.items()}

    def _feed_frame(
        self, venue: object, stream: object, at_ms: int, frame: object
    ) -> list[LiquidationEvent]:
        parser = self._stream(venue, stream, at_ms)
        if parser is None:
            self._bad(f"unknown venue/stream {shown(venue)}/{shown(stream)}")
            return []
        stats = self.stats
        try:
            events = parser(frame, self.books.get(venue), at_ms)
        except UnknownInstrument as unknown:
            stats.unpriced_events += unknown.unpriced_count
            stats.unknown_instruments.update(unknown.instruments)
            self._sample(f"{venue}/{stream}: {unknown}")
            events = unknown.events
        except FrameError as error:
            self._bad(f"{venue}/{stream}: {error}")
            return []
        stats.frames += 1
        if not events:
            message = control_error(venue, frame)
            if message is not None:
                stats.venue_errors += 1
                self._sample(f"{venue}/{stream} sent {message}")
        stats.events += len(events)
        return events

    def _stream(self, venue: object, stream: object, at_ms: int) -> FrameParser | None:
        """The stream's parser (None: no such stream), its span widened to `at_ms`."""
        # One look-up a frame: the stream's parser and span so far, once it has a frame.
        seen = self._streams.get((venue, stream)) if type(venue) is str and type(stream) is str else None
        if seen is None:
            parser = PARSERS.get((venue, stream)) if type(venue) is str and type(stream) is str else None
            if parser is not None:
                self._streams[venue, stream] = [parser, at_ms, at_ms]
            return parser
        if at_ms < seen[1]:
            seen[1] = at_ms
        elif at_ms > seen[2]:
            seen[2] = at_ms
        return seen[0]

    def _feed_rest(self, venue: object, at_ms: int, rest: object) -> list[LiquidationEvent]:
        if type(venue) is not str or venue not in BY_NAME:
            self._bad(f"unknown venue {shown(venue)}")
            return []
        if type(rest) is not dict or type(rest.get("path")) is not str:
            self._bad("'rest' has no 'path'")
            return []
        history = history_of(venue, rest["path"])
        if history is not None:
            return self._feed_history(venue, history.page, rest["path"], rest.get("body"))
        if is_market_path(venue, rest["path"]):
            self._feed_market(venue, at_ms, rest["path"], rest.get("body"))
            return []
        try:
            self._apply_metadata(venue, rest)
        except FrameError as error:
            self._bad(f"{venue} REST {rest['path']}: {error}")
            return []
        self.stats.rest_responses += 1
        return []

    def _feed_history(self, venue: str, read_page, path: str, body: object) -> list[LiquidationEvent]:
        """A page of liquidation history a backfill fetched: its orders, as the backfill stored them."""
        try:
            page = read_page(body, self.books.get(venue))
        except (FrameError, MarketDataError) as error:
            self._bad(f"{venue} REST {path}: {error}")
            return []
        self.stats.rest_responses += 1
        self.stats.unpriced_events += page.unpriced
        self.stats.events += len(page.events)
        return page.events

    def _apply_metadata(self, venue: str, rest: dict) -> None:
        self.books[venue] = apply_rest(self.books.get(venue, EMPTY_BOOK), rest["path"], rest.get("body"), venue)

    def pass_over(self, lines: Sequence[bytes]) -> None:
        """Keep up with lines that another decoder decodes (replay with several
        decoders, each its share of the lines): apply the contract sizes among
        them, as `feed` would, and count nothing: the other decoder counts them."""
        self._line_number += len(lines)
        for line_text in rest_line_candidates(lines):
            try:
                record = orjson.loads(line_text)
            except (ValueError, RecursionError):
                continue
            if type(record) is not dict or type(record.get("at")) is not int or "frame" in record:
                continue
            venue, rest = record.get("venue"), record.get("rest")
            if type(venue) is not str or venue not in BY_NAME:
                continue
            if type(rest) is not dict or type(rest.get("path")) is not str:
                continue
            if history_of(venue, rest["path"]) is not None or is_market_path(venue, rest["path"]):
                continue  # as in `_feed_rest`: a backfill's page or a market response, not contract sizes
            try:
                self._apply_metadata(venue, rest)
            except FrameError:
                continue  # the last good book stays, as in the decoder that counts this line

    def _bad(self, message: str) -> None:
        self.stats.bad_lines += 1
        self._sample(message)

    def _sample(self, message: str) -> None:
        if len(self.stats.error_samples) < self._max_error_samples:
            self.stats.error_samples.append(f"line {self._line_number}: {message}")


def _sample_line(sample: str) -> int:
    """The line number an error sample (`RecordingDecoder._sample`) names."""
    return int(sample.partition(":")[0].removeprefix("line "))
