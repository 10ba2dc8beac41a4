"""The alert engine: matches live orders and time against the alert rules
(bot.core.alert_rules) and says which alerts are due. Pure.

Matching cost per event does not grow with the number of rules:
- window sums are kept per asset in minute rings (bot.core.minute_ring), with
  one running sum per distinct window length in use;
- `big` rules sit in a `ThresholdIndex` (bot.core.bursts): an order finds its
  matches with one bisect; cost is proportional to the matches;
- `total` rules are kept per (asset, window) in sorted lists: armed ones by
  threshold (a bisect finds the newly crossed), disarmed ones by re-arm level
  (a bisect finds those that fell below 80% of their threshold);
- `skew` rules per (asset, window), grouped by share level and sorted by
  minimum: a bisect per share level at most the current heavier share finds
  the candidates (users pick few distinct shares: 70%, 80%, 90% ...);
- `cascade` rules are bot.core.cascade_alerts' (the engine ignores them); the
  level of `risk` rules comes from outside (`on_risk(asset, level, now_ms)`,
  which the service calls about once a minute per asset).

Hysteresis: a window rule fires once per crossing, then is disarmed until its
value falls below `REARM_FRACTION` of the threshold (for skew: the total falls
below 80% of its minimum, or the share's excess over 50% falls below 80% of
the rule's excess; for risk: the level falls below the rule's level; an
unknown level (no market data) neither fires nor re-arms). A cooldown spaces
the firings of one window or risk rule. Matching `big` orders of one chat are
grouped by bot.core.bursts' `BurstGrouper` (as the live feed's are): collected
for `group_ms`, then one alert lists them. The service keeps a durable copy of
each group as it grows (`big_groups`, then `big_written` or `big_missed`), so a
group outlives the process that collected it. Big-order alerts never wait out a
cooldown (a later burst is news the trader needs now): past
`big_listed_per_minute` listing messages in a chat's last minute, a group is
sent as one "N more orders, $X" line instead.

State (armed, last fired) is a small dict per rule: persist it, load it back
after a restart, and the engine neither re-fires nor forgets.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.core.alert_rules import AlertRule, Fired, RuleKind, RuleState, level_rank
from bot.core.bursts import Burst, BurstGrouper, BurstSettings, ThresholdIndex, cents_of
from bot.core.minute_ring import AssetRing
from bot.core.models import MINUTE_MS, LiquidationEvent, Side
from bot.core.risk import RiskLevel

REARM_FRACTION = 0.8
# Orders listed in one grouped alert (the rest are counted).
MAX_ORDERS_LISTED = 10


@dataclass(frozen=True, slots=True)
class EngineSettings:
    cooldown_ms: int = 15 * MINUTE_MS  # between two firings of one window or risk rule
    group_ms: int = 2_000  # matching big orders are collected this long into one alert
    big_listed_per_minute: int = 6  # per chat; further groups that minute are one summary line


# -- the engine ------------------------------------------------------------------


@dataclass(slots=True)
class _WindowIndex:
    """The total and skew rules of one (asset, window)."""

    armed_total: list[tuple[int, int]] = field(default_factory=list)  # (threshold cents, id)
    disarmed_total: list[tuple[int, int]] = field(default_factory=list)  # (re-arm cents, id)
    # Armed skew rules per share level (users pick few distinct shares), each by minimum.
    armed_skew: dict[float, list[tuple[int, int]]] = field(default_factory=dict)  # share -> [(min cents, id)]
    skew_shares: list[float] = field(default_factory=list)  # sorted keys of armed_skew
    # Disarmed skew rules by re-arm levels: the share level and the total level.
    disarmed_skew_share: list[tuple[float, int]] = field(default_factory=list)
    disarmed_skew_total: list[tuple[int, int]] = field(default_factory=list)
    waiting: list[tuple[int, int]] = field(default_factory=list)  # heap (cooldown end, id)


class AlertEngine:
    """Feed events with `on_events(events, now_ms)`, call `tick(now_ms)` every
    second or so, and `big_groups(now_ms)` for the grouped big-order alerts.
    `dirty` collects ids whose state changed."""

    def __init__(self, settings: EngineSettings = EngineSettings()) -> None:
        self.settings = settings
        self.rules: dict[int, AlertRule] = {}
        self.states: dict[int, RuleState] = {}
        self.dirty: set[int] = set()
        self._rings: dict[str, AssetRing] = {}
        self._big = ThresholdIndex()  # big rule ids by asset and threshold
        self._windows: dict[tuple[str, int], _WindowIndex] = {}
        self._window_minutes: dict[str, dict[int, int]] = {}  # asset -> minutes -> rule count
        self._bursts = BurstGrouper(
            BurstSettings(settings.group_ms, settings.big_listed_per_minute, MAX_ORDERS_LISTED)
        )
        self._risk: dict[str, set[int]] = {}  # asset -> ids of its (unpaused) risk rules
        self._now_minute = 0

    # -- rules -----------------------------------------------------------

    def add(self, rule: AlertRule, state: RuleState | None = None) -> None:
        if rule.id in self.rules:
            self.remove(rule.id)
        self.rules[rule.id] = rule
        self.states[rule.id] = state or RuleState()
        if rule.paused:
            return
        if rule.kind is RuleKind.RISK:
            self._risk.setdefault(rule.asset, set()).add(rule.id)
            return
        if rule.kind is RuleKind.BIG:
            self._big.add(rule.asset, rule.threshold_usd, rule.id)
            return
        minutes = rule.window_ms // MINUTE_MS
        counts = self._window_minutes.setdefault(rule.asset, {})
        counts[minutes] = counts.get(minutes, 0) + 1
        ring = self._rings.get(rule.asset)
        if ring is not None:
            ring.track(minutes)
        index = self._windows.setdefault((rule.asset, minutes), _WindowIndex())
        if rule.kind is RuleKind.TOTAL:
            if self.states[rule.id].armed:
                bisect.insort(index.armed_total, (cents_of(rule.threshold_usd), rule.id))
            else:
                bisect.insort(index.disarmed_total, (cents_of(REARM_FRACTION * rule.threshold_usd), rule.id))
        elif self.states[rule.id].armed:
            _arm_skew(index, rule)
        else:
            bisect.insort(index.disarmed_skew_share, (_skew_rearm_share(rule), rule.id))
            bisect.insort(index.disarmed_skew_total, (cents_of(REARM_FRACTION * rule.threshold_usd), rule.id))

    def add_many(self, rules: Iterable[tuple[AlertRule, RuleState | None]]) -> None:
        for rule, state in rules:
            self.add(rule, state)

    def remove(self, rule_id: int) -> None:
        rule = self.rules.pop(rule_id, None)
        self.states.pop(rule_id, None)
        if rule is None or rule.paused:
            return
        if rule.kind is RuleKind.RISK:
            ids = self._risk.get(rule.asset)
            if ids is not None:
                ids.discard(rule_id)
                if not ids:
                    del self._risk[rule.asset]
            return
        if rule.kind is RuleKind.BIG:
            self._big.remove(rule.asset, rule.threshold_usd, rule_id)
            return
        minutes = rule.window_ms // MINUTE_MS
        index = self._windows.get((rule.asset, minutes))
        if index is not None:
            if rule.kind is RuleKind.TOTAL:
                _discard(index.armed_total, (cents_of(rule.threshold_usd), rule_id))
                _discard(index.disarmed_total, (cents_of(REARM_FRACTION * rule.threshold_usd), rule_id))
            else:
                _discard(index.armed_skew.get(rule.share, []), (cents_of(rule.threshold_usd), rule_id))
                _discard(index.disarmed_skew_share, (_skew_rearm_share(rule), rule_id))
                _discard(index.disarmed_skew_total, (cents_of(REARM_FRACTION * rule.threshold_usd), rule_id))
            index.waiting = [w for w in index.waiting if w[1] != rule_id]
            heapq.heapify(index.waiting)
        counts = self._window_minutes.get(rule.asset, {})
        counts[minutes] = counts.get(minutes, 1) - 1
        if counts[minutes] <= 0:
            counts.pop(minutes, None)
            ring = self._rings.get(rule.asset)
            if ring is not None:
                ring.sums.pop(minutes, None)

    def state(self, rule_id: int) -> RuleState | None:
        return self.states.get(rule_id)

    def take_dirty(self) -> dict[int, RuleState]:
        dirty = {i: self.states[i] for i in self.dirty if i in self.states}
        self.dirty = set()
        return dirty

    def window_usd(self, asset: str, window_ms: int) -> tuple[float, float]:
        """(long, short) USD in the trailing window as the engine sees it."""
        ring = self._rings.get(asset)
        sums = ring.sums.get(window_ms // MINUTE_MS) if ring else None
        return (sums[0] / 100, sums[1] / 100) if sums else (0.0, 0.0)

    # -- events ------------------------------------------------------------

    def seed(self, asset: str, minute_ms: int, side: Side, usd: float, now_ms: int) -> None:
        """Add a stored minute's amount (at start) without evaluating any rule."""
        ring = self._ring(asset, now_ms // MINUTE_MS)
        ring.advance(now_ms // MINUTE_MS)
        ring.add(minute_ms // MINUTE_MS, side, cents_of(usd))

    def _ring(self, asset: str, minute: int) -> AssetRing:
        ring = self._rings.get(asset)
        if ring is None:
            ring = self._rings[asset] = AssetRing(minute)
            for minutes in self._window_minutes.get(asset, {}):
                ring.track(minutes)
        return ring

    def on_events(self, events: Iterable[LiquidationEvent], now_ms: int) -> list[Fired]:
        """Alerts due right away (window rules); big orders join their chat's group."""
        fired: list[Fired] = []
        now_minute = now_ms // MINUTE_MS
        touched: set[str] = set()
        rules, bursts = self.rules, self._bursts
        for event in events:
            asset = event.asset
            cents = round(event.notional_usd * 100)
            for rule_id in self._big.matches(asset, cents):
                bursts.add(rules[rule_id].chat_key, event, now_ms, rule_id)
            if asset in self._window_minutes and self._window_minutes[asset]:
                ring = self._ring(asset, now_minute)
                ring.advance(now_minute)
                if ring.add(min(event.at_ms // MINUTE_MS, ring.minute), event.liquidated, cents):
                    touched.add(asset)
        for asset in touched:
            fired += self._evaluate(asset, now_ms)
        return fired

    def tick(self, now_ms: int) -> list[Fired]:
        """Advance time: windows lose old minutes (rules may re-arm), cooldowns end."""
        fired: list[Fired] = []
        minute = now_ms // MINUTE_MS
        for asset, ring in self._rings.items():
            ring.advance(minute)
            fired += self._evaluate(asset, now_ms)
        return fired

    def big_groups(self, now_ms: int) -> list[tuple[Burst, Fired]]:
        """The big-order groups a durable copy lags (new orders, or due: `final`), each as
        its alert stands now; answer each with `big_written` or `big_missed`."""
        groups = []
        for burst in self._bursts.unwritten(now_ms):
            thresholds = [self.rules[i].threshold_usd for i in burst.tags if i in self.rules]
            groups.append((burst, Fired(
                chat_key=burst.chat_key,
                kind=RuleKind.BIG,
                rule_ids=tuple(sorted(burst.tags)),
                at_ms=burst.opened_ms,
                asset=next(iter(burst.assets)) if len(burst.assets) == 1 else None,
                threshold_usd=min(thresholds, default=0.0),
                long_usd=burst.long_usd,
                short_usd=burst.short_usd,
                orders=burst.orders,
                more_orders=burst.more_orders,
            )))
        return groups

    def big_written(self, burst: Burst, now_ms: int) -> None:
        """The group's copy holds `burst`; a final one has fired its rules."""
        self._bursts.written(burst, now_ms)
        if burst.final:
            for rule_id in burst.tags:
                state = self.states.get(rule_id)
                if state is not None:
                    state.last_fired_ms = now_ms
                    self.dirty.add(rule_id)

    def big_missed(self, burst: Burst, now_ms: int) -> None:
        """The group's copy was already being sent: its new orders start the next group."""
        self._bursts.missed(burst, now_ms)

    # -- risk levels ---------------------------------------------------------

    def risk_assets(self) -> list[str]:
        """Assets with at least one active risk rule (whose level should be read)."""
        return sorted(self._risk)

    def on_risk(self, asset: str, level: RiskLevel | None, now_ms: int) -> list[Fired]:
        """The asset's risk level now (None: unknown, no market data). A rule fires
        once when the level is at or above its own (and no cooldown runs; else it
        fires at the first reading after the cooldown, if the level is still up),
        and re-arms only after a reading below its level."""
        if level is None:
            return []
        rank = level_rank(level)
        fired = []
        for rule_id in sorted(self._risk.get(asset, ())):
            rule, state = self.rules[rule_id], self.states[rule_id]
            if rank < int(rule.threshold_usd):
                if not state.armed:
                    state.armed = True
                    self.dirty.add(rule_id)
                continue
            if not state.armed or self._cooling(state, now_ms) is not None:
                continue
            state.armed = False
            state.last_fired_ms = now_ms
            self.dirty.add(rule_id)
            fired.append(
                Fired(
                    chat_key=rule.chat_key,
                    kind=RuleKind.RISK,
                    rule_ids=(rule_id,),
                    at_ms=now_ms,
                    asset=asset,
                    level=level,
                    rule_level=rule.level,
                )
            )
        return fired

    def _cooling(self, state: RuleState, now_ms: int) -> int | None:
        """The end of a rule's cooldown when it is still running, else None."""
        last = state.last_fired_ms
        if last is not None and now_ms < last + self.settings.cooldown_ms:
            return last + self.settings.cooldown_ms
        return None

    def _evaluate(self, asset: str, now_ms: int) -> list[Fired]:
        ring = self._rings[asset]
        fired: list[Fired] = []
        for minutes, (long_cents, short_cents) in ring.sums.items():
            index = self._windows.get((asset, minutes))
            if index is None:
                continue
            total = long_cents + short_cents
            # Cooldowns that ended: fire if still above, else back to armed.
            while index.waiting and index.waiting[0][0] <= now_ms:
                _, rule_id = heapq.heappop(index.waiting)
                rule = self.rules.get(rule_id)
                if rule is None or rule.kind is not RuleKind.TOTAL:
                    continue
                bisect.insort(index.armed_total, (cents_of(rule.threshold_usd), rule_id))
            # Disarmed rules whose value fell below their re-arm level.
            disarmed = index.disarmed_total
            start = bisect.bisect_right(disarmed, (total, 1 << 62))
            if start < len(disarmed):
                for _level, rule_id in disarmed[start:]:
                    self.states[rule_id].armed = True
                    self.dirty.add(rule_id)
                    bisect.insort(index.armed_total, (cents_of(self.rules[rule_id].threshold_usd), rule_id))
                del disarmed[start:]
            # Armed rules crossed.
            armed = index.armed_total
            end = bisect.bisect_right(armed, (total, 1 << 62))
            if end:
                crossed, armed[:end] = armed[:end], []
                for threshold, rule_id in crossed:
                    rule, state = self.rules[rule_id], self.states[rule_id]
                    cooling = self._cooling(state, now_ms)
                    if cooling is not None:
                        heapq.heappush(index.waiting, (cooling, rule_id))
                        continue
                    state.armed = False
                    state.last_fired_ms = now_ms
                    self.dirty.add(rule_id)
                    bisect.insort(disarmed, (cents_of(REARM_FRACTION * rule.threshold_usd), rule_id))
                    fired.append(self._window_fired(rule, now_ms, long_cents, short_cents))
            if index.skew_shares or index.disarmed_skew_share:
                fired += self._evaluate_skew(index, now_ms, long_cents, short_cents)
        return fired

    def _evaluate_skew(self, index: _WindowIndex, now_ms: int, long_cents: int, short_cents: int) -> list[Fired]:
        total = long_cents + short_cents
        share = max(long_cents, short_cents) / total if total else 0.5
        # Re-arm: share below a rule's share level, or total below its total level.
        for levels, other, other_level in (
            (index.disarmed_skew_share, index.disarmed_skew_total, lambda r: cents_of(REARM_FRACTION * r.threshold_usd)),
            (index.disarmed_skew_total, index.disarmed_skew_share, _skew_rearm_share),
        ):
            start = bisect.bisect_right(levels, (share if levels is index.disarmed_skew_share else total, 1 << 62))
            if start < len(levels):
                for _level, rule_id in levels[start:]:
                    rule = self.rules[rule_id]
                    _discard(other, (other_level(rule), rule_id))
                    self.states[rule_id].armed = True
                    self.dirty.add(rule_id)
                    _arm_skew(index, rule)
                del levels[start:]
        # Candidates: per share level at most the current share, the rules whose
        # minimum is at most the current total (a bisect each).
        if not total:
            return []
        fired = []
        for level in index.skew_shares[: bisect.bisect_right(index.skew_shares, share)]:
            rules = index.armed_skew[level]
            end = bisect.bisect_right(rules, (total, 1 << 62))
            if not end:
                continue
            keep = []
            for entry in rules[:end]:
                rule_id = entry[1]
                rule, state = self.rules[rule_id], self.states[rule_id]
                if self._cooling(state, now_ms) is not None:
                    keep.append(entry)
                    continue
                state.armed = False
                state.last_fired_ms = now_ms
                self.dirty.add(rule_id)
                bisect.insort(index.disarmed_skew_share, (_skew_rearm_share(rule), rule_id))
                bisect.insort(index.disarmed_skew_total, (cents_of(REARM_FRACTION * rule.threshold_usd), rule_id))
                fired.append(self._window_fired(rule, now_ms, long_cents, short_cents, share))
            rules[:end] = keep
        return fired

    @staticmethod
    def _window_fired(rule: AlertRule, now_ms: int, long_cents: int, short_cents: int, share: float = 0.0) -> Fired:
        return Fired(
            chat_key=rule.chat_key,
            kind=rule.kind,
            rule_ids=(rule.id,),
            at_ms=now_ms,
            asset=rule.asset,
            threshold_usd=rule.threshold_usd,
            window_ms=rule.window_ms,
            long_usd=long_cents / 100,
            short_usd=short_cents / 100,
            share=share,
            rule_share=rule.share,
        )


def _arm_skew(index: _WindowIndex, rule: AlertRule) -> None:
    rules = index.armed_skew.get(rule.share)
    if rules is None:
        rules = index.armed_skew[rule.share] = []
        bisect.insort(index.skew_shares, rule.share)
    bisect.insort(rules, (cents_of(rule.threshold_usd), rule.id))


def _skew_rearm_share(rule: AlertRule) -> float:
    """The heavier share below which a fired skew rule re-arms."""
    return 0.5 + REARM_FRACTION * (rule.share - 0.5)


def _discard(items: list, item) -> None:
    at = bisect.bisect_left(items, item)
    if at < len(items) and items[at] == item:
        del items[at]
