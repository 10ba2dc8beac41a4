"""A recording whose frames add up to DESIGN.md's reference long squeeze:

| asset | liquidated (24h) | longs | shorts |
| BTC | $78.47M | 79.25% | 20.75% |
| ETH | $51.71M | 70.32% | 29.68% |
| SOL | $15.00M | 92.35% | 7.65% |
| all | $145.18M | | |

Each asset/side amount is split over Binance USD-M (two orders), Bybit inverse
and OKX inverse swaps, in the venues' own frame formats, so the totals only
come out right if every venue's side and notional rule holds.
"""

from __future__ import annotations

import math

from bot.core.models import HOUR_MS, Side
from bot.feeds.recording import frame_line
from bot.feeds.synthetic import LiquidationSpec, frame_for, metadata_lines

START_MS = 1_742_515_200_000  # 2025-03-21 00:00 UTC
END_MS = START_MS + 24 * HOUR_MS

# asset -> (long USD, short USD, Binance price, OKX inverse swap, its ctVal in USD)
REFERENCE = {
    "BTC": (62_187_475.00, 16_282_525.00, 100_000.0, "BTC-USD-SWAP", 100),
    "ETH": (36_362_472.00, 15_347_528.00, 2_500.0, "ETH-USD-SWAP", 10),
    "SOL": (13_852_500.00, 1_147_500.00, 125.0, "SOL-USD-SWAP", 10),
}


def _orders(asset: str, side: Side, amount_usd: float, binance_price: float, okx_swap: str, ct_usd: int, at_ms: int):
    okx_usd = math.floor(amount_usd * 0.2 / ct_usd) * ct_usd
    bybit_usd = math.floor(amount_usd * 0.3)
    binance_usd = round(amount_usd - okx_usd - bybit_usd, 2)
    first_half = math.floor(binance_usd / 2)
    return [
        LiquidationSpec("okx", "public", okx_swap, side, binance_price, okx_usd / ct_usd, at_ms),
        LiquidationSpec("bybit", "inverse", f"{asset}USD", side, binance_price, float(bybit_usd), at_ms + 1_000),
        LiquidationSpec("binance", "usdm", f"{asset}USDT", side, binance_price, first_half / binance_price, at_ms + 2_000),
        LiquidationSpec(
            "binance", "usdm", f"{asset}USDT", side, binance_price, (binance_usd - first_half) / binance_price, at_ms + 3_000
        ),
    ]


def reference_lines() -> list[str]:
    lines = metadata_lines(START_MS)
    at_ms = START_MS + 5 * HOUR_MS
    for asset, (long_usd, short_usd, price, okx_swap, ct_usd) in REFERENCE.items():
        for side, amount in ((Side.LONG, long_usd), (Side.SHORT, short_usd)):
            for spec in _orders(asset, side, amount, price, okx_swap, ct_usd, at_ms):
                lines.append(frame_line(spec.venue, spec.stream, spec.at_ms + 50, frame_for(spec)))
            at_ms += 10 * 60_000
    # The feeds were recording all day: first and last frames bracket the window.
    lines.insert(len(metadata_lines(START_MS)), frame_line("okx", "public", START_MS, "pong"))
    lines.append(frame_line("okx", "public", END_MS - 1, "pong"))
    return lines


def write_reference(path) -> None:
    path.write_text("\n".join(reference_lines()) + "\n", encoding="utf-8")
