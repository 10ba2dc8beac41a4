"""Number, duration and time formatting in both locales, boundaries pinned."""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS
from bot.replies.compose import big_reply
from bot.replies.render_plain import render_plain
from tests.support import liquidation
from bot.replies import numbers


@pytest.mark.parametrize(
    ("amount_usd", "en", "zh"),
    [
        (0, "$0", "0美元"),
        (0.004, "$0.00", "0.00美元"),
        (812.4, "$812.40", "812.40美元"),
        (999.99, "$999.99", "999.99美元"),
        (999.995, "$1.0K", "1000.00美元"),  # en carries into K; zh stays below 1万
        (1_000, "$1.0K", "1000.00美元"),
        (9_999.99, "$10.0K", "9999.99美元"),
        (9_999.995, "$10.0K", "1.00万美元"),  # zh carries into 万
        (10_000, "$10.0K", "1.00万美元"),
        (12_345, "$12.3K", "1.23万美元"),
        (12_500, "$12.5K", "1.25万美元"),
        (951_200, "$951.2K", "95.12万美元"),
        (999_949, "$999.9K", "99.99万美元"),
        (999_950, "$1.00M", "100万美元"),  # both carry: never "$1000.0K" / "100.00万"
        (999_995, "$1.00M", "100万美元"),
        (1_000_000, "$1.00M", "100万美元"),
        (1_005_000, "$1.01M", "101万美元"),  # half-up on the written value
        (15_000_000, "$15.00M", "1500万美元"),
        (51_710_000, "$51.71M", "5171万美元"),
        (78_470_000, "$78.47M", "7847万美元"),
        (99_994_999, "$99.99M", "9999万美元"),
        (99_995_000, "$100.00M", "1.00亿美元"),  # zh carries into 亿
        (100_000_000, "$100.00M", "1.00亿美元"),
        (145_180_000, "$145.18M", "1.45亿美元"),
        (999_995_000, "$1.00B", "10.00亿美元"),  # en carries into B
        (1_450_000_000, "$1.45B", "14.50亿美元"),
        (-1_234.5, "-$1.2K", "-1234.50美元"),
        (-78_470_000, "-$78.47M", "-7847万美元"),
    ],
)
def test_usd(amount_usd, en, zh):
    assert numbers.usd(amount_usd, "en") == en
    assert numbers.usd(amount_usd, "zh") == zh


@pytest.mark.parametrize(("fraction", "text"), [(0.7925, "79.25%"), (0.2075, "20.75%"), (1, "100.00%"), (0, "0.00%"), (0.92345, "92.35%")])
@pytest.mark.parametrize("locale", numbers.LOCALES)
def test_share(fraction, text, locale):
    assert numbers.share(fraction, locale) == text


@pytest.mark.parametrize("locale", numbers.LOCALES)
def test_count(locale):
    assert numbers.count(1234, locale) == "1,234"
    assert numbers.count(0, locale) == "0"
    assert numbers.count(12_345_678, locale) == "12,345,678"


@pytest.mark.parametrize(
    ("price_usd", "text"),
    [
        (97_234.5, "$97,234.5"),
        (97_234.56, "$97,234.6"),
        (3_412.0, "$3,412.00"),
        (1.23456789, "$1.23457"),
        (0.000012345, "$0.0000123450"),
        (0.0000123456789, "$0.0000123457"),
        (0, "$0"),
    ],
)
def test_price(price_usd, text):
    assert numbers.price(price_usd) == text


def test_prices_of_one_asset_share_one_precision():
    assert [numbers.price(p, 91_292.6) for p in (84_000.0, 91_292.6, 100.0)] == ["$84,000.0", "$91,292.6", "$100.0"]
    assert numbers.price(99_999.96, 100_000.0) == "$100,000"


def test_quantity():
    assert numbers.quantity(0.5, "BTC") == "0.5 BTC"
    assert numbers.quantity(1_234_567.0, "PEPE") == "1,234,567 PEPE"
    assert numbers.quantity(12.0) == "12"


