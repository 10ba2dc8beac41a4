"""`/alert risk ASSET LEVEL`: the engine (fires once on the rise, re-arms only
below the level, cooldown, an unknown level never fires), the service (a level
read at most once a minute per asset, persisted state across a restart, a
failing read), the grammar in both locales, and end to end over a real
RiskService reading stored market data."""

from __future__ import annotations

import pytest

from bot.commands.alerts import alert_handlers, parse_level
from bot.commands.dispatch import Dispatcher
from bot.core.alert_rules import RuleKind, RuleState, risk_rule
from bot.core.alerts import AlertEngine, EngineSettings
from bot.core.models import MINUTE_MS
from bot.core.risk import RiskLevel
from bot.replies.locales import text
from bot.replies.render_plain import render_plain
from bot.replies.alerts import alert_reply
from bot.services.alerts import AlertService
from bot.services.queries import QueryService
from bot.services.risk import RiskService
from bot.storage.alerts_store import AlertsStore
from bot.storage.market_store import MarketStore
from tests.support import Sending, until
from tests.test_alerts import PRIVATE, Recipients, say
from tests.test_risk import _seed

NOW = 1_742_558_400_000  # 2025-03-21 12:00 UTC
COOLDOWN = 10 * MINUTE_MS
LOW, ELEVATED, HIGH, EXTREME = RiskLevel.LOW, RiskLevel.ELEVATED, RiskLevel.HIGH, RiskLevel.EXTREME


def engine(*rules, cooldown_ms: int = COOLDOWN) -> AlertEngine:
    e = AlertEngine(EngineSettings(cooldown_ms=cooldown_ms))
    for rule in rules:
        e.add(rule)
    return e


def btc_high(rule_id: int = 1, level: RiskLevel = HIGH, paused: bool = False):
    return risk_rule(rule_id, "telegram:42", "telegram:42", "BTC", level, paused=paused)


# -- the engine -------------------------------------------------------------------


def test_the_rule_keeps_its_level():
    rule = btc_high(level=ELEVATED)
    assert rule.kind is RuleKind.RISK and rule.level is ELEVATED and rule.asset == "BTC"


def test_fires_once_on_the_rise_and_not_again_while_it_stays_up():
    e = engine(btc_high())
    assert e.on_risk("BTC", LOW, NOW) == []
    assert e.on_risk("BTC", ELEVATED, NOW + MINUTE_MS) == []
    (fired,) = e.on_risk("BTC", HIGH, NOW + 2 * MINUTE_MS)
    assert (fired.kind, fired.asset, fired.level, fired.rule_level, fired.rule_ids) == (
        RuleKind.RISK, "BTC", HIGH, HIGH, (1,))
    assert e.state(1).armed is False and e.state(1).last_fired_ms == NOW + 2 * MINUTE_MS
    # Staying at high, or climbing to extreme, long after the cooldown: nothing more.
    for k in range(3, 60):
        assert e.on_risk("BTC", EXTREME if k % 2 else HIGH, NOW + k * MINUTE_MS) == []
    # Other assets' levels do not touch the rule.
    assert e.on_risk("ETH", LOW, NOW + 60 * MINUTE_MS) == [] and e.state(1).armed is False


def test_rearms_only_after_falling_below_the_level():
    e = engine(btc_high())
    assert len(e.on_risk("BTC", EXTREME, NOW)) == 1  # extreme is "high or above"
    t = NOW + 2 * COOLDOWN
    assert e.on_risk("BTC", HIGH, t) == [] and not e.state(1).armed  # still at the level: no re-arm
    assert e.on_risk("BTC", ELEVATED, t + MINUTE_MS) == [] and e.state(1).armed  # below: re-armed, silently
    (again,) = e.on_risk("BTC", HIGH, t + 2 * MINUTE_MS)
    assert again.level is HIGH


def test_cooldown_holds_a_second_rise_until_it_ends():
    e = engine(btc_high(), cooldown_ms=COOLDOWN)
    assert len(e.on_risk("BTC", HIGH, NOW)) == 1
    assert e.on_risk("BTC", ELEVATED, NOW + MINUTE_MS) == [] and e.state(1).armed
    assert e.on_risk("BTC", HIGH, NOW + 2 * MINUTE_MS) == []  # risen again, but cooling down
    assert e.state(1).armed is True  # still armed: it fires when the cooldown ends
    assert e.on_risk("BTC", HIGH, NOW + COOLDOWN - 1) == []
    (later,) = e.on_risk("BTC", HIGH, NOW + COOLDOWN)
    assert later.at_ms == NOW + COOLDOWN
    # A rise that fell back during the cooldown never fires late.
    e2 = engine(btc_high(), cooldown_ms=COOLDOWN)
    e2.on_risk("BTC", HIGH, NOW)
    e2.on_risk("BTC", LOW, NOW + MINUTE_MS)
    e2.on_risk("BTC", HIGH, NOW + 2 * MINUTE_MS)
    assert e2.on_risk("BTC", ELEVATED, NOW + COOLDOWN) == []


def test_an_unknown_level_never_fires_nor_rearms():
    e = engine(btc_high(), btc_high(2, LOW))
    for k in range(5):
        assert e.on_risk("BTC", None, NOW + k * MINUTE_MS) == []
    assert e.take_dirty() == {}
    assert {f.rule_ids for f in e.on_risk("BTC", HIGH, NOW + 10 * MINUTE_MS)} == {(1,), (2,)}
    # Data gone after firing: the rule stays disarmed (no re-arm on missing data).
    assert e.on_risk("BTC", None, NOW + 40 * MINUTE_MS) == [] and not e.state(1).armed
    assert e.on_risk("BTC", HIGH, NOW + 41 * MINUTE_MS) == []


def test_paused_and_removed_risk_rules_are_not_read_nor_fired():
    e = engine(btc_high(1), btc_high(2, paused=True))
    assert e.risk_assets() == ["BTC"]
    e.remove(1)
    assert e.risk_assets() == []
    assert e.on_risk("BTC", EXTREME, NOW) == []


def test_state_survives_a_restart_without_refiring():
    e = engine(btc_high())
    assert len(e.on_risk("BTC", HIGH, NOW)) == 1
    saved = {rule_id: state.to_dict() for rule_id, state in e.take_dirty().items()}
    assert saved == {1: {"armed": False, "last_fired_ms": NOW}}
    restarted = AlertEngine(EngineSettings(cooldown_ms=COOLDOWN))
    restarted.add(btc_high(), RuleState.from_dict(saved[1]))
    assert restarted.on_risk("BTC", HIGH, NOW + 3 * COOLDOWN) == []


def test_levels_as_people_write_them():
    assert parse_level("high") is HIGH and parse_level("HIGH") is HIGH and parse_level("Extreme") is EXTREME
    assert parse_level("低") is LOW and parse_level("偏高") is ELEVATED and parse_level("高") is HIGH
    assert parse_level("极高") is EXTREME and parse_level("hgh") is None and parse_level("5") is None


def test_risk_alert_messages_read_in_both_locales():
    (fired,) = engine(btc_high()).on_risk("BTC", EXTREME, NOW)
    en, zh = render_plain(alert_reply(fired, "en")), render_plain(alert_reply(fired, "zh"))
    assert text("en", "title.alert_risk", asset="BTC") in en
    assert text("en", "alert.fired_risk", asset="BTC", level="extreme", threshold="high") in en and "#1" in en
    assert text("zh", "alert.fired_risk", asset="BTC", level="极高", threshold="高") in zh


# -- the service and the command ------------------------------------------------------


class Levels:
    """A risk_level callable: a level per asset, counting the reads."""

    def __init__(self, **levels) -> None:
        self.levels: dict[str, RiskLevel | None] = dict(levels)
        self.reads: list[tuple[str, int]] = []
        self.fail = False

    async def __call__(self, asset: str, now_ms: int) -> RiskLevel | None:
        self.reads.append((asset, now_ms))
        if self.fail:
            raise RuntimeError("market store gone")
        return self.levels.get(asset)


async def make_service(store, outbox, clock, levels):
    notifier = Sending(store, {"telegram": outbox}, now_ms=lambda: clock[0])
    service = AlertService(store, notifier.outbox, settings=EngineSettings(cooldown_ms=COOLDOWN), now_ms=lambda: clock[0],
                           risk_level=levels)
    await service.start()
    dispatcher = Dispatcher(QueryService(store), lambda: clock[0], features=alert_handlers(service))
    return service, notifier, dispatcher


async def until_sent(outbox, count):
    await until(lambda: len(outbox.sent) >= count)


async def test_the_service_reads_once_a_minute_fires_once_and_a_restart_does_not_refire(store):
    clock, outbox, levels = [NOW], Recipients(), Levels(BTC=ELEVATED)
    service, notifier, dispatcher = await make_service(store, outbox, clock, levels)
    created = await say(dispatcher, "/alert risk BTC high")
    assert "#1" in created and text("en", "alert.rule_risk", asset="BTC", level="high") in created
    assert text("en", "alert.rule_risk", asset="BTC", level="high") in await say(dispatcher, "/alert list")
    await service.tick()
    assert levels.reads == [("BTC", NOW)]
    levels.levels["BTC"] = HIGH
    for second in range(1, 60):  # the timer ticks every second; the level is read once a minute
        clock[0] = NOW + second * 1000
        await service.tick()
    assert len(levels.reads) == 1 and outbox.sent == []
    clock[0] = NOW + MINUTE_MS
    await service.tick()
    await until_sent(outbox, 1)
    assert len(levels.reads) == 2 and len(outbox.sent) == 1
    assert text("en", "title.alert_risk", asset="BTC") in outbox.sent[0][1]
    for minute in range(2, 5):  # still high: nothing more
        clock[0] = NOW + minute * MINUTE_MS
        await service.tick()
    assert len(service.sent) == 1  # three more reads, nothing more queued to send
    (stored,) = await AlertsStore(store).rules()
    assert stored[0].level is HIGH and stored[1].armed is False and stored[1].last_fired_ms == NOW + MINUTE_MS
    await notifier.close()

    # Restart, still high, long after the cooldown: no second alert.
    clock[0] = NOW + 5 * COOLDOWN
    outbox2 = Recipients()
    service2, notifier2, _ = await make_service(store, outbox2, clock, levels)
    await service2.tick()
    assert service2.sent == [] and service2.engine.state(1).armed is False
    # Below the level re-arms (persisted), the next rise fires.
    levels.levels["BTC"] = ELEVATED
    clock[0] += MINUTE_MS
    await service2.tick()
    assert (await AlertsStore(store).rule(1))[1].armed is True
    levels.levels["BTC"] = EXTREME
    clock[0] += MINUTE_MS
    await service2.tick()
    await until_sent(outbox2, 1)
    assert len(outbox2.sent) == 1
    await notifier2.close()


async def test_missing_data_or_a_failing_read_never_fires(store, caplog):
    clock, outbox, levels = [NOW], Recipients(), Levels()  # no level for anything: None
    service, notifier, dispatcher = await make_service(store, outbox, clock, levels)
    await say(dispatcher, "/alert risk BTC low")
    for minute in range(3):
        clock[0] = NOW + minute * MINUTE_MS
        await service.tick()
    levels.levels["BTC"], levels.fail = EXTREME, True
    clock[0] += MINUTE_MS
    await service.tick()  # logged, not raised
    assert service.sent == [] and len(levels.reads) == 4
    assert "risk level of BTC failed" in caplog.text
    assert service.engine.state(1).armed is True
    await notifier.close()


async def test_no_reads_without_risk_rules_or_with_all_paused(store):
    clock, outbox, levels = [NOW], Recipients(), Levels(BTC=EXTREME)
    service, notifier, dispatcher = await make_service(store, outbox, clock, levels)
    await say(dispatcher, "/alert total BTC 50M 1h")
    await service.tick()
    await say(dispatcher, "/alert risk BTC high")
    await say(dispatcher, "/alert pause 2")
    clock[0] += MINUTE_MS
    await service.tick()
    assert levels.reads == []
    await notifier.close()


async def test_the_risk_grammar_explains_and_suggests_in_both_locales(store):
    clock, outbox, levels = [NOW], Recipients(), Levels()
    service, notifier, dispatcher = await make_service(store, outbox, clock, levels)
    typo = await say(dispatcher, "/alert risk BTC hgh")
    assert text("en", "error.alert_bad_level", value="hgh") in typo
    assert text("en", "error.did_you_mean", suggestion="high") in typo and text("en", "alert.usage") in typo
    assert text("en", "error.did_you_mean", suggestion="extreme") in await say(dispatcher, "/alert risk BTC extrem")
    assert text("en", "error.alert_incomplete") in await say(dispatcher, "/alert risk BTC")
    assert text("en", "error.alert_incomplete") in await say(dispatcher, "/alert risk")
    assert "BTC" in await say(dispatcher, "/alert risk XBT high")  # did you mean BTC?
    assert "/alert risk" in await say(dispatcher, "/alert rsk BTC high")
    assert "risk BTC high" in text("en", "alert.usage")
    assert await AlertsStore(store).rules() == []
    await store.chats.set_locale(PRIVATE.chat_key, "zh", NOW)
    zh = await say(dispatcher, "/alert risk ETH 很高")
    assert text("zh", "error.alert_bad_level", value="很高") in zh and text("zh", "alert.usage") in zh
    created = await say(dispatcher, "/alert risk ETH 偏高")
    assert text("zh", "alert.rule_risk", asset="ETH", level="偏高") in created
    (rule, _state), = await AlertsStore(store).rules()
    assert (rule.kind, rule.asset, rule.level) == (RuleKind.RISK, "ETH", ELEVATED)
    await notifier.close()


async def test_end_to_end_over_stored_market_data(store):
    """A real RiskService over the synthetic cascade (extreme for BTC, no data for ETH)."""
    now = await _seed(store, 31.5 + 45 / 1440)
    clock, outbox = [now], Recipients()
    risk = RiskService(MarketStore(store), QueryService(store))
    service, notifier, dispatcher = await make_service(store, outbox, clock, risk.risk_level)
    await say(dispatcher, "/alert risk BTC high")
    await say(dispatcher, "/alert risk ETH low")
    await service.tick()
    await until_sent(outbox, 1)
    assert len(service.sent) == 1  # ETH (no data) never queued
    body = outbox.sent[0][1]
    assert text("en", "alert.fired_risk", asset="BTC", level="extreme", threshold="high") in body


@pytest.mark.parametrize("locale", ["en", "zh"])
def test_help_alert_shows_the_risk_example(locale):
    from bot.commands.registry import COMMANDS

    (spec,) = [c for c in COMMANDS if c.name == "alert"]
    assert "/alert risk BTC high" in spec.examples
    assert "/alert risk BTC" in text(locale, "alert.usage")
