"""Threshold alerts: rules, their state, and a matching engine. Pure.

Rule kinds (what `/alert` creates):
- `big ASSET|any USD`: one order of at least USD liquidated;
- `total ASSET USD WINDOW`: at least USD liquidated on ASSET in the trailing window;
- `skew ASSET PCT WINDOW min USD`: the heavier side holds at least PCT of the
  window's liquidations, and the window holds at least USD;
- `cascade ASSET|all [USD]`: a live liquidation event starts, and then ends
  (bot.core.cascade_alerts watches these; the engine here ignores them);
- `risk ASSET LEVEL`: the asset's leverage risk level (bot.core.risk) is at
  LEVEL or above. Levels come from outside (`on_risk(asset, level, now_ms)`,
  which the service calls about once a minute per asset); the rule stores the
  level's rank (0 low .. 3 extreme) in `threshold_usd`.

Matching cost per event does not grow with the number of rules:
- window sums are kept per asset in minute ring buckets (integer cents, so
  exact), with one running sum per distinct window length in use; a window is
  "the current minute and the whole minutes before it", resolution one minute;
- `big` rules are sorted by threshold per asset (and for "any"): an order
  finds its matches with one bisect; cost is proportional to the matches;
- `total` rules are kept per (asset, window) in sorted lists: armed ones by
  threshold (a bisect finds the newly crossed), disarmed ones by re-arm level
  (a bisect finds those that fell below 80% of their threshold);
- `skew` rules per (asset, window), grouped by share level and sorted by
  minimum: a bisect per share level at most the current heavier share finds
  the candidates (users pick few distinct shares: 70%, 80%, 90% ...).

Hysteresis: a window rule fires once per crossing, then is disarmed until its
value falls below `REARM_FRACTION` of the threshold (for skew: the total falls
below 80% of its minimum, or the share's excess over 50% falls below 80% of
the rule's excess; for risk: the level falls below the rule's level; an
unknown level (no market data) neither fires nor re-arms). A cooldown spaces
the firings of one window or risk rule. Matching `big` orders of one chat are
grouped: collected for `group_ms` (a couple of seconds), then one alert lists
them. Big-order alerts never wait out a cooldown (a later burst is news the
trader needs now): past `big_listed_per_minute` listing messages in a chat's
last minute, a group is sent as one "N more orders, $X" line instead.

State (armed, last fired) is a small dict per rule: persist it, load it back
after a restart, and the engine neither re-fires nor forgets.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.core.models import DAY_MS, MINUTE_MS, LiquidationEvent, Side
from bot.core.risk import LEVELS, RiskLevel

if TYPE_CHECKING:
    from bot.core.cascade_alerts import LargestOrder
    from bot.core.events import Cascade

REARM_FRACTION = 0.8
MAX_ALERT_WINDOW_MS = DAY_MS
MIN_ALERT_WINDOW_MS = MINUTE_MS
# Amounts a rule may name: below a dollar every order matches, above a trillion none
# ever will (the largest liquidation day on record is about $19B).
MIN_THRESHOLD_USD = 1.0
MAX_THRESHOLD_USD = 1e12
RING_MINUTES = MAX_ALERT_WINDOW_MS // MINUTE_MS
ANY_ASSET = "*"
_UNREACHABLE_CENTS = 2**63
# Orders listed in one grouped alert (the rest are counted).
MAX_ORDERS_LISTED = 10


class RuleKind(StrEnum):
    BIG = "big"
    TOTAL = "total"
    SKEW = "skew"
    RISK = "risk"
    CASCADE = "cascade"


@dataclass(frozen=True, slots=True)
class AlertRule:
    id: int
    chat_key: str
    user_key: str
    kind: RuleKind
    asset: str | None  # None: any asset (big), all assets (cascade)
    # big: order size; total: window total; skew: window minimum; risk: level rank; cascade: event minimum
    threshold_usd: float
    window_ms: int = 0  # total, skew
    share: float = 0.0  # skew: heavier side share, 0.5 < share <= 1
    paused: bool = False

    @property
    def level(self) -> RiskLevel | None:
        """The risk level of a `risk` rule (None for other kinds)."""
        if self.kind is not RuleKind.RISK:
            return None
        return LEVELS[min(max(int(self.threshold_usd), 0), len(LEVELS) - 1)]


def risk_rule(
    rule_id: int, chat_key: str, user_key: str, asset: str, level: RiskLevel, paused: bool = False
) -> AlertRule:
    """A `risk` rule: fires when `asset`'s leverage risk rises to `level` or above."""
    return AlertRule(rule_id, chat_key, user_key, RuleKind.RISK, asset, float(level_rank(level)), paused=paused)


def level_rank(level: RiskLevel) -> int:
    return LEVELS.index(level)


@dataclass(slots=True)
class RuleState:
    armed: bool = True
    last_fired_ms: int | None = None

    def to_dict(self) -> dict:
        return {"armed": self.armed, "last_fired_ms": self.last_fired_ms}

    @classmethod
    def from_dict(cls, data: Mapping | None) -> RuleState:
        if not data:
            return cls()
        return cls(bool(data.get("armed", True)), data.get("last_fired_ms"))


@dataclass(frozen=True, slots=True)
class Caps:
    per_user: int = 20  # rules one user may own (over all chats)
    per_chat: int = 50  # rules in one chat


class CapReached(Exception):
    """One more rule would exceed a cap: `which` is "user" or "chat"."""

    def __init__(self, which: str) -> None:
        super().__init__(which)
        self.which = which


def cap_exceeded(caps: Caps, user_rules: int, chat_rules: int) -> str | None:
    """"user" or "chat" when one more rule would exceed a cap, else None."""
    if user_rules >= caps.per_user:
        return "user"
    if chat_rules >= caps.per_chat:
        return "chat"
    return None


@dataclass(frozen=True, slots=True)
class Fired:
    """One alert message to send to one chat."""

    chat_key: str
    kind: RuleKind
    rule_ids: tuple[int, ...]
    at_ms: int
    asset: str | None = None
    threshold_usd: float = 0.0
    window_ms: int = 0
    long_usd: float = 0.0
    short_usd: float = 0.0
    share: float = 0.0  # skew: the heavier side's share now
    rule_share: float = 0.0  # skew: the rule's share
    orders: tuple[LiquidationEvent, ...] = ()  # big: the grouped orders, largest first
    more_orders: int = 0  # big: matched orders not listed (all of them when the chat's cap is reached)
    level: RiskLevel | None = None  # risk: the level now
    rule_level: RiskLevel | None = None  # risk: the rule's level
    cascade: Cascade | None = None  # cascade: the event (in progress: its start; else its end)
    largest: LargestOrder | None = None  # cascade: the event's largest order

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd


@dataclass(frozen=True, slots=True)
class EngineSettings:
    cooldown_ms: int = 15 * MINUTE_MS  # between two firings of one window or risk rule
    group_ms: int = 2_000  # matching big orders are collected this long into one alert
    big_listed_per_minute: int = 6  # per chat; further groups that minute are one summary line


# -- window sums ---------------------------------------------------------------


class _AssetRing:
    """Per-minute long/short cents of one asset over the last RING_MINUTES minutes,
    with running sums for the window lengths in use."""

    __slots__ = ("long", "short", "minute", "sums")

    def __init__(self, minute: int) -> None:
        self.long = [0] * RING_MINUTES
        self.short = [0] * RING_MINUTES
        self.minute = minute  # the current minute number (ms // MINUTE_MS)
        self.sums: dict[int, list[int]] = {}  # window minutes -> [long cents, short cents]

    def track(self, minutes: int) -> None:
        if minutes in self.sums:
            return
        lng = sht = 0
        for k in range(minutes):
            slot = (self.minute - k) % RING_MINUTES
            lng += self.long[slot]
            sht += self.short[slot]
        self.sums[minutes] = [lng, sht]

    def advance(self, minute: int) -> bool:
        """Move the current minute forward; True when any window sum changed."""
        if minute <= self.minute:
            return False
        changed = False
        steps = min(minute - self.minute, RING_MINUTES)
        if minute - self.minute >= RING_MINUTES:
            self.long = [0] * RING_MINUTES
            self.short = [0] * RING_MINUTES
            for sums in self.sums.values():
                changed = changed or sums != [0, 0]
                sums[0] = sums[1] = 0
            self.minute = minute
            return changed
        for _ in range(steps):
            self.minute += 1
            new = self.minute % RING_MINUTES
            # Every window drops the minute that leaves it.
            for minutes, sums in self.sums.items():
                old = (self.minute - minutes) % RING_MINUTES
                if self.long[old] or self.short[old]:
                    sums[0] -= self.long[old]
                    sums[1] -= self.short[old]
                    changed = True
            self.long[new] = 0
            self.short[new] = 0
        return changed

    def add(self, minute: int, side: Side, cents: int) -> bool:
        """Add an event of `minute` (at most the current one); False when too old."""
        age = self.minute - minute
        if age < 0 or age >= RING_MINUTES:
            return False
        slot = minute % RING_MINUTES
        is_long = side is Side.LONG
        if is_long:
            self.long[slot] += cents
        else:
            self.short[slot] += cents
        index = 0 if is_long else 1
        for minutes, sums in self.sums.items():
            if age < minutes:
                sums[index] += cents
        return True


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


