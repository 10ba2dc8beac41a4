"""AlertService: threshold alerts over the live feeds.

- A FeedSink-compatible `on_events` (add it to LiveFeeds' extra sinks): events
  go through the pure `AlertEngine`; window alerts are queued at once.
- `run()`: once a second, time moves on (windows lose old minutes, rules
  re-arm, cooldowns end) and grouped big-order alerts fall due. Beside it, a
  writer keeps each big-order group's alert in the outbox as the group grows
  (written at its first order, revised as orders join, in one transaction for
  every group that grew meanwhile): the leader closes it when the group is due;
  a leader killed before that leaves it to the next sender, `UNSEALED_GRACE_MS`
  after the group's end. Assets with
  `risk` rules have their leverage risk level read through the injected
  `risk_level(asset, now_ms)` at most once per `risk_every_ms` (a minute: the
  market data is polled every 60 s); a failing or missing read never fires.
  Assets with `near` rules have their price and estimated liquidation levels
  read through `levels_of(asset, now_ms)` the same way.
- `start()` loads rules and their state and seeds the window sums from the
  minute rollups, so a restart neither re-fires nor forgets.
- Every state change (fired, re-armed) is persisted right after the batch
  that caused it, in the same transaction as the alerts it fired go into the
  outbox (bot.services.outbox): both happen, or neither.
- It is the `/alert` command's AlertsPort too (create, list, remove, pause).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.plumbing.clock import wall_clock_ms
from bot.core.alert_rules import MAX_ALERT_WINDOW_MS, AlertRule, Caps, Fired, RuleKind, RuleState
from bot.core.alerts import AlertEngine, EngineSettings
from bot.core.cascade_alerts import KEEP_MINUTES, CascadeWatch
from bot.core.levels import LevelBook
from bot.core.models import MINUTE_MS, LiquidationEvent, Window
from bot.core.near_alerts import NearWatch
from bot.core.risk import RiskLevel
from bot.replies import numbers as fmt
from bot.replies.alerts import alert_reply
from bot.replies.model import Reply
from bot.services.outbox import Outbox
from bot.storage.alerts_store import AlertsStore
from bot.storage.store import Store

log = logging.getLogger(__name__)

# risk_level(asset, now_ms): the asset's leverage risk level, None without market data (sync or async).
RiskLevelOf = Callable[[str, int], Awaitable[RiskLevel | None] | RiskLevel | None]
# levels_of(asset, now_ms): the price now and the asset's estimated liquidation levels, None without them.
LevelsOf = Callable[[str, int], Awaitable[tuple[float, LevelBook] | None]]



# A big-order group's alert, written as the group grows, waits this long past the group's
# end for its leader to close it; after that a sender takes it as it stands (its leader died).
UNSEALED_GRACE_MS = 5_000


def alert_key(alert: Fired) -> str:
    """The alert's idempotency key: its rules and the moment it fired (a successor
    leader evaluating the same moment writes the same key, which the outbox keeps once);
    a big-order group's: its chat and the moment it opened (its rules grow with it)."""
    if alert.kind is RuleKind.BIG:
        return f"alert:big:{alert.chat_key}:{alert.at_ms}"
    return f"alert:{'+'.join(map(str, alert.rule_ids))}:{alert.at_ms}"


