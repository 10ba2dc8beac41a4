"""`/alert near ASSET PCT [USD]`: the price comes within PCT of an estimated
liquidation band (bot.core.levels) holding at least USD, on either side.

A rule fires once when the nearest such band is within PCT (and its cooldown
has passed), and re-arms only when no such band is within `REARM_FACTOR` x PCT
any more, so a price hovering at the edge does not repeat the alert (the
hysteresis of the other kinds). The levels come in from outside
(`on_levels(asset, price, book, now_ms)`), read about once a minute.
"""

from __future__ import annotations

from bot.core.alert_rules import AlertRule, Fired, RuleBook, RuleKind
from bot.core.levels import Band, LevelBook
from bot.core.models import Side

REARM_FACTOR = 1.5
DEFAULT_NEAR_MIN_USD = 10_000_000.0  # a band smaller than this rarely moves the market
MAX_NEAR_SHARE = 0.25  # a band further than 25 % away is not "near"


def near_rule(
    rule_id: int, chat_key: str, user_key: str, asset: str, distance: float, min_usd: float, paused: bool = False
) -> AlertRule:
    """A `near` rule: the price within `distance` (a fraction) of a band of at least `min_usd`."""
    return AlertRule(rule_id, chat_key, user_key, RuleKind.NEAR, asset, min_usd, share=distance, paused=paused)


def nearest_band(book: LevelBook, price: float, min_usd: float) -> Band | None:
    """The band of either side holding at least `min_usd` that the price is closest to."""
    found = [band for side in Side if (band := book.nearest(side, price, min_usd)) is not None]
    return min(found, key=lambda band: abs(band.distance(price)), default=None)


class NearWatch(RuleBook):
    def __init__(self, cooldown_ms: int) -> None:
        super().__init__()
        self.cooldown_ms = cooldown_ms

    def assets(self) -> list[str]:
        return sorted({rule.asset for rule in self.rules.values() if rule.asset and not rule.paused})

    def on_levels(self, asset: str, price: float, book: LevelBook, now_ms: int) -> list[Fired]:
        fired = []
        for rule_id in sorted(self.rules):
            rule, state = self.rules[rule_id], self.states[rule_id]
            if rule.paused or rule.asset != asset:
                continue
            band = nearest_band(book, price, rule.threshold_usd)
            distance = abs(band.distance(price)) if band is not None else None
            if distance is None or distance > rule.share * REARM_FACTOR:
                if not state.armed:
                    state.armed = True
                    self.dirty.add(rule_id)
                continue
            cooling = state.last_fired_ms is not None and now_ms < state.last_fired_ms + self.cooldown_ms
            if distance > rule.share or not state.armed or cooling:
                continue
            state.armed, state.last_fired_ms = False, now_ms
            self.dirty.add(rule_id)
            fired.append(Fired(
                chat_key=rule.chat_key, kind=RuleKind.NEAR, rule_ids=(rule_id,), at_ms=now_ms, asset=asset,
                threshold_usd=rule.threshold_usd, share=distance, rule_share=rule.share, price=price, band=band,
            ))
        return fired
