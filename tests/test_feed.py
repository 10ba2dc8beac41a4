"""The live channel feed (/feed): the pure matcher (threshold, assets, burst
grouping, the per-chat cap) on the virtual clock, its messages (golden files,
the README sample), the command (admins only in groups, usage errors) and the
subscriptions across a restart. End to end through venue, Telegram, Discord
and console fakes: tests/test_feed_e2e.py."""

from __future__ import annotations

from pathlib import Path

from bot.commands.dispatch import Dispatcher
from bot.commands.feed import feed_handlers
from bot.commands.ports import Caller
from bot.core.bursts import Burst, BurstSettings
from bot.core.feed import FeedMatcher, FeedSubscription
from bot.core.models import LiquidationEvent, Side
from bot.feeds import venues  # noqa: F401  (registers the venues' display names, as the composition root does)
from bot.replies import numbers as fmt
from bot.replies.feed import feed_reply
from bot.replies.locales import text
from bot.replies.render_plain import render_plain
from bot.services.feed import FeedService
from bot.services.notifier import Notifier, NotifierSettings
from bot.services.queries import QueryService
from tests.support import check_golden, liquidation

NOW = 1_742_558_400_000  # 2025-03-21 12:00 UTC
README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def matcher(*subscriptions: FeedSubscription, group_ms: int = 2_000, listed_per_minute: int = 10,
            max_listed: int = 15) -> FeedMatcher:
    m = FeedMatcher(BurstSettings(group_ms, listed_per_minute, max_listed))
    for subscription in subscriptions:
        m.set(subscription)
    return m


def replay(m: FeedMatcher, orders: list[LiquidationEvent], until_ms: int, start_ms: int = NOW,
           step_ms: int = 250) -> list[tuple[int, Burst]]:
    """Each order reaches the matcher at its own time; the timer looks every `step_ms`
    on the virtual clock. (time sent, burst) of everything released."""
    released, pending = [], sorted(orders, key=lambda o: o.at_ms)
    for t in range(start_ms, until_ms + 1, step_ms):
        arrived = [o for o in pending if o.at_ms <= t]
        pending = pending[len(arrived):]
        m.on_events(arrived, t)
        released += [(t, burst) for burst in m.due(t)]
    return released


# -- the matcher ----------------------------------------------------------------


def test_every_order_at_or_above_the_chats_threshold_goes_out_within_3_s_with_bursts_grouped():
    m = matcher(FeedSubscription("telegram:-100", 100_000.0), FeedSubscription("discord:7", 1_000_000.0, ("ETH",)))
    first = liquidation(NOW, 100_000.0)  # exactly the threshold: posted
    small = liquidation(NOW + 300, 99_999.0)  # below it: never
    burst = [liquidation(NOW + 25_000 + 500 * i, 120_000.0 + i, Side.SHORT) for i in range(5)]
    eth = liquidation(NOW + 26_000, 1_200_000.0, asset="ETH")
    released = replay(m, [first, small, *burst, eth], NOW + 60_000)
    to_telegram = [(t, b) for t, b in released if b.chat_key == "telegram:-100"]
    posted = sorted(o.at_ms for _, b in to_telegram for o in b.orders)
    assert posted == sorted(o.at_ms for o in [first, *burst, eth])
    assert 1 + 1 <= len(to_telegram) <= 1 + 2  # the first order alone, the burst (with the ETH order) in one or two
    for t, b in released:
        assert b.more_orders == 0 and all(t - o.at_ms <= 3_000 for o in b.orders)
    [(_, eth_only)] = [(t, b) for t, b in released if b.chat_key == "discord:7"]
    assert [o.asset for o in eth_only.orders] == ["ETH"]


