"""The JSON objects the fake Discord (tests/fakes/discord_api.py) serves: its ids and
permission bits, users, the guild with its one text channel, READY, and interactions."""

from __future__ import annotations

from typing import Any

TOKEN = "fake-discord-token"
APP_ID = 900000000000000001
BOT_USER_ID = APP_ID
GUILD_ID = 800000000000000001
CHANNEL_ID = 700000000000000001
DM_CHANNEL_ID = 700000000000000002
NO_ACCESS_CHANNEL_ID = 700000000000000003  # exists, but the bot cannot see it: 403 Missing Access
ADMIN_ID = 600000000000000001
MEMBER_ID = 600000000000000002
API_PREFIX = "/api/v10"
TIMESTAMP = "2025-03-21T12:00:00.000000+00:00"

# Permission bits (Discord's documented values).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_GUILD = 1 << 5
MEMBER_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | MANAGE_GUILD
BOT_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY

EPHEMERAL = 1 << 6
# Interaction callback types.
CHANNEL_MESSAGE = 4
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8


def user(user_id: int, name: str, bot: bool = False) -> dict:
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
        "verified": True,
        "mfa_enabled": False,
    }


BOT_USER = user(BOT_USER_ID, "liqbot", bot=True)


def ready_payload(shard: tuple[int, int], serves_guild: bool, gateway_url: str) -> dict:
    return {
        "v": 10,
        "user": BOT_USER,
        "guilds": [{"id": str(GUILD_ID), "unavailable": True}] if serves_guild else [],
        "session_id": "fake-session",
        "resume_gateway_url": gateway_url,
        "shard": list(shard),
        "application": {"id": str(APP_ID), "flags": 0},
        "private_channels": [],
        "relationships": [],
    }


def text_channel() -> dict:
    return {
        "id": str(CHANNEL_ID),
        "type": 0,
        "guild_id": str(GUILD_ID),
        "name": "trading",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "rate_limit_per_user": 0,
        "last_message_id": None,
    }


def guild_payload() -> dict:
    return {
        "id": str(GUILD_ID),
        "name": "Test Guild",
        "icon": None,
        "owner_id": str(ADMIN_ID),
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [
            {
                "id": str(GUILD_ID),
                "name": "@everyone",
                "permissions": str(MEMBER_PERMISSIONS),
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": None,
        "member_count": 3,
        "members": [
            {"user": BOT_USER, "roles": [], "joined_at": TIMESTAMP, "deaf": False, "mute": False, "flags": 0}
        ],
        "channels": [text_channel()],
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "joined_at": TIMESTAMP,
        "large": False,
        "unavailable": False,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
    }


def interaction_base(interaction_id: int, kind: int, *, admin: bool, guild: bool, app_permissions: int,
                     channel_id: int | None, user_id: int | None = None) -> dict:
    """An interaction of `kind` by the admin, a member or `user_id`, in the guild's channel or a DM."""
    base: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(APP_ID),
        "type": kind,
        "token": f"interaction-token-{interaction_id}",
        "version": 1,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    invoker = user(ADMIN_ID, "admin") if admin else user(MEMBER_ID, "member")
    if user_id is not None:
        invoker = user(user_id, f"user{user_id}")
    if guild:
        base.update(
            guild_id=str(GUILD_ID),
            guild_locale="en-US",
            channel_id=str(channel_id or CHANNEL_ID),
            channel=text_channel() | {"id": str(channel_id or CHANNEL_ID)},
            member={
                "user": invoker,
                "roles": [],
                "joined_at": TIMESTAMP,
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": str(ADMIN_PERMISSIONS if admin else MEMBER_PERMISSIONS),
            },
            app_permissions=str(app_permissions),
            authorizing_integration_owners={"0": str(GUILD_ID)},
            context=0,
        )
    else:
        base.update(
            channel_id=str(channel_id or DM_CHANNEL_ID),
            channel={"id": str(channel_id or DM_CHANNEL_ID), "type": 1, "recipients": [invoker]},
            user=invoker,
            app_permissions=str(BOT_PERMISSIONS),
            authorizing_integration_owners={"0": str(GUILD_ID)},
            context=1,
        )
    return base
