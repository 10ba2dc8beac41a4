"""Cascade detection: the documented rule on hand-built minute series."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.events import EventRule, MinuteTotal, detect_cascades, ranked
from bot.core.models import HOUR_MS, MINUTE_MS
from bot.core.summary import Split, Squeeze

T0 = 1_742_515_200_000  # a whole hour
RULE = EventRule(baseline_minutes=60, spike_ratio=5.0, min_minute_usd=500_000, min_event_usd=2_000_000,
                 max_quiet_minutes=3, min_orders=1)  # short gaps, one order a minute: easy to read


def minutes(per_minute_usd: dict[int, float], long_share: float = 0.8, asset: str = "BTC") -> list[MinuteTotal]:
    """Minute k after T0 -> total USD, split long/short by `long_share`."""
    return [
        MinuteTotal(T0 + k * MINUTE_MS, (Split(asset, usd * long_share, usd * (1 - long_share), 1),))
        for k, usd in sorted(per_minute_usd.items())
    ]


def background(usd: float = 50_000, count: int = 180) -> dict[int, float]:
    return {k: usd for k in range(count)}


def detect(series, now_k: int = 180, window_start_k: int = 60):
    return detect_cascades(series, T0, T0 + window_start_k * MINUTE_MS, T0 + 180 * MINUTE_MS,
                           T0 + now_k * MINUTE_MS, RULE)


def test_a_burst_far_above_the_trailing_hour_is_one_event_with_its_numbers():
    series = background() | {100: 1_500_000, 101: 3_000_000, 102: 900_000, 103: 60_000, 104: 800_000}
    (cascade,) = detect(minutes(series))
    assert (cascade.start_ms, cascade.end_ms) == (T0 + 100 * MINUTE_MS, T0 + 105 * MINUTE_MS)
    assert cascade.peak_minute_ms == T0 + 101 * MINUTE_MS and cascade.peak_minute_usd == 3_000_000
    assert cascade.total.total_usd == 1_500_000 + 3_000_000 + 900_000 + 60_000 + 800_000  # the quiet minute too
    assert round(cascade.total.long_share, 4) == 0.8 and cascade.kind is Squeeze.LONG_SQUEEZE
    assert cascade.baseline_usd_per_minute == 50_000
    assert not cascade.in_progress


def test_minutes_below_the_dollar_floor_or_the_ratio_are_no_event():
    assert detect(minutes(background(0) | {100: 400_000, 101: 400_000, 102: 400_000, 103: 400_000,
                                           104: 400_000, 105: 400_000})) == []  # 5x of nothing, but < $500K
    assert detect(minutes(background(200_000) | {100: 900_000, 101: 900_000, 102: 900_000})) == []  # 4.5x only


def test_a_small_run_is_no_event_and_long_gaps_split_runs():
    assert detect(minutes(background() | {100: 1_000_000})) == []  # $1M < $2M event floor
    split = background() | {100: 2_500_000, 105: 2_500_000}  # four quiet minutes between: two events
    assert [c.start_ms for c in detect(minutes(split))] == [T0 + 100 * MINUTE_MS, T0 + 105 * MINUTE_MS]
    joined = background() | {100: 2_500_000, 104: 2_500_000}  # three quiet minutes: one event
    assert len(detect(minutes(joined))) == 1


def test_a_long_cascade_is_not_ended_by_its_own_volume():
    """Thirty minutes of $1M: measured against the hour before it, not against itself."""
    series = background() | {k: 1_000_000 for k in range(100, 130)}
    (cascade,) = detect(minutes(series))
    assert cascade.duration_ms == 30 * MINUTE_MS and cascade.total.total_usd == 30_000_000


def test_an_event_still_hot_near_now_is_in_progress():
    series = background(count=103) | {100: 1_500_000, 101: 1_500_000, 102: 1_500_000}
    (live,) = detect(minutes(series), now_k=104)
    assert live.in_progress
    (done,) = detect(minutes(series), now_k=106)
    assert not done.in_progress


def test_history_before_the_window_only_feeds_the_baseline():
    series = background() | {30: 5_000_000, 100: 5_000_000}
    assert [c.start_ms for c in detect(minutes(series), window_start_k=60)] == [T0 + 100 * MINUTE_MS]


def test_per_asset_split_and_ranking():
    series = minutes(background()) + [
        MinuteTotal(T0 + 120 * MINUTE_MS, (Split("BTC", 2_000_000, 0, 3), Split("SOL", 1_000_000, 200_000, 4))),
    ]
    series.sort(key=lambda m: m.start_ms)
    big = detect(series)
    (cascade,) = big
    assert [s.name for s in cascade.by_asset] == ["BTC", "SOL"]
    assert cascade.by_asset[1] == Split("SOL", 1_000_000, 200_000, 4)
    small = detect(minutes(background() | {100: 2_100_000}))
    assert ranked(small + big) == big + small


def test_one_whale_order_is_no_cascade():
    whale = [MinuteTotal(T0 + 100 * MINUTE_MS, (Split("BTC", 3_000_000, 0, 1),))]
    crowd = [MinuteTotal(T0 + 100 * MINUTE_MS, (Split("BTC", 3_000_000, 0, 12),))]
    rule = EventRule(min_orders=10)
    assert detect_cascades(minutes(background()) + whale, T0, T0 + HOUR_MS, T0 + 3 * HOUR_MS, T0 + 3 * HOUR_MS, rule) == []
    assert len(detect_cascades(minutes(background()) + crowd, T0, T0 + HOUR_MS, T0 + 3 * HOUR_MS, T0 + 3 * HOUR_MS, rule)) == 1


def test_for_asset_share_scales_the_floors_down_but_not_to_nothing():
    assert RULE.for_asset_share(0.4).min_event_usd == 800_000
    assert RULE.for_asset_share(0.001).min_minute_usd == 50_000
    assert RULE.for_asset_share(3.0).min_event_usd == 2_000_000


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(0, 179), st.floats(0, 1e8, allow_nan=False), max_size=60))
def test_events_never_overlap_and_hold_what_their_minutes_hold(per_minute):
    series = minutes(per_minute)
    cascades = detect_cascades(series, T0, T0, T0 + 3 * HOUR_MS, T0 + 3 * HOUR_MS, RULE)
    for a, b in zip(cascades, cascades[1:]):
        assert a.end_ms <= b.start_ms
    for cascade in cascades:
        inside = sum(m.total_usd for m in series if cascade.start_ms <= m.start_ms < cascade.end_ms)
        assert abs(cascade.total.total_usd - inside) <= 0.01 * len(series) + 1e-6 * inside
        assert cascade.total.total_usd >= RULE.min_event_usd - 0.01
