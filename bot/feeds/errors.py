"""The typed errors of frame parsing, and the field checks that raise them.

Every malformed input a venue (or a damaged recording) can produce surfaces as
`FrameError`; nothing else escapes a parser. Messages are short and never dump
the whole frame: they end up in logs and in the recording decoder's samples.

Sanity caps (a value above one is a corrupt frame, not a liquidation):
- `MAX_NOTIONAL_USD` = $10B for one order: more than the largest single
  liquidation ever reported, by two orders of magnitude.
- `MAX_QUANTITY` = 1e12 units (base coin, contracts or USD).
- `MAX_PRICE` = 1e9 USD per unit.
- timestamps must fall between 2010 and 2100 (milliseconds since the epoch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.core.models import LiquidationEvent

if TYPE_CHECKING:  # instruments imports this module's checks
    from bot.feeds.instruments import ContractBook, ContractSpec

MAX_NOTIONAL_USD = 1e10
MAX_QUANTITY = 1e12
MAX_PRICE = 1e9
MIN_AT_MS = 1_262_304_000_000  # 2010-01-01T00:00:00Z
MAX_AT_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

_SHOWN_CHARS = 40


class FrameError(ValueError):
    """A frame that is not what the venue documents (truncated, wrong types...)."""


class UnknownInstrument(FrameError):
    """Some events of a frame could not be priced: no contract size is known.

    `events` holds the events of the same frame that could be priced, so the
    caller can still store them; `unpriced_count` is how many could not, and
    `instruments` names the ids to look for in a metadata refresh.
    """

    def __init__(
        self,
        instruments: Sequence[str],
        events: list[LiquidationEvent],
        unpriced_count: int,
    ) -> None:
        self.instruments = tuple(instruments)
        self.events = events
        self.unpriced_count = unpriced_count
        shown = ", ".join(self.instruments[:3])
        more = f" (+{len(self.instruments) - 3} more)" if len(self.instruments) > 3 else ""
        super().__init__(f"no contract size for {shown}{more}")


class Unpriced:
    """What a frame's parser could not price, for its `UnknownInstrument`: the
    instruments without a contract size (first seen first) and how many
    liquidations they held."""

    __slots__ = ("instruments", "count")

    def __init__(self) -> None:
        self.instruments: list[str] = []
        self.count = 0

    def add(self, instrument: str, liquidations: int = 1) -> None:
        self.count += liquidations
        if instrument not in self.instruments:
            self.instruments.append(instrument)

    def spec_of(self, contracts: ContractBook | None, instrument: str, liquidations: int = 1) -> ContractSpec | None:
        """The instrument's contract spec, or None when the book has none (then
        the instrument and its liquidations are added here)."""
        spec = contracts.get(instrument) if contracts is not None else None
        if spec is None:
            self.add(instrument, liquidations)
        return spec

    def checked(self, events: list[LiquidationEvent]) -> list[LiquidationEvent]:
        """`events` when everything was priced; else UnknownInstrument carrying them."""
        if self.instruments:
            raise UnknownInstrument(self.instruments, events=events, unpriced_count=self.count)
        return events


class MetadataError(Exception):
    """A metadata REST call failed (network, HTTP status, unexpected body)."""


def shown(value: object) -> str:
    """A value's repr, cut short enough for a log line."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (over 4300 digits)
        return f"<int of {value.bit_length()} bits>"  # type: ignore[union-attr]
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def positive_number(value: object, field: str, cap: float) -> float:
    """`value` (a JSON number or numeric string) as a float in (0, cap]."""
    if value is True or value is False:
        raise FrameError(f"{field} is not a number: {shown(value)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int above 1.8e308
        raise FrameError(f"{field} is not a number: {shown(value)}") from None
    # Written so that NaN (every comparison false) fails too.
    if not 0.0 < number <= cap:
        raise FrameError(f"{field} out of range: {shown(value)}")
    return number


def timestamp_ms(value: object, field: str) -> int:
    """`value` (a JSON integer or integer string) as epoch milliseconds."""
    if type(value) is int:
        at_ms = value
    elif type(value) is str:
        try:
            at_ms = int(value)
        except ValueError:
            raise FrameError(f"{field} is not an integer: {shown(value)}") from None
    else:
        raise FrameError(f"{field} is not an integer: {shown(value)}")
    if not MIN_AT_MS <= at_ms <= MAX_AT_MS:
        raise FrameError(f"{field} out of range: {shown(value)}")
    return at_ms


def instrument_id(value: object, field: str) -> str:
    if type(value) is not str or not value:
        raise FrameError(f"{field} is not an instrument id: {shown(value)}")
    return value
