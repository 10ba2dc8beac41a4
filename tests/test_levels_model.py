"""The liquidation-levels model on hand-computed cases, and its invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.levels import (
    Bar,
    Crossing,
    LevelBook,
    LevelSettings,
    LeverageTier,
    Realized,
    grade,
    realized_near,
    liquidation_price,
)
from bot.core.models import MINUTE_MS, Side

T0 = 1_764_633_600_000
BAR_MS = 15 * MINUTE_MS
ONE_TIER = LevelSettings(tiers=(LeverageTier(10, 1.0),), maintenance_margin_rate=0.005, bins=400,
                         min_half_span=0.2, max_half_span=0.2)


def bar(k: int, o: float, h: float, low: float, c: float, oi_from: float, oi_to: float,
        taker_buy: float | None = None, volume: float = 0.0) -> Bar:
    return Bar(T0 + k * BAR_MS, T0 + (k + 1) * BAR_MS, o, h, low, c, oi_from, oi_to, volume, taker_buy)


def test_the_formula_puts_a_10x_long_at_90_5_percent_and_a_short_at_109_5():
    assert liquidation_price(100_000, 10, Side.LONG, 0.005) == pytest.approx(90_500)
    assert liquidation_price(100_000, 10, Side.SHORT, 0.005) == pytest.approx(109_500)


def test_one_position_lands_where_the_formula_says():
    book = LevelBook(ONE_TIER)
    # A flat bar at exactly 100,000 with taker buys 70 % of volume: $10M of new OI, $7M longs.
    book.apply(bar(0, 100_000, 100_000, 100_000, 100_000, 50e6, 60e6, taker_buy=70e6, volume=100e6))
    (long_band,) = book.bands(Side.LONG)
    (short_band,) = book.bands(Side.SHORT)
    assert long_band.low <= 90_500 < long_band.high and long_band.usd == pytest.approx(7e6)
    assert short_band.low <= 109_500 < short_band.high and short_band.usd == pytest.approx(3e6)
    assert long_band.distance(100_000) == pytest.approx(long_band.high / 100_000 - 1)  # to the nearer edge


def test_without_taker_volume_the_bar_direction_decides():
    book = LevelBook(ONE_TIER)
    book.apply(bar(0, 99_000, 100_500, 99_000, 100_500, 0, 10e6))  # a rising bar, no taker data
    assert sum(b.usd for b in book.bands(Side.LONG)) == pytest.approx(6e6)
    assert sum(b.usd for b in book.bands(Side.SHORT)) == pytest.approx(4e6)


def test_leverage_tiers_split_the_notional_by_weight():
    tiers = LevelSettings(tiers=(LeverageTier(5, 0.5), LeverageTier(50, 0.5)), bins=600,
                          min_half_span=0.25, max_half_span=0.25)
    book = LevelBook(tiers)
    book.apply(bar(0, 100, 100, 100, 100, 0, 1_000, taker_buy=1, volume=1))  # all longs
    five_x, fifty_x = book.bands(Side.LONG)
    assert five_x.usd == fifty_x.usd == 500
    assert five_x.low <= 80.5 < five_x.high  # 100 * (1 - 1/5 + 0.005)
    assert fifty_x.low <= 98.5 < fifty_x.high  # 100 * (1 - 1/50 + 0.005)


def test_open_interest_falling_removes_notional_proportionally():
    book = LevelBook(ONE_TIER)
    book.apply(bar(0, 100_000, 100_000, 100_000, 100_000, 0, 10e6, taker_buy=1, volume=2))
    book.apply(bar(1, 100_000, 100_000, 100_000, 100_000, 10e6, 7.5e6))
    assert book.total_usd() == pytest.approx(7.5e6)
    assert sum(b.usd for b in book.bands(Side.LONG)) == pytest.approx(3.75e6)


def test_price_trading_through_a_band_consumes_it_and_reports_the_crossing():
    book = LevelBook(ONE_TIER)
    book.apply(bar(0, 100_000, 100_000, 100_000, 100_000, 0, 10e6, taker_buy=1, volume=1))  # $10M longs at ~90.5k
    assert book.apply(bar(1, 100_000, 100_000, 91_000, 92_000, 10e6, 10e6)) == []  # not low enough yet
    (crossing,) = book.apply(bar(2, 92_000, 92_000, 90_000, 91_000, 10e6, 10e6))
    assert crossing.side is Side.LONG and crossing.estimated_usd == pytest.approx(10e6)
    assert crossing.price == pytest.approx(90_500, abs=book.width)
    assert book.bands(Side.LONG) == [] and book.total_usd() == 0


def test_a_bar_consumes_what_was_there_before_it_then_adds_what_it_opened():
    book = LevelBook(ONE_TIER)
    # Opens $1M at 100k whose 10x longs sit at 90.5k, inside this same bar's range: they stay.
    assert book.apply(bar(0, 100_000, 100_000, 90_000, 100_000, 0, 1e6, taker_buy=1, volume=1)) == []
    assert book.total_usd() > 0


def test_bands_sum_the_buckets_in_steps_of_half_a_percent_away_from_the_price():
    book = LevelBook(LevelSettings(bins=400))
    for k in range(3):  # three bars a little apart open longs: their buckets share bands
        price = 100_000 + 100 * k
        book.apply(bar(k, price, price, price, price, k * 1e6, (k + 1) * 1e6, taker_buy=1, volume=1))
    bands = book.bands_from(Side.LONG, 100_000)
    assert [round(b.usd) for b in bands] == [450_000, 600_000, 900_000, 750_000, 300_000]  # 100x, 50x, 25x, 10x, 5x
    # Each band is as wide as its buckets (100 wide here): 100x longs at 99,500-99,699, 25x at 96,500-96,693.
    assert (bands[0].low, bands[0].high) == pytest.approx((99_500, 99_700))
    assert (bands[2].low, bands[2].high) == pytest.approx((96_500, 96_700))
    assert sum(b.usd for b in bands) == pytest.approx(3e6)
    assert [round(b.usd) for b in book.densest(Side.LONG, 100_000, 2)] == [900_000, 750_000]
    assert book.nearest(Side.LONG, 100_000, min_usd=700_000) == bands[2]
    assert book.nearest(Side.LONG, 100_000, min_usd=1e6) is None
    assert book.bands_from(Side.SHORT, 120_000) == []  # every short band sits below 120,000


def test_a_move_far_from_the_grid_recentres_and_keeps_what_still_fits():
    book = LevelBook(ONE_TIER)
    book.apply(bar(0, 100_000, 100_000, 100_000, 100_000, 0, 10e6))  # 5M each side, flat bar
    # Price rises 15 %: the short band at 109.5k is consumed; the grid recentres on 115k and
    # the long band at 90.5k (21 % below) falls outside the new +-20 % grid.
    crossings = book.apply(bar(1, 100_000, 115_000, 100_000, 115_000, 10e6, 10e6))
    assert [c.side for c in crossings] == [Side.SHORT]
    assert book.low == pytest.approx(115_000 * 0.8) and book.total_usd() == 0


def test_a_recentred_grid_keeps_each_band_once_near_its_price():
    book = LevelBook(ONE_TIER)
    book.apply(bar(0, 100_000, 100_000, 100_000, 100_000, 0, 10e6))  # 5M each side, flat bar
    (before,) = book.bands(Side.LONG)
    # Price rises 11 %: more than a quarter of the grid from its centre, so the grid recentres on
    # 111k (88.8k - 133.2k); the short band at 109.5k is consumed, the long band at 90.5k still fits.
    book.apply(bar(1, 100_000, 111_000, 100_000, 111_000, 10e6, 10e6))
    assert book.low == pytest.approx(111_000 * 0.8) and book.bands(Side.SHORT) == []
    (after,) = book.bands(Side.LONG)
    assert after.usd == pytest.approx(5e6) and after.low <= before.mid < after.high


def test_the_book_survives_a_restart_through_its_dict():
    book = LevelBook(ONE_TIER)
    book.apply(bar(0, 100_000, 100_000, 100_000, 100_000, 0, 10e6))
    again = LevelBook.from_dict(book.to_dict(), ONE_TIER)
    assert again.bands(Side.LONG) == book.bands(Side.LONG) and again.last_close == 100_000
    assert LevelBook.from_dict(book.to_dict(), LevelSettings(bins=10)).total_usd() == 0  # grid changed: afresh
    saved = book.to_dict()
    book.apply(bar(1, 100_000, 100_000, 100_000, 100_000, 10e6, 20e6))
    assert sum(saved["long_usd"]) == pytest.approx(5e6)  # a saved state is a copy, not a view of the book


def test_the_grade_counts_each_liquidation_once_for_the_nearest_band_in_its_bar():
    crossed = [
        Crossing(Side.LONG, 90_500, 10e6, T0, T0 + BAR_MS),
        Crossing(Side.LONG, 90_000, 4e6, T0, T0 + BAR_MS),
        Crossing(Side.SHORT, 109_500, 2e6, T0, T0 + BAR_MS),
    ]
    realized = [
        Realized(T0 + 1, Side.LONG, 90_450, 3e6),  # nearest is 90,500
        Realized(T0 + 2, Side.LONG, 90_100, 1e6),  # nearest is 90,000
        Realized(T0 + 3, Side.LONG, 88_000, 5e6),  # too far from any band
        Realized(T0 + BAR_MS, Side.LONG, 90_500, 9e6),  # after the bar
        Realized(T0 + 4, Side.SHORT, 90_500, 9e6),  # wrong side
    ]
    near = realized_near(crossed, realized, tolerance=0.005)
    assert near == [3e6, 1e6, 0.0]
    result = grade(crossed, near)
    assert (result.crossings, result.crossings_hit) == (3, 2)
    assert result.estimated_usd == 16e6 and result.near_usd == 4e6 and result.matched_usd == 4e6
    assert result.matched_share == pytest.approx(0.25) and result.hit_rate == pytest.approx(2 / 3)
    # More recorded near a band than it held: the match counts the band's estimate, no more.
    overfull = grade(crossed, [12e6, 1e6, 0.0])
    assert overfull.near_usd == 13e6 and overfull.matched_usd == 10e6 + 1e6


@pytest.mark.parametrize("bad", [
    dict(tiers=(LeverageTier(10, 0.5),)),
    dict(tiers=(LeverageTier(1, 1.0),)),
    dict(tiers=(LeverageTier(100, 1.0),), maintenance_margin_rate=0.02),
    dict(min_half_span=0.5, max_half_span=0.3),
])
def test_settings_that_cannot_be_a_model_are_refused(bad):
    with pytest.raises(ValueError):
        LevelSettings(**bad)


prices = st.floats(50, 200)
bars = st.lists(st.tuples(prices, prices, prices, st.floats(0, 1e9), st.one_of(st.none(), st.floats(0, 1))),
                min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(bars)
def test_the_estimate_never_exceeds_the_open_interest_it_came_from(series):
    book = LevelBook(LevelSettings(bins=64))
    open_interest = 0.0
    for k, (a, b, c, oi, buy_share) in enumerate(series):
        low, high = min(a, b, c), max(a, b, c)
        volume = 1e6 if buy_share is not None else 0.0
        taker = buy_share * volume if buy_share is not None else None
        book.apply(bar(k, a, high, low, c, open_interest, oi, taker_buy=taker, volume=volume))
        open_interest = oi
        assert book.total_usd() <= open_interest * (1 + 1e-9) + 1e-6
        assert all(b.usd >= 0 for side in Side for b in book.bands(side))


def test_a_fall_of_open_interest_that_the_crossed_bands_explain_leaves_the_others_whole():
    book = LevelBook(ONE_TIER)
    book.apply(bar(0, 100_000, 100_000, 100_000, 100_000, 0, 10e6, taker_buy=1, volume=2))  # 5M each side
    # The price falls through the $5M long band and open interest falls by $5M: those were the longs.
    (crossing,) = book.apply(bar(1, 100_000, 100_000, 90_000, 91_000, 10e6, 5e6))
    assert crossing.side is Side.LONG and crossing.estimated_usd == pytest.approx(5e6)
    assert sum(b.usd for b in book.bands(Side.SHORT)) == pytest.approx(5e6)
    # A further fall beyond what was crossed comes off the rest in proportion: 1M of 5M.
    book.apply(bar(2, 91_000, 91_000, 91_000, 91_000, 5e6, 4e6))
    assert sum(b.usd for b in book.bands(Side.SHORT)) == pytest.approx(4e6)


def test_positions_a_bar_opened_inside_its_own_range_are_left_out():
    book = LevelBook(ONE_TIER)
    # Typical price 93,333: its 10x longs would sit at 84,467, inside the bar's 80,000-100,000
    # (perhaps already liquidated); its shorts at 102,200, above the bar: kept.
    assert book.apply(bar(0, 100_000, 100_000, 80_000, 100_000, 0, 10e6, taker_buy=1, volume=2)) == []
    assert book.bands(Side.LONG) == []
    (short,) = book.bands(Side.SHORT)
    assert short.low <= 102_200 < short.high and short.usd == pytest.approx(5e6)
