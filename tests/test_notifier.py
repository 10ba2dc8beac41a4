"""The notifier's ordering: live messages (alerts, the feed) never wait behind a digest fan-out."""

from __future__ import annotations

import asyncio

from bot.replies.model import Reply
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
