"""The notifier's ordering: live messages (alerts, the feed) never wait behind a digest
fan-out, and the alerts waiting for one chat go out as one message."""

from __future__ import annotations

import asyncio
import contextlib

from bot.plumbing.delivery import DeliveryRefused, DestinationGone
from bot.replies.compose import joined
from bot.replies.model import Action, Note, Paragraph, Reply, line, muted
from bot.replies.render_discord import render_discord
from bot.replies.render_plain import render_plain
from bot.replies.render_telegram import render_telegram
from bot.services.notifier import Notifier, NotifierSettings
from tests.support import until


class Recorded:
    """A Destination that notes each chat when its send happens, on the notifier's clock."""

    def __init__(self, now_s) -> None:
        self.now_s = now_s
        self.sent: list[tuple[float, str]] = []

    async def send(self, chat_key: str, reply: Reply) -> None:
        self.sent.append((self.now_s(), chat_key))


async def test_an_urgent_send_goes_before_a_queued_digest_fan_out():
    now = [0.0]

    async def sleep(seconds: float) -> None:  # the pacing's waits, on a virtual clock
        now[0] += seconds
        await asyncio.sleep(0)

    telegram = Recorded(lambda: now[0])
    # One sender: this virtual clock advances by each sleep, which only one sleeper at a time keeps true.
    notifier = Notifier({"telegram": telegram}, NotifierSettings(rate_per_s=10, senders_per_platform=1), sleep=sleep,
                        monotonic=lambda: now[0])
    digests = notifier.submit([f"telegram:{n}" for n in range(100)], Reply(title="digest"))
    live = notifier.submit(["telegram:-100"], Reply(title="feed"), urgent=True)
    later = notifier.submit(["telegram:-200"], Reply(title="alert"), urgent=True)
    await until(lambda: len(telegram.sent) == 102)
    assert telegram.sent[:3] == [(0.0, "telegram:-100"), (0.1, "telegram:-200"), (0.2, "telegram:0")]
    assert [chat for _, chat in telegram.sent[2:]] == [f"telegram:{n}" for n in range(100)]  # in order, all of them
    assert all(future.result() for future in digests + live + later)
    await notifier.close()


