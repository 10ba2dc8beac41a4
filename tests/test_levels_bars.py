"""Bars for the levels model from stored market samples."""

from __future__ import annotations

from bot.core.bars import bars_from_samples
from bot.core.market import MarketSample
from bot.core.models import MINUTE_MS

T0 = 1_764_633_600_000
BAR = 15 * MINUTE_MS


def sample(venue: str, minute: int, price: float | None, oi: float | None = None) -> MarketSample:
    return MarketSample(venue, "BTC", T0 + minute * MINUTE_MS, mark_price=price, open_interest_usd=oi)


def test_a_bar_takes_its_prices_from_the_first_listed_venue_and_sums_open_interest_over_venues():
    samples = [
        sample("binance", -1, 99_000, 10e9), sample("bybit", -1, 99_100, 5e9),
        sample("binance", 0, 100_000), sample("binance", 5, 101_000), sample("binance", 10, 98_000, 11e9),
        sample("binance", 14, 99_500, 12e9), sample("bybit", 3, 90_000, 5.5e9),
    ]
    (bar,) = bars_from_samples(samples, T0, T0 + BAR, BAR, ["binance", "bybit"])
    assert (bar.open, bar.high, bar.low, bar.close) == (100_000, 101_000, 98_000, 99_500)  # bybit's 90k is not used
    assert (bar.open_interest_start_usd, bar.open_interest_end_usd) == (15e9, 17.5e9)


def test_a_venue_missing_at_either_edge_is_left_out_of_the_open_interest():
    samples = [sample("binance", -1, 100, 10e9), sample("binance", 7, 100, 12e9),
               sample("bybit", 5, 100, 5e9)]  # bybit has nothing at the open: not counted as opened
    (bar,) = bars_from_samples(samples, T0, T0 + BAR, BAR, ["binance"])
    assert (bar.open_interest_start_usd, bar.open_interest_end_usd) == (10e9, 12e9)


def test_a_stale_value_before_the_bar_does_not_count_as_its_start():
    samples = [sample("binance", -60, 100, 10e9), sample("binance", 7, 100, 12e9)]
    (bar,) = bars_from_samples(samples, T0, T0 + BAR, BAR, ["binance"])
    assert bar.open_interest_start_usd == bar.open_interest_end_usd == 0


def test_bars_without_a_price_are_skipped_and_only_whole_bars_come_out():
    samples = [sample("okx", 1, 100), sample("okx", 31, 101), sample("okx", 46, 102)]
    bars = bars_from_samples(samples, T0 + 1, T0 + 50 * MINUTE_MS, BAR, ["binance"])
    assert [b.open_ms for b in bars] == [T0, T0 + 2 * BAR]  # the second bar had no price, the fourth isn't closed


def test_no_open_interest_change_falls_between_two_bars():
    samples = [sample("binance", m, 100, 10e9 + m * 1e6) for m in range(-1, 30)]
    first, second = bars_from_samples(samples, T0, T0 + 2 * BAR, BAR, ["binance"])
    assert first.open_interest_end_usd == second.open_interest_start_usd == 10e9 + 14e6
    assert second.open_interest_end_usd - first.open_interest_start_usd == 30e6  # minute -1 to minute 29