def test_past_the_chats_cap_a_burst_is_one_count_and_sum_line_sent_at_once():
    m = matcher(FeedSubscription("telegram:-100", 100_000.0), listed_per_minute=2)
    bursts = [liquidation(NOW + 10_000 * k + 100 * i, 200_000.0) for k in range(4) for i in range(3)]
    released = replay(m, bursts, NOW + 45_000)
    assert [(t - NOW, len(b.orders), b.more_orders, b.total_usd) for t, b in released] == [
        (2_000, 3, 0, 600_000.0), (12_000, 3, 0, 600_000.0), (22_000, 0, 3, 600_000.0), (32_000, 0, 3, 600_000.0),
    ]


def test_a_cascade_of_minutes_stays_under_telegrams_20_messages_a_minute_and_loses_no_order():
    settings = BurstSettings(group_ms=2_000, listed_per_minute=8, max_listed=15, capped_group_ms=6_000)
    m = FeedMatcher(settings)
    m.set(FeedSubscription("telegram:-100", 100_000.0))
    orders = [liquidation(NOW + 500 * i, 150_000.0 + i) for i in range(360)]  # two a second for three minutes
    released = replay(m, orders, NOW + 200_000)
    assert sum(b.count for _, b in released) == len(orders)
    sent_ms = [t for t, _ in released]
    assert max(sum(1 for u in sent_ms if t <= u < t + 60_000) for t in sent_ms) <= 20
    # One chat has one open burst: each order goes out with the first message after it arrived,
    # within the grouping, or past the cap within the longer collection.
    waits = [min(t for t in sent_ms if t >= o.at_ms) - o.at_ms for o in orders]
    assert max(waits) <= 6_000 + 250
    assert sum(1 for _, b in released if not b.orders) >= 10  # the cap was reached, and degraded to summary lines


def test_a_message_lists_the_largest_orders_in_the_order_they_happened_and_counts_the_rest():
    m = matcher(FeedSubscription("telegram:-100", 100_000.0), max_listed=3)
    orders = [liquidation(NOW + 100 * i, usd) for i, usd in enumerate((150_000.0, 900_000.0, 110_000.0, 500_000.0, 700_000.0))]
    [(_, burst)] = replay(m, orders, NOW + 3_000)
    lines = render_plain(feed_reply(burst, 100_000.0, "en")).splitlines()
    assert [line.split(" · ")[2] for line in lines if line.startswith("• ")] == [
        "$900.0K at $84,000.0", "$500.0K at $84,000.0", "$700.0K at $84,000.0",
    ]
    assert lines[-1] == text("en", "feed.more", count=2, amount=fmt.usd(260_000.0, "en"))


def test_turning_a_feed_off_or_changing_it_takes_effect_at_once():
    m = matcher(FeedSubscription("telegram:-100", 100_000.0))
    m.on_events([liquidation(NOW, 200_000.0)], NOW)
    m.remove("telegram:-100")  # its open burst goes too
    m.set(FeedSubscription("telegram:-200", 1_000_000.0, ("BTC", "SOL")))
    m.on_events([liquidation(NOW + 100, 500_000.0), liquidation(NOW + 200, 2_000_000.0, asset="SOL")], NOW + 200)
    [burst] = m.due(NOW + 5_000)
    assert burst.chat_key == "telegram:-200" and [o.asset for o in burst.orders] == ["SOL"]


# -- the messages -------------------------------------------------------------------


def sample_messages(locale: str, tz_name: str) -> str:
    """A feed at $100K: one order, a burst of four within two seconds, and a burst past the
    chat's cap (two listing messages a minute here), as the chat reads them."""
    m = matcher(FeedSubscription("telegram:-100", 100_000.0), listed_per_minute=2)
    orders = [
        liquidation(NOW + 1_000, 250_000.0),
        liquidation(NOW + 20_000, 1_200_000.0),
        liquidation(NOW + 20_400, 180_000.0, Side.SHORT, "ETH", "bybit"),
        LiquidationEvent("okx", "public", "SOL-USDT-SWAP", "SOL", Side.LONG, 128.5, 4_980.54, 640_000.0, NOW + 21_100),
        liquidation(NOW + 21_800, 2_500_000.0),
        *(liquidation(NOW + 40_000 + 300 * i, 150_000.0 * (i + 1), asset="ETH") for i in range(6)),
    ]
    zone = fmt.zone(tz_name)
    return "\n".join(render_plain(feed_reply(b, 100_000.0, locale, zone)) for _, b in replay(m, orders, NOW + 50_000))


