"""A fake Discord: the REST routes and the gateway discord.py 2.7 uses, on 127.0.0.1.

It records every REST request (method, path, query, JSON body or multipart
payload_json and files) and every gateway frame it received, so tests assert on
what "Discord" saw. Tests inject interactions (slash commands, autocomplete,
button clicks) with `slash()`, `autocomplete()` and `click()`, and wait for the
bot's answers with `wait_for()`.

Responses carry `Content-Type: application/json` exactly: discord.py decodes a
body as JSON only then.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_payloads import (
    ADMIN_ID,
    API_PREFIX,
    APP_ID,
    BOT_PERMISSIONS,
    BOT_USER,
    CHANNEL_ID,
    CHANNEL_MESSAGE,
    DM_CHANNEL_ID,
    EPHEMERAL,
    GUILD_ID,
    NO_ACCESS_CHANNEL_ID,
    TIMESTAMP,
    TOKEN,
    UPDATE_MESSAGE,
    guild_payload,
    interaction_base,
    ready_payload,
    user,
)

RECORDED = web.RequestKey("recorded", "Request")
UNSHARDED = (0, 1)


def _shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's routing of a guild's events (https://discord.com/developers/docs/events/gateway#sharding)."""
    return (guild_id >> 22) % shard_count


@dataclass
class Request:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any = None  # the JSON body, or a multipart request's payload_json
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, content)
    authorization: str | None = None
    at: float = field(default_factory=time.monotonic)  # when it arrived
    status: int = 200  # what the fake answered (429 when throttled)


@dataclass(frozen=True)
class Injected:
    """An interaction sent to the bot, and where its answers will arrive."""

    id: int
    token: str

    @property
    def callback_path(self) -> str:
        return f"/interactions/{self.id}/{self.token}/callback"

    @property
    def followup_path(self) -> str:
        return f"/webhooks/{APP_ID}/{self.token}"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status)


class FakeDiscord:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[Request] = []
        self.gateway_frames: list[dict] = []  # what the bot sent on the gateway
        self.commands: dict[str, list[dict]] = {}  # "global" or guild id -> registered commands
        self.messages: dict[int, dict] = {}  # message id -> the message as Discord would return it
        self.channels = {CHANNEL_ID, DM_CHANNEL_ID}
        self.gateway_token = token  # set another value to have the gateway reject IDENTIFY (close 4004)
        # (status, code, message) to answer the next interaction callback with, once.
        self.fail_next_callback: tuple[int, int, str] | None = None
        # (status, code, message) to answer the next channel message with, once.
        self.fail_next_message: tuple[int, int, str] | None = None
        # Seconds the callbacks of interactions in a channel take to answer (a slow or busy channel).
        self.callback_delay_s: dict[int, float] = {}
        # Every `throttle_every`-th channel message is answered 429 (retry after `throttle_s`), as
        # Discord's per-route limits do; discord.py sleeps and retries. 0: never.
        self.throttle_every = 0
        self.throttle_s = 1.0
        self._channel_posts = 0
        self._interactions: dict[int, dict] = {}  # id -> the INTERACTION_CREATE payload
        self._by_token: dict[str, dict] = {}
        self._ids = itertools.count(1_000_000_000_000_000_001)
        self._sequence = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._shards: dict[web.WebSocketResponse, tuple[int, int]] = {}  # identified socket -> (id, count)
        self._identified = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle --

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._record])
        prefix = API_PREFIX
        app.router.add_get(f"{prefix}/users/@me", self._users_me)
        app.router.add_get(f"{prefix}/oauth2/applications/@me", self._application)
        app.router.add_get(f"{prefix}/gateway/bot", self._gateway_bot)
        app.router.add_get(f"{prefix}/gateway", self._gateway_bot)
        app.router.add_put(f"{prefix}/applications/{{app}}/commands", self._put_commands)
        app.router.add_get(f"{prefix}/applications/{{app}}/commands", self._get_commands)
        app.router.add_put(f"{prefix}/applications/{{app}}/guilds/{{guild}}/commands", self._put_commands)
        app.router.add_get(f"{prefix}/applications/{{app}}/guilds/{{guild}}/commands", self._get_commands)
        app.router.add_post(f"{prefix}/interactions/{{id}}/{{token}}/callback", self._callback)
        app.router.add_post(f"{prefix}/webhooks/{{app}}/{{token}}", self._followup)
        app.router.add_patch(f"{prefix}/webhooks/{{app}}/{{token}}/messages/{{message}}", self._edit_webhook_message)
        app.router.add_post(f"{prefix}/channels/{{channel}}/messages", self._channel_message)
        app.router.add_get("/gateway", self._gateway)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- recording --

    @web.middleware
    async def _record(self, request: web.Request, handler):
        if request.path.startswith(API_PREFIX):
            body, files = None, []
            if request.content_type == "application/json" and request.can_read_body:
                body = await request.json()
            elif request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if part.name == "payload_json":
                        body = json.loads(await part.text())
                    else:
                        files.append((part.filename, bytes(await part.read())))
            recorded = Request(
                request.method,
                request.path.removeprefix(API_PREFIX),
                dict(request.query),
                body,
                files,
                request.headers.get("Authorization"),
            )
            request[RECORDED] = recorded
            self.requests.append(recorded)
        try:
            return await handler(request)
        finally:
            async with self._changed:
                self._changed.notify_all()

    def requests_to(self, method: str, path: str | re.Pattern) -> list[Request]:
        """Recorded requests with this method whose path equals `path` (or matches a pattern)."""
        return [
            r
            for r in self.requests
            if r.method == method and (r.path == path if isinstance(path, str) else path.fullmatch(r.path))
        ]

    async def wait_for(
        self, method: str, path: str | re.Pattern, count: int = 1, timeout: float = 5.0
    ) -> list[Request]:
        """Wait until at least `count` matching requests arrived; return them."""

        async def enough() -> list[Request]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.requests_to(method, path)) >= count)
            return self.requests_to(method, path)

        try:
            return await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            seen = [f"{r.method} {r.path}" for r in self.requests]
            raise AssertionError(f"no {count}x {method} {path} within {timeout}s; requests: {seen}") from None

    def _bot_authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    # -- REST --

    async def _users_me(self, request: web.Request) -> web.Response:
        if not self._bot_authorized(request):
            return _error(401, 0, "401: Unauthorized")
        return _json(BOT_USER)

    async def _application(self, request: web.Request) -> web.Response:
        if not self._bot_authorized(request):
            return _error(401, 0, "401: Unauthorized")
        return _json(
            {
                "id": str(APP_ID),
                "name": "liqbot",
                "icon": None,
                "description": "",
                "summary": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": user(ADMIN_ID, "owner"),
                "verify_key": "0" * 64,
                "team": None,
                "flags": 0,
                "interactions_endpoint_url": None,
                "bot": BOT_USER,
            }
        )

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }
        )

    async def _put_commands(self, request: web.Request) -> web.Response:
        scope = request.match_info.get("guild", "global")
        registered = []
        for payload in request[RECORDED].json:
            command = {
                **payload,
                "id": str(next(self._ids)),
                "application_id": str(APP_ID),
                "version": str(next(self._ids)),
                "type": payload.get("type", 1),
            }
            if scope != "global":
                command["guild_id"] = scope
            registered.append(command)
        self.commands[scope] = registered
        return _json(registered)

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self.commands.get(request.match_info.get("guild", "global"), []))

    def _message(self, channel_id: int, body: dict, files: list[tuple[str, bytes]], **extra) -> dict:
        message_id = next(self._ids)
        message = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0,
            "content": body.get("content") or "",
            "author": BOT_USER,
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "attachments": [
                {
                    "id": str(next(self._ids)),
                    "filename": name,
                    "size": len(content),
                    "url": f"https://cdn.example/{name}",
                    "proxy_url": f"https://cdn.example/{name}",
                }
                for name, content in files
            ],
            "flags": body.get("flags") or 0,
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            **extra,
        }
        self.messages[message_id] = message
        return message

    async def _callback(self, request: web.Request) -> web.Response:
        recorded: Request = request[RECORDED]
        if self.fail_next_callback is not None:
            (status, code, text), self.fail_next_callback = self.fail_next_callback, None
            return _error(status, code, text)
        interaction = self._interactions[int(request.match_info["id"])]
        await asyncio.sleep(self.callback_delay_s.get(int(interaction["channel_id"]), 0.0))
        kind, data = recorded.json["type"], recorded.json.get("data") or {}
        message = None
        if kind == CHANNEL_MESSAGE:
            message = self._message(
                interaction["channel_id"], data, recorded.files, webhook_id=str(APP_ID), application_id=str(APP_ID)
            )
            interaction["original_message_id"] = int(message["id"])
        elif kind == UPDATE_MESSAGE:
            message = self.messages[int(interaction["message"]["id"])]
            message.update({k: v for k, v in data.items() if k in ("content", "embeds", "components")})
            message["edited_timestamp"] = TIMESTAMP
        if recorded.query.get("with_response") not in ("1", "true"):
            return web.Response(status=204)
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(interaction["id"]),
                "type": interaction["type"],
                "response_message_loading": False,
                "response_message_ephemeral": bool((data.get("flags") or 0) & EPHEMERAL),
            }
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": kind, "message": message}
        return _json(answer)

    async def _followup(self, request: web.Request) -> web.Response:
        recorded: Request = request[RECORDED]
        interaction = self._by_token[request.match_info["token"]]
        message = self._message(
            interaction["channel_id"], recorded.json or {}, recorded.files, webhook_id=str(APP_ID)
        )
        if recorded.query.get("wait") in ("1", "true", "True"):
            return _json(message)
        return web.Response(status=204)

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        recorded: Request = request[RECORDED]
        interaction = self._by_token[request.match_info["token"]]
        raw = request.match_info["message"]
        message_id = interaction["original_message_id"] if raw == "@original" else int(raw)
        message = self.messages[message_id]
        message.update({k: v for k, v in (recorded.json or {}).items() if k in ("content", "embeds", "components")})
        return _json(message)

    async def _channel_message(self, request: web.Request) -> web.Response:
        recorded: Request = request[RECORDED]
        channel_id = int(request.match_info["channel"])
        if channel_id == NO_ACCESS_CHANNEL_ID:
            return _error(403, 50001, "Missing Access")
        if channel_id not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        if self.fail_next_message is not None:
            (status, code, text), self.fail_next_message = self.fail_next_message, None
            recorded.status = status
            return _error(status, code, text)
        self._channel_posts += 1
        if self.throttle_every and self._channel_posts % self.throttle_every == 0:
            recorded.status = 429
            limited = _json({"message": "You are being rate limited.", "retry_after": self.throttle_s, "global": False},
                            429)
            # discord.py takes a 429 without Cloudflare's Via header for a Cloudflare ban.
            limited.headers.update({"Via": "1.1 google", "Retry-After": str(self.throttle_s),
                                    "X-RateLimit-Scope": "user"})
            return limited
        return _json(self._message(channel_id, recorded.json or {}, recorded.files))

    # -- gateway --

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            self.gateway_frames.append(payload)
            if payload["op"] == 1:  # HEARTBEAT
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif payload["op"] == 2:  # IDENTIFY
                if payload["d"].get("token") != self.gateway_token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                shard = self._shards[ws] = tuple(payload["d"].get("shard") or UNSHARDED)
                serves_guild = _shard_of(GUILD_ID, shard[1]) == shard[0]
                await self._dispatch(ws, "READY", ready_payload(shard, serves_guild, self.gateway_url))
                if serves_guild:
                    await self._dispatch(ws, "GUILD_CREATE", guild_payload())
                self._identified.set()
        self._sockets.remove(ws)
        self._shards.pop(ws, None)
        return ws

    async def _dispatch(self, ws: web.WebSocketResponse, event: str, data: dict) -> None:
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data}))

    async def wait_identified(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._identified.wait(), timeout)

    # -- injecting interactions --

    def _store(self, interaction: dict) -> Injected:
        self._interactions[int(interaction["id"])] = interaction
        self._by_token[interaction["token"]] = interaction
        return Injected(int(interaction["id"]), interaction["token"])

    def _registered(self, name: str, guild: bool) -> dict:
        scopes = [str(GUILD_ID), "global"] if guild else ["global"]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return command
        raise AssertionError(f"/{name} is not registered with the fake Discord (scopes {list(self.commands)})")

    async def _send_interaction(self, interaction: dict) -> Injected:
        """Sent on the shard Discord routes it to: the guild's, or shard 0 without a guild."""
        injected = self._store(interaction)
        guild_id = int(interaction.get("guild_id") or 0)
        routed = [
            ws for ws in self._sockets
            if (shard := self._shards.get(ws)) and (_shard_of(guild_id, shard[1]) if guild_id else 0) == shard[0]
        ]
        assert routed, f"no shard of the bot on the fake gateway receives this (shards: {list(self._shards.values())})"
        await self._dispatch(routed[-1], "INTERACTION_CREATE", interaction)
        return injected

    @property
    def identified_shards(self) -> list[list[int] | None]:
        """The `shard` of every IDENTIFY the bot sent (None: unsharded), in order."""
        return [frame["d"].get("shard") for frame in self.gateway_frames if frame["op"] == 2]

    def _command_data(self, name: str, options: dict[str, str], guild: bool, focused: str | None = None) -> dict:
        command = self._registered(name, guild)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": [
                {"name": key, "type": 3, "value": value, **({"focused": True} if key == focused else {})}
                for key, value in options.items()
            ],
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    async def slash(
        self,
        name: str,
        options: dict[str, str] | None = None,
        *,
        admin: bool = True,
        guild: bool = True,
        app_permissions: int = BOT_PERMISSIONS,
        channel_id: int | None = None,
        user_id: int | None = None,
    ) -> Injected:
        """A member (with Manage Server when `admin`; `user_id`: another member) runs /name with string options."""
        interaction = interaction_base(next(self._ids), 2, admin=admin, guild=guild, app_permissions=app_permissions,
                                       channel_id=channel_id, user_id=user_id)
        interaction["data"] = self._command_data(name, options or {}, guild)
        return await self._send_interaction(interaction)

    async def autocomplete(self, name: str, options: dict[str, str], focused: str, *, guild: bool = True) -> Injected:
        interaction = interaction_base(next(self._ids), 4, admin=False, guild=guild, app_permissions=BOT_PERMISSIONS,
                                       channel_id=None)
        interaction["data"] = self._command_data(name, options, guild, focused)
        return await self._send_interaction(interaction)

    async def click(self, message_id: int, custom_id: str, *, admin: bool = False, guild: bool = True) -> Injected:
        """A member clicks the button `custom_id` on a message the bot sent."""
        interaction = interaction_base(next(self._ids), 3, admin=admin, guild=guild, app_permissions=BOT_PERMISSIONS,
                                       channel_id=None)
        interaction["message"] = self.messages[message_id]
        interaction["data"] = {"custom_id": custom_id, "component_type": 2}
        return await self._send_interaction(interaction)


def buttons_of(message: dict) -> list[dict]:
    return [c for row in message.get("components", []) for c in row.get("components", [])]
