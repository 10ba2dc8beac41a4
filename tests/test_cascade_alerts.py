"""Cascade alerts: a replayed live event fires one alert at its start and one
summary at its end (on the virtual clock), survives a restart, respects the
cooldown, and reads in both locales."""

from __future__ import annotations

from bot.commands.alerts import parse_rule
from bot.replies.alerts import describe_rule
from bot.core.alert_rules import AlertRule, RuleKind, RuleState
from bot.core.cascade_alerts import CascadeWatch
from bot.core.models import MINUTE_MS, LiquidationEvent, Side
from bot.replies.render_plain import render_plain
from bot.replies.alerts import alert_reply
from bot.services.alerts import AlertService
from tests.support import until
from tests.test_alerts import Recipients, make_service, say

NOW = 1_742_558_400_000  # 2025-03-21 12:00 UTC
COOLDOWN = 15 * MINUTE_MS


def ev(usd: float, at_ms: int, side: Side = Side.LONG, asset: str = "BTC") -> LiquidationEvent:
    return LiquidationEvent("binance", "usdm", f"{asset}USDT", asset, side, 80_000.0, usd / 80_000.0, usd, at_ms)


def cascade_rule(rule_id: int = 1, asset: str | None = None, min_usd: float = 2_000_000.0) -> AlertRule:
    return AlertRule(rule_id, "telegram:1", "telegram:42", RuleKind.CASCADE, asset, min_usd)


def long_squeeze() -> list[LiquidationEvent]:
    """An hour of $20K minutes, then five minutes of twelve $100K orders (mostly
    longs, one $300K ETH long among them), then quiet again."""
    quiet = [ev(20_000, NOW + m * MINUTE_MS + 30_000) for m in range(60)]
    hot = []
    for m in range(60, 65):
        for i in range(12):
            side = Side.SHORT if i == 0 else Side.LONG
            hot.append(ev(100_000, NOW + m * MINUTE_MS + 4_000 * i, side))
    hot.append(ev(300_000, NOW + 62 * MINUTE_MS + 50_000, asset="ETH"))
    return quiet + hot


def replay(watch: CascadeWatch, orders, start_ms: int, until_ms: int, step_ms: int = 5_000):
    delivered, pending = [], sorted(orders, key=lambda o: o.at_ms)
    for t in range(start_ms, until_ms + 1, step_ms):
        arrived = [o for o in pending if o.at_ms <= t]
        pending = pending[len(arrived):]
        watch.on_events(arrived)
        delivered += [(t, f) for f in watch.tick(t)]
    return delivered


def test_a_replayed_cascade_fires_once_at_its_start_and_once_with_its_totals_at_its_end():
    watch = CascadeWatch(COOLDOWN)
    watch.add(cascade_rule())
    delivered = replay(watch, long_squeeze(), NOW, NOW + 90 * MINUTE_MS)
    (t_start, start), (t_end, end) = delivered
    # The 8th order of minute 61 (at 61:28) takes the run past $2M: announced at the next tick.
    assert t_start == NOW + 61 * MINUTE_MS + 30_000 and start.cascade.in_progress
    assert start.cascade.start_ms == NOW + 60 * MINUTE_MS
    # It ends ten quiet minutes after its last hot minute (65): one summary with the totals.
    assert t_end == NOW + 75 * MINUTE_MS and not end.cascade.in_progress
    assert (end.total_usd, end.short_usd, end.cascade.duration_ms) == (6_300_000, 500_000, 5 * MINUTE_MS)
    assert (end.largest.usd, end.largest.asset, end.largest.side) == (300_000, "ETH", Side.LONG)


def test_one_asset_scope_counts_only_that_asset():
    watch = CascadeWatch(COOLDOWN)
    watch.add(cascade_rule(asset="ETH", min_usd=250_000))
    assert replay(watch, long_squeeze(), NOW, NOW + 90 * MINUTE_MS) == []  # one ETH order is no cascade


def test_after_a_restart_mid_event_only_the_summary_comes():
    watch = CascadeWatch(COOLDOWN)
    watch.add(cascade_rule())
    orders = long_squeeze()
    (_, start), = replay(watch, orders, NOW, NOW + 63 * MINUTE_MS)
    saved = {i: s.to_dict() for i, s in watch.take_dirty().items()}
    restarted = CascadeWatch(COOLDOWN)
    restarted.add(cascade_rule(), RuleState.from_dict(saved[1]))
    for o in orders:  # the stored minutes, as the rollups give them back
        if o.at_ms < NOW + 63 * MINUTE_MS:
            restarted.seed(o.asset, o.at_ms, o.liquidated, o.notional_usd, 1, o.notional_usd)
    later = [o for o in orders if o.at_ms >= NOW + 63 * MINUTE_MS]
    ((t_end, end),) = replay(restarted, later, NOW + 63 * MINUTE_MS, NOW + 90 * MINUTE_MS)
    assert t_end == NOW + 75 * MINUTE_MS and end.total_usd == 6_300_000


def test_a_second_event_within_the_cooldown_is_announced_when_the_cooldown_ends():
    watch = CascadeWatch(20 * MINUTE_MS)
    watch.add(cascade_rule())
    again = [ev(100_000, NOW + m * MINUTE_MS + 4_000 * i) for m in range(76, 100) for i in range(12)]
    delivered = replay(watch, long_squeeze() + again, NOW, NOW + 100 * MINUTE_MS)
    # Start at 61:30, end at 75:00; the next event passes $2M at 77:28, inside the
    # 20-minute cooldown of the 61:30 alert, and is announced when it ends (81:30).
    assert [(t - NOW, f.cascade.in_progress) for t, f in delivered] == [
        (61 * MINUTE_MS + 30_000, True), (75 * MINUTE_MS, False), (81 * MINUTE_MS + 30_000, True),
    ]


def test_the_start_and_the_summary_read_in_both_locales_and_the_rule_is_listed():
    watch = CascadeWatch(COOLDOWN)
    watch.add(cascade_rule())
    (_, start), (_, end) = replay(watch, long_squeeze(), NOW, NOW + 90 * MINUTE_MS)
    assert render_plain(alert_reply(start, "en")).splitlines()[2] == (
        "A liquidation cascade is under way on all assets: $2.00M since 2025-03-21 13:00 UTC,"
        " longs 90.00%, shorts 10.00% (alert at $2.00M)."
    )
    assert render_plain(alert_reply(end, "en")).splitlines()[2] == (
        "The cascade on all assets is over: $6.30M in 5m, longs 92.06%, shorts 7.94%."
        " Largest order: $300.0K ETH long."
    )
    assert render_plain(alert_reply(end, "zh")).splitlines()[2] == (
        "全部币种 连环爆仓已结束：5分钟内爆仓 630万美元，多单 92.06%，空单 7.94%。最大单笔：30.00万美元 ETH 多单。"
    )
    rule = parse_rule(["cascade", "btc", "5M"], ["BTC"], "telegram:1", "telegram:42")
    assert (rule.kind, rule.asset, rule.threshold_usd) == (RuleKind.CASCADE, "BTC", 5_000_000)
    assert parse_rule(["cascade"], ["BTC"], "telegram:1", "u").asset is None
    assert describe_rule(rule, "en") == "a liquidation cascade of $5.00M or more on BTC"
    assert describe_rule(rule, "zh") == "BTC：连环爆仓 ≥ 500万美元"


async def test_through_the_service_a_restart_mid_event_sends_only_the_summary(store):
    clock, outbox = [NOW], Recipients()
    service, notifier, dispatcher = await make_service(store, outbox, clock)
    assert "#1" in await say(dispatcher, "/alert cascade all 2M")
    assert "a liquidation cascade of $2.00M or more on all assets" in await say(dispatcher, "/alert list")
    orders = long_squeeze()

    async def live(until_ms: int, service: AlertService) -> None:
        for t in range(clock[0], until_ms + 1, 10_000):
            clock[0] = t
            arrived = [o for o in orders if t - 10_000 < o.at_ms <= t]
            await store.add_events(arrived)
            await service.on_events("binance", "usdm", arrived)
            await service.tick()

    await live(NOW + 63 * MINUTE_MS, service)
    await until(lambda: len(outbox.sent) == 1)
    assert "cascade is under way on all assets" in outbox.sent[0][1]
    await notifier.close()
    clock[0] += 10_000
    outbox2 = Recipients()
    service2, notifier2, _ = await make_service(store, outbox2, clock)
    await live(NOW + 80 * MINUTE_MS, service2)
    await until(lambda: len(outbox2.sent) == 1)
    assert "The cascade on all assets is over: $6.30M in 5m" in outbox2.sent[0][1]
    assert [f.at_ms for _, f in service2.sent] == [NOW + 75 * MINUTE_MS]
    await notifier2.close()
