"""The outbox (bot.services.outbox) on both backends: a send whose sender died is sent
again after its lease, once; two senders never send the same row; alerts and digests
go through it end to end, and a successor leader neither loses nor repeats them."""

from __future__ import annotations

import asyncio
import contextlib

from bot.core.alert_rules import AlertRule, RuleKind
from bot.core.models import HOUR_MS, Side
from bot.replies.codec import reply_from_json, reply_to_json
from bot.replies.model import (
    Action, Align, Bullets, Column, Field, Fields, Image, Note, Paragraph, Reply, Table, Tone, bold, code, line, muted,
)
from bot.replies.render_plain import render_plain
from bot.services.alerts import UNSEALED_GRACE_MS, AlertService
from bot.services.digests import DigestService
from bot.services.notifier import Notifier, NotifierSettings
from bot.services.outbox import LEASE_MS, Outbox
from bot.storage.store import Store
from tests.backends import backend  # noqa: F401  (every test on both backends)
from tests.support import Sending, liquidation, until

T0 = 1_742_515_200_000  # 2025-03-21 00:00 UTC
KEYS = ("telegram:1", "telegram:2", "discord:3")


class Recipients:
    """A chat platform that records what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, chat_key: str, reply: Reply) -> None:
        self.sent.append((chat_key, render_plain(reply)))


class DiesAfterAccepting(Recipients):
    """The platform accepts the message; the sender never hears back (its process died)."""

    async def send(self, chat_key: str, reply: Reply) -> None:
        await super().send(chat_key, reply)
        await asyncio.Event().wait()


def notifier(destination, senders: int = 8) -> Notifier:
    return Notifier(
        {"telegram": destination, "discord": destination},
        NotifierSettings(rate_per_s=0, senders_per_platform=senders),
    )


@contextlib.asynccontextmanager
async def sender(location, destination, clock, senders: int = 8, **options):
    """An outbox over its own connections to the database (another process, as far as
    the database can tell); closed, with its notifier, at the end."""
    store = await Store.open(location)
    chats = notifier(destination, senders)
    outbox = Outbox(store, chats, now_ms=lambda: clock[0], **options)
    try:
        yield outbox
    finally:
        await outbox.close()
        await chats.close()
        await store.close()


@contextlib.asynccontextmanager
async def alerting(store, chats, clock, **options):
    """An AlertService, started, sending through its own outbox and notifier to `chats`;
    (the service, its outbox), the sending closed at the end."""
    sending = Sending(store, {"telegram": chats}, now_ms=lambda: clock[0])
    alerts = AlertService(store, sending.outbox, now_ms=lambda: clock[0], **options)
    try:
        await alerts.start()
        yield alerts, sending.outbox
    finally:
        await sending.close()


async def add(store, outbox, count: int, kind: str = "alert") -> list[str]:
    sends = [(f"{kind}:{n}", KEYS[n % len(KEYS)]) for n in range(count)]
    async with store.db.transaction() as tx:
        await outbox.add(tx, Reply(title="Longs liquidated", blocks=(Paragraph(line("BTC $5M")),)), sends, kind, True)
    return [key for key, _ in sends]


async def drained(outbox: Outbox, timeout_s: float = 5.0) -> None:
    """Wait until every send in the outbox is recorded done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while await outbox.backlog():
        assert loop.time() < deadline, "the outbox did not drain in time"
        await asyncio.sleep(0.01)


def test_a_reply_comes_back_from_json_equal():
    reply = Reply(
        title="Daily digest · 2025-03-21",
        blocks=(
            Paragraph(line("Totals ", bold("$78.47M"), " ", muted("24h"), " ", code("/liq"))),
            Fields((Field("Longs", line("79.25%")), Field("Shorts", line("20.75%"), inline=False))),
            Table((Column("asset"), Column("usd", Align.RIGHT)), (("BTC", "$78.47M"), ("ETH", "$51.71M"))),
            Bullets((line("SOL: 92% longs"), line("一边倒"))),
            Note(line("Totals are a lower bound.")),
        ),
        tone=Tone.LONGS_HIT,
        actions=(Action("Refresh", "/liq 24h"),),
        image=Image(b"\x89PNG\r\n\x1a\n\x00binary", "top.png"),
    )
    back = reply_from_json(reply_to_json(reply))
    assert back == reply
    assert back.tone is Tone.LONGS_HIT and back.blocks[0].spans[1].style is bold("x").style


