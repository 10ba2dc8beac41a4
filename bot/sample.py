"""A realistic synthetic day of liquidations across Binance, Bybit and OKX, as a
recording. It makes the bundled demo recording (`python -m bot.sample`) and the
benchmarks' data; the frames come from `bot.feeds.synthetic`, so they are the
venues' own formats and go through the real parsers.

The market: each asset follows a random walk; liquidations arrive faster when
the price moves, on the side the move hurts (a drop wipes out longs), with a
long-squeeze cascade in the middle of the day and a smaller short squeeze later.
Order sizes are lognormal (median ~$2.5K, tail into the millions).
"""

from __future__ import annotations

import argparse
import gzip
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.core.models import HOUR_MS, MINUTE_MS, Side
from bot.feeds.recording import frame_line
from bot.feeds.synthetic import LiquidationSpec, frame_for, metadata_lines
from bot.feeds.synthetic_market import market_poll_lines


@dataclass(frozen=True, slots=True)
class _Asset:
    name: str
    price: float
    weight: float  # share of liquidation flow
    volatility: float  # per-minute relative move (stdev)


_ASSETS = (
    _Asset("BTC", 97_000.0, 0.42, 0.0012),
    _Asset("ETH", 3_400.0, 0.27, 0.0016),
    _Asset("SOL", 240.0, 0.12, 0.0022),
    _Asset("XRP", 2.4, 0.06, 0.0020),
    _Asset("DOGE", 0.38, 0.06, 0.0024),
    _Asset("PEPE", 0.000021, 0.04, 0.0030),
    _Asset("LTC", 105.0, 0.03, 0.0018),
)
# (venue, stream, instrument pattern, share of that asset's flow); the venue
# quantity unit follows from the stream (see the DESIGN venue table).
_ROUTES = {
    "BTC": (
        ("binance", "usdm", "BTCUSDT", 0.40), ("binance", "coinm", "BTCUSD_PERP", 0.06),
        ("bybit", "linear", "BTCUSDT", 0.26), ("bybit", "inverse", "BTCUSD", 0.06),
        ("okx", "public", "BTC-USDT-SWAP", 0.16), ("okx", "public", "BTC-USD-SWAP", 0.06),
    ),
    "ETH": (
        ("binance", "usdm", "ETHUSDT", 0.44), ("binance", "coinm", "ETHUSD_PERP", 0.04),
        ("bybit", "linear", "ETHUSDT", 0.28), ("okx", "public", "ETH-USDT-SWAP", 0.18),
        ("okx", "public", "ETH-USD-SWAP", 0.06),
    ),
    "SOL": (("binance", "usdm", "SOLUSDT", 0.5), ("bybit", "linear", "SOLUSDT", 0.3), ("okx", "public", "SOL-USDT-SWAP", 0.2)),
    "XRP": (("binance", "usdm", "XRPUSDT", 0.5), ("bybit", "linear", "XRPUSDT", 0.3), ("okx", "public", "XRP-USDT-SWAP", 0.2)),
    "DOGE": (("binance", "usdm", "DOGEUSDT", 0.5), ("bybit", "linear", "DOGEUSDT", 0.3), ("okx", "public", "DOGE-USDT-SWAP", 0.2)),
    "PEPE": (("binance", "usdm", "1000PEPEUSDT", 0.6), ("bybit", "linear", "1000PEPEUSDT", 0.4)),
    "LTC": (("binance", "usdm", "LTCUSDT", 0.5), ("bybit", "linear", "LTCUSDT", 0.3), ("okx", "public", "LTC-USDT-SWAP", 0.2)),
}
# Contract sizes the synthetic venues use (they match bot/data's real metadata).
_CONTRACT_USD = {"BTCUSD_PERP": 100.0, "ETHUSD_PERP": 10.0, "BTC-USD-SWAP": 100.0, "ETH-USD-SWAP": 10.0}
_CONTRACT_BASE = {"BTC-USDT-SWAP": 0.01, "ETH-USDT-SWAP": 0.1, "SOL-USDT-SWAP": 1.0, "XRP-USDT-SWAP": 100.0,
                  "DOGE-USDT-SWAP": 1000.0, "LTC-USDT-SWAP": 1.0}