def test_feed_messages_golden_in_both_languages_and_the_chats_zone():
    check_golden("feed_en.txt", sample_messages("en", "UTC"))
    check_golden("feed_zh.txt", sample_messages("zh", "Asia/Shanghai"))


def test_the_readme_feed_sample_is_the_real_output():
    assert f"```\n{sample_messages('en', 'UTC')}```" in README


# -- the command and the service ----------------------------------------------------


async def _not_admin() -> bool:
    return False


ADMIN = Caller("telegram", "telegram:-100", "telegram:1", is_group=True, rate_limited=False)
MEMBER = Caller("telegram", "telegram:-100", "telegram:7", is_group=True, is_admin=_not_admin, rate_limited=False)


async def open_service(store) -> tuple[FeedService, Notifier, Dispatcher]:
    notifier = Notifier({}, settings=NotifierSettings(rate_per_s=0))
    service = FeedService(store, notifier, now_ms=lambda: NOW)
    await service.start()
    return service, notifier, Dispatcher(QueryService(store), lambda: NOW, features=feed_handlers(service))


async def say(dispatcher: Dispatcher, line: str, caller: Caller = ADMIN) -> str:
    return render_plain(await dispatcher.handle(line, caller))


async def test_feed_on_off_status_admins_only_in_groups_and_kept_across_a_restart(store):
    service, notifier, dispatcher = await open_service(store)
    assert text("en", "feed.status_off") in await say(dispatcher, "/feed", MEMBER)
    assert text("en", "denied.body") in await say(dispatcher, "/feed on 100K", MEMBER)
    on = await say(dispatcher, "/feed on 250k btc $ETH eth")
    assert "every liquidation of $250.0K or more on BTC, ETH" in on and "2s" in on
    await store.chats.set_locale(ADMIN.chat_key, "zh", NOW)
    status = await say(dispatcher, "/feed status", MEMBER)  # members may look
    assert "每笔 ≥ 25.00万美元 的爆仓单（BTC、ETH）" in status and "2025-03-21 12:00 UTC" in status
    await notifier.close()
    # A restart: the subscription is loaded, and matches at once.
    restarted, notifier, dispatcher = await open_service(store)
    assert restarted.matcher.subscriptions == {
        ADMIN.chat_key: FeedSubscription(ADMIN.chat_key, 250_000.0, ("BTC", "ETH"), ADMIN.user_key, NOW)
    }
    assert text("zh", "feed.off") in await say(dispatcher, "/feed off")
    assert text("zh", "feed.off_none") in await say(dispatcher, "/feed off")
    assert restarted.matcher.subscriptions == {}
    await notifier.close()


async def test_every_bad_feed_line_gets_the_usage_in_both_languages(store):
    service, notifier, dispatcher = await open_service(store)
    lines = {
        "/feed sometimes": ("error.feed_unknown", "sometimes"),
        "/feed on": ("error.feed_no_amount", ""),
        "/feed on BTC": ("error.alert_bad_amount", "BTC"),
        "/feed on 0.1": ("error.alert_amount_range", "0.1"),
        "/feed on 1M XBT": ("error.unknown_asset", "XBT"),
        "/feed on 1M all BTC": ("error.feed_all_and_assets", ""),
        "/feed off now": ("error.feed_extra", "now"),
    }
    for locale in ("en", "zh"):
        await store.chats.set_locale(ADMIN.chat_key, locale, NOW)
        for line, (key, value) in lines.items():
            reply = await say(dispatcher, line)
            message = text(locale, key, value=value, asset=value, min=fmt.usd(1, locale), max=fmt.usd(1e12, locale))
            assert message in reply and text(locale, "feed.usage") in reply, (line, reply)
    assert service.matcher.subscriptions == {}
    await notifier.close()