class Held:
    """A platform that takes each message and answers when `release` is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reply]] = []
        self.release = asyncio.Event()

    async def send(self, chat_key: str, reply: Reply) -> None:
        self.sent.append((chat_key, reply))
        await self.release.wait()


def alert(n: int) -> Reply:
    return Reply(title=f"alert {n}", blocks=(Paragraph(line(f"body {n}")),))


@contextlib.asynccontextmanager
async def busy_chat():
    """(platform, notifier, alert 0's future): chat telegram:1 busy with alert 0, which the
    platform holds until its `release`, so what is submitted next for the chat waits."""
    platform = Held()
    notifier = Notifier({"telegram": platform}, NotifierSettings(rate_per_s=0))
    first = notifier.submit(["telegram:1"], alert(0), urgent=True)
    await until(lambda: len(platform.sent) == 1)
    try:
        yield platform, notifier, first
    finally:
        await notifier.close()


async def test_alerts_waiting_for_one_chat_go_out_together_in_order_ten_at_most():
    async with busy_chat() as (platform, notifier, first):
        waiting = [future for n in range(1, 13) for future in notifier.submit(["telegram:1"], alert(n), urgent=True)]
        platform.release.set()
        await until(lambda: len(platform.sent) == 3)
        assert [len(render_plain(reply).split("body")) - 1 for _, reply in platform.sent] == [1, 10, 2]
        ten = render_telegram(platform.sent[1][1])
        assert ten == [render_telegram(alert(1))[0] + "".join(f"\n\n<b>📊 alert {n}</b>\n\nbody {n}" for n in range(2, 11))]
        assert all(await asyncio.gather(*first, *waiting))  # each alert counts as sent


async def test_digests_replies_with_buttons_and_withdrawn_sends_are_never_joined():
    async with busy_chat() as (platform, notifier, _first):
        notifier.submit(["telegram:1"], alert(1), urgent=True)
        (withdrawn,) = notifier.submit(["telegram:1"], alert(2), urgent=True)
        notifier.submit(["telegram:1"], alert(3), urgent=True)
        notifier.submit(["telegram:1"], Reply(title="with a button", actions=(Action("Refresh", "/liq"),)), urgent=True)
        notifier.submit(["telegram:1"], alert(4), urgent=True)
        notifier.submit(["telegram:1"], Reply(title="digest a"))
        notifier.submit(["telegram:1"], Reply(title="digest b"))
        withdrawn.cancel()
        platform.release.set()
        await until(lambda: len(platform.sent) == 6)
    assert [render_plain(reply).strip().split("\n\n")[1:] for _, reply in platform.sent[1:]] == [
        ["body 1", "📊 alert 3", "body 3"],  # joined, without the withdrawn alert 2
        ["[Refresh: /liq]"],  # the reply with a button, alone
        ["body 4"],
        [],
        [],
    ]
    assert [reply.title for _, reply in platform.sent] == ["alert 0", "alert 1", "with a button", "alert 4",
                                                           "digest a", "digest b"]


async def test_a_joined_message_to_a_gone_chat_fails_each_of_its_alerts():
    class Gone:
        async def send(self, chat_key: str, reply: Reply) -> None:
            raise DestinationGone(chat_key, "the bot was removed")

    notifier = Notifier({"discord": Gone()}, NotifierSettings(rate_per_s=0))
    futures = [future for n in range(3) for future in notifier.submit(["discord:7"], alert(n), urgent=True)]
    assert await asyncio.wait_for(asyncio.gather(*futures), timeout=5) == [False, False, False]
    assert notifier.stats.gone == 1  # one message, refused once
    await notifier.close()


async def test_a_joined_message_the_platform_refuses_goes_again_one_alert_at_a_time():
    class Picky(Held):
        """Refuses any message holding alert 2's body, at once (as a 400 would be)."""

        async def send(self, chat_key: str, reply: Reply) -> None:
            await super().send(chat_key, reply)
            if "body 2" in render_plain(reply):
                raise DeliveryRefused(chat_key, "Bad Request: can't parse entities")

    platform = Picky()
    notifier = Notifier({"telegram": platform}, NotifierSettings(rate_per_s=0, retries=3, backoff_base_s=60))
    first = notifier.submit(["telegram:1"], alert(0), urgent=True)
    await until(lambda: len(platform.sent) == 1)
    waiting = [future for n in range(1, 4) for future in notifier.submit(["telegram:1"], alert(n), urgent=True)]
    platform.release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*first, *waiting), timeout=5)
    assert outcomes == [True, True, False, True]  # only alert 2 is lost
    # Alerts 1-3 joined, refused once (no retry: the backoff would have taken a minute), then each alone.
    assert [render_plain(reply).count("body") for _, reply in platform.sent] == [1, 3, 1, 1, 1]
    assert [reply.title for _, reply in platform.sent[2:]] == ["alert 1", "alert 2", "alert 3"]
    assert (notifier.stats.sent, notifier.stats.refused, notifier.stats.retried) == (3, 2, 0)
    await notifier.close()


async def test_alerts_join_only_while_the_text_fits_one_platform_message():
    async with busy_chat() as (platform, notifier, _first):
        for n in range(5):
            notifier.submit(["telegram:1"], Reply(title=f"long {n}", blocks=(Paragraph(line("x" * 1_400)),)), urgent=True)
        platform.release.set()
        await until(lambda: len(platform.sent) == 4)
    assert [render_plain(reply).count("x" * 1_400) for _, reply in platform.sent[1:]] == [2, 2, 1]
    assert all(len(message) < 4_096 for _, reply in platform.sent for message in render_telegram(reply))


def test_a_joined_message_keeps_each_alert_s_footnote_under_it_on_discord():
    replies = [Reply(title=f"alert {n}", blocks=(Paragraph(line(f"body {n}")), Note(line(muted(f"rule #{n}")))))
               for n in range(3)]
    ((embed,),) = render_discord(joined(replies))
    assert "footer" not in embed
    assert embed["description"] == "\n\n".join(
        part for n in range(3) for part in ([f"**📊 alert {n}**"] if n else []) + [f"body {n}", f"*rule #{n}*"]
    )
