"""The Discord adapter: slash commands in, embeds out, on discord.py 2.7.

Slash commands are generated from the shared registry (bot.commands.registry;
the generation is in discord_commands.py): same names, same arguments in the
same order, the registry's per-locale descriptions (English, plus Chinese for
Discord's zh-CN locale). An invocation is turned back into command text
(`/liq xbt 4h`) and goes through the shared Dispatcher, so parsing, "did you
mean BTC?", authorization and rate limits are the same as on Telegram and the
console.

Choices made here:
- Aliases (`/liqs`, `/rank` ...) are not separate slash commands: Discord lists
  every slash command in its picker, and three names for one command would
  crowd it. Typed text aliases keep working on the other surfaces.
- Windows and languages are choices; assets are autocompleted from the assets
  recorded, but any text is accepted so that a typo gets the shared suggestion.
- Commands are synced at start only when their definitions changed: the
  definitions (translated payloads, as discord.py would upload them) are hashed
  per application and scope (global or one guild) and the hash is kept in a
  small JSON state file (`discord.sync_state_path`). Comparing against
  `tree.fetch_commands()` would cost a request per start and a field-by-field
  comparison of Discord's normalised payloads; the state file costs nothing.
  Delete the file to force a sync.
- With `discord.guild_ids`, commands are registered in those guilds only (they
  appear instantly there); without, globally.
- Refresh buttons carry their command in the button's custom id (a discord.py
  DynamicItem), so they keep working after a restart.

- Sharding (`discord.shard_count`, `discord.shard_ids`): with a shard count the
  client is discord.py's AutoShardedClient on exactly those shards (each IDENTIFY
  carries `"shard": [id, count]`); replicas split the shards between them. Discord
  routes a guild's events to shard `(guild_id >> 22) % count` and events without a
  guild (DMs) to shard 0 only, and allows one IDENTIFY per 5 s per `max_concurrency`
  bucket (discord.py waits 5 s between its shards' IDENTIFYs). Without a count: one
  unsharded connection, as Discord allows below 2,500 guilds.
  Source: https://discord.com/developers/docs/events/gateway#sharding

Only default intents are used (no privileged intents): slash commands need none.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import discord
import yarl
from discord import app_commands

from bot.adapters.discord_commands import RegistryTranslator, command_text, slash_commands
from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.commands.registry import CommandSpec
from bot.plumbing.delivery import DeliveryRefused, DestinationGone
from bot.replies.model import Reply
from bot.replies.render_discord import render_discord

log = logging.getLogger(__name__)

PLATFORM = "discord"
AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 suggestions
ALL_ASSETS = "all"
REFRESH_PREFIX = "liqbot:refresh:"
CUSTOM_ID_LIMIT = 100
UNKNOWN_CHANNEL = 10003
MISSING_ACCESS = 50001

# Until these sentences move to bot/replies/locales.py (the adapter may not add keys there).
_PERMISSION_TEXT = {
    "en": "I can't post my answer in this channel: I am missing {missing}. "
    "A server admin can grant them in the channel's permissions.",
    "zh": "我无法在此频道发送回复：缺少权限 {missing}。请服务器管理员在频道权限中授予。",
}
_PERMISSION_NAMES = {
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
}


class DiscordSettings(Protocol):
    """What the adapter reads from `bot.config.DiscordConfig` (adapters may not import config)."""

    api_base: str
    gateway_url: str
    guild_ids: tuple[int, ...]
    sync_state_path: str
    shard_count: int  # 0: unsharded
    shard_ids: tuple[int, ...]  # empty: all shards of shard_count


class DiscordStartError(RuntimeError):
    """The adapter could not connect; the message is one line that says why."""


class DiscordLoginError(DiscordStartError):
    """Discord rejected the bot token."""


class DiscordDeliveryError(RuntimeError):
    """A message could not be sent to a channel that still exists (e.g. missing permissions)."""

    def __init__(self, chat_key: str, reason: str) -> None:
        super().__init__(f"{chat_key}: {reason}")
        self.chat_key = chat_key
        self.reason = reason


# -- chat keys --------------------------------------------------------------


def chat_key(channel_id: int) -> str:
    return f"{PLATFORM}:{channel_id}"


def user_key(user_id: int) -> str:
    return f"{PLATFORM}:{user_id}"


def channel_id_of(key: str) -> int:
    platform, _, raw = key.partition(":")
    if platform != PLATFORM or not raw.isdigit():
        raise ValueError(f"not a Discord chat key: {key!r}")
    return int(raw)


# -- the refresh button -----------------------------------------------------


def refresh_custom_id(command: str) -> str | None:
    custom_id = REFRESH_PREFIX + command
    return custom_id if len(custom_id) <= CUSTOM_ID_LIMIT else None


REFRESH_TEMPLATE = re.escape(REFRESH_PREFIX) + r"(?P<command>/.+)"


class RefreshButton(discord.ui.DynamicItem[discord.ui.Button], template=REFRESH_TEMPLATE):
    """Re-runs a command and edits the message it is on."""

    def __init__(self, label: str, command: str) -> None:
        super().__init__(
            discord.ui.Button(label=label, style=discord.ButtonStyle.secondary, custom_id=REFRESH_PREFIX + command)
        )
        self.command = command

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str], /):
        label = getattr(item, "label", None) or "Refresh"
        return cls(label, match["command"])

    async def callback(self, interaction: discord.Interaction) -> None:
        adapter = getattr(interaction.client, "liqbot_adapter", None)
        if adapter is not None:
            await adapter._refresh(interaction, self.command)


def _view_for(reply: Reply) -> discord.ui.View | None:
    buttons = [
        RefreshButton(action.label, action.command)
        for action in reply.actions
        if refresh_custom_id(action.command) is not None
    ]
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(button)
    return view


def _file_for(reply: Reply) -> discord.File | None:
    if reply.image is None:
        return None
    return discord.File(io.BytesIO(reply.image.png), filename=reply.image.filename)


def _embeds(message: list[dict]) -> list[discord.Embed]:
    return [discord.Embed.from_dict(embed) for embed in message]


# -- the adapter ------------------------------------------------------------


class _Client(discord.Client):
    liqbot_adapter: DiscordAdapter | None = None


class _ShardedClient(_Client, discord.AutoShardedClient):
    pass


def _client_for(config: DiscordSettings, guild_ready_timeout_s: float) -> _Client:
    # READY waits guild_ready_timeout_s after the last GUILD_CREATE before it fires.
    options: dict[str, Any] = {"intents": discord.Intents.default(), "guild_ready_timeout": guild_ready_timeout_s}
    if not config.shard_count:
        return _Client(**options)
    return _ShardedClient(**options, shard_count=config.shard_count, shard_ids=list(config.shard_ids) or None)


class DiscordAdapter:
    """Connects the bot to Discord: slash commands -> Dispatcher -> embeds."""

    def __init__(
        self,
        config: DiscordSettings,
        token: str,
        dispatcher: Dispatcher,
        on_chat_gone: Callable[[str], Awaitable[None]],
        *,
        ready_timeout_s: float = 30.0,
        guild_ready_timeout_s: float = 2.0,
    ) -> None:
        self._config = config
        self._token = token
        self._dispatcher = dispatcher
        self._on_chat_gone = on_chat_gone
        self._ready_timeout_s = ready_timeout_s
        # No voice here: silence discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        self._client = _client_for(config, guild_ready_timeout_s)
        self._client.liqbot_adapter = self
        self._tree = app_commands.CommandTree(self._client)
        self._translator = RegistryTranslator()
        self._guilds = [discord.Object(id=guild_id) for guild_id in config.guild_ids]
        for command in slash_commands(self._run_slash, self._complete_asset):
            if self._guilds:
                self._tree.add_command(command, guilds=self._guilds)
            else:
                self._tree.add_command(command)
        self._task: asyncio.Task | None = None

    def __repr__(self) -> str:  # never the token
        return f"DiscordAdapter(api_base={self._config.api_base!r})"

    @property
    def tree(self) -> app_commands.CommandTree:
        return self._tree

    @property
    def client(self) -> discord.Client:
        return self._client

    # -- lifecycle --

    async def start(self) -> None:
        """Log in, sync commands if they changed, connect; return once READY."""
        if self._task is not None:
            raise RuntimeError("the Discord adapter is already started")
        # discord.py reads these class attributes when it builds a request or connects.
        discord.http.Route.BASE = self._config.api_base.rstrip("/")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._config.gateway_url)
        self._client.add_dynamic_items(RefreshButton)
        await self._tree.set_translator(self._translator)
        try:
            await self._client.login(self._token)
        except discord.LoginFailure:
            await self._client.close()
            raise DiscordLoginError(
                "Discord rejected the bot token (401 Unauthorized): check LIQBOT_DISCORD_TOKEN"
            ) from None
        except (discord.HTTPException, OSError, asyncio.TimeoutError) as error:
            await self._client.close()
            where = self._config.api_base
            raise DiscordStartError(f"cannot log in to Discord at {where}: {_one_line(error)}") from None
        try:
            await self._sync_if_changed()
        except discord.HTTPException as error:  # the commands Discord has stay; the next start retries
            log.error("discord: command sync failed, keeping the registered commands: %s", _one_line(error))
        self._task = asyncio.create_task(self._client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(self._client.wait_until_ready())
        try:
            done, _ = await asyncio.wait(
                {self._task, ready}, timeout=self._ready_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not ready.done():
                ready.cancel()
        if ready in done:
            log.info("discord: ready as %s", self._client.user)
            return
        failure = self._task.exception() if self._task in done and not self._task.cancelled() else None
        await self.stop()
        if isinstance(failure, discord.ConnectionClosed) and failure.code == 4004:
            raise DiscordLoginError("Discord's gateway rejected the bot token (4004): check LIQBOT_DISCORD_TOKEN")
        if failure is not None:
            raise DiscordStartError(f"Discord gateway connection failed: {_one_line(failure)}")
        raise DiscordStartError(f"no READY from Discord's gateway within {self._ready_timeout_s:g} s")

    async def stop(self) -> None:
        await self._client.close()
        task, self._task = self._task, None
        if task is not None:
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
            except Exception as error:  # the gateway's last error; we are stopping anyway
                log.debug("discord: gateway ended with %s", _one_line(error))

    # -- command sync --

    async def _definitions_hash(self, guild: discord.Object | None) -> str:
        payload = [
            await command.get_translated_payload(self._tree, self._translator)
            for command in self._tree.get_commands(guild=guild)
        ]
        encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    async def _sync_if_changed(self) -> list[str]:
        """Sync each scope whose definitions changed since the last sync; the scopes synced."""
        state_path = Path(self._config.sync_state_path) if self._config.sync_state_path else None
        state = _read_state(state_path)
        synced = []
        for guild in self._guilds or [None]:
            scope = f"{self._client.application_id}:{'global' if guild is None else guild.id}"
            digest = await self._definitions_hash(guild)
            if state.get(scope) == digest:
                log.info("discord: commands for %s unchanged, not syncing", scope)
                continue
            await self._tree.sync(guild=guild)
            log.info("discord: synced %d commands for %s", len(self._tree.get_commands(guild=guild)), scope)
            synced.append(scope)
            state[scope] = digest
            if state_path is not None:
                _write_state(state_path, state)
        return synced

    # -- incoming interactions --

    def _caller(self, interaction: discord.Interaction) -> Caller:
        permissions = interaction.permissions

        async def is_admin() -> bool:
            return permissions.manage_guild or permissions.administrator

        return Caller(
            platform=PLATFORM,
            chat_key=chat_key(interaction.channel_id or interaction.user.id),
            user_key=user_key(interaction.user.id),
            is_group=interaction.guild_id is not None,
            is_admin=is_admin,
        )

    async def _complete_asset(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        typed = current.strip().upper().lstrip("$")
        names = [ALL_ASSETS, *await self._dispatcher.assets()]
        starts = [n for n in names if n.upper().startswith(typed)]
        contains = [n for n in names if typed in n.upper() and n not in starts]
        return [app_commands.Choice(name=n, value=n) for n in (starts + contains)[:AUTOCOMPLETE_LIMIT]]

    async def _run_slash(self, interaction: discord.Interaction, spec: CommandSpec, options: dict) -> None:
        text = command_text(spec, options)
        reply = await self._dispatcher.handle(text, self._caller(interaction))
        if reply is not None:
            await self._respond(interaction, reply, edit=False)

    async def _refresh(self, interaction: discord.Interaction, command: str) -> None:
        reply = await self._dispatcher.handle(command, self._caller(interaction))
        if reply is not None:
            await self._respond(interaction, reply, edit=not reply.ephemeral)

    def _missing_permissions(self, interaction: discord.Interaction, reply: Reply) -> list[str]:
        """The bot's permissions this reply needs in this guild channel and lacks: then all it lacks."""
        if interaction.guild_id is None or reply.ephemeral:
            return []
        have = interaction.app_permissions
        needed = ["embed_links"] + (["attach_files"] if reply.image is not None else [])
        if all(getattr(have, name) for name in needed):
            return []
        return _lacking(have)

    async def _permission_notice(self, interaction: discord.Interaction, missing: Sequence[str]) -> None:
        locale = await self._dispatcher.locale_for(chat_key(interaction.channel_id or interaction.user.id))
        content = _PERMISSION_TEXT.get(locale, _PERMISSION_TEXT["en"]).format(missing=", ".join(missing))
        if interaction.response.is_done():
            await interaction.followup.send(content, ephemeral=True)
        else:
            await interaction.response.send_message(content, ephemeral=True)

    async def _respond(self, interaction: discord.Interaction, reply: Reply, *, edit: bool) -> None:
        missing = self._missing_permissions(interaction, reply)
        if missing:
            await self._permission_notice(interaction, missing)
            return
        messages = render_discord(reply)
        view, file = _view_for(reply), _file_for(reply)
        first: dict[str, Any] = {"embeds": _embeds(messages[0])}
        try:
            if edit:
                first["view"] = view
                if file is not None:
                    first["attachments"] = [file]
                await interaction.response.edit_message(**first)
            else:
                if view is not None:
                    first["view"] = view
                if file is not None:
                    first["file"] = file
                await interaction.response.send_message(**first, ephemeral=reply.ephemeral)
            for message in messages[1:]:
                await interaction.followup.send(embeds=_embeds(message), ephemeral=reply.ephemeral)
        except discord.Forbidden as error:
            log.warning("discord: cannot answer in channel %s: %s", interaction.channel_id, _one_line(error))
            await self._permission_notice(
                interaction, _lacking(interaction.app_permissions) or list(_PERMISSION_NAMES.values())
            )

    # -- outgoing messages (alerts, digests) --

    async def send(self, chat_key: str, reply: Reply) -> None:
        """Post a reply in a channel. DestinationGone (after on_chat_gone) when the channel is
        gone; DeliveryRefused when Discord answers 400 (Invalid Form Body: the message itself)."""
        channel = self._client.get_partial_messageable(channel_id_of(chat_key))
        messages = render_discord(reply)
        for index, message in enumerate(messages):
            kwargs: dict[str, Any] = {"embeds": _embeds(message)}
            if index == 0:
                view, file = _view_for(reply), _file_for(reply)
                if view is not None:
                    kwargs["view"] = view
                if file is not None:
                    kwargs["file"] = file
            try:
                await channel.send(**kwargs)
            except (discord.NotFound, discord.Forbidden) as error:
                if error.code in (UNKNOWN_CHANNEL, MISSING_ACCESS):
                    reason = "Unknown Channel" if error.code == UNKNOWN_CHANNEL else "Missing Access"
                    await self._on_chat_gone(chat_key)
                    raise DestinationGone(chat_key, reason) from None
                raise DiscordDeliveryError(chat_key, _one_line(error)) from None
            except discord.HTTPException as error:
                if error.status == 400:
                    raise DeliveryRefused(chat_key, _one_line(error)) from None
                raise


def _lacking(permissions: discord.Permissions) -> list[str]:
    return [label for name, label in _PERMISSION_NAMES.items() if not getattr(permissions, name)]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


def _read_state(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write_state(path: Path, state: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)
