"""Venue instrument ids -> the asset a user asks about (`BTCUSD_PERP` -> `BTC`).

Runs once per event on the hot path, hence the per-instrument cache: a venue
lists a few thousand instruments, so the cache stays small.
"""

from __future__ import annotations

from functools import lru_cache

# Longest first, so that FDUSD is not read as ...USD and USDT not as USD.
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "USD")
# Futures month codes, as in Bybit's inverse futures BTCUSDZ25 / BTCUSDH26.
_MONTH_CODES = frozenset("FGHJKMNQUVXZ")


@lru_cache(maxsize=16_384)
def asset_of(instrument: str) -> str:
    """The asset of a venue instrument id.

    Handles OKX (`BTC-USDT-SWAP`, `BTC-USD-250328`), Binance (`BTCUSDT`,
    `BTCUSD_PERP`, `BTCUSD_250627`), Bybit (`BTCUSD`, `BTCUSDZ25`, `BTCPERP`,
    `BTC-26DEC25`, `BTCUSDT-26DEC25`) and the scaled meme contracts
    (`1000PEPEUSDT`, `1000000MOGUSDT`, `SHIB1000USDT` -> PEPE, MOG, SHIB). The
    scale only names the contract: prices and quantities are per scaled unit,
    so notionals are unaffected.
    """
    symbol = instrument.upper()
    if "-" in symbol:
        # OKX puts the base first (BTC-USDT-SWAP); Bybit dated futures too.
        symbol = symbol.split("-", 1)[0]
    elif "_" in symbol:
        symbol = symbol.split("_", 1)[0]
    elif symbol.endswith("PERP") and len(symbol) > 4:
        symbol = symbol[:-4]
    elif _is_bybit_inverse_future(symbol):
        symbol = symbol[:-3]
    symbol = _without_quote(symbol)
    return _without_scale(symbol) or instrument


def _is_bybit_inverse_future(symbol: str) -> bool:
    return (
        len(symbol) > 6
        and symbol[-2:].isdigit()
        and symbol[-3] in _MONTH_CODES
        and symbol[-6:-3] == "USD"
    )


def _without_quote(symbol: str) -> str:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return symbol


def _is_scale(digits: str) -> bool:
    # 1000, 10000, ...: never 1 or 10, so 1INCH keeps its name.
    return len(digits) >= 4 and digits[0] == "1" and digits.count("0") == len(digits) - 1


def _without_scale(base: str) -> str:
    leading = len(base) - len(base.lstrip("0123456789"))
    if leading and leading < len(base) and _is_scale(base[:leading]):
        return base[leading:]
    # Binance writes a million as 1M (1MBABYDOGEUSDT).
    if base.startswith("1M") and len(base) > 4 and base[2:].isalpha():
        return base[2:]
    trailing = len(base) - len(base.rstrip("0123456789"))
    if trailing and trailing < len(base) and _is_scale(base[-trailing:]):
        return base[:-trailing]
    return base