@pytest.mark.parametrize(
    ("ms", "en", "zh"),
    [
        (0, "0s", "0秒"),
        (999, "0s", "0秒"),
        (12_000, "12s", "12秒"),
        (35 * MINUTE_MS, "35m", "35分钟"),
        (90 * 1000, "1m 30s", "1分钟30秒"),
        (4 * HOUR_MS, "4h", "4小时"),
        (4 * HOUR_MS + 59 * 1000, "4h", "4小时"),  # two adjacent units at most
        (DAY_MS + 2 * HOUR_MS + 5 * MINUTE_MS, "1d 2h", "1天2小时"),
        (DAY_MS + 5 * MINUTE_MS, "1d", "1天"),
    ],
)
def test_duration(ms, en, zh):
    assert numbers.duration(ms, "en") == en
    assert numbers.duration(ms, "zh") == zh


@pytest.mark.parametrize(
    ("window_ms", "en", "zh"),
    [
        (30 * MINUTE_MS, "30m", "30分钟"),
        (HOUR_MS, "1h", "1小时"),
        (4 * HOUR_MS, "4h", "4小时"),
        (DAY_MS, "24h", "24小时"),
        (2 * DAY_MS, "2d", "2天"),
        (7 * DAY_MS, "7d", "7天"),
        (90 * MINUTE_MS, "90m", "90分钟"),
        (45 * 1000, "45s", "45秒"),
    ],
)
def test_window_label(window_ms, en, zh):
    assert numbers.window_label(window_ms, "en") == en
    assert numbers.window_label(window_ms, "zh") == zh


MARCH_21_NOON_UTC_MS = 1_742_558_400_000


@pytest.mark.parametrize("locale", numbers.LOCALES)
def test_timestamp(locale):
    assert numbers.timestamp(MARCH_21_NOON_UTC_MS, locale) == "2025-03-21 12:00 UTC"
    assert numbers.timestamp(MARCH_21_NOON_UTC_MS, locale, ZoneInfo("Asia/Shanghai")) == "2025-03-21 20:00 UTC+8"
    assert numbers.timestamp(MARCH_21_NOON_UTC_MS, locale, ZoneInfo("Asia/Kolkata")) == "2025-03-21 17:30 UTC+5:30"
    assert numbers.timestamp(MARCH_21_NOON_UTC_MS, locale, ZoneInfo("America/New_York")) == "2025-03-21 08:00 UTC-4"


@pytest.mark.parametrize(
    ("ms", "en", "zh"),
    [
        (-5_000, "just now", "刚刚"),
        (999, "just now", "刚刚"),
        (12_000, "12s ago", "12秒前"),
        (HOUR_MS + 5 * MINUTE_MS, "1h 5m ago", "1小时5分钟前"),
    ],
)
def test_age(ms, en, zh):
    assert numbers.age(ms, "en") == en
    assert numbers.age(ms, "zh") == zh


def test_unknown_locale_is_refused():
    with pytest.raises(ValueError, match="unsupported locale 'fr'"):
        numbers.usd(1, "fr")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount_usd", "en", "zh"),
    [
        (1.45e12, "$1.45T", "1.45万亿美元"),
        (1e35, "$1.00e+35", "1.00e+35美元"),  # the `/alert big BTC 1e35` rule that broke /alert list
        (1e38, "$1.00e+38", "1.00e+38美元"),
        (-1.7e308, "-$1.70e+308", "-1.70e+308美元"),
        (5e-324, "$0.00", "0.00美元"),
        (math.inf, "$∞", "∞美元"),
        (-math.inf, "-$∞", "-∞美元"),
        (math.nan, "—", "—"),
    ],
)
def test_usd_is_total(amount_usd, en, zh):
    assert numbers.usd(amount_usd, "en") == en
    assert numbers.usd(amount_usd, "zh") == zh


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(10**400), max_value=10**400))
def test_every_number_formatter_gives_a_string_for_any_number(value):
    for locale in numbers.LOCALES:
        assert numbers.usd(value, locale)
        assert numbers.share(value, locale)
    assert numbers.price(value)
    assert numbers.quantity(value, "BTC")


def test_big_orders_of_one_asset_show_one_precision():
    orders = [
        liquidation(1_000, 2e6)._replace(price=91_292.6),
        liquidation(2_000, 1e6)._replace(price=84_000.0),
        liquidation(3_000, 5e5, asset="XRP")._replace(price=2.5),
    ]
    text = render_plain(big_reply(orders, None, DAY_MS, "en"))
    assert "$91,292.6" in text and "$84,000.0" in text and "$2.50000" in text
