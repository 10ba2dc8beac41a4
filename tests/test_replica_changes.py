"""A leader follows the settings commands change on another replica of one
PostgreSQL: alert rules, feed subscriptions and digest schedules, announced by
the stores (NOTIFY) and reloaded by the leader (bot.services.changes), which keeps
the state of what it already held. And the digest scheduler starts again after
a term ended (a replica that leads twice)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bot.core.alert_rules import AlertRule, RuleKind
from bot.core.feed import FeedSubscription
from bot.scheduler import DigestScheduler, job_id
from bot.services.alerts import AlertService
from bot.services.changes import FollowChanges
from bot.services.digests import DigestService
from bot.services.feed import FeedService
from bot.storage.store import Store
from tests.backends import empty_schema
from tests.support import Sending, until

NOW_MS = 1_750_000_000_000
CHAT = "telegram:-100"


class Replica:
    """The services a replica keeps over its own connections to the shared database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.notifier = Sending(store, {}, now_ms=lambda: NOW_MS)
        self.alerts = AlertService(store, self.notifier.outbox, now_ms=lambda: NOW_MS)
        self.feed = FeedService(store, self.notifier.notifier, now_ms=lambda: NOW_MS)
        self.digests = DigestService(store, self.notifier.outbox, now_ms=lambda: NOW_MS)
        self.scheduler = DigestScheduler(self.digests, now_ms=lambda: NOW_MS)


@pytest.fixture
def pg_url(request):
    url = request.getfixturevalue("postgres_database")  # skips with one line without PostgreSQL
    empty_schema(url)
    return url


@pytest.fixture
async def two_replicas(pg_url):
    stores = [await Store.open(pg_url), await Store.open(pg_url)]
    replicas = [Replica(store) for store in stores]
    try:
        yield replicas
    finally:
        for replica in replicas:
            replica.scheduler.shutdown()
            await replica.notifier.close()
            await replica.store.close()


def rule(kind=RuleKind.TOTAL, threshold=1_000_000.0) -> AlertRule:
    return AlertRule(0, CHAT, "telegram:42", kind, "BTC", threshold, 3_600_000)


async def test_the_leader_follows_rules_feeds_and_schedules_changed_on_a_follower(two_replicas):
    leader, follower = two_replicas
    changes = FollowChanges(
        {"alerts": leader.alerts.follow_rules, "feeds": leader.feed.follow_subscriptions,
         "digests": leader.scheduler.follow_schedules},
        quiet_s=0.05,
    )
    kept = await leader.alerts.create_rule(rule(threshold=5_000_000.0), NOW_MS)  # the leader's own
    async with leader.store.db.listen(changes.notify):
        await leader.alerts.start()
        await leader.feed.start()
        await leader.scheduler.start()
        task = asyncio.create_task(changes.run())
        try:
            total = await follower.alerts.create_rule(rule(), NOW_MS)
            big = await follower.alerts.create_rule(rule(RuleKind.BIG, 250_000.0), NOW_MS)
            await until(lambda: {total.id, big.id, kept.id} <= set(leader.alerts.engine.rules))
            await follower.alerts.set_paused(CHAT, total.id, True)
            await until(lambda: leader.alerts.engine.rules[total.id].paused)
            assert await follower.alerts.remove_rule(CHAT, big.id)
            await until(lambda: big.id not in leader.alerts.engine.rules)
            assert kept.id in leader.alerts.engine.rules

            subscription = FeedSubscription(CHAT, 1_000_000.0, ("BTC",), "telegram:42", NOW_MS)
            await follower.feed.set_feed(subscription)
            await until(lambda: leader.feed.matcher.subscriptions.get(CHAT) == subscription)
            assert await follower.feed.remove_feed(CHAT)
            await until(lambda: CHAT not in leader.feed.matcher.subscriptions)

            await follower.digests.set_digest(CHAT, "08:00", "Asia/Shanghai", "zh", NOW_MS)
            await until(lambda: job_id("08:00", "Asia/Shanghai") in leader.scheduler.jobs())
            await follower.digests.set_digest(CHAT, "21:30", "UTC", "zh", NOW_MS)
            await until(lambda: set(leader.scheduler.jobs()) == {job_id("21:30", "UTC")})
            assert await follower.digests.disable_digest(CHAT, NOW_MS)
            await until(lambda: leader.scheduler.jobs() == {})
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_the_scheduler_starts_again_after_a_term_ended(two_replicas):
    leader, _ = two_replicas
    await leader.digests.set_digest(CHAT, "08:00", "UTC", "en", NOW_MS)
    await leader.scheduler.start()
    leader.scheduler.shutdown()  # the term ended: this replica follows
    await leader.scheduler.start()  # ...and leads again
    assert leader.scheduler.scheduler.running and set(leader.scheduler.jobs()) == {job_id("08:00", "UTC")}
