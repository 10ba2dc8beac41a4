"""The write-up of a window (`/report`, the full digest): what it is made of,
and the two judgements in it. Pure; the numbers come from storage.

History standing: the window's total against the same-length windows of the
last 30 and 90 days that liqbot recorded in full (rank 1 = the largest), and
the largest recorded UTC day. Fewer recorded windows than the period holds
is stated, never filled in.

Leverage after the events, judged with the `/risk` thresholds (`[risk]`):

| verdict | when |
| --- | --- |
| flushed | open interest fell by `flush_oi_24h` (10 %) or more since before the first event, and funding is back under `funding_high_annual` (20 %/yr) |
| still crowded | open interest fell by less than `cascade_oi_1h` (5 %), or funding is still at `funding_extreme_annual` (50 %/yr) or more |
| partly flushed | anything between |

Open interest is summed over the venues that have a sample on both sides;
funding is the mean annualised rate of the venues. Without open interest on
both sides there is no verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.core.events import Cascade, EventRule
from bot.core.models import LiquidationEvent
from bot.core.risk import RiskThresholds
from bot.core.summary import Summary

HISTORY_PERIODS_DAYS = (30, 90)


@dataclass(frozen=True, slots=True)
class PriceMove:
    asset: str
    from_price: float
    to_price: float

    @property
    def change(self) -> float:
        return self.to_price / self.from_price - 1


@dataclass(frozen=True, slots=True)
class CascadeStory:
    cascade: Cascade
    move: PriceMove | None  # of the scope's asset (the cascade's largest asset for "all")
    largest: LiquidationEvent | None


@dataclass(frozen=True, slots=True)
class Standing:
    """The window's rank among the recorded same-length windows of one period."""

    period_days: int
    rank: int  # 1 = the largest (this window included)
    windows: int  # recorded windows compared with (this one not counted)
    expected_windows: int  # how many the period holds
    average_usd: float

    @property
    def complete(self) -> bool:
        return self.windows >= self.expected_windows


@dataclass(frozen=True, slots=True)
class History:
    standings: tuple[Standing, ...]  # one per period that has at least one recorded window
    largest_day_usd: float | None
    largest_day_start_ms: int | None  # UTC midnight


def standings(current_usd: float, preceding_usd: Sequence[float], window_ms: int) -> tuple[Standing, ...]:
    """`preceding_usd`: totals of the fully recorded windows before this one, newest first, back to 90 days."""
    found = []
    for days in HISTORY_PERIODS_DAYS:
        expected = days * 86_400_000 // window_ms
        within = preceding_usd[:expected]
        if not within:
            continue
        found.append(
            Standing(
                period_days=days,
                rank=1 + sum(1 for usd in within if usd > current_usd),
                windows=len(within),
                expected_windows=expected,
                average_usd=sum(within) / len(within),
            )
        )
    return tuple(found)


class Verdict(StrEnum):
    FLUSHED = "flushed"
    PARTLY_FLUSHED = "partly_flushed"
    STILL_CROWDED = "still_crowded"


@dataclass(frozen=True, slots=True)
class LeverageAfter:
    asset: str
    since_ms: int  # just before the first event
    open_interest_before_usd: float | None
    open_interest_now_usd: float | None
    funding_before_annual: float | None
    funding_now_annual: float | None
    verdict: Verdict | None

    @property
    def open_interest_change(self) -> float | None:
        before, now = self.open_interest_before_usd, self.open_interest_now_usd
        return now / before - 1 if before and now is not None else None


def leverage_verdict(
    open_interest_change: float | None, funding_now_annual: float | None, thresholds: RiskThresholds
) -> Verdict | None:
    """The table in the module docstring."""
    if open_interest_change is None:
        return None
    funding = abs(funding_now_annual) if funding_now_annual is not None else None
    if open_interest_change > -thresholds.cascade_oi_1h or (
        funding is not None and funding >= thresholds.funding_extreme_annual
    ):
        return Verdict.STILL_CROWDED
    if open_interest_change <= -thresholds.flush_oi_24h and (funding is None or funding < thresholds.funding_high_annual):
        return Verdict.FLUSHED
    return Verdict.PARTLY_FLUSHED


@dataclass(frozen=True, slots=True)
class WriteUp:
    summary: Summary
    stories: tuple[CascadeStory, ...]  # the window's events, largest first
    history: History
    leverage: LeverageAfter | None  # None: no event, or no market data for the asset
    tz: str | None  # the chat's zone for every time shown (None: UTC)
    rule: EventRule  # what counted as an event in this scope (its floors are quoted when none did)