@dataclass(slots=True)
class _Group:
    chat_key: str
    due_ms: int
    rule_ids: set[int]
    orders: dict[tuple, LiquidationEvent]


def _cents(usd: float) -> int:
    cents = usd * 100
    # A threshold stored before amounts were bounded (inf, nan, 1e308) is one no order reaches.
    return round(cents) if math.isfinite(cents) else _UNREACHABLE_CENTS


def _order_key(event: LiquidationEvent) -> tuple:
    return (event.at_ms, event.venue, event.instrument, event.liquidated, event.quantity, event.price)


class AlertEngine:
    """Feed events with `on_events(events, now_ms)`, call `flush(now_ms)` every
    second or so for grouped alerts. `dirty` collects ids whose state changed."""

    def __init__(self, settings: EngineSettings = EngineSettings()) -> None:
        self.settings = settings
        self.rules: dict[int, AlertRule] = {}
        self.states: dict[int, RuleState] = {}
        self.dirty: set[int] = set()
        self._rings: dict[str, _AssetRing] = {}
        self._big: dict[str, list[tuple[int, int]]] = {}  # asset | ANY_ASSET -> sorted (cents, id)
        self._windows: dict[tuple[str, int], _WindowIndex] = {}
        self._window_minutes: dict[str, dict[int, int]] = {}  # asset -> minutes -> rule count
        self._groups: dict[str, _Group] = {}
        self._chat_listed_ms: dict[str, deque[int]] = {}  # chat -> when its recent listing alerts went out
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
            bisect.insort(self._big.setdefault(rule.asset or ANY_ASSET, []), (_cents(rule.threshold_usd), rule.id))
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
                bisect.insort(index.armed_total, (_cents(rule.threshold_usd), rule.id))
            else:
                bisect.insort(index.disarmed_total, (_cents(REARM_FRACTION * rule.threshold_usd), rule.id))
        elif self.states[rule.id].armed:
            _arm_skew(index, rule)
        else:
            bisect.insort(index.disarmed_skew_share, (_skew_rearm_share(rule), rule.id))
            bisect.insort(index.disarmed_skew_total, (_cents(REARM_FRACTION * rule.threshold_usd), rule.id))

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
            _discard(self._big.get(rule.asset or ANY_ASSET, []), (_cents(rule.threshold_usd), rule_id))
            return
        minutes = rule.window_ms // MINUTE_MS
        index = self._windows.get((rule.asset, minutes))
        if index is not None:
            if rule.kind is RuleKind.TOTAL:
                _discard(index.armed_total, (_cents(rule.threshold_usd), rule_id))
                _discard(index.disarmed_total, (_cents(REARM_FRACTION * rule.threshold_usd), rule_id))
            else:
                _discard(index.armed_skew.get(rule.share, []), (_cents(rule.threshold_usd), rule_id))
                _discard(index.disarmed_skew_share, (_skew_rearm_share(rule), rule_id))
                _discard(index.disarmed_skew_total, (_cents(REARM_FRACTION * rule.threshold_usd), rule_id))
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
        ring.add(minute_ms // MINUTE_MS, side, _cents(usd))

    def _ring(self, asset: str, minute: int) -> _AssetRing:
        ring = self._rings.get(asset)
        if ring is None:
            ring = self._rings[asset] = _AssetRing(minute)
            for minutes in self._window_minutes.get(asset, {}):
                ring.track(minutes)
        return ring

    def on_events(self, events: Iterable[LiquidationEvent], now_ms: int) -> list[Fired]:
        """Alerts due right away (window rules); big orders join their chat's group."""
        fired: list[Fired] = []
        now_minute = now_ms // MINUTE_MS
        touched: set[str] = set()
        big_any = self._big.get(ANY_ASSET)
        for event in events:
            asset = event.asset
            cents = round(event.notional_usd * 100)
            big = self._big.get(asset)
            if big:
                self._match_big(big, cents, event, now_ms)
            if big_any:
                self._match_big(big_any, cents, event, now_ms)
            if asset in self._window_minutes and self._window_minutes[asset]:
                ring = self._ring(asset, now_minute)
                ring.advance(now_minute)
                if ring.add(min(event.at_ms // MINUTE_MS, ring.minute), event.liquidated, cents):
                    touched.add(asset)
        for asset in touched:
            fired += self._evaluate(asset, now_ms)
        return fired

    def tick(self, now_ms: int) -> list[Fired]:
        """Advance time: windows lose old minutes (rules may re-arm), cooldowns end,
        grouped big alerts fall due."""
        fired: list[Fired] = []
        minute = now_ms // MINUTE_MS
        for asset, ring in self._rings.items():
            ring.advance(minute)
            fired += self._evaluate(asset, now_ms)
        fired += self.flush(now_ms)
        return fired

    def flush(self, now_ms: int) -> list[Fired]:
        """Grouped big alerts whose collection time has passed."""
        due = [key for key, group in self._groups.items() if group.due_ms <= now_ms]
        fired = []
        for chat_key in due:
            group = self._groups.pop(chat_key)
            orders = sorted(group.orders.values(), key=lambda e: -e.notional_usd)
            for rule_id in group.rule_ids:
                state = self.states.get(rule_id)
                if state is not None:
                    state.last_fired_ms = now_ms
                    self.dirty.add(rule_id)
            listed_ms = self._chat_listed_ms.setdefault(chat_key, deque())
            while listed_ms and listed_ms[0] <= now_ms - MINUTE_MS:
                listed_ms.popleft()
            listed = 0
            if len(listed_ms) < self.settings.big_listed_per_minute:
                listed_ms.append(now_ms)
                listed = MAX_ORDERS_LISTED
            assets = {e.asset for e in orders}
            fired.append(
                Fired(
                    chat_key=chat_key,
                    kind=RuleKind.BIG,
                    rule_ids=tuple(sorted(group.rule_ids)),
                    at_ms=now_ms,
                    asset=assets.pop() if len(assets) == 1 else None,
                    threshold_usd=min(self.rules[i].threshold_usd for i in group.rule_ids if i in self.rules)
                    if any(i in self.rules for i in group.rule_ids)
                    else 0.0,
                    long_usd=sum(e.notional_usd for e in orders if e.liquidated is Side.LONG),
                    short_usd=sum(e.notional_usd for e in orders if e.liquidated is Side.SHORT),
                    orders=tuple(orders[:listed]),
                    more_orders=max(0, len(orders) - listed),
                )
            )
        return fired

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

    def next_due_ms(self) -> int | None:
        return min((g.due_ms for g in self._groups.values()), default=None)

    def _match_big(self, rules: list[tuple[int, int]], cents: int, event: LiquidationEvent, now_ms: int) -> None:
        end = bisect.bisect_right(rules, (cents, 1 << 62))
        if not end:
            return
        groups, settings, key = self._groups, self.settings, None
        for _threshold, rule_id in rules[:end]:
            chat_key = self.rules[rule_id].chat_key
            group = groups.get(chat_key)
            if group is None:
                group = groups[chat_key] = _Group(chat_key, now_ms + settings.group_ms, set(), {})
            group.rule_ids.add(rule_id)
            if key is None:
                key = _order_key(event)
            group.orders[key] = event

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
                bisect.insort(index.armed_total, (_cents(rule.threshold_usd), rule_id))
            # Disarmed rules whose value fell below their re-arm level.
            disarmed = index.disarmed_total
            start = bisect.bisect_right(disarmed, (total, 1 << 62))
            if start < len(disarmed):
                for _level, rule_id in disarmed[start:]:
                    self.states[rule_id].armed = True
                    self.dirty.add(rule_id)
                    bisect.insort(index.armed_total, (_cents(self.rules[rule_id].threshold_usd), rule_id))
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
                    bisect.insort(disarmed, (_cents(REARM_FRACTION * rule.threshold_usd), rule_id))
                    fired.append(self._window_fired(rule, now_ms, long_cents, short_cents))
            if index.skew_shares or index.disarmed_skew_share:
                fired += self._evaluate_skew(index, now_ms, long_cents, short_cents)
        return fired

    def _evaluate_skew(self, index: _WindowIndex, now_ms: int, long_cents: int, short_cents: int) -> list[Fired]:
        total = long_cents + short_cents
        share = max(long_cents, short_cents) / total if total else 0.5
        # Re-arm: share below a rule's share level, or total below its total level.
        for levels, other, other_level in (
            (index.disarmed_skew_share, index.disarmed_skew_total, lambda r: _cents(REARM_FRACTION * r.threshold_usd)),
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
                bisect.insort(index.disarmed_skew_total, (_cents(REARM_FRACTION * rule.threshold_usd), rule_id))
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
    bisect.insort(rules, (_cents(rule.threshold_usd), rule.id))


def _skew_rearm_share(rule: AlertRule) -> float:
    """The heavier share below which a fired skew rule re-arms."""
    return 0.5 + REARM_FRACTION * (rule.share - 0.5)


def _discard(items: list, item) -> None:
    at = bisect.bisect_left(items, item)
    if at < len(items) and items[at] == item:
        del items[at]
