"""Daily digests: time zones, catch-up inside and outside the 6 h grace, the
autumn DST change, a gone destination, one composition per (locale, content),
the /digest command, and the APScheduler wiring."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.commands.digest import digest_handlers
from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.core.digest import DigestSchedule, due_digest
from bot.plumbing.delivery import DestinationGone
from bot.core.models import DAY_MS, HOUR_MS, LiquidationEvent, Side, Window
from bot.replies import numbers as fmt
from bot.replies.locales import text
from bot.replies.render_plain import render_plain
from bot.scheduler import DigestScheduler, job_id
from bot.services.charts import ChartService
from bot.services.digests import DigestService
from bot.services.queries import QueryService
from bot.services.reports import ReportService
from bot.storage.digests_store import DigestsStore
from tests.support import Sending
from tests.backends import backend  # noqa: F401,E402  (the store tests on both backends)

BERLIN = ZoneInfo("Europe/Berlin")


def utc_ms(*args) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


class Recipients:
    """A Destination; like a chat adapter, it reports a gone chat (`on_chat_gone`) and raises."""

    def __init__(self, on_chat_gone=None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.replies: dict[str, object] = {}
        self.gone: set[str] = set()
        self._on_chat_gone = on_chat_gone

    async def send(self, chat_key, reply):
        if chat_key in self.gone:
            if self._on_chat_gone is not None:
                await self._on_chat_gone(chat_key)
            raise DestinationGone(chat_key, "chat not found")
        self.sent.append((chat_key, render_plain(reply)))
        self.replies[chat_key] = reply


def ev(usd, at_ms, side=Side.LONG, asset="BTC", venue="binance"):
    return LiquidationEvent(venue, "usdm", f"{asset}USDT", asset, side, 100.0, usd / 100.0, usd, at_ms)


@pytest.fixture
async def digests(store):
    clock = [0]
    outbox = Recipients(on_chat_gone=lambda key: store.chats.set_active(key, False, clock[0]))
    notifier = Sending(store, {"telegram": outbox, "discord": outbox}, now_ms=lambda: clock[0])
    service = DigestService(store, notifier.outbox, now_ms=lambda: clock[0])
    service.clock, service.outbox, service.notifier = clock, outbox, notifier
    yield service
    await notifier.close()


async def schedule(service, chat_key, local_time, tz, locale="en", set_at_ms=0):
    await service.set_digest(chat_key, local_time, tz, locale, set_at_ms)


def test_due_in_the_schedules_time_zone():
    shanghai = DigestSchedule("telegram:1", "08:00", "Asia/Shanghai")
    assert due_digest(shanghai, utc_ms(2025, 3, 20, 23, 59)) is None  # 07:59 in Shanghai, 22 h after yesterday's
    assert due_digest(shanghai, utc_ms(2025, 3, 21, 0, 0)) == "2025-03-21"
    sent = DigestSchedule("telegram:1", "08:00", "Asia/Shanghai", last_sent_local_date="2025-03-21")
    assert due_digest(sent, utc_ms(2025, 3, 21, 0, 5)) is None


async def test_restart_inside_the_grace_catches_up_once_outside_it_skips(digests, store):
    # Set the day before; the bot is down over the 08:00 Berlin slot (07:00 UTC in March).
    await schedule(digests, "telegram:1", "08:00", "Europe/Berlin", set_at_ms=utc_ms(2025, 3, 20, 12))
    await schedule(digests, "telegram:2", "02:00", "Europe/Berlin", set_at_ms=utc_ms(2025, 3, 20, 12))
    now = utc_ms(2025, 3, 21, 12, 30)  # 5.5 h after 08:00, 10.5 h after 02:00
    assert await digests.send_due(now) == 1
    assert [chat for chat, _ in digests.outbox.sent] == ["telegram:1"]
    assert await digests.send_due(now + 1000) == 0  # a second catch-up: nothing
    schedules = DigestsStore(store)
    assert (await schedules.digest("telegram:1")).last_sent_local_date == "2025-03-21"
    assert (await schedules.digest("telegram:2")).last_sent_local_date is None  # nothing was ever sent


async def test_setting_a_time_already_passed_today_waits_for_tomorrow(digests):
    await schedule(digests, "telegram:1", "08:00", "UTC", set_at_ms=utc_ms(2025, 3, 21, 9))
    assert await digests.send_due(utc_ms(2025, 3, 21, 9, 1)) == 0
    assert await digests.send_due(utc_ms(2025, 3, 22, 8, 0)) == 1


async def test_autumn_dst_fires_twice_but_sends_once(digests):
    await schedule(digests, "telegram:1", "02:30", "Europe/Berlin", set_at_ms=utc_ms(2025, 10, 25, 12))
    scheduler = DigestScheduler(digests, now_ms=lambda: digests.clock[0])
    try:
        digests.clock[0] = utc_ms(2025, 10, 25, 12)
        await scheduler.start()
        trigger = scheduler.jobs()[job_id("02:30", "Europe/Berlin")]
        # APScheduler's cron fires at both 02:30s of 2025-10-26 (CEST, then CET).
        first = trigger.get_next_fire_time(None, datetime(2025, 10, 26, 0, 0, tzinfo=BERLIN))
        second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
        assert first.astimezone(timezone.utc).hour == 0 and second.astimezone(timezone.utc).hour == 1
        sent = []
        for fire_time in (first, second):
            digests.clock[0] = int(fire_time.timestamp() * 1000)
            sent.append(await scheduler.fire("02:30", "Europe/Berlin"))
        assert sent == [1, 0]
        assert len(digests.outbox.sent) == 1
    finally:
        scheduler.shutdown()


async def test_a_gone_destination_is_disabled_and_others_still_get_theirs(digests, store):
    at = utc_ms(2025, 3, 20, 12)
    for chat in ("telegram:1", "telegram:2", "discord:3"):
        await schedule(digests, chat, "08:00", "UTC", set_at_ms=at)
    digests.outbox.gone.add("telegram:2")
    assert await digests.send_due(utc_ms(2025, 3, 21, 8, 0)) == 2
    assert sorted(chat for chat, _ in digests.outbox.sent) == ["discord:3", "telegram:1"]
    assert (await store.chats.settings(["telegram:2"]))["telegram:2"].active is False
    # The next day, the gone chat is not even tried.
    digests.outbox.gone.clear()
    assert await digests.send_due(utc_ms(2025, 3, 22, 8, 0)) == 2


async def test_the_digest_says_what_the_reference_write_up_says_and_is_composed_once(digests, store):
    end = utc_ms(2025, 3, 21, 8)
    await store.add_span("binance", "usdm", end - 31 * DAY_MS, end)
    history = [ev(50_000_000, end - DAY_MS - k * DAY_MS - HOUR_MS) for k in range(30)]
    today = [
        ev(62_190_000, end - 2 * HOUR_MS), ev(16_280_000, end - 3 * HOUR_MS, Side.SHORT),
        ev(36_360_000, end - HOUR_MS, asset="ETH"), ev(15_350_000, end - HOUR_MS, Side.SHORT, asset="ETH"),
        ev(13_850_000, end - HOUR_MS, asset="SOL", venue="okx"), ev(1_150_000, end - HOUR_MS, Side.SHORT, asset="SOL"),
    ]
    await store.add_events(history + today)
    for chat, locale in (("telegram:1", "en"), ("telegram:2", "en"), ("discord:3", "en"), ("telegram:4", "zh"),
                         ("discord:5", "zh")):
        await schedule(digests, chat, "08:00", "UTC", locale, set_at_ms=end - 12 * HOUR_MS)
    assert await digests.send_due(end) == 5
    assert digests.compositions == 2  # one per locale, not per chat
    en = dict(digests.outbox.sent)["telegram:1"]
    assert text("en", "title.digest_report", date="2025-03-21") in en
    assert fmt.usd(145_180_000, "en") in en  # the write-up's total
    assert "Long squeeze" in en and "SOL" in en and "92.33% longs" in en
    assert "Binance" in en and "OKX" in en and "Largest" in en
    assert "+190.4%" in en  # 145.18M against 50M the previous day and on average
    zh = dict(digests.outbox.sent)["telegram:4"]
    assert "1.45亿美元" in zh and text("zh", "title.digest_report", date="2025-03-21") in zh


async def _not_admin() -> bool:
    return False


async def test_the_digest_command(digests, store):
    digests.clock[0] = utc_ms(2025, 3, 21, 12)
    dispatcher = Dispatcher(QueryService(store), lambda: digests.clock[0], features=digest_handlers(digests))
    member = Caller("telegram", "telegram:-100", "telegram:7", is_group=True, is_admin=_not_admin)
    admin = Caller("telegram", "telegram:-100", "telegram:1", is_group=True)

    async def say(message, caller=admin):
        return render_plain(await dispatcher.handle(message, caller))

    assert text("en", "denied.body") in await say("/digest on 08:00 Europe/Berlin", member)
    assert text("en", "digest.on", time="08:00", tz="Europe/Berlin") in await say("/digest on 8:00 Europe/Berlin")
    assert "08:00" in await say("/digest status", member)
    assert "Europe/Berlin" in await say("/digest on 08:00 Europe/Berln")  # did you mean
    assert text("en", "error.digest_bad_time", value="25:00") in await say("/digest on 25:00")
    # Only a time that means a time is suggested: 25:00 gets none (it once got an unrelated 08:00).
    assert "Did you mean" not in await say("/digest on 25:00")
    assert text("en", "error.did_you_mean", suggestion="20:00") in await say("/digest on 8pm")
    assert text("en", "error.did_you_mean", suggestion="08:05") in await say("/digest on 8:5")
    assert "/digest status" in await say("/digest stauts")
    preview = await say("/digest preview", member)
    assert "Daily liquidation digest" in preview
    assert text("en", "digest.off") in await say("/digest off")
    assert text("en", "digest.status_off") in await say("/digest status")


async def test_status_right_after_on_claims_no_send_and_today_stays_skipped(digests, store):
    digests.clock[0] = utc_ms(2025, 3, 21, 12)  # 13:00 in Berlin: today's 08:00 has passed
    dispatcher = Dispatcher(QueryService(store), lambda: digests.clock[0], features=digest_handlers(digests))
    admin = Caller("telegram", "telegram:-100", "telegram:1", is_group=True)
    await dispatcher.handle("/digest on 08:00 Europe/Berlin", admin)
    status = render_plain(await dispatcher.handle("/digest status", admin))
    assert text("en", "digest.status_on", time="08:00", tz="Europe/Berlin", last=text("en", "digest.never")) in status
    assert await digests.send_due(utc_ms(2025, 3, 21, 12, 1)) == 0  # no "missed" digest for today
    assert await digests.send_due(utc_ms(2025, 3, 22, 7, 0)) == 1  # tomorrow's 08:00 Berlin
    assert "last sent: 2025-03-22" in render_plain(await dispatcher.handle("/digest status", admin))


async def test_the_scheduler_registers_at_start_and_reregisters_on_change(digests):
    at = utc_ms(2025, 3, 21, 12)
    digests.clock[0] = at
    await schedule(digests, "telegram:1", "08:00", "Europe/Berlin", set_at_ms=at)
    scheduler = DigestScheduler(digests, now_ms=lambda: digests.clock[0])
    try:
        await scheduler.start()
        assert set(scheduler.jobs()) == {job_id("08:00", "Europe/Berlin")}
        await digests.set_digest("telegram:1", "09:15", "Asia/Shanghai", "en", at)
        await digests.set_digest("telegram:2", "09:15", "Asia/Shanghai", "zh", at)
        assert set(scheduler.jobs()) == {job_id("09:15", "Asia/Shanghai")}
        trigger = scheduler.jobs()[job_id("09:15", "Asia/Shanghai")]
        assert str(trigger.timezone) == "Asia/Shanghai"
        await digests.disable_digest("telegram:1", at)
        await digests.disable_digest("telegram:2", at)
        assert scheduler.jobs() == {}
    finally:
        scheduler.shutdown()


# -- the one-line leverage note ---------------------------------------------------


async def _day_of_eth(store, end):
    """A day whose dominant asset is ETH (BTC second, SOL third)."""
    await store.add_events([
        ev(30_000_000, end - HOUR_MS, asset="ETH"), ev(10_000_000, end - 2 * HOUR_MS),
        ev(1_000_000, end - HOUR_MS, asset="SOL"),
    ])


def _notes_for(notes: dict):
    calls = []

    async def risk_note(asset, now_ms, locale):
        calls.append((asset, now_ms, locale))
        return notes.get(asset)

    return risk_note, calls


async def test_the_digest_carries_the_leverage_notes_of_btc_and_the_dominant_asset(store, digests):
    end = utc_ms(2025, 3, 21, 8)
    await _day_of_eth(store, end)
    risk_note, calls = _notes_for({"BTC": "🟠 Leverage risk: high: Funding high", "ETH": "🟢 Leverage risk: low",
                                   "SOL": "🔴 Leverage risk: extreme"})
    service = DigestService(store, digests.notifier.outbox, risk_note=risk_note)
    en = render_plain(await service.compose("en", end, "2025-03-21"))
    assert text("en", "digest.risk_note", asset="BTC", note="🟠 Leverage risk: high: Funding high") in en
    assert text("en", "digest.risk_note", asset="ETH", note="🟢 Leverage risk: low") in en
    assert "extreme" not in en  # SOL is neither BTC nor the dominant asset
    assert calls == [("BTC", end, "en"), ("ETH", end, "en")]
    assert en.index("BTC: 🟠") < en.index("ETH: 🟢")
    zh = render_plain(await service.compose("zh", end, "2025-03-21"))
    assert text("zh", "digest.risk_note", asset="BTC", note="🟠 Leverage risk: high: Funding high") in zh


async def test_no_note_without_market_data_or_without_a_risk_service(store, digests):
    end = utc_ms(2025, 3, 21, 8)
    await _day_of_eth(store, end)
    without = render_plain(await digests.compose("en", end, "2025-03-21"))  # no risk_note injected
    risk_note, calls = _notes_for({})  # no market data: None for every asset
    no_data = render_plain(await DigestService(store, digests.notifier.outbox, risk_note=risk_note).compose(
        "en", end, "2025-03-21"))
    assert "Leverage risk" not in without and "Leverage risk" not in no_data
    assert no_data == without and [asset for asset, _, _ in calls] == ["BTC", "ETH"]

    async def failing(asset, now_ms, locale):
        raise RuntimeError("market store gone")

    failed = render_plain(await DigestService(store, digests.notifier.outbox, risk_note=failing).compose(
        "en", end, "2025-03-21"))
    assert failed == without


async def test_only_btc_is_noted_when_it_dominates_and_the_note_goes_out_with_the_digest(store, digests):
    end = utc_ms(2025, 3, 21, 8)
    await store.add_events([ev(10_000_000, end - HOUR_MS), ev(1_000_000, end - HOUR_MS, asset="ETH")])
    risk_note, calls = _notes_for({"BTC": "🟡 Leverage risk: elevated", "ETH": "🟢 Leverage risk: low"})
    service = DigestService(store, digests.notifier.outbox, risk_note=risk_note)
    await schedule(service, "telegram:1", "08:00", "UTC", set_at_ms=end - 12 * HOUR_MS)
    assert await service.send_due(end) == 1
    (chat, sent), = digests.outbox.sent
    assert chat == "telegram:1" and "BTC: 🟡 Leverage risk: elevated" in sent and "ETH: 🟢" not in sent
    assert calls == [("BTC", end, "en")]


async def test_the_note_from_a_real_risk_service(store, digests):
    from bot.services.risk import RiskService
    from bot.storage.market_store import MarketStore
    from tests.test_risk import _seed

    now = await _seed(store, 31.5 + 45 / 1440)
    end = now - now % (60_000)
    risk = RiskService(MarketStore(store), QueryService(store))
    reply = render_plain(await DigestService(store, digests.notifier.outbox, risk_note=risk.note).compose("en", end, "d"))
    assert "BTC: 🔴 Leverage risk: extreme" in reply


# -- the day's chart -----------------------------------------------------------------


async def test_digest_chart_on_and_off_by_admins_and_shown_in_status(digests, store):
    digests.clock[0] = utc_ms(2025, 3, 21, 12)
    dispatcher = Dispatcher(QueryService(store), lambda: digests.clock[0], features=digest_handlers(digests))
    member = Caller("telegram", "telegram:-100", "telegram:7", is_group=True, is_admin=_not_admin)
    admin = Caller("telegram", "telegram:-100", "telegram:1", is_group=True)

    async def say(message, caller=admin):
        return render_plain(await dispatcher.handle(message, caller))

    assert text("en", "digest.chart_none") in await say("/digest chart on")  # no digest yet
    await say("/digest on 08:00 Asia/Shanghai")
    assert text("en", "digest.status_chart_off") in await say("/digest status", member)
    assert text("en", "denied.body") in await say("/digest chart on", member)
    assert not (await digests.digest("telegram:-100")).chart
    assert text("en", "digest.chart_on") in await say("/digest chart on")
    assert (await digests.digest("telegram:-100")).chart
    assert text("en", "digest.status_chart_on") in await say("/digest status", member)
    await say("/digest on 09:00 Asia/Shanghai")  # changing the time keeps the chart
    assert (await digests.digest("telegram:-100")).chart
    assert "/digest chart on" in await say("/digest chart onn")  # did you mean
    assert text("en", "digest.chart_off") in await say("/digest chart off")
    assert text("en", "digest.status_chart_off") in await say("/digest status")
    assert await store.chats.timezone("telegram:-100") == "Asia/Shanghai"  # the digest's zone is the chat's clock
    assert await store.chats.timezone("telegram:-999") is None
    await QueryService(store).set_chat_locale("telegram:-100", "zh", digests.clock[0])
    assert text("zh", "digest.chart_on") in await say("/digest chart on")
    assert text("zh", "digest.status_chart_on") in await say("/digest status")


async def test_the_digest_of_a_chat_with_the_chart_on_carries_the_png(store):
    end = utc_ms(2025, 3, 21, 0)  # 08:00 in Shanghai
    await store.add_events([ev(5_000_000, end - HOUR_MS), ev(2_000_000, end - HOUR_MS, asset="ETH")])
    outbox = Recipients()
    notifier = Sending(store, {"telegram": outbox})
    queries = QueryService(store)
    chart_service = ChartService(store, queries)
    asked = []

    async def chart_of(end_ms, tz, locale):
        asked.append((end_ms, tz))
        return await chart_service.top_image(DAY_MS, end_ms, tz, locale)

    digests = DigestService(store, notifier.outbox, now_ms=lambda: end, chart_of=chart_of)
    try:
        for chat in ("telegram:1", "telegram:2", "telegram:3"):
            await digests.set_digest(chat, "08:00", "Asia/Shanghai", "en", end - 12 * HOUR_MS)
        assert await digests.set_digest_chart("telegram:1", True, end - 12 * HOUR_MS)
        assert await digests.set_digest_chart("telegram:3", True, end - 12 * HOUR_MS)
        assert await digests.send_due(end) == 3
    finally:
        await notifier.close()
    assert asked == [(end, "Asia/Shanghai")] and digests.charts_drawn == 1  # once for both chats
    assert digests.compositions == 1
    with_chart = outbox.replies["telegram:1"]
    assert with_chart.image is not None and with_chart.image.png.startswith(b"\x89PNG")
    assert with_chart.image.filename == "liqbot-top-24h-20250321-0800.png"  # drawn in the chat's zone
    assert outbox.replies["telegram:3"].image is with_chart.image
    assert outbox.replies["telegram:2"].image is None
    assert with_chart.title == outbox.replies["telegram:2"].title


async def test_a_failing_chart_still_sends_the_digest(store):
    end = utc_ms(2025, 3, 21, 8)
    outbox = Recipients()
    notifier = Sending(store, {"telegram": outbox})

    async def broken(end_ms, tz, locale):
        raise RuntimeError("no display")

    digests = DigestService(store, notifier.outbox, now_ms=lambda: end, chart_of=broken)
    try:
        await digests.set_digest("telegram:1", "08:00", "UTC", "en", end - HOUR_MS)
        await digests.set_digest_chart("telegram:1", True, end - HOUR_MS)
        assert await digests.send_due(end) == 1
    finally:
        await notifier.close()
    assert outbox.replies["telegram:1"].image is None


async def test_the_full_digest_is_the_write_up_in_the_chats_zone_composed_once_per_zone(store):
    end = utc_ms(2025, 3, 21, 0)  # 08:00 in Shanghai
    burst = [ev(400_000, end - 3 * HOUR_MS + k * 20_000) for k in range(15)]  # a cascade at 21:00 UTC
    await store.add_events(burst + [ev(50_000, end - 10 * HOUR_MS)])
    await store.add_span("binance", "usdm", end - 2 * DAY_MS, end)
    outbox = Recipients()
    notifier = Sending(store, {"telegram": outbox})
    reports = ReportService(store, QueryService(store))
    digests = DigestService(
        store, notifier.outbox, now_ms=lambda: end,
        write_up_of=lambda end_ms, tz: reports.write_up(None, Window(end_ms - DAY_MS, end_ms), end_ms, tz),
    )
    try:
        for chat in ("telegram:1", "telegram:2"):
            await digests.set_digest(chat, "08:00", "Asia/Shanghai", "en", end - 12 * HOUR_MS)
        await digests.set_digest("telegram:3", "00:00", "UTC", "en", end - 12 * HOUR_MS)
        assert await digests.set_digest_style("telegram:2", "brief", end - 12 * HOUR_MS)
        assert await digests.send_due(end) == 3
    finally:
        await notifier.close()
    assert digests.compositions == 3  # full in Shanghai, brief in Shanghai, full in UTC
    full = dict(outbox.sent)["telegram:1"]
    assert full.startswith("🔴 Daily liquidation digest · 2025-03-21 · Long squeeze: $6.05M liquidated in 24h")
    assert "How it unfolded" in full and "2025-03-21 05:00 UTC+8 to 05:05" in full  # the chat's clock
    assert "How it unfolded" not in dict(outbox.sent)["telegram:2"]  # brief
    assert "2025-03-20 21:00 UTC to 21:05" in dict(outbox.sent)["telegram:3"]