class AlertService:
    """Alerts: the engine, its persistence, delivery through the outbox."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        *,
        settings: EngineSettings = EngineSettings(),
        caps: Caps = Caps(),
        default_locale: str = "en",
        now_ms: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tick_s: float = 1.0,
        risk_level: RiskLevelOf | None = None,
        risk_every_ms: int = MINUTE_MS,
        levels_of: LevelsOf | None = None,
    ) -> None:
        self._store = store
        self._alerts = AlertsStore(store)
        self._outbox = outbox
        self._settings = settings
        self._fresh_matchers()
        self.caps = caps
        self._default_locale = default_locale
        self._now_ms = now_ms
        self._sleep = sleep
        self._tick_s = tick_s
        self._started = False
        self._risk_level = risk_level
        self._risk_every_ms = risk_every_ms
        self._levels_of = levels_of
        self._read_at: dict[tuple[str, str], int] = {}  # (what, asset) -> when it was last read
        self._groups_grew = asyncio.Event()  # big orders matched: the writer has work
        self._writing_groups = asyncio.Lock()
        self.sent: list[tuple[str, Fired]] = []  # recent alerts (for tests and /status)

    # -- lifecycle ------------------------------------------------------------

    def _fresh_matchers(self) -> None:
        self.engine = AlertEngine(self._settings)
        self.cascades = CascadeWatch(self._settings.cooldown_ms)
        self.near = NearWatch(self._settings.cooldown_ms)

    async def start(self) -> None:
        """Load rules and state; seed window sums from the last 24 h of minute rollups.
        Each start begins from the store alone: a replica that becomes the leader
        again sees the rules other replicas changed meanwhile, and seeds once."""
        self._fresh_matchers()
        rules = await self._alerts.rules()
        for rule, state in rules:
            self._matcher(rule).add(rule, state)
        now = self._now_ms()
        assets = {rule.asset for rule, _ in rules if rule.kind in (RuleKind.TOTAL, RuleKind.SKEW) and rule.asset}
        for asset, minute_ms, side, usd in await self._alerts.minute_totals(
            assets, Window(now - MAX_ALERT_WINDOW_MS, now + 1)
        ):
            self.engine.seed(asset, minute_ms, side, usd, now)
        if any(rule.kind is RuleKind.CASCADE for rule, _ in rules):
            for asset, minute_ms, side, usd, orders, largest_usd in await self._alerts.minute_rollups(
                Window(now - KEEP_MINUTES * MINUTE_MS, now + 1)
            ):
                self.cascades.seed(asset, minute_ms, side, usd, orders, largest_usd)
        self._started = True
        log.info("alerts: %d rule(s) loaded", len(rules))

    async def follow_rules(self) -> None:
        """Take the rules as the store has them now (other replicas add, remove and
        pause rules): new ones added, removed ones dropped, changed ones replaced;
        a rule already held keeps its in-memory state (bot.services.changes)."""
        stored = {rule.id: (rule, state) for rule, state in await self._alerts.rules()}
        for matcher in (self.engine, self.cascades, self.near):
            for rule_id in [rule_id for rule_id in matcher.rules if rule_id not in stored]:
                matcher.remove(rule_id)
        for rule_id, (rule, state) in stored.items():
            matcher = self._matcher(rule)
            if matcher.rules.get(rule_id) != rule:
                matcher.add(rule, matcher.states.get(rule_id) or state)

    async def run(self) -> None:
        """The timer (re-arming, cooldowns, grouped alerts falling due) and the writer
        of growing big-order groups. Runs until cancelled."""
        if not self._started:
            await self.start()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._tick_forever())
            tasks.create_task(self._write_groups_forever())

    async def _tick_forever(self) -> None:
        while True:
            await self._sleep(self._tick_s)
            try:
                await self.tick()
            except Exception:
                log.exception("alerts: tick failed")

    async def _write_groups_forever(self) -> None:
        while True:
            await self._groups_grew.wait()
            self._groups_grew.clear()
            try:
                await self._write_big_groups()
            except Exception:  # the database is away: the groups stay unwritten, tried again
                log.exception("alerts: writing big-order alerts failed")
                await self._sleep(self._tick_s)
                self._groups_grew.set()

    async def tick(self) -> None:
        now = self._now_ms()
        fired = self.engine.tick(now) + self.cascades.tick(now)
        fired += await self._check_risk(now)
        fired += await self._check_near(now)
        await self._write_big_groups()
        await self._emit(fired)

    async def _check_risk(self, now_ms: int) -> list[Fired]:
        """Each asset with risk rules: its level read (at most once per `risk_every_ms`), matched."""
        if self._risk_level is None:
            return []
        return await self._each_asset(
            "risk level", self.engine.risk_assets(), self._risk_level, self.engine.on_risk, now_ms
        )

    async def _check_near(self, now_ms: int) -> list[Fired]:
        """Each asset with near rules: its price and levels read (as often as risk), matched."""
        if self._levels_of is None:
            return []

        def match(asset: str, found: tuple | None, at_ms: int) -> list[Fired]:
            return [] if found is None else self.near.on_levels(asset, found[0], found[1], at_ms)

        return await self._each_asset("liquidation levels", self.near.assets(), self._levels_of, match, now_ms)

    async def _each_asset(self, kind: str, assets, read, match, now_ms: int) -> list[Fired]:
        """`read(asset, now)` (sync or async) for each asset at most once per `risk_every_ms`,
        then `match(asset, value, now)`; a failing read is logged and skipped."""
        fired: list[Fired] = []
        for asset in assets:
            last = self._read_at.get((kind, asset))
            if last is not None and now_ms - last < self._risk_every_ms:
                continue
            self._read_at[(kind, asset)] = now_ms
            try:
                value = read(asset, now_ms)
                if inspect.isawaitable(value):
                    value = await value
            except Exception:
                log.exception("alerts: %s of %s failed", kind, asset)
                continue
            fired += match(asset, value, now_ms)
        return fired

    # -- FeedSink --------------------------------------------------------------

    async def on_connected(self, venue: str, stream: str, at_ms: int) -> None:
        pass

    async def on_frame(self, venue: str, stream: str, at_ms: int, frame: object) -> None:
        pass

    async def on_events(self, venue: str, stream: str, events: list[LiquidationEvent]) -> None:
        fired = self.engine.on_events(events, self._now_ms())
        self.cascades.on_events(events)
        self._groups_grew.set()
        if fired or self.engine.dirty:
            await self._emit(fired)

    async def on_disconnected(self, venue: str, stream: str, at_ms: int, reason: str) -> None:
        pass

    async def on_rest(self, venue: str, at_ms: int, path: str, body: object) -> None:
        pass

    # -- delivery ----------------------------------------------------------------

    async def _replies(self, alerts: Sequence[Fired]) -> list[Reply | None]:
        """Each alert as its chat reads it (locale, time zone); None for a chat that
        left. One read of the settings of every chat in the pass, not three an alert."""
        settings = await self._store.chats.settings(alert.chat_key for alert in alerts) if alerts else {}
        return [
            alert_reply(alert, chat.locale or self._default_locale, fmt.zone(chat.tz)) if chat.active else None
            for alert, chat in ((alert, settings[alert.chat_key]) for alert in alerts)
        ]

    async def _emit(self, fired: Sequence[Fired]) -> None:
        dirty = self.engine.take_dirty() | self.cascades.take_dirty() | self.near.take_dirty()
        replies = [(alert, reply) for alert, reply in zip(fired, await self._replies(fired)) if reply is not None]
        if not dirty and not replies:
            return
        # The rules' new state and the alerts it fired commit together: a crash before
        # the commit fires again after a restart; after it, the outbox sends them once.
        async with self._store.db.transaction() as tx:
            await self._alerts.save_states(tx, dirty)
            for alert, reply in replies:
                await self._outbox.add(tx, reply, [(alert_key(alert), alert.chat_key)], "alert", urgent=True)
        if replies:
            self._outbox.wake()
        self._sent([alert for alert, _ in replies])

    async def _write_big_groups(self) -> None:
        """Every big-order group that grew or fell due, into the outbox in one transaction:
        a due one closed (sendable now), a growing one claimable only after its end and
        `UNSEALED_GRACE_MS` (its leader's death). A group whose alert a sender took already
        hands its new orders to the chat's next group."""
        async with self._writing_groups:
            now = self._now_ms()
            groups = self.engine.big_groups(now)
            if not groups:
                return
            replies = await self._replies([alert for _, alert in groups])
            written = []
            async with self._store.db.transaction() as tx:
                for (burst, alert), reply in zip(groups, replies):
                    due_ms = now if burst.final else burst.due_ms + UNSEALED_GRACE_MS
                    written.append(reply is None or await self._outbox.put(
                        tx, reply, alert_key(alert), alert.chat_key, "alert", urgent=True, due_ms=due_ms
                    ))
            closed = []
            for (burst, alert), reply, ok in zip(groups, replies, written):
                if not ok:
                    log.info("alerts: %s was already being sent; the orders that joined since go in the next",
                             alert_key(alert))
                    self.engine.big_missed(burst, now)
                    self._groups_grew.set()
                    continue
                self.engine.big_written(burst, now)
                if burst.final and reply is not None:
                    closed.append(alert)
            if closed:
                self._outbox.wake()
                self._sent(closed)

    def _sent(self, alerts: Sequence[Fired]) -> None:
        self.sent += [(alert.chat_key, alert) for alert in alerts]
        del self.sent[:-100]

    # -- AlertsPort (the /alert command) ------------------------------------------

    async def assets(self) -> list[str]:
        return await self._store.assets()

    async def create_rule(self, rule: AlertRule, now_ms: int) -> AlertRule:
        """The rule as stored; raises CapReached when its user or chat is at a cap."""
        stored = await self._alerts.add_rule(rule, now_ms, self.caps)
        self._matcher(stored).add(stored)
        return stored

    def _matcher(self, rule: AlertRule) -> AlertEngine | CascadeWatch | NearWatch:
        if rule.kind is RuleKind.CASCADE:
            return self.cascades
        return self.near if rule.kind is RuleKind.NEAR else self.engine

    async def rules_of_chat(self, chat_key: str) -> list[tuple[AlertRule, RuleState]]:
        return await self._alerts.rules_of_chat(chat_key)

    async def remove_rule(self, chat_key: str, rule_id: int) -> bool:
        found = await self._alerts.rule(rule_id)
        if found is None or found[0].chat_key != chat_key:
            return False
        await self._alerts.remove_rule(rule_id)
        self._matcher(found[0]).remove(rule_id)
        return True

    async def set_paused(self, chat_key: str, rule_id: int | None, paused: bool) -> list[int]:
        changed = await self._alerts.set_paused(chat_key, rule_id, paused)
        for changed_id in changed:
            found = await self._alerts.rule(changed_id)
            if found is not None:
                rule, state = found
                matcher = self._matcher(rule)
                matcher.add(rule, matcher.states.get(changed_id) or state)
        return changed