async def test_a_send_whose_sender_died_is_sent_again_once_after_its_lease(store, database_location):
    clock = [T0]
    first, second = DiesAfterAccepting(), Recipients()
    async with sender(database_location, first, clock, senders=1) as dying, \
            sender(database_location, second, clock) as successor:
        keys = await add(store, dying, 3)
        # Claimed all three: one Telegram and the Discord message are at their platforms
        # (one sender per platform), the second Telegram one is queued behind the first.
        assert await dying.send_pending() == 3
        await until(lambda: len(first.sent) == 2)
        clock[0] += LEASE_MS - 1
        assert await successor.send_pending() == 0  # the claims still hold
        assert second.sent == []
        clock[0] += 1  # the dead sender's lease runs out
        assert await successor.send_pending() == 3
        await until(lambda: len(second.sent) == 3)
        assert await successor.delivered(keys) == 3
        clock[0] += 2 * LEASE_MS
        assert await successor.send_pending() == 0  # done rows are never claimed again
        assert await successor.backlog() == 0
    # The messages the platforms accepted just before their sender died went out twice
    # (the at-least-once window); the one it never sent went out once; none was lost.
    assert sorted(chat for chat, _ in first.sent) == ["discord:3", "telegram:1"]
    assert sorted(chat for chat, _ in second.sent) == sorted(KEYS)


class Held(Recipients):
    """A slow platform: each send is accepted and answered when `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def send(self, chat_key: str, reply: Reply) -> None:
        await super().send(chat_key, reply)
        await self.release.wait()


async def test_a_sender_that_stops_leading_withdraws_what_it_had_queued(store, database_location):
    """The outbox stops (this replica lost the lead) while its Notifier runs on: the sends
    still queued there are not made by it; the next leader makes them once."""
    clock = [T0]
    slow, successor_chats = Held(), Recipients()
    replica_store = await Store.open(database_location)
    chats = Notifier({"telegram": slow}, NotifierSettings(rate_per_s=0, senders_per_platform=1))
    old_leader = Outbox(replica_store, chats, now_ms=lambda: clock[0])
    try:
        sends = [(f"digest:{n}", "telegram:1") for n in range(3)]  # ordinary: one message each
        async with store.db.transaction() as tx:
            await old_leader.add(tx, Reply(title="BTC digest"), sends, "digest", False)
        assert await old_leader.send_pending() == 3
        await until(lambda: len(slow.sent) == 1)  # the first at the platform, two queued behind it
        await old_leader.close()
        # A later message to the same chat comes after the two queued ones (each chat's
        # messages go in order): once it is there, the Notifier has passed them.
        chats.submit(["telegram:1"], Reply(title="after them"))
        slow.release.set()  # the platform answers; the Notifier goes on to its queue
        await until(lambda: len(slow.sent) == 2)
        assert [message.strip() for _, message in slow.sent] == ["📊 BTC digest", "📊 after them"]  # two withdrawn
    finally:
        await chats.close()
        await replica_store.close()
    clock[0] += LEASE_MS
    async with sender(database_location, successor_chats, clock) as new_leader:
        assert await new_leader.send_pending() == 3
        assert await new_leader.delivered(key for key, _ in sends) == 3
    # The one at the platform when the lead changed went out twice (the window); the others once.
    assert len(successor_chats.sent) == 3


async def test_the_alerts_waiting_for_a_chat_leave_in_one_message_however_few_sends_are_in_flight(
    store, database_location
):
    """A cascade leaves many alerts per chat in the table; claiming one of a chat's brings
    the chat's other waiting alerts along, and they go out as one message (digests do not)."""
    clock = [T0]
    platform = Recipients()
    async with sender(database_location, platform, clock, senders=1, in_flight_rows=3) as outbox:
        async with store.db.transaction() as tx:
            for n, chat in enumerate(["telegram:1", "telegram:2", "telegram:1", "telegram:1", "telegram:2"]):
                await outbox.add(tx, Reply(title=f"alert {n}"), [(f"alert:{n}", chat)], "alert", True)
            await outbox.add(tx, Reply(title="digest"), [("digest:1", "telegram:1"), ("digest:2", "telegram:1")],
                             "digest", False)
        outbox.wake()
        await drained(outbox)
    assert [(chat, message.strip().split("\n\n")) for chat, message in platform.sent] == [
        ("telegram:1", ["📊 alert 0", "📊 alert 2", "📊 alert 3"]),
        ("telegram:2", ["📊 alert 1", "📊 alert 4"]),
        ("telegram:1", ["📊 digest"]),
        ("telegram:1", ["📊 digest"]),
    ]
    rows = await store.db.fetch("SELECT outcome, attempts FROM outbox")
    assert rows == [("sent", 1)] * 7


