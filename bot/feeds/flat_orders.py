"""Liquidations listed as flat objects in a frame's `data[]`, one order each
(Bybit's `allLiquidation`, Bitget's liquidation channel): where each field of
an item is, what its side means, and the one loop that checks and prices them.
The venue modules keep their own frame envelopes and facts (and cite them).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.core.models import LiquidationEvent, Side
from bot.core.symbols import asset_of
from bot.feeds.errors import MAX_PRICE, MAX_QUANTITY, FrameError, instrument_id, positive_number, shown, timestamp_ms
from bot.feeds.instruments import ContractSpec


class FlatOrders:
    """One venue's flat item: the key of each field and the position each side value wiped out."""

    __slots__ = ("venue", "_keys", "_labels", "_liquidated_by_side", "_sides", "_quantity_cap")

    def __init__(
        self,
        venue: str,
        *,
        instrument: str,
        side: str,
        price: str,
        quantity: str,
        time: str,
        liquidated_by_side: Mapping[str, Side],
        quantity_cap: float = MAX_QUANTITY,
    ) -> None:
        self.venue = venue
        self._keys = (instrument, side, price, quantity, time)
        self._labels = tuple(f"data[].{key}" for key in self._keys)  # for messages, made once
        self._liquidated_by_side = dict(liquidated_by_side)
        self._sides = "/".join(liquidated_by_side)
        self._quantity_cap = quantity_cap

    def events(self, items: list, stream: str, unit: ContractSpec) -> list[LiquidationEvent]:
        """The liquidations of `items`, quantities in `unit`; FrameError for an item not as documented."""
        instrument_key, side_key, price_key, quantity_key, time_key = self._keys
        instrument_label, side_label, price_label, quantity_label, time_label = self._labels
        events = []
        for item in items:
            if type(item) is not dict:
                raise FrameError(f"data item is not an object: {shown(item)}")
            try:
                instrument = instrument_id(item[instrument_key], instrument_label)
                side = item[side_key]
                price = positive_number(item[price_key], price_label, MAX_PRICE)
                quantity = positive_number(item[quantity_key], quantity_label, self._quantity_cap)
                at_ms = timestamp_ms(item[time_key], time_label)
            except KeyError as missing:
                raise FrameError(f"missing field data[].{missing.args[0]}") from None
            liquidated = self._liquidated_by_side.get(side) if type(side) is str else None
            if liquidated is None:
                raise FrameError(f"{side_label} is not {self._sides}: {shown(side)}")
            events.append(
                LiquidationEvent(
                    self.venue, stream, instrument, asset_of(instrument), liquidated,
                    price, quantity, unit.notional_usd(quantity, price, quantity_label), at_ms,
                )
            )
        return events