SUBSCRIPTION_ACKS = (
    ("bybit", "linear", {"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "sample"}),
    ("bybit", "inverse", {"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "sample"}),
    ("okx", "public", {"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "connId": "sample"}),
)


MARKET_POLL_MINUTES = 5


@dataclass(frozen=True, slots=True)
class LeverageState:
    """The market's leverage at one minute: open interest relative to the day's
    start, the funding rate per 8 h, and the account long/short ratio."""

    open_interest: float
    funding_rate: float
    long_short_ratio: float


class _Leverage:
    """Leverage builds at a flat price until the long squeeze (open interest
    +20 %, funding up to 0.04 %/8 h, long/short up to 2.6), the squeeze flushes
    it (open interest -25 % in 45 minutes, funding near zero, long/short 1.2),
    then it rebuilds slowly; the short squeeze later trims it again."""

    def __init__(self, minutes: int) -> None:
        self._cascade = minutes // 2
        self._squeeze = minutes * 5 // 6

    def at(self, minute: int) -> LeverageState:
        build = min(1.0, minute / max(1, self._cascade))
        if minute < self._cascade:
            return LeverageState(1 + 0.20 * build, 0.0001 + 0.0003 * build, 1.4 + 1.2 * build)
        flush = min(1.0, (minute - self._cascade) / 45)
        after = max(0, minute - self._cascade - 45) / max(1, self._squeeze - self._cascade)
        open_interest = 1.20 - 0.30 * flush + 0.08 * after
        if minute >= self._squeeze:
            open_interest -= 0.04 * min(1.0, (minute - self._squeeze) / 20)
        return LeverageState(open_interest, 0.0004 - 0.00038 * flush + 0.00006 * after, 2.6 - 1.4 * flush + 0.2 * after)


def _quantity(stream: str, instrument: str, usd: float, price: float) -> float | None:
    """The venue-unit quantity for a USD amount; None when it rounds to zero contracts."""
    if instrument in _CONTRACT_USD:
        contracts = round(usd / _CONTRACT_USD[instrument])
        return float(contracts) if contracts >= 1 else None
    if instrument in _CONTRACT_BASE:
        contracts = round(usd / (_CONTRACT_BASE[instrument] * price))
        return float(contracts) if contracts >= 1 else None
    if stream == "inverse":  # Bybit inverse: quantity in USD
        return float(max(1, round(usd)))
    return round(usd / price, 3) or None


def generate(
    start_ms: int, hours: int, seed: int = 20250321, events_per_hour: float = 900.0
) -> Iterator[tuple[int, dict[str, float], list[LiquidationSpec]]]:
    """Per minute of `hours` hours: (minute_ms, each asset's price at its start, its liquidations in time order)."""
    rng = random.Random(seed)
    prices = {a.name: a.price for a in _ASSETS}
    cascade_minute = hours * 60 // 2
    squeeze_minute = hours * 60 * 5 // 6
    for minute in range(hours * 60):
        # Market regime: a long-squeeze cascade (prices drop hard), a smaller short squeeze.
        drift, intensity = 0.0, 1.0
        if 0 <= minute - cascade_minute < 45:
            drift, intensity = -0.0025, 9.0
        elif 0 <= minute - squeeze_minute < 20:
            drift, intensity = 0.0018, 4.0
        minute_ms = start_ms + minute * MINUTE_MS
        opening = dict(prices)
        specs = []
        for asset in _ASSETS:
            move = drift * asset.volatility / 0.0012 + rng.gauss(0, asset.volatility)
            prices[asset.name] *= math.exp(move)
            rate = events_per_hour / 60 * asset.weight * intensity * (1 + 150 * abs(move))
            # Mostly the side the move hurts, with some two-way noise.
            long_odds = 0.5 - max(-0.42, min(0.42, move * 250))
            for _ in range(_poisson(rng, rate)):
                venue, stream, instrument, _share = _pick_route(rng, _ROUTES[asset.name])
                side = Side.LONG if rng.random() < long_odds else Side.SHORT
                usd = min(8_000_000.0, rng.lognormvariate(math.log(2_500), 1.6))
                slip = 1 + (0.0008 if side is Side.SHORT else -0.0008) * rng.random()
                price = _tick(prices[asset.name] * slip)
                unit_price = price * 1000 if instrument.startswith("1000") else price
                quantity = _quantity(stream, instrument, usd, unit_price)
                if quantity:
                    at_ms = minute_ms + rng.randrange(MINUTE_MS)
                    specs.append(LiquidationSpec(venue, stream, instrument, side, unit_price, quantity, at_ms))
        yield minute_ms, opening, sorted(specs, key=lambda s: s.at_ms)


def _pick_route(rng: random.Random, routes):
    point, acc = rng.random() * sum(r[3] for r in routes), 0.0
    for route in routes:
        acc += route[3]
        if point <= acc:
            return route
    return routes[-1]


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _tick(price: float) -> float:
    """Round to a plausible tick: 5-6 significant digits."""
    digits = 5 - int(math.floor(math.log10(price)))
    return round(price, max(1, digits))


def recording_lines(
    start_ms: int, hours: int, seed: int = 20250321, events_per_hour: float = 900.0, market: bool = True
) -> Iterator[str]:
    """A whole recording: metadata, subscription acks, then one frame per
    liquidation, with a market poll of Binance and Bybit every 5 minutes."""
    yield from metadata_lines(start_ms)
    for venue, stream, ack in SUBSCRIPTION_ACKS:
        yield frame_line(venue, stream, start_ms, ack)
    leverage = _Leverage(hours * 60)
    for minute_ms, prices, specs in generate(start_ms, hours, seed, events_per_hour):
        minute = (minute_ms - start_ms) // MINUTE_MS
        if market and minute == 0:  # the poller ran before the day began: 24 h changes have a start
            for before in (2, 1):
                yield from market_poll_lines(minute_ms - before * MARKET_POLL_MINUTES * MINUTE_MS, prices, leverage.at(0))
        if market and minute % MARKET_POLL_MINUTES == 0:
            yield from market_poll_lines(minute_ms, prices, leverage.at(minute))
        for spec in specs:
            yield frame_line(spec.venue, spec.stream, spec.at_ms + 40, frame_for(spec))


def write_recording(path: Path, start_ms: int, hours: int, seed: int = 20250321, events_per_hour: float = 900.0) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        for line in recording_lines(start_ms, hours, seed, events_per_hour):
            out.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic sample recording.")
    parser.add_argument("out", type=Path, nargs="?", default=Path(__file__).parent / "data" / "sample.jsonl.gz")
    parser.add_argument("--start-ms", type=int, default=1_742_515_200_000, help="default 2025-03-21 00:00 UTC")
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    write_recording(args.out, args.start_ms - args.start_ms % HOUR_MS, args.hours)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
