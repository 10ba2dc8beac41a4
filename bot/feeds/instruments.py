"""Contract sizes by instrument id, built from the venues' REST metadata.

OKX (all derivatives) and Binance COIN-M report quantities in contracts; a
contract is worth a fixed amount of base coin (linear) or of USD (inverse).
Books are immutable: a refresh builds a new book and merges it over the old
one, so recorded frames of delisted instruments keep their sizes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bot.feeds.errors import FrameError, shown

OKX_INSTRUMENTS_PATH = "/api/v5/public/instruments"
BINANCE_COINM_EXCHANGE_INFO_PATH = "/dapi/v1/exchangeInfo"


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What one contract is worth: `size` USD if `inverse`, else `size` base coin."""

    size: float
    inverse: bool


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

    @classmethod
    def from_okx_instruments(cls, body: object) -> ContractBook:
        """From `GET /api/v5/public/instruments?instType=SWAP|FUTURES`.

        Size is ctVal x ctMult. Entries that cannot price a liquidation in USD
        (no ctVal, an inverse contract not valued in USD, unknown ctType) are
        left out; a frame that names them raises UnknownInstrument.
        """
        entries = _okx_entries(body)
        specs: dict[str, ContractSpec] = {}
        for entry in entries:
            if type(entry) is not dict:
                raise FrameError(f"okx instruments: entry is not an object: {shown(entry)}")
            instrument = entry.get("instId")
            contract_value = _positive_or_none(entry.get("ctVal"))
            multiplier = _positive_or_none(entry.get("ctMult", "1"))
            if type(instrument) is not str or contract_value is None or multiplier is None:
                continue
            contract_type = entry.get("ctType")
            if contract_type == "linear":
                specs[instrument] = ContractSpec(contract_value * multiplier, inverse=False)
            elif contract_type == "inverse" and entry.get("ctValCcy") == "USD":
                specs[instrument] = ContractSpec(contract_value * multiplier, inverse=True)
        return cls(specs)

    @classmethod
    def from_binance_coinm_exchange_info(cls, body: object) -> ContractBook:
        """From `GET /dapi/v1/exchangeInfo`: every COIN-M contract is worth
        `contractSize` USD (100 for BTC, 10 for the others at the time of writing)."""
        if type(body) is not dict or type(body.get("symbols")) is not list:
            raise FrameError("binance exchangeInfo: no 'symbols' list")
        specs: dict[str, ContractSpec] = {}
        for entry in body["symbols"]:
            if type(entry) is not dict:
                raise FrameError(f"binance exchangeInfo: entry is not an object: {shown(entry)}")
            instrument = entry.get("symbol")
            size = _positive_or_none(entry.get("contractSize"))
            if type(instrument) is str and size is not None:
                specs[instrument] = ContractSpec(size, inverse=True)
        return cls(specs)


EMPTY_BOOK = ContractBook()


def apply_rest(book: ContractBook, path: str, body: object) -> ContractBook:
    """`book` updated with a recorded REST response; unknown paths leave it as is.

    Raises FrameError when a known path's body is malformed.
    """
    endpoint = path.split("?", 1)[0]
    if endpoint == OKX_INSTRUMENTS_PATH:
        return book.merged(ContractBook.from_okx_instruments(body))
    if endpoint == BINANCE_COINM_EXCHANGE_INFO_PATH:
        return book.merged(ContractBook.from_binance_coinm_exchange_info(body))
    return book


def _okx_entries(body: object) -> list[object]:
    if type(body) is not dict:
        raise FrameError("okx instruments: body is not an object")
    if body.get("code") != "0":
        raise FrameError(
            f"okx instruments: error code {shown(body.get('code'))}: {shown(body.get('msg'))}"
        )
    entries = body.get("data")
    if type(entries) is not list:
        raise FrameError("okx instruments: no 'data' list")
    return entries


def _positive_or_none(value: object) -> float | None:
    if type(value) not in (str, int, float):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except ValueError:
        return None
    return number if 0.0 < number < float("inf") else None