async def test_two_senders_never_send_the_same_row(store, database_location):
    clock = [T0]
    left, right = Recipients(), Recipients()
    count = 300
    async with sender(database_location, left, clock, in_flight_rows=16) as one, \
            sender(database_location, right, clock, in_flight_rows=16) as other:
        keys = await add(store, one, count)
        one.wake()
        other.wake()
        both = await asyncio.wait_for(asyncio.gather(one.delivered(keys), other.delivered(keys)), timeout=60)
        assert both == [count, count]  # each learns every outcome, from its own send or the table
    # Each send's alert once, over both (a chat's queued alerts share a message).
    assert sum(message.count("Longs liquidated") for _, message in left.sent + right.sent) == count
    assert left.sent and right.sent  # both took part
    rows = await store.db.fetch("SELECT idem_key, outcome, attempts FROM outbox ORDER BY id")
    assert [(key, outcome, attempts) for key, outcome, attempts in rows] == [(key, "sent", 1) for key in keys]


async def test_a_platform_that_stops_answering_holds_up_no_other_platforms_sends(store):
    """Telegram's sends hang (a 429 storm, an outage): Discord's still all go out."""
    hanging, discord = DiesAfterAccepting(), Recipients()
    chats = Notifier({"telegram": hanging, "discord": discord}, NotifierSettings(rate_per_s=0))
    outbox = Outbox(store, chats, now_ms=lambda: T0, in_flight_rows=4)
    sends = [(f"alert:t{n}", f"telegram:{n}") for n in range(10)] + [(f"alert:d{n}", f"discord:{n}") for n in range(10)]
    try:
        async with store.db.transaction() as tx:
            await outbox.add(tx, Reply(title="Longs liquidated"), sends, "alert", True)
        sent = await asyncio.wait_for(outbox.delivered(key for key, chat in sends if chat.startswith("discord")), 10)
        assert sent == 10 and len(discord.sent) == 10
        assert len(hanging.sent) == 4  # Telegram holds no more than its share
    finally:
        await outbox.close()
        await chats.close()


class AnswersOnceThenHangs(DiesAfterAccepting):
    async def send(self, chat_key: str, reply: Reply) -> None:
        if self.sent:
            await super().send(chat_key, reply)
        else:
            await Recipients.send(self, chat_key, reply)


async def test_a_platform_never_holds_more_than_its_share_of_sends_in_flight(store):
    platform = AnswersOnceThenHangs()
    chats = Notifier({"telegram": platform}, NotifierSettings(rate_per_s=0))
    outbox = Outbox(store, chats, now_ms=lambda: T0, in_flight_rows=4)
    try:
        async with store.db.transaction() as tx:
            await outbox.add(tx, Reply(title="Longs liquidated"), [(f"alert:{n}", f"telegram:{n}") for n in range(20)],
                             "alert", True)
        outbox.wake()
        await until(lambda: len(platform.sent) >= 5)  # the first answered, then four held at once
        for _ in range(5):  # passes after the answer: nothing more is claimed
            await outbox.send_pending()
        (claimed,) = await store.db.fetchone("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL AND done_ms IS NULL")
        assert claimed == 4 and len(platform.sent) == 5
    finally:
        await outbox.close()
        await chats.close()


