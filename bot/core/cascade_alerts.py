"""Cascade alerts (`/alert cascade [ASSET|all] [MIN_USD]`): one alert when a live
liquidation event starts, one summary when it ends. Pure.

Detection is bot.core.events' rule (`detect_cascades`) on per-minute totals this
watch keeps from the live orders (per scope: one asset, or all assets), never
per order. A rule's MIN_USD is the event's minimum total; a hot minute needs a
quarter of it (the default rule's $500K-of-$2M ratio); the other parameters
are the default rule's. The current minute counts while it fills, so a start
is announced as soon as the minute turns hot.

Hysteresis: a rule fires at the start of an event, then stays disarmed until
that event has ended (its summary sent): one start and one end per event. The
cooldown spaces two start alerts of one rule; an event still in progress when
the cooldown ends is announced then. State (armed, last_fired_ms = when the
start alert went out) is the other kinds' `RuleState`, so after a restart
(minutes seeded from the rollups) the summary still comes and the start is not
announced again. Minutes are kept `KEEP_MINUTES` back: an event that started
earlier than that ends silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from bot.core.alert_rules import AlertRule, Fired, RuleBook, RuleKind
from bot.core.events import Cascade, EventRule, MinuteTotal, detect_cascades
from bot.core.models import MINUTE_MS, LiquidationEvent, Side
from bot.core.summary import Split

KEEP_MINUTES = 6 * 60
DEFAULT_MIN_EVENT_USD = EventRule().min_event_usd
_MINUTE_SHARE_OF_EVENT = EventRule().min_minute_usd / EventRule().min_event_usd


@dataclass(slots=True)
class _AssetMinute:
    long_usd: float = 0.0
    short_usd: float = 0.0
    orders: int = 0
    largest_usd: float = 0.0
    largest_side: Side = Side.LONG


@dataclass(frozen=True, slots=True)
class LargestOrder:
    usd: float
    asset: str
    side: Side


def event_rule(min_event_usd: float) -> EventRule:
    return replace(EventRule(), min_event_usd=min_event_usd, min_minute_usd=min_event_usd * _MINUTE_SHARE_OF_EVENT)


class CascadeWatch(RuleBook):
    """Feed orders with `on_events`, stored minutes with `seed`; `tick(now_ms)`
    about once a second returns the start and end alerts due."""

    def __init__(self, cooldown_ms: int) -> None:
        super().__init__()
        self.cooldown_ms = cooldown_ms
        self._minutes: dict[int, dict[str, _AssetMinute]] = {}  # minute start -> asset -> amounts
        # Events per (scope, minimum), valid until an order arrives or the minute turns
        # (`in_progress` changes only at minute boundaries).
        self._found: dict[tuple[str | None, float], list[Cascade]] = {}
        self._found_minute = -1

    def on_events(self, events: Iterable[LiquidationEvent]) -> None:
        if not self.rules:
            return
        for event in events:
            self.seed(event.asset, event.at_ms, event.liquidated, event.notional_usd, 1, event.notional_usd)

    def seed(self, asset: str, at_ms: int, side: Side, usd: float, orders: int, largest_usd: float) -> None:
        self._found.clear()
        minute = self._minutes.setdefault(at_ms - at_ms % MINUTE_MS, {}).setdefault(asset, _AssetMinute())
        if side is Side.LONG:
            minute.long_usd += usd
        else:
            minute.short_usd += usd
        minute.orders += orders
        if largest_usd > minute.largest_usd:
            minute.largest_usd, minute.largest_side = largest_usd, side

    def tick(self, now_ms: int) -> list[Fired]:
        history_start_ms = now_ms - now_ms % MINUTE_MS - KEEP_MINUTES * MINUTE_MS
        if now_ms // MINUTE_MS != self._found_minute:
            self._found_minute = now_ms // MINUTE_MS
            self._found.clear()
            for old in [m for m in self._minutes if m < history_start_ms]:
                del self._minutes[old]
        found = self._found
        fired = []
        for rule_id in sorted(self.rules):
            rule, state = self.rules[rule_id], self.states[rule_id]
            if rule.paused:
                continue
            key = (rule.asset, rule.threshold_usd)
            if key not in found:
                found[key] = self._detect(rule.asset, rule.threshold_usd, history_start_ms, now_ms)
            cascades = found[key]
            if state.armed:
                live = next((c for c in reversed(cascades) if c.in_progress), None)
                cooling = state.last_fired_ms is not None and now_ms < state.last_fired_ms + self.cooldown_ms
                if live is None or cooling:
                    continue
                state.armed, state.last_fired_ms = False, now_ms
                self.dirty.add(rule_id)
                fired.append(self._fired(rule, live, now_ms))
                continue
            started = [c for c in cascades if c.start_ms <= (state.last_fired_ms or 0)]
            if started and started[-1].in_progress:
                continue
            state.armed = True
            self.dirty.add(rule_id)
            if started:  # else the event left the kept minutes: it ends silently
                fired.append(self._fired(rule, started[-1], now_ms))
        return fired

    def _detect(self, asset: str | None, min_event_usd: float, history_start_ms: int, now_ms: int) -> list[Cascade]:
        rule = event_rule(min_event_usd)
        minutes = [
            MinuteTotal(start_ms, tuple(Split(name, m.long_usd, m.short_usd, m.orders) for name, m in sorted(assets.items())
                                        if asset is None or name == asset))
            for start_ms, assets in sorted(self._minutes.items())
        ]
        end_ms = now_ms - now_ms % MINUTE_MS + MINUTE_MS  # the current minute counts while it fills
        return detect_cascades(minutes, history_start_ms, history_start_ms + rule.baseline_minutes * MINUTE_MS,
                               end_ms, now_ms, rule, asset or "all")

    def _largest(self, asset: str | None, cascade: Cascade) -> LargestOrder | None:
        best = None
        for start_ms in range(cascade.start_ms, cascade.end_ms, MINUTE_MS):
            for name, minute in self._minutes.get(start_ms, {}).items():
                if (asset is None or name == asset) and (best is None or minute.largest_usd > best.usd):
                    best = LargestOrder(minute.largest_usd, name, minute.largest_side)
        return best

    def _fired(self, rule: AlertRule, cascade: Cascade, now_ms: int) -> Fired:
        return Fired(
            chat_key=rule.chat_key,
            kind=RuleKind.CASCADE,
            rule_ids=(rule.id,),
            at_ms=now_ms,
            asset=rule.asset,
            threshold_usd=rule.threshold_usd,
            long_usd=cascade.total.long_usd,
            short_usd=cascade.total.short_usd,
            cascade=cascade,
            largest=self._largest(rule.asset, cascade),
        )
