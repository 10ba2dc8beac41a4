"""The domain types every layer shares. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Side(StrEnum):
    """The position that was wiped out (never the order side)."""

    LONG = "long"
    SHORT = "short"


class Venue(StrEnum):
    BINANCE = "binance"
    BYBIT = "bybit"
    OKX = "okx"


class LiquidationEvent(NamedTuple):
    """One forced liquidation as a venue reported it, normalised.

    A NamedTuple rather than a frozen dataclass: it is built 100k+ times a
    second on replay, and a frozen dataclass costs four times as much to build.

    `quantity` is in the venue's own unit (base coin, contracts or USD, see the
    parser of each venue); `notional_usd` is the USD value, rounded to the cent.
    `at_ms` is the venue's event time in milliseconds since the epoch (UTC).
    """

    venue: str
    stream: str
    instrument: str
    asset: str
    liquidated: Side
    price: float
    quantity: float
    notional_usd: float
    at_ms: int


def row_of(
    venue: str, stream: str, instrument: str, asset: str, liquidated: Side,
    price: float, quantity: float, notional_usd: float, at_ms: int,
) -> tuple:
    """An event (its fields in `LiquidationEvent`'s order) as a flat row of plain
    values, what storage writes and replay passes between processes: at_ms, venue,
    instrument, liquidated, quantity, price, stream, asset, notional in integer
    cents (`bot.storage.rows.EVENT_COLUMNS`). Replay's typed parsing builds rows
    straight away (`bot.feeds.typed_frames`), so the layout lives here."""
    # `._value_`: `.value` is a Python-level property, ~4 % of replay parsing.
    return (at_ms, venue, instrument, liquidated._value_, quantity, price, stream, asset, round(notional_usd * 100))


def event_row(event: LiquidationEvent) -> tuple:
    """`row_of` an event."""
    return row_of(*event)


MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range [start_ms, end_ms)."""

    start_ms: int
    end_ms: int

    @classmethod
    def trailing(cls, duration_ms: int, now_ms: int) -> Window:
        return cls(now_ms - duration_ms, now_ms)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms
