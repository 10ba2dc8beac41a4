"""Threshold alerts: the pure engine (each kind fires once per crossing,
hysteresis, cooldown, grouping, persistence), the /alert command (caps,
authorization, usage errors in both locales), the service across a restart,
and end to end through the Telegram adapter and its fake Bot API."""

from __future__ import annotations

import asyncio

from bot.adapters.telegram import TelegramAdapter
from bot.commands.alerts import alert_handlers, parse_amount, parse_share
from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.config import TelegramConfig
from bot.core.alert_rules import AlertRule, Caps, Fired, RuleKind, RuleState
from bot.core.alerts import AlertEngine, EngineSettings
from bot.plumbing.delivery import DestinationGone
from bot.core.models import MINUTE_MS, LiquidationEvent, Side
from bot.feeds.venues import binance
from bot.replies import numbers as fmt
from bot.replies.locales import text
from bot.replies.render_plain import render_plain
from bot.replies.alerts import alert_reply
from bot.services.alerts import AlertService
from bot.services.queries import QueryService
from bot.storage.alerts_store import AlertsStore
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.support import Sending, until
from tests.backends import backend  # noqa: F401,E402  (the store tests on both backends)

NOW = 1_742_558_400_000  # 2025-03-21 12:00 UTC
COOLDOWN = 10 * MINUTE_MS


def ev(usd: float, at_ms: int, side: Side = Side.LONG, asset: str = "BTC", venue: str = "binance") -> LiquidationEvent:
    return LiquidationEvent(venue, "usdm", f"{asset}USDT", asset, side, 80_000.0, usd / 80_000.0, usd, at_ms)


def engine(*rules: AlertRule, cooldown_ms: int = COOLDOWN, group_ms: int = 5_000, listed_per_minute: int = 6) -> AlertEngine:
    e = AlertEngine(EngineSettings(cooldown_ms=cooldown_ms, group_ms=group_ms, big_listed_per_minute=listed_per_minute))
    for rule in rules:
        e.add(rule)
    return e


def total_rule(rule_id=1, threshold=1_000_000.0, window_ms=60 * MINUTE_MS, chat="telegram:1", asset="BTC"):
    return AlertRule(rule_id, chat, "telegram:42", RuleKind.TOTAL, asset, threshold, window_ms)


# -- the engine -----------------------------------------------------------------


def test_total_fires_once_per_crossing_and_rearms_below_80_percent():
    e = engine(total_rule())
    assert e.on_events([ev(600_000, NOW)], NOW) == []
    (fired,) = e.on_events([ev(500_000, NOW + 1000)], NOW + 1000)
    assert (fired.kind, fired.asset, fired.total_usd, fired.rule_ids) == (RuleKind.TOTAL, "BTC", 1_100_000, (1,))
    # Still above: more liquidations never fire again, however long it stays up.
    assert e.on_events([ev(900_000, NOW + 2 * MINUTE_MS)], NOW + 2 * MINUTE_MS) == []
    assert e.state(1).armed is False
    # 61 minutes on, the first two orders left the 1h window: 900K >= 800K, not re-armed.
    assert e.tick(NOW + 61 * MINUTE_MS) == [] and e.state(1).armed is False
    # The 900K order leaves: 0 < 800K re-arms (no alert for falling).
    assert e.tick(NOW + 63 * MINUTE_MS) == [] and e.state(1).armed is True
    (again,) = e.on_events([ev(1_200_000, NOW + 64 * MINUTE_MS)], NOW + 64 * MINUTE_MS)
    assert again.total_usd == 1_200_000


def test_hysteresis_a_dip_to_85_percent_does_not_rearm():
    e = engine(total_rule(window_ms=2 * MINUTE_MS))
    e.on_events([ev(150_000, NOW)], NOW)
    assert len(e.on_events([ev(900_000, NOW + MINUTE_MS)], NOW + MINUTE_MS)) == 1
    # The first minute leaves the 2-minute window: 900K is 90% of the threshold.
    assert e.tick(NOW + 2 * MINUTE_MS) == [] and not e.state(1).armed
    assert e.on_events([ev(200_000, NOW + 2 * MINUTE_MS)], NOW + 2 * MINUTE_MS) == []


def test_cooldown_holds_a_second_crossing_until_it_ends():
    e = engine(total_rule(window_ms=MINUTE_MS), cooldown_ms=COOLDOWN)
    assert len(e.on_events([ev(1_000_000, NOW)], NOW)) == 1
    t = NOW + 2 * MINUTE_MS  # window emptied: re-armed
    assert e.tick(t) == [] and e.state(1).armed
    assert e.on_events([ev(1_500_000, t)], t) == []  # crossed again, but cooling down
    t2 = NOW + COOLDOWN  # cooldown over: the next event finds the window above the threshold
    assert e.on_events([ev(1_100_000, t2)], t2)[0].total_usd == 1_100_000


def test_big_orders_of_a_burst_are_grouped_into_one_alert():
    big = AlertRule(1, "telegram:1", "telegram:42", RuleKind.BIG, "BTC", 1_000_000.0)
    any_big = AlertRule(2, "telegram:1", "telegram:42", RuleKind.BIG, None, 2_000_000.0)
    e = engine(big, any_big, group_ms=5_000)
    burst = [ev(1_500_000, NOW), ev(900_000, NOW + 100), ev(2_500_000, NOW + 200), ev(3_000_000, NOW + 300, asset="ETH")]
    assert e.on_events(burst, NOW + 300) == []
    assert closed_groups(e, NOW + 4_000) == []
    (fired,) = closed_groups(e, NOW + 5_300)  # 5 s after the burst was seen
    assert fired.kind is RuleKind.BIG and fired.rule_ids == (1, 2)
    assert [o.notional_usd for o in fired.orders] == [3_000_000, 2_500_000, 1_500_000]  # each order once


def closed_groups(e: AlertEngine, now_ms: int) -> list[Fired]:
    """The big-order alerts that close at `now_ms`, each group's copy written as it grew (as the service does)."""
    closed = []
    for burst, alert in e.big_groups(now_ms):
        e.big_written(burst, now_ms)
        closed += [alert] if burst.final else []
    return closed


def replay(e: AlertEngine, orders: list[LiquidationEvent], until_ms: int, start_ms: int = NOW) -> list[tuple[int, object]]:
    """Each order reaches the engine at its own time, the timer ticks every 500 ms
    on the virtual clock; (delivery time, alert) of everything fired."""
    delivered, pending = [], sorted(orders, key=lambda o: o.at_ms)
    for t in range(start_ms, until_ms + 1, 500):
        arrived = [o for o in pending if o.at_ms <= t]
        pending = pending[len(arrived):]
        delivered += [(t, f) for f in e.on_events(arrived, t) + e.tick(t) + closed_groups(e, t)]
    return delivered


def test_a_burst_25_s_after_a_big_order_alert_arrives_within_seconds_not_after_a_cooldown():
    e = engine(AlertRule(1, "telegram:1", "telegram:42", RuleKind.BIG, "BTC", 1_000_000.0), group_ms=2_000)
    first = ev(1_500_000, NOW)
    burst = [ev(1_200_000, NOW + 25_000 + 500 * i) for i in range(5)]
    delivered = replay(e, [first, *burst], NOW + 60_000)
    (t0, alert0), *later = delivered
    assert t0 - NOW <= 3_000 and [o.notional_usd for o in alert0.orders] == [1_500_000]
    assert 1 <= len(later) <= 2
    assert sorted(o.at_ms for _, f in later for o in f.orders) == [o.at_ms for o in burst]
    for t, fired in later:  # every order of the burst is out within 3 s of its arrival
        assert all(t - o.at_ms <= 3_000 for o in fired.orders)


def test_past_the_chats_cap_a_burst_comes_as_one_summary_line_at_once():
    e = engine(AlertRule(1, "telegram:1", "telegram:42", RuleKind.BIG, "BTC", 1_000_000.0), group_ms=2_000, listed_per_minute=2)
    bursts = [ev(1_200_000, NOW + 10_000 * k + 100 * i) for k in range(4) for i in range(2)]
    delivered = replay(e, bursts, NOW + 45_000)
    assert [(t - NOW, len(f.orders), f.more_orders) for t, f in delivered] == [
        (2_000, 2, 0), (12_000, 2, 0), (22_000, 0, 2), (32_000, 0, 2),
    ]
    summary = render_plain(alert_reply(delivered[2][1], "en"))
    assert "2 more orders of $1.00M or more, $2.40M." in summary
    assert "又有 2 笔" in render_plain(alert_reply(delivered[2][1], "zh"))
    # A minute after the first listing alerts, bursts are listed again.
    later = [ev(1_300_000, NOW + 62_500)]
    ((t, again),) = replay(e, later, NOW + 66_000, start_ms=NOW + 45_500)
    assert (t - NOW, len(again.orders)) == (64_500, 1)


def test_skew_fires_once_when_one_sided_with_enough_volume():
    rule = AlertRule(7, "telegram:1", "telegram:42", RuleKind.SKEW, "ETH", 10_000_000.0, 4 * 60 * MINUTE_MS, 0.8)
    e = engine(rule)
    assert e.on_events([ev(9_000_000, NOW, asset="ETH")], NOW) == []  # 100% but under the minimum
    (fired,) = e.on_events([ev(2_000_000, NOW + 1000, Side.SHORT, asset="ETH")], NOW + 1000)
    assert round(fired.share, 4) == round(9 / 11, 4) and fired.rule_share == 0.8
    assert e.on_events([ev(1_000_000, NOW + 2000, asset="ETH")], NOW + 2000) == []  # still one-sided
    # Shorts pile in: 12M long / 12M short -> 50% re-arms; then longs again.
    e.on_events([ev(10_000_000, NOW + 3000, Side.SHORT, asset="ETH")], NOW + 3000)
    assert e.state(7).armed
    t = NOW + 1000 + COOLDOWN - 1
    assert e.on_events([ev(60_000_000, t, asset="ETH")], t) == []  # cooling down
    assert len(e.on_events([ev(1_000_000, t + 1, asset="ETH")], t + 1)) == 1


def test_state_survives_a_restart_without_refiring():
    e = engine(total_rule())
    assert len(e.on_events([ev(1_500_000, NOW)], NOW)) == 1
    saved = {rule_id: state.to_dict() for rule_id, state in e.take_dirty().items()}
    assert saved == {1: {"armed": False, "last_fired_ms": NOW}}
    restarted = AlertEngine(EngineSettings(cooldown_ms=COOLDOWN))
    restarted.add(total_rule(), RuleState.from_dict(saved[1]))
    restarted.seed("BTC", NOW, Side.LONG, 1_500_000, NOW + 1000)
    assert restarted.on_events([ev(100_000, NOW + 2000)], NOW + 2000) == []


def test_paused_rules_never_fire_and_removed_rules_are_gone():
    e = engine(total_rule(1), AlertRule(2, "telegram:1", "u", RuleKind.TOTAL, "BTC", 500_000.0, 3_600_000, paused=True))
    e.remove(1)
    assert e.on_events([ev(2_000_000, NOW)], NOW) == []


def test_amounts_and_shares_as_traders_write_them():
    assert parse_amount("1M") == 1_000_000 and parse_amount("2.5m") == 2_500_000 and parse_amount("$500k") == 500_000
    assert parse_amount("1000000") == 1_000_000 and parse_amount("1X") is None and parse_amount("0") is None
    assert parse_share("80%") == 0.8 and parse_share("50%") is None and parse_share("120") is None


# -- the service and the command ------------------------------------------------------


class Recipients:
    """A Destination that records what it was sent (and can be told a chat is gone)."""

    def __init__(self, on_chat_gone=None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.gone: set[str] = set()
        self._on_chat_gone = on_chat_gone

    async def send(self, chat_key, reply):
        if chat_key in self.gone:  # like a chat adapter: report the gone chat, then raise
            if self._on_chat_gone is not None:
                await self._on_chat_gone(chat_key)
            raise DestinationGone(chat_key, "bot was blocked")
        self.sent.append((chat_key, render_plain(reply)))


async def _not_admin() -> bool:
    return False


ADMIN = Caller("telegram", "telegram:-100", "telegram:1", is_group=True)
MEMBER = Caller("telegram", "telegram:-100", "telegram:7", is_group=True, is_admin=_not_admin)
PRIVATE = Caller("telegram", "telegram:42", "telegram:42")


async def make_service(store, outbox, clock, caps=Caps()):
    notifier = Sending(store, {"telegram": outbox}, now_ms=lambda: clock[0])
    service = AlertService(store, notifier.outbox, settings=EngineSettings(cooldown_ms=COOLDOWN), caps=caps,
                           now_ms=lambda: clock[0])
    await service.start()
    dispatcher = Dispatcher(QueryService(store), lambda: clock[0], features=alert_handlers(service))
    return service, notifier, dispatcher


async def say(dispatcher, message, caller=PRIVATE):
    return render_plain(await dispatcher.handle(message, caller))


async def test_members_may_list_but_only_admins_create_in_groups(store):
    clock, outbox = [NOW], Recipients()
    service, notifier, dispatcher = await make_service(store, outbox, clock)
    refused = await say(dispatcher, "/alert total BTC 50M 1h", MEMBER)
    assert text("en", "denied.body") in refused
    assert await AlertsStore(store).rules() == []
    created = await say(dispatcher, "/alert total BTC 50M 1h", ADMIN)
    assert "#1" in created and "$50" in created
    listed = await say(dispatcher, "/alert list", MEMBER)
    assert "#1" in listed
    assert text("en", "denied.body") in await say(dispatcher, "/alert remove 1", MEMBER)
    assert text("en", "alert.removed", id=1) in await say(dispatcher, "/alert remove 1", ADMIN)
    await notifier.close()


async def test_caps_per_user_and_per_chat(store):
    clock, outbox = [NOW], Recipients()
    service, notifier, dispatcher = await make_service(store, outbox, clock, caps=Caps(per_user=2, per_chat=3))
    for amount in ("1M", "2M"):
        assert "#" in await say(dispatcher, f"/alert big BTC {amount}")
    assert text("en", "alert.cap_user", cap=2) in await say(dispatcher, "/alert big BTC 3M")
    other = Caller("telegram", "telegram:42", "telegram:43")
    assert "#3" in await say(dispatcher, "/alert big ETH 1M", other)
    assert text("en", "alert.cap_chat", cap=3) in await say(dispatcher, "/alert big ETH 2M", other)
    await notifier.close()


async def test_the_user_cap_holds_against_concurrent_alert_commands(store):
    """Reported: five concurrent /alert commands took a user from 18 rules to 23 against a cap of 20."""
    clock, outbox = [NOW], Recipients()
    service, notifier, dispatcher = await make_service(store, outbox, clock, caps=Caps(per_user=20, per_chat=50))
    for n in range(18):
        assert "#" in await say(dispatcher, f"/alert big BTC {n + 1}M")
    replies = await asyncio.gather(*(say(dispatcher, f"/alert big ETH {n + 1}M") for n in range(5)))
    assert sum("#" in r for r in replies) == 2
    assert sum(text("en", "alert.cap_user", cap=20) in r for r in replies) == 3
    assert len(await AlertsStore(store).rules()) == 20
    await notifier.close()


async def test_usage_errors_suggest_in_both_locales(store):
    clock, outbox = [NOW], Recipients()
    service, notifier, dispatcher = await make_service(store, outbox, clock)
    reply = await say(dispatcher, "/alert totl BTC 1M 1h")
    assert "/alert total" in reply and text("en", "alert.usage") in reply
    assert text("en", "error.alert_bad_amount", value="lots") in await say(dispatcher, "/alert big BTC lots")
    assert "24h" in await say(dispatcher, "/alert total BTC 1M 7d")
    assert "BTC" in await say(dispatcher, "/alert big XBT 1M")  # did you mean BTC?
    await store.chats.set_locale(PRIVATE.chat_key, "zh", NOW)
    zh = await say(dispatcher, "/alert skew ETH 40% 4h min 1M")
    assert text("zh", "error.alert_bad_share", value="40%") in zh and text("zh", "alert.usage") in zh
    await notifier.close()


async def test_pause_resume_and_a_restart_neither_refires_nor_forgets(store):
    clock, outbox = [NOW], Recipients()
    service, notifier, dispatcher = await make_service(store, outbox, clock)
    await say(dispatcher, "/alert total BTC 1M 1h")
    await service.on_events("binance", "usdm", [ev(1_200_000, NOW)])
    await until(lambda: len(outbox.sent) >= 1)
    assert len(outbox.sent) == 1 and "BTC" in outbox.sent[0][1]
    await notifier.close()
    # Restart: the store seeds the window (1.2M, still above), the state says fired.
    await store.add_events([ev(1_200_000, NOW)])
    clock[0] = NOW + 2000
    outbox2 = Recipients()
    service2, notifier2, dispatcher2 = await make_service(store, outbox2, clock)
    assert service2.engine.window_usd("BTC", 3_600_000) == (1_200_000, 0)
    await service2.on_events("binance", "usdm", [ev(100_000, NOW + 2000)])
    await service2.tick()
    assert service2.sent == []  # two seconds on, nothing queued to send
    # Pausing all, resuming one: the resumed rule keeps its state.
    assert "#1" in await say(dispatcher2, "/alert pause")
    assert service2.engine.rules[1].paused
    assert "#1" in await say(dispatcher2, "/alert resume 1")
    assert service2.engine.state(1).armed is False
    await notifier2.close()


async def test_a_gone_chat_is_disabled_and_others_still_get_alerts(store):
    clock = [NOW]
    outbox = Recipients(on_chat_gone=lambda chat_key: store.chats.set_active(chat_key, False, clock[0]))
    service, notifier, dispatcher = await make_service(store, outbox, clock)
    gone = Caller("telegram", "telegram:666", "telegram:666")
    await say(dispatcher, "/alert big BTC 1M", gone)
    await say(dispatcher, "/alert big BTC 1M")
    outbox.gone.add("telegram:666")
    await service.on_events("binance", "usdm", [ev(2_000_000, NOW)])
    clock[0] = NOW + 6_000
    await service.tick()
    await until(lambda: notifier.stats.sent + notifier.stats.gone >= 2)
    assert [chat for chat, _ in outbox.sent] == ["telegram:42"]
    assert (await store.chats.settings(["telegram:666"]))["telegram:666"].active is False
    await notifier.close()


async def test_one_order_alerts_each_chat_in_its_own_language_and_zone(store):
    clock = [NOW]
    outbox = Recipients()
    service, notifier, dispatcher = await make_service(store, outbox, clock)
    shanghai = Caller("telegram", "telegram:88", "telegram:88")
    await say(dispatcher, "/alert big BTC 1M")
    await say(dispatcher, "/alert big BTC 1M", shanghai)
    await store.chats.set_locale("telegram:88", "zh", NOW)
    await store.chats.set_timezone("telegram:88", "Asia/Shanghai", NOW)
    await service.on_events("binance", "usdm", [ev(2_000_000, NOW)])
    clock[0] = NOW + 6_000
    await service.tick()
    await until(lambda: notifier.stats.sent >= 2)
    sent = dict(outbox.sent)
    assert "2025-03-21 12:00 UTC" in sent["telegram:42"] and "Large liquidations" in sent["telegram:42"]
    assert "2025-03-21 20:00 UTC+8" in sent["telegram:88"] and "大额爆仓" in sent["telegram:88"]
    await notifier.close()


def test_big_order_alerts_show_times_in_the_chats_zone():
    e = engine(AlertRule(1, "telegram:1", "telegram:42", RuleKind.BIG, "BTC", 1_000_000.0), group_ms=2_000)
    e.on_events([ev(1_500_000, NOW)], NOW)
    (fired,) = closed_groups(e, NOW + 2_000)
    assert "2025-03-21 12:00 UTC" in render_plain(alert_reply(fired, "en"))
    assert "2025-03-21 20:00 UTC+8" in render_plain(alert_reply(fired, "zh", fmt.zone("Asia/Shanghai")))


def test_alert_messages_read_in_both_locales():
    e = engine(total_rule())
    (fired,) = e.on_events([ev(1_500_000, NOW)], NOW)
    en, zh = render_plain(alert_reply(fired, "en")), render_plain(alert_reply(fired, "zh"))
    assert "$1.50M" in en and "BTC" in en and "#1" in en
    assert "150万美元" in zh


# -- end to end: Telegram --------------------------------------------------------------


def usdm_frame(usd: float, at_ms: int, side: str = "SELL") -> dict:
    price = 80_000.0
    qty = usd / price
    return {
        "e": "forceOrder",
        "E": at_ms,
        "o": {"s": "BTCUSDT", "S": side, "o": "LIMIT", "f": "IOC", "q": f"{qty}", "p": "79000", "ap": f"{price}",
              "X": "FILLED", "l": f"{qty}", "z": f"{qty}", "T": at_ms},
    }


async def test_end_to_end_one_alert_through_telegram(store):
    from tests.test_telegram import fast_limiter

    clock = [NOW]
    async with FakeTelegramAPI() as fake:
        limiter = fast_limiter()
        async def on_gone(chat_key):
            pass

        config = TelegramConfig(enabled=True, base_url=fake.base_url, base_file_url=fake.base_file_url)
        notifier = Sending(store, {}, now_ms=lambda: clock[0])
        service = AlertService(store, notifier.outbox, now_ms=lambda: clock[0])
        await service.start()
        dispatcher = Dispatcher(QueryService(store), lambda: clock[0], features=alert_handlers(service))
        adapter = TelegramAdapter(config, fake.token, dispatcher, on_gone, rate_limiter=limiter,
                                  poll_timeout_seconds=5)
        notifier.add_destination("telegram", adapter)  # "telegram:" keys go to the running adapter
        await adapter.start()
        try:
            alice = FakeTelegramAPI.user(42, "Alice", "alice")
            chat = fake.private_chat(alice)
            fake.push_message(chat, alice, "/alert total BTC 1M 1h")
            await fake.wait_for("sendMessage", 1)
            assert "#1" in fake.calls_of("sendMessage")[0].params["text"]
            frames = [usdm_frame(400_000, NOW - 2000), usdm_frame(400_000, NOW - 1000), usdm_frame(300_000, NOW)]
            for frame in frames + [usdm_frame(500_000, NOW + 500)]:
                await service.on_events("binance", "usdm", binance.parse(frame, stream="usdm"))
            await fake.wait_for("sendMessage", 2)
            clock[0] = NOW + 6_000  # past any grouping: a tick now would queue whatever is pending
            await service.tick()
            assert len(service.sent) == 1  # one alert for the four frames, nothing more queued
            alerts = fake.calls_of("sendMessage")[1:]
            assert len(alerts) == 1
            assert alerts[0].chat_id == 42
            body = alerts[0].params["text"]
            assert text("en", "title.alert_total", asset="BTC") in body and "$1.10M" in body
        finally:
            await notifier.close()
            await adapter.stop()
