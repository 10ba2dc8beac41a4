"""The live feed end to end: Binance frames from a fake venue on loopback, through
the real runner, LiveFeeds and the FeedService, out through the real Telegram
and Discord adapters (against their fakes) and the console. The issue's
done-when: a feed at $100K posts every such order within 3 s of its frame, with
bursts grouped; in Chinese and the chat's zone where the chat chose them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json

from bot.adapters.telegram import TelegramAdapter
from bot.commands.dispatch import Dispatcher
from bot.commands.feed import feed_handlers
from bot.commands.clock import clock_handlers
from bot.commands.ports import Caller
from bot.config import TelegramConfig
from bot.core.models import Side
from bot.feeds.synthetic import LiquidationSpec, frame_for
from bot.replies import numbers as fmt
from bot.replies.model import Reply
from bot.services.feed import FeedService
from bot.services.live import LiveFeeds
from bot.services.notifier import ConsoleDestination, Notifier, NotifierSettings
from bot.services.queries import QueryService
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_payloads import CHANNEL_ID
from tests.fakes.telegram_api import FakeTelegramAPI, parse_html
from tests.fakes.venue_rest import FakeVenueRest
from tests.fakes.venue_ws import FakeVenueServer, VirtualClock
from tests.support import until
from tests.test_discord import adapter_for
from tests.test_live_ingest import feeds_config
from tests.test_telegram import fast_limiter

PRICE = 80_000.0
GROUP_MS = 2_000
MAX_LATENCY_MS = 3_000  # the bound, frame to message delivered


class Timed:
    """A Destination around a real one: when (on the test's clock) each send completed."""

    def __init__(self, inner, clock: VirtualClock) -> None:
        self.inner, self.clock = inner, clock
        self.sent: list[tuple[int, str, Reply]] = []

    async def send(self, chat_key: str, reply: Reply) -> None:
        await self.inner.send(chat_key, reply)
        self.sent.append((self.clock.now_ms(), chat_key, reply))


def order(usd: float, at_ms: int, symbol: str = "BTCUSDT", side: Side = Side.LONG) -> LiquidationSpec:
    return LiquidationSpec("binance", "usdm", symbol, side, PRICE, usd / PRICE, at_ms)


def order_lines(timed: Timed, chat_key: str) -> list[tuple[int, str]]:
    """(when delivered, its text) of every order line the chat was sent."""
    return [
        (at, "".join(span.text for span in line))
        for at, key, reply in timed.sent if key == chat_key
        for block in reply.blocks for line in getattr(block, "items", ())
    ]


async def test_a_live_feed_at_100k_posts_every_such_order_within_3_s_with_bursts_grouped(store, tmp_path):
    clock = VirtualClock(1.0)  # the injected clock at wall speed: latencies are what a reader would see
    rest = FakeVenueRest()
    console_lines: list[str] = []
    async with (
        FakeVenueServer("binance", "usdm") as usdm,
        rest.client() as http,
        FakeTelegramAPI() as telegram_fake,
    ):
        discord_fake = await FakeDiscord().start()
        notifier = Notifier({}, settings=NotifierSettings(rate_per_s=0))
        service = FeedService(store, notifier, now_ms=clock.now_ms, sleep=clock.sleep)
        dispatcher = Dispatcher(
            QueryService(store), clock.now_ms, features={**feed_handlers(service), **clock_handlers(QueryService(store))}
        )
        telegram = TelegramAdapter(
            TelegramConfig(enabled=True, base_url=telegram_fake.base_url, base_file_url=telegram_fake.base_file_url),
            telegram_fake.token, dispatcher, lambda chat_key: asyncio.sleep(0), rate_limiter=fast_limiter(),
            poll_timeout_seconds=1,
        )
        discord = adapter_for(discord_fake, dispatcher, tmp_path)
        timed = {
            "telegram": Timed(telegram, clock),
            "discord": Timed(discord, clock),
            "console": Timed(ConsoleDestination(console_lines.append), clock),
        }
        for platform, destination in timed.items():
            notifier.add_destination(platform, destination)
        config = feeds_config({("binance", "usdm"): usdm}, bybit=False, okx=False)
        config = dataclasses.replace(config, binance=dataclasses.replace(config.binance, coinm_ws_url=usdm.url))
        feeds = LiveFeeds(config, store, http, extra_sinks=[service], now_ms=clock.now_ms, sleep=clock.quiet_sleep,
                          tick_s=0.5)
        await telegram.start()
        await discord.start()
        tasks = [asyncio.create_task(task) for task in (notifier.run(), service.run(), feeds.run())]
        try:
            # Subscriptions: a Telegram group in Chinese on Shanghai time (admins only), a Discord
            # channel at $1M, the console at $100K for BTC only.
            group = telegram_fake.supergroup(-100123)
            admin, member = telegram_fake.user(1, "Admin"), telegram_fake.user(2, "Member")
            telegram_fake.make_admin(group, admin)
            for who, line in ((member, "/feed on 100K"), (admin, "/feed on 100K"), (admin, "/lang zh"),
                              (admin, "/tz Asia/Shanghai")):
                telegram_fake.push_message(group, who, line)
            answers = [parse_html(c.params["text"]) for c in await telegram_fake.wait_for("sendMessage", 4, timeout=10)]
            assert sum("Admins only" in a for a in answers) == 1 and sum("$100.0K" in a for a in answers) == 1
            slash = await discord_fake.slash("feed", {"setting": "on 1M"})
            [answer] = await discord_fake.wait_for("POST", slash.callback_path)
            assert "$1.00M" in json.dumps(answer.json)
            console = Caller("console", "console:local", "console:local", rate_limited=False)
            await dispatcher.handle("/feed on 100K BTC", console)
            assert set(service.matcher.subscriptions) == {"telegram:-100123", f"discord:{CHANNEL_ID}", "console:local"}
            await usdm.wait_for(lambda s: s.open_connections == 2)

            # One $150K order, one below every threshold, then a burst of five $1.2M+ orders 0.5 s apart.
            sent_at: dict[float, int] = {}
            plan = [(150_000.0, "BTCUSDT", 0.0), (99_000.0, "BTCUSDT", 0.5)]
            plan += [(1_200_000.0 + 100_000 * i, "ETHUSDT" if i % 2 else "BTCUSDT", 3.0 + 0.5 * i) for i in range(5)]
            start_s = clock.now_ms() / 1000
            for usd, symbol, offset_s in plan:
                await clock.quiet_sleep(max(0.0, start_s + offset_s - clock.now_ms() / 1000))
                sent_at[usd] = clock.now_ms()
                await usdm.broadcast(frame_for(order(usd, sent_at[usd], symbol)))
            expected = {  # chat -> (its destination, the amounts it must get, in its language)
                "telegram:-100123": (timed["telegram"], [u for u, _, _ in plan if u >= 100_000], "zh"),
                f"discord:{CHANNEL_ID}": (timed["discord"], [u for u, _, _ in plan if u >= 1_000_000], "en"),
                "console:local": (timed["console"], [u for u, s, _ in plan if u >= 100_000 and s == "BTCUSDT"], "en"),
            }
            await until(lambda: all(len(order_lines(d, k)) >= len(a) for k, (d, a, _) in expected.items()), timeout=15)
            # Nothing more comes once the clock has passed the last moment anything could be due.
            quiet_after_ms = sent_at[plan[-1][0]] + GROUP_MS + 1_000
            await until(lambda: clock.now_ms() > quiet_after_ms, timeout=10)
            latencies: list[int] = []
            for chat_key, (destination, amounts, locale) in expected.items():
                lines = order_lines(destination, chat_key)
                assert len(lines) == len(amounts), (chat_key, lines)
                messages = [at for at, key, _ in destination.sent if key == chat_key]
                assert len(messages) <= 1 + 2, chat_key  # the single order alone, the burst in at most two
                for usd in amounts:
                    [at] = [at for at, line in lines if f" {fmt.usd(usd, locale)}" in line]
                    latencies.append(at - sent_at[usd])
            assert max(latencies) <= MAX_LATENCY_MS, latencies
            print(f"frame to feed message delivered: max {max(latencies)} ms, "
                  f"median {sorted(latencies)[len(latencies) // 2]} ms over {len(latencies)} orders")

            # What each platform showed: zh on Shanghai time in Telegram, an embed in Discord, plain text on the console.
            feed_texts = [t for t in (parse_html(c.params["text"]) for c in telegram_fake.calls_of("sendMessage"))
                          if "实时爆仓 ≥ 10.00万美元" in t]
            assert 2 <= len(feed_texts) <= 3
            assert any("多单爆仓 · 15.00万美元，价格 $80,000.0" in t and "UTC+8" in t for t in feed_texts)
            posts = discord_fake.requests_to("POST", f"/channels/{CHANNEL_ID}/messages")
            embeds = [e for p in posts for e in p.json["embeds"]]
            assert embeds and all(e["title"] == "Live liquidations ≥ $1.00M" for e in embeds)
            assert "long liquidated · $1.20M at $80,000.0" in "".join(e.get("description", "") for e in embeds)
            assert "🔴 Binance BTCUSDT · long liquidated · $150.0K at $80,000.0" in "\n".join(console_lines)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await notifier.close()
            await telegram.stop()
            await discord.stop()
            await discord_fake.close()

