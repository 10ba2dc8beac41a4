"""/levels, /heatmap and /alert near through the real Telegram and Discord
libraries against their loopback fakes, in English and Chinese, over the levels
day of tests.test_levels (the price at $97,000 on a $285M band of 25x longs)."""

from __future__ import annotations

import pytest

from bot.replies.alerts import alert_reply
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_payloads import CHANNEL_ID
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.support import until
from tests.test_discord import adapter_for, embed_text
from tests.test_levels import levels_app  # noqa: F401  (the fixture: a day of market data and liquidations)
from tests.test_telegram import ALICE, make_adapter

ZH_USER = FakeTelegramAPI.user(44, "Li", "li", language_code="zh")


@pytest.mark.parametrize("user, words", [
    (ALICE, ("BTC liquidation levels (estimate)", "$96,500.0 – $96,666.7: $288.60M (-0.3%)",
             "BTC liquidation heatmap, 24h (estimate)", "BTC at $97,000.0 is 0.34% above an estimated band")),
    (ZH_USER, ("BTC 清算价位（估算）", "$96,500.0 – $96,666.7：2.89亿美元（-0.3%）",
               "BTC 清算热力图，24小时（估算）", "距下方约 2.89亿美元 的预估多单清算区")),
])
async def test_levels_heatmap_and_near_alert_through_telegram(levels_app, user, words):
    app = levels_app
    levels_title, band, heatmap_title, alert_words = words
    async with FakeTelegramAPI() as fake:
        adapter = make_adapter(fake, app.dispatcher, [])
        await app.alerts.start()
        await adapter.start()
        try:
            chat = fake.private_chat(user)
            if user is ZH_USER:
                fake.push_message(chat, user, "/lang zh")
                await fake.wait_for("sendMessage")
            fake.push_message(chat, user, "/levels BTC")
            fake.push_message(chat, user, "/heatmap BTC 24h")
            (photo,) = await fake.wait_for("sendPhoto", timeout=20)
            assert photo.files["photo"][1].startswith(b"\x89PNG") and heatmap_title in photo.params["caption"]
            texts = [call.params["text"] for call in fake.calls_of("sendMessage")]
            assert any(levels_title in t and band in t for t in texts)
            fake.push_message(chat, user, "/alert near BTC 1%")
            await until(lambda: len(fake.calls_of("sendMessage")) >= len(texts) + 1, timeout=10)
            await app.alerts.tick()
            # The alert as the leader's sender hands it to the adapter (the outbox path is tested on its own).
            ((chat_key, fired),) = app.alerts.sent
            await adapter.send(chat_key, alert_reply(fired, "zh" if user is ZH_USER else "en"))
            await until(lambda: any(alert_words in c.params["text"] for c in fake.calls_of("sendMessage")), timeout=10)
        finally:
            await adapter.stop()


@pytest.mark.parametrize("locale, title, band, alert_words", [
    ("en", "BTC liquidation levels (estimate)", "$96,500.0 – $96,666.7: $288.60M (-0.3%)",
     "BTC at $97,000.0 is 0.34% above an estimated band"),
    ("zh", "BTC 清算价位（估算）", "$96,500.0 – $96,666.7：2.89亿美元（-0.3%）", "距下方约 2.89亿美元 的预估多单清算区"),
])
async def test_levels_heatmap_and_near_alert_through_discord(levels_app, tmp_path, locale, title, band, alert_words):
    app = levels_app
    fake = await FakeDiscord().start()
    adapter = adapter_for(fake, app.dispatcher, tmp_path)
    await app.alerts.start()
    await adapter.start()
    try:
        if locale == "zh":
            injected = await fake.slash("lang", {"language": "zh"})
            await fake.wait_for("POST", injected.callback_path)
        injected = await fake.slash("levels", {"asset": "btc"})
        [callback] = await fake.wait_for("POST", injected.callback_path, timeout=10)
        [embed] = callback.json["data"]["embeds"]
        assert embed["title"].endswith(title) and band in embed_text(embed)
        injected = await fake.slash("heatmap", {"asset": "btc", "window": "24h"})
        [callback] = await fake.wait_for("POST", injected.callback_path, timeout=20)
        [(filename, png)] = callback.files
        assert filename == "liqbot-heatmap-btc-24h-20251202-0205.png" and png.startswith(b"\x89PNG")
        injected = await fake.slash("alert", {"rule": "near BTC 1%"})
        await fake.wait_for("POST", injected.callback_path, timeout=10)
        await app.alerts.tick()
        ((chat_key, fired),) = app.alerts.sent
        await adapter.send(chat_key, alert_reply(fired, locale))
        [posted] = await fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages", timeout=10)
        assert alert_words in embed_text(posted.json["embeds"][0])
    finally:
        await adapter.stop()
        await fake.close()
