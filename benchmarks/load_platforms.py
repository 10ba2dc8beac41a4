"""The chat platforms of benchmarks/load.py, in a child process of their own.

The fake Telegram Bot API and the fake Discord (REST + gateway) run here, so their
CPU and memory are not counted as the bot's. The parent talks over stdin/stdout,
one line each way:

    <- JSON {"telegram": [chat ids], "discord": [channel ids], "throttle_every": N} (the first line)
    -> prints JSON {"telegram_base_url", "telegram_file_url", "telegram_token",
                    "discord_api", "discord_gateway", "discord_token"}
    <- "t CHAT_ID /command args"   a Telegram update from the private chat's user
    <- "d CHANNEL_ID /command args"   a Discord slash command in the channel (its own member)
    <- "dump PATH"   write what the bots sent and when commands were asked (JSON), print "dumped"

Times are time.monotonic(), one clock for every process on Linux. Telegram answers the
next sendMessage after every `throttle_every`-th command with 429 retry_after=1; Discord
answers every `throttle_every`-th channel message with 429 retry_after=1.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.commands.registry import find  # noqa: E402
from tests.fakes.discord_api import FakeDiscord  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

# Characters kept of each sent message (Telegram) or its embeds' titles and descriptions
# (Discord): a whole message, where several alerts of one chat may share one.
TEXT_HEAD = 4_096
CHANNEL_POST = re.compile(r"/channels/(\d+)/messages")


def slash_of(command: str) -> tuple[str, dict[str, str]]:
    """`/liq BTC 1h` as a Discord slash invocation: ("liq", {"asset": "BTC", "window": "1h"})."""
    name, *words = command[1:].split()
    return name, {arg.name: word for arg, word in zip(find(name).args, words)}


def results(telegram: FakeTelegramAPI, discord: FakeDiscord, asked_telegram: list, asked_discord: list) -> dict:
    interactions: dict[str, float] = {}
    for request in discord.requests:
        if request.path.startswith("/interactions/"):
            interactions.setdefault(request.path, request.at)
    return {
        "telegram_sent": [
            [c.chat_id, c.reply_to, c.at, c.status, c.params.get("text", "")[:TEXT_HEAD]]
            for c in telegram.calls_of("sendMessage")
        ],
        "discord_sent": [
            [int(CHANNEL_POST.fullmatch(r.path).group(1)), r.at, r.status,
             " ".join(f"{embed.get('title', '')} {embed.get('description', '')}"
                      for embed in (r.json or {}).get("embeds", []))[:TEXT_HEAD]]
            for r in discord.requests_to("POST", CHANNEL_POST)
        ],
        "discord_answered": interactions,
        "asked_telegram": asked_telegram,
        "asked_discord": asked_discord,
    }


async def serve() -> None:
    reader = asyncio.StreamReader(limit=2**26)
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    setup = json.loads(await reader.readline())
    telegram = await FakeTelegramAPI().start()
    discord = await FakeDiscord().start()
    discord.throttle_every = setup["throttle_every"]
    chats = {}
    for chat_id in setup["telegram"]:
        user = telegram.user(chat_id, f"U{chat_id}")
        chats[chat_id] = (telegram.private_chat(user), user)
    discord.channels.update(setup["discord"])
    print(json.dumps({
        "telegram_base_url": telegram.base_url, "telegram_file_url": telegram.base_file_url,
        "telegram_token": telegram.token, "discord_api": discord.api_base, "discord_gateway": discord.gateway_url,
        "discord_token": discord.token,
    }), flush=True)
    asked_telegram: list = []  # [chat id, message id, asked at, command]
    asked_discord: list = []  # [callback path, asked at, command]
    while line := (await reader.readline()).decode().strip():
        kind, _, rest = line.partition(" ")
        if kind == "t":
            raw, _, command = rest.partition(" ")
            chat, user = chats[int(raw)]
            message = telegram.push_message(chat, user, command)
            asked_telegram.append([chat["id"], message["message_id"], time.monotonic(), command])
            if len(asked_telegram) % setup["throttle_every"] == 0:
                telegram.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
        elif kind == "d":
            raw, _, command = rest.partition(" ")
            name, options = slash_of(command)
            asked_at = time.monotonic()
            injected = await discord.slash(name, options, admin=False, guild=True, channel_id=int(raw),
                                           user_id=int(raw) + 1)
            asked_discord.append([injected.callback_path, asked_at, command])
        elif kind == "dump":
            Path(rest).write_text(json.dumps(results(telegram, discord, asked_telegram, asked_discord)))
            print("dumped", flush=True)
    await telegram.stop()
    await discord.close()


if __name__ == "__main__":
    asyncio.run(serve())