async def test_an_alert_is_claimed_and_sent_while_a_digest_fan_out_fills_the_platform_s_share(store):
    """Digests take all of a platform's share and the platform is slow to answer them: an
    alert written then still goes out at once, not after the digests ahead of it are answered."""
    platform = Held()  # accepts each send, answers none until released
    chats = Notifier({"telegram": platform}, NotifierSettings(rate_per_s=0, senders_per_platform=8))
    outbox = Outbox(store, chats, now_ms=lambda: T0, in_flight_rows=4)
    try:
        async with store.db.transaction() as tx:
            await outbox.add(tx, Reply(title="digest"), [(f"digest:{n}", f"telegram:{n}") for n in range(10)],
                             "digest", False)
        assert await outbox.send_pending() == 4
        await until(lambda: len(platform.sent) == 4)
        async with store.db.transaction() as tx:
            await outbox.add(tx, Reply(title="Longs liquidated"), [("alert:1", "telegram:20"), ("alert:2", "telegram:21")],
                             "alert", True)
        outbox.wake()
        await until(lambda: len(platform.sent) == 6)
        assert sorted(message.strip() for chat, message in platform.sent[4:]) == ["📊 Longs liquidated"] * 2
        for _ in range(3):  # the digests' share stays full: no fifth digest is claimed
            await outbox.send_pending()
        (digests_claimed,) = await store.db.fetchone(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'digest' AND claimed_by IS NOT NULL")
        assert digests_claimed == 4 and len(platform.sent) == 6
    finally:
        await outbox.close()
        await chats.close()


async def test_one_chat_s_waiting_alerts_hold_at_most_twice_the_platform_s_share(store):
    """Claimed urgent rows bring their chat's other waiting ones along: at most as many
    again as the share, and a not yet due alert (a big-order group still open) stays."""
    platform = Held()  # never answers
    chats = Notifier({"telegram": platform}, NotifierSettings(rate_per_s=0))
    outbox = Outbox(store, chats, now_ms=lambda: T0, in_flight_rows=4)
    try:
        async with store.db.transaction() as tx:
            await outbox.put(tx, Reply(title="big, still grouping"), "alert:big", "telegram:1", "alert", True,
                             due_ms=T0 + 10_000)
            await outbox.add(tx, Reply(title="Longs liquidated"), [(f"alert:{n}", "telegram:1") for n in range(20)],
                             "alert", True)
        assert await outbox.send_pending() == 8
        for _ in range(3):
            assert await outbox.send_pending() == 0
        (claimed,) = await store.db.fetchone("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL")
        (big_claimed,) = await store.db.fetchone("SELECT COUNT(*) FROM outbox WHERE idem_key = 'alert:big'"
                                                 " AND claimed_by IS NOT NULL")
        assert (claimed, big_claimed) == (8, 0)
    finally:
        await outbox.close()
        await chats.close()


async def test_the_same_key_written_twice_is_one_row_and_one_send(store, database_location):
    """Two leaders evaluating the same moment (a takeover) write the same keys: one send each."""
    clock = [T0]
    chats = Recipients()
    async with sender(database_location, chats, clock) as outbox:
        keys = await add(store, outbox, 2)
        assert await add(store, outbox, 2) == keys
        assert await outbox.delivered(keys) == 2
    assert len(chats.sent) == 2


async def test_an_alert_goes_through_the_outbox_once_and_a_restart_does_not_repeat_it(store, database_location):
    clock = [T0]
    chats = Recipients()
    async with alerting(store, chats, clock) as (alerts, outbox):
        await alerts.create_rule(AlertRule(0, "telegram:1", "telegram:1", RuleKind.TOTAL, "BTC", 1_000_000.0, HOUR_MS), T0)
        await alerts.on_events("binance", "usdm", [liquidation(T0 + 1_000, 1_500_000, Side.LONG)])
        await drained(outbox)
    (row,) = await store.db.fetch("SELECT idem_key, chat_key, kind, urgent, outcome FROM outbox")
    assert row[1:] == ("telegram:1", "alert", 1, "sent") and row[0].startswith("alert:1:")
    # A successor (a restart, a new leader) loads the state written with the send: no second alert.
    successor_chats = Recipients()
    async with alerting(store, successor_chats, clock) as (again, successor):
        await again.on_events("binance", "usdm", [liquidation(T0 + 2_000, 100_000, Side.LONG)])
        clock[0] += 2 * LEASE_MS
        assert await successor.send_pending() == 0
    assert len(chats.sent) == 1 and successor_chats.sent == []


async def test_a_digest_whose_leader_died_mid_send_is_sent_by_the_next_one_once(store, database_location):
    end = T0 + 8 * HOUR_MS  # 08:00 UTC
    clock = [end]
    await store.add_events([liquidation(end - HOUR_MS, 5_000_000)])
    first, second = DiesAfterAccepting(), Recipients()
    async with sender(database_location, first, clock, senders=1) as dying:
        leader = DigestService(store, dying, now_ms=lambda: clock[0])
        for chat in ("telegram:1", "telegram:2"):
            await leader.set_digest(chat, "08:00", "UTC", "en", end - HOUR_MS)
        sending = asyncio.create_task(leader.send_due(end))
        await until(lambda: first.sent)  # one digest accepted; then the leader dies
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
    clock[0] += LEASE_MS
    async with sender(database_location, second, clock) as successor:
        new_leader = DigestService(store, successor, now_ms=lambda: clock[0])
        assert await new_leader.send_due(clock[0]) == 0  # the dates were recorded with the sends
        assert await successor.send_pending() == 2
        await until(lambda: len(second.sent) == 2)
    # The chat whose digest the platform had accepted got it twice (the at-least-once
    # window); the other once; the date is recorded, so no third send ever.
    assert sorted(chat for chat, _ in first.sent + second.sent) == ["telegram:1", "telegram:1", "telegram:2"]
    assert all("2025-03-21" in message and "$5" in message for _, message in second.sent)


BIG_RULE = AlertRule(0, "telegram:1", "telegram:1", RuleKind.BIG, "BTC", 1_000_000.0)


async def outbox_bodies(store) -> list[str]:
    """The messages in the outbox, as a chat would read them."""
    return [render_plain(reply_from_json(body)) for (body,) in await store.db.fetch("SELECT body FROM outbox_messages ORDER BY id")]


async def never_ticks(seconds: float) -> None:
    await asyncio.Event().wait()


async def test_a_big_order_group_is_in_the_outbox_from_its_first_order_and_the_next_leader_sends_it(store, database_location):
    """A leader killed while big orders are being grouped (2 s) leaves their alert, as it
    stood, for the next sender: after the group's end and the grace for its leader to close it."""
    clock = [T0]
    async with alerting(store, Recipients(), clock, sleep=never_ticks) as (alerts, _):
        await alerts.create_rule(BIG_RULE, T0)
        running = asyncio.create_task(alerts.run())  # its timer never ticks: what is written, the writer wrote
        try:
            await alerts.on_events("binance", "usdm", [liquidation(T0, 1_500_000)])
            await until(lambda: alerts.engine.big_groups(clock[0]) == [])
            clock[0] = T0 + 500
            await alerts.on_events("binance", "usdm", [liquidation(T0 + 500, 2_000_000, Side.SHORT)])
            await until(lambda: alerts.engine.big_groups(clock[0]) == [])
            (body,) = await outbox_bodies(store)
            assert "$1.50M" in body and "$2.00M" in body
        finally:  # the leader dies: nothing of it runs any more
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    chats = Recipients()
    async with alerting(store, chats, clock) as (again, successor):
        clock[0] = T0 + 2_000 + UNSEALED_GRACE_MS - 1  # its leader might still close it
        await again.tick()
        assert await successor.send_pending() == 0
        clock[0] += 1
        assert await successor.send_pending() == 1
        successor.wake()  # its pump records the send
        await drained(successor)
    ((chat, text),) = chats.sent
    assert chat == "telegram:1" and "$1.50M" in text and "$2.00M" in text


async def test_orders_joining_a_group_whose_alert_is_already_going_out_come_in_the_next_alert_once(store):
    clock = [T0]
    chats = Recipients()
    async with alerting(store, chats, clock) as (alerts, outbox):
        await alerts.create_rule(BIG_RULE, T0)
        await alerts.on_events("binance", "usdm", [liquidation(T0, 1_500_000)])
        await alerts.tick()  # written, not closed: the group collects 2 s
        # Its leader was too slow to close it: a sender took the alert as it stood ...
        clock[0] = T0 + 2_000 + UNSEALED_GRACE_MS
        assert await outbox.send_pending() == 1
        # ... while an order joined the group.
        await alerts.on_events("binance", "usdm", [liquidation(clock[0], 2_000_000, Side.SHORT)])
        await alerts.tick()
        clock[0] += 2_000
        await alerts.tick()
        await drained(outbox)
    (first_chat, first), (second_chat, second) = chats.sent
    assert first_chat == second_chat == "telegram:1"
    assert "$1.50M" in first and "$2.00M" not in first
    assert "$2.00M" in second and "$1.50M" not in second
    assert [fired.kind for _, fired in alerts.sent] == [RuleKind.BIG]  # the first went out before its close
