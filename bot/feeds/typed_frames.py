"""Replay's fast path: a recording's frame line of a typed stream straight to
event rows, without building dicts or events.

msgspec decodes the line's envelope, then its frame into the stream's structs
(`StreamSpec.typed`), strictly: only the fields the parser reads, each of the
JSON types the parser takes for it, nothing coerced. Each order then gets the
parser's own checks (`errors.positive_number`, `timestamp_ms`, `instrument_id`,
`ContractSpec.notional_usd`) and becomes a row (`core.models.row_of`).

Anything else declines (None), and the decoder reads the line the usual way,
through the parser, which words what is wrong: a control frame, a field of
another type, a value out of range, an order without a contract size, a frame
without orders, a line that is not ASCII (msgspec does not check the UTF-8 of
fields it skips, orjson does; recordings are written in ASCII), a line nested
deeper than msgspec reads. So a line gives exactly the parser's rows, or declines:
`tests/test_typed_frames.py` holds the two paths to that with generated frames.

One difference is left on purpose: a number beyond a float's range (`1e400`) in a
field no parser reads. orjson refuses the whole line, msgspec skips the field
unread, so this path stores the line's orders where the parser's path counts an
unusable line. Looking for such numbers costs ~1 µs a line, a sixth of the path's
cost and about half its gain; the venues' frames carry no such numbers.

Why: parsing was most of replay's CPU. Parsing the 1M lines of `benchmarks/ingest.py`
fell from 7.6-9.3 to 6.2-7.4 CPU-s (session 10, a slow 2-core VM), the dicts, the
`LiquidationEvent`s and their conversion to rows being what this path skips.
"""

from __future__ import annotations

from collections.abc import Mapping
from sys import intern
from typing import Annotated

import msgspec

from bot.core.models import row_of
from bot.core.symbols import asset_of
from bot.feeds.errors import MAX_PRICE, MAX_QUANTITY, FrameError, instrument_id, positive_number, timestamp_ms
from bot.feeds.instruments import ContractBook
from bot.feeds.venues import TYPED


class Envelope(msgspec.Struct):
    """A frame line (`bot.feeds.recording`)."""

    venue: str
    stream: str
    # orjson reads integers beyond 64 bits as floats, which the decoder refuses as
    # an `at`; msgspec reads them as ints: those lines decline.
    at: Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
    frame: msgspec.Raw


_ENVELOPE = msgspec.json.Decoder(Envelope)
# Per stream: its (venue, stream) strings, its TypedFrames and its frame decoder. The rows
# carry those very strings, and interned instrument ids: marshal sends a string met
# before as a reference, so the rows cross to the writer smaller and load faster.
_STREAMS = {key: (key, typed, msgspec.json.Decoder(typed.frame)) for key, typed in TYPED.items()}
# What decoding and a typed stream's `orders` raise for a line the parser would read otherwise.
# RecursionError: msgspec's nesting limit is Python's, lower than orjson's 1,024 levels.
_DECLINED = (msgspec.MsgspecError, ValueError, KeyError, RecursionError)


# A typed line: venue, stream, receive time (`at`) and its rows.
TypedLine = tuple[str, str, int, list[tuple]]


def typed_line(line: bytes, books: Mapping[str, ContractBook]) -> TypedLine | None:
    """The rows of a frame line of a typed stream (`books`: the venues' contract
    books so far); None when the line declines (see the module docstring)."""
    if not line.isascii():
        return None
    try:
        envelope = _ENVELOPE.decode(line)
        known = _STREAMS.get((envelope.venue, envelope.stream))
        if known is None:
            return None
        (venue, stream), typed, decoder = known
        orders = typed.orders(decoder.decode(envelope.frame))
    except _DECLINED:
        return None
    contracts = books.get(venue)
    rows = []
    for instrument, liquidated, price_value, quantity_value, at_value in orders:
        try:  # the parser's own checks; their messages are the parser's to word
            instrument = intern(instrument_id(instrument, "instrument"))
            price = positive_number(price_value, "price", MAX_PRICE)
            quantity = positive_number(quantity_value, "quantity", MAX_QUANTITY)
            at_ms = timestamp_ms(at_value, "time")
            unit = typed.unit or (contracts.get(instrument) if contracts is not None else None)
            if unit is None:
                return None  # unpriced: the parser counts it
            notional_usd = unit.notional_usd(quantity, price, "quantity")
        except FrameError:
            return None
        rows.append(row_of(venue, stream, instrument, asset_of(instrument), liquidated, price, quantity, notional_usd, at_ms))
    # The parser decides what an order-less frame is (an error frame?).
    return (venue, stream, envelope.at, rows) if rows else None
