"""Locale-aware formatting of amounts, shares, prices, durations and times.

Locales are "en" and "zh". Rounding is decimal half-up on the value as written
(Decimal of the float's shortest repr), so 999.995 rounds like a reader expects
rather than like its binary approximation.

USD amounts use a compact scale, chosen *after* rounding so a value never reads
as 1000 of a unit (999_995 is `$1.00M`, never `$1000.0K`):

- en: >= 1T: `$1.45T`; >= 1B: `$1.45B`; >= 1M: `$78.47M`; >= 1K: `$951.2K`; below: `$812.40`.
- zh: >= 1万亿: `1.45万亿美元`; >= 1亿: `1.45亿美元`; >= 100万: `7847万美元` (whole 万);
  >= 1万: `1.23万美元`; below: `812.40美元`.

Every formatter is total: whatever number reaches it (a stored rule from before
amounts were bounded, a corrupt value) gives a string, never an exception.
Amounts from 10^15 up read in scientific notation (`$1.00e+35`), infinities as
`$∞`, NaN as `—`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from bot.core.models import DAY_MS, HOUR_MS, MINUTE_MS

Locale = Literal["en", "zh"]
LOCALES: tuple[Locale, ...] = ("en", "zh")

SECOND_MS = 1_000
PRICE_SIGNIFICANT_DIGITS = 6
SCIENTIFIC_FROM_USD = 10**15  # past a thousand trillion, a compact scale stops reading well
NOT_A_NUMBER = "—"
# Enough digits to quantize any finite float (up to 309 integer digits, 330 decimals)
# without decimal.InvalidOperation.
_WIDE = Context(prec=1_000)


def _check(locale: str) -> None:
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}; expected one of {LOCALES}")


def _decimal(value: float | int) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _round(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP, context=_WIDE)


def _non_finite(value: float | int, prefix: str = "", suffix: str = "") -> str | None:
    """The text of NaN or an infinity; None for a finite number."""
    if not isinstance(value, float) or math.isfinite(value):
        return None
    if math.isnan(value):
        return NOT_A_NUMBER
    return f"{'-' if value < 0 else ''}{prefix}∞{suffix}"


@dataclass(frozen=True, slots=True)
class _Scale:
    from_usd: int  # the tier applies from this amount upwards
    divisor: int  # the amount is written as a multiple of this
    decimals: int
    suffix: str


# Ascending tiers per locale; the amount is written as `prefix + number + suffix`.
_USD_SCALES: dict[str, tuple[_Scale, ...]] = {
    "en": (
        _Scale(0, 1, 2, ""),
        _Scale(1_000, 1_000, 1, "K"),
        _Scale(1_000_000, 1_000_000, 2, "M"),
        _Scale(1_000_000_000, 1_000_000_000, 2, "B"),
        _Scale(10**12, 10**12, 2, "T"),
    ),
    "zh": (
        _Scale(0, 1, 2, "美元"),
        _Scale(10_000, 10_000, 2, "万美元"),
        _Scale(1_000_000, 10_000, 0, "万美元"),  # from 100万 whole 万 read best: 7847万
        _Scale(100_000_000, 100_000_000, 2, "亿美元"),
        _Scale(10**12, 10**12, 2, "万亿美元"),
    ),
}
_USD_PREFIX = {"en": "$", "zh": ""}


def usd(amount_usd: float, locale: Locale) -> str:
    """A USD amount in the locale's compact scale (see the module docstring)."""
    _check(locale)
    prefix, scales = _USD_PREFIX[locale], _USD_SCALES[locale]
    unit = scales[0].suffix
    odd = _non_finite(amount_usd, prefix, unit)
    if odd is not None:
        return odd
    if amount_usd == 0:
        return prefix + "0" + unit
    sign = "-" if amount_usd < 0 else ""
    magnitude = abs(_decimal(amount_usd))
    if magnitude >= SCIENTIFIC_FROM_USD:
        return f"{sign}{prefix}{magnitude:.2e}{unit}"
    tier = max(i for i, scale in enumerate(scales) if magnitude >= scale.from_usd)
    scaled = _round(magnitude / scales[tier].divisor, scales[tier].decimals)
    # Rounding may carry into the next tier (999_995 -> 1000.0K): move up.
    while tier + 1 < len(scales) and scaled * scales[tier].divisor >= scales[tier + 1].from_usd:
        tier += 1
        scaled = _round(magnitude / scales[tier].divisor, scales[tier].decimals)
    return f"{sign}{prefix}{scaled}{scales[tier].suffix}"


def share(fraction: float, locale: Locale) -> str:
    """A fraction of 1 as a percentage with two decimals: 0.7925 -> `79.25%`."""
    _check(locale)
    return _non_finite(fraction, suffix="%") or f"{_round(_decimal(fraction) * 100, 2)}%"


def count(n: int, locale: Locale) -> str:
    """A whole count with thousands separators (`1,234`; zh uses them too)."""
    _check(locale)
    return f"{n:,}"


