"""Alert rules, their persisted state, the caps on how many a user or chat may
own, and `Fired` (one alert message to send). Pure data; the matching engine is
bot.core.alerts, the cascade watch bot.core.cascade_alerts.

Rule kinds (what `/alert` creates):
- `big ASSET|any USD`: one order of at least USD liquidated;
- `total ASSET USD WINDOW`: at least USD liquidated on ASSET in the trailing window;
- `skew ASSET PCT WINDOW min USD`: the heavier side holds at least PCT of the
  window's liquidations, and the window holds at least USD;
- `cascade ASSET|all [USD]`: a live liquidation event starts, and then ends;
- `risk ASSET LEVEL`: the asset's leverage risk level (bot.core.risk) is at
  LEVEL or above; the rule stores the level's rank (0 low .. 3 extreme) in
  `threshold_usd`.
- `near ASSET PCT [USD]`: the price comes within PCT of an estimated
  liquidation band (bot.core.levels) holding at least USD; PCT is kept in
  `share`, USD in `threshold_usd` (bot.core.near_alerts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.core.models import DAY_MS, MINUTE_MS, LiquidationEvent
from bot.core.risk import LEVELS, RiskLevel

if TYPE_CHECKING:
    from bot.core.cascade_alerts import LargestOrder
    from bot.core.levels import Band
    from bot.core.events import Cascade

MAX_ALERT_WINDOW_MS = DAY_MS
MIN_ALERT_WINDOW_MS = MINUTE_MS
# Amounts a rule (or a /feed threshold) may name: below a dollar every order matches,
# above a trillion none ever will (the largest liquidation day on record is about $19B).
MIN_THRESHOLD_USD = 1.0
MAX_THRESHOLD_USD = 1e12


class RuleKind(StrEnum):
    BIG = "big"
    TOTAL = "total"
    SKEW = "skew"
    RISK = "risk"
    CASCADE = "cascade"
    NEAR = "near"


@dataclass(frozen=True, slots=True)
class AlertRule:
    id: int
    chat_key: str
    user_key: str
    kind: RuleKind
    asset: str | None  # None: any asset (big), all assets (cascade)
    # big: order size; total: window total; skew: window minimum; risk: level rank; cascade: event
    # minimum; near: band minimum
    threshold_usd: float
    window_ms: int = 0  # total, skew
    share: float = 0.0  # skew: heavier side share, 0.5 < share <= 1; near: distance to the band, 0 < share <= 0.25
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


class RuleBook:
    """The rules of one matcher beside the engine (cascade, near): each rule's
    state, and which states changed since the service last saved them."""

    def __init__(self) -> None:
        self.rules: dict[int, AlertRule] = {}
        self.states: dict[int, RuleState] = {}
        self.dirty: set[int] = set()

    def add(self, rule: AlertRule, state: RuleState | None = None) -> None:
        self.rules[rule.id] = rule
        self.states[rule.id] = state or RuleState()

    def remove(self, rule_id: int) -> None:
        self.rules.pop(rule_id, None)
        self.states.pop(rule_id, None)

    def take_dirty(self) -> dict[int, RuleState]:
        dirty = {i: self.states[i] for i in self.dirty if i in self.states}
        self.dirty = set()
        return dirty


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
    price: float = 0.0  # near: the price now
    band: Band | None = None  # near: the band it came near (its distance in `share`)

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd
