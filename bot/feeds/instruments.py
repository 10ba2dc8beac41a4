"""Contract sizes by instrument id, built from the venues' REST metadata by
each venue module's `METADATA` loaders (`bot.feeds.venues`).

Venues that report quantities in contracts (OKX, Binance COIN-M): a contract
is worth a fixed amount of base coin (linear) or of USD (inverse). Books are
immutable: a refresh builds a new book and merges it over the old one, so recorded frames of delisted instruments keep their sizes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bot.feeds.errors import MAX_NOTIONAL_USD, FrameError


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What one contract is worth: `size` USD if `inverse`, else `size` base coin."""

    size: float
    inverse: bool

    def notional_usd(self, quantity: float, price: float, quantity_field: str) -> float:
        """The USD value of `quantity` contracts at `price` (USD a base coin),
        rounded to the cent: `quantity x size` when inverse, `quantity x size x
        price` when linear. FrameError (naming `quantity_field`) above
        `MAX_NOTIONAL_USD` or under a cent (no venue sizes a real liquidation
        that small: a unit mix-up)."""
        notional_usd = quantity * self.size if self.inverse else quantity * self.size * price
        if notional_usd > MAX_NOTIONAL_USD:
            raise FrameError(f"{quantity_field} notional out of range: {notional_usd:.3g} USD")
        rounded = round(notional_usd, 2)
        if not rounded >= 0.01:  # written so that NaN fails too
            raise FrameError(f"{quantity_field} notional under a cent: {notional_usd:.3g} USD")
        return rounded


# The units of venues whose quantities need no contract metadata (x 1.0 is exact,
# so these notionals are bit for bit `quantity x price` and `quantity`).
BASE_COIN = ContractSpec(1.0, inverse=False)  # a quantity in base coin: worth quantity x price
USD = ContractSpec(1.0, inverse=True)  # a quantity that is its USD value (USD contracts, a quote amount)


class ContractBook(Mapping[str, ContractSpec]):
    """An immutable mapping instrument id -> ContractSpec."""

    __slots__ = ("_specs",)

    def __init__(self, specs: Mapping[str, ContractSpec] | None = None) -> None:
        self._specs: dict[str, ContractSpec] = dict(specs or {})

    def __getitem__(self, instrument: str) -> ContractSpec:
        return self._specs[instrument]

    def get(self, instrument: str, default: ContractSpec | None = None) -> ContractSpec | None:  # type: ignore[override]
        # Hot path: skip Mapping.get's try/except around __getitem__.
        return self._specs.get(instrument, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"ContractBook({len(self._specs)} instruments)"

    def merged(self, newer: Mapping[str, ContractSpec]) -> ContractBook:
        """A book with `newer`'s sizes winning over this one's."""
        return ContractBook({**self._specs, **newer})


EMPTY_BOOK = ContractBook()


def positive_or_none(value: object) -> float | None:
    """A metadata field as a positive finite number, None when it is not one."""
    if type(value) not in (str, int, float):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (ValueError, OverflowError):  # OverflowError: an int above 1.8e308
        return None
    return number if 0.0 < number < float("inf") else None