def _significant(value: float, digits: int) -> str:
    """`value` to `digits` significant digits, thousands separators, no trailing zeros."""
    if value == 0:
        return "0"
    exact = _decimal(value)
    decimals = max(0, digits - 1 - exact.adjusted())
    text = f"{_round(exact, decimals):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def price(price_usd: float, scale_usd: float | None = None) -> str:
    """A USD price with the decimals of six significant digits at `scale_usd` (the
    asset's price level; the price itself when None), trailing zeros kept, so every
    price of one asset in a reply has the same precision: `$84,000.0`, `$91,292.6`,
    `$3,412.00`, `$0.0000123450`."""
    odd = _non_finite(price_usd, "$")
    if odd is not None:
        return odd
    scale = abs(_decimal(scale_usd if scale_usd is not None else price_usd))
    if scale.is_zero() or not scale.is_finite():
        return f"${_significant(abs(price_usd), PRICE_SIGNIFICANT_DIGITS)}"
    decimals = max(0, PRICE_SIGNIFICANT_DIGITS - 1 - scale.adjusted())
    sign = "-" if price_usd < 0 else ""
    return f"{sign}${_round(_decimal(abs(price_usd)), decimals):,f}"


def quantity(amount: float, unit: str = "") -> str:
    """A quantity in a venue unit (coins, contracts), six significant digits: `0.5 BTC`."""
    text = _non_finite(amount) or _significant(amount, PRICE_SIGNIFICANT_DIGITS)
    return f"{text} {unit}" if unit else text


# Largest first; `duration` shows the largest unit and the next one down.
_UNITS_MS = (DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS)
_UNIT_NAMES = {"en": ("d", "h", "m", "s"), "zh": ("天", "小时", "分钟", "秒")}
_UNIT_JOINER = {"en": " ", "zh": ""}


def duration(ms: int, locale: Locale) -> str:
    """A span of time, truncated to two adjacent units: `1d 2h`, `35m`, `4小时`."""
    _check(locale)
    names = _UNIT_NAMES[locale]
    ms = max(0, int(ms))
    for i, unit_ms in enumerate(_UNITS_MS):
        if ms >= unit_ms or unit_ms == SECOND_MS:
            parts = [f"{ms // unit_ms}{names[i]}"]
            if i + 1 < len(_UNITS_MS):
                rest = (ms % unit_ms) // _UNITS_MS[i + 1]
                if rest:
                    parts.append(f"{rest}{names[i + 1]}")
            return _UNIT_JOINER[locale].join(parts)
    raise AssertionError("unreachable: the seconds unit always matches")


def window_label(window_ms: int, locale: Locale) -> str:
    """A query window as traders write it: `30m`, `1h`, `4h`, `24h`, `7d` (zh `24小时`, `7天`).

    Whole days are used from two days up, so a day reads `24h` as on every venue.
    Windows that are not a whole number of minutes fall back to `duration`.
    """
    _check(locale)
    names = _UNIT_NAMES[locale]
    if window_ms >= 2 * DAY_MS and window_ms % DAY_MS == 0:
        return f"{window_ms // DAY_MS}{names[0]}"
    if window_ms >= HOUR_MS and window_ms % HOUR_MS == 0:
        return f"{window_ms // HOUR_MS}{names[1]}"
    if window_ms >= MINUTE_MS and window_ms % MINUTE_MS == 0:
        return f"{window_ms // MINUTE_MS}{names[2]}"
    return duration(window_ms, locale)


def _utc_offset_label(offset: timedelta) -> str:
    # An explicit offset, because abbreviations like "CST" are ambiguous.
    if not offset:
        return "UTC"
    sign = "+" if offset > timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    hours, minutes = divmod(minutes, 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def zone(name: str | None) -> tzinfo:
    """A chat's zone name (validated when it was set) as a tzinfo; UTC when unset or unknown."""
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # removed from the zone database since: UTC, never a crash
        return timezone.utc


def zone_label(tz: tzinfo, at_ms: int) -> str:
    """The zone's offset at `at_ms` as a column label: `UTC`, `UTC+8`."""
    return _utc_offset_label(datetime.fromtimestamp(at_ms / 1000, tz).utcoffset() or timedelta(0))


def timestamp(at_ms: int, locale: Locale, tz: tzinfo = timezone.utc) -> str:
    """A wall-clock time to the minute with its offset: `2025-03-21 12:00 UTC`, `... UTC+8`."""
    _check(locale)
    at = datetime.fromtimestamp(at_ms / 1000, tz)
    return f"{at:%Y-%m-%d %H:%M} {_utc_offset_label(at.utcoffset() or timedelta(0))}"


def time_of_day(at_ms: int, locale: Locale, tz: tzinfo = timezone.utc) -> str:
    """A time of day to the second with its offset, for what happens as you read: `12:00:05 UTC`, `20:00:05 UTC+8`."""
    _check(locale)
    at = datetime.fromtimestamp(at_ms / 1000, tz)
    return f"{at:%H:%M:%S} {_utc_offset_label(at.utcoffset() or timedelta(0))}"


_AGO = {"en": "{} ago", "zh": "{}前"}
_JUST_NOW = {"en": "just now", "zh": "刚刚"}


def age(ms: int, locale: Locale) -> str:
    """How long ago something happened: `12s ago`, `1h 5m ago`, `12秒前`."""
    _check(locale)
    if ms < SECOND_MS:
        return _JUST_NOW[locale]
    return _AGO[locale].format(duration(ms, locale))
