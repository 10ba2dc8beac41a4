"""The Telegram adapter, on python-telegram-bot 22.

Telegram update -> Caller + text -> Dispatcher -> Reply -> render_telegram ->
Bot API calls. Nothing else lives here: no storage, no services.

- Every registry command, in private chats, groups and supergroups (forum
  topics too). `/cmd@thisbot` is answered, `/cmd@otherbot` is not (the shared
  parser decides once it knows our username from getMe). In groups, an unknown
  command that is not addressed to us is left alone: it is probably another
  bot's.
- Replies go out in HTML parse mode, one message per rendered part, the first
  as a reply to the command (telegram_messages.py). `Reply.actions` become
  inline buttons on the last part; pressing one re-runs its command and edits
  the message in place. Only a command that is on the pressed message's own
  keyboard runs: forged callback data (another command, another message's
  button) is ignored. `Reply.image` goes out with sendPhoto.
- Admin-only commands in groups ask getChatMember (cached briefly). Anonymous
  admins (posting as the group) count as admins.
- A chat that blocked or removed the bot (403, "chat not found", a
  my_chat_member update saying we were kicked) is reported once through
  `on_chat_gone`, never retried. Sending is paced by `TelegramPacing`
  (telegram_pacing.py): replies to commands go ahead of alerts and digests,
  and a flood wait (429) pauses the chat it came for and bulk sends, not the
  replies in other chats.
- Updates of different chats are handled at once, each chat's in order
  (`ChatOrderedUpdates`): one chat's backlog never delays another's replies.
- `stop()` takes no more updates, answers those already fetched for up to
  `drain_seconds`, and drops the rest with one log line.
- The token is in every Bot API URL. None of our log lines or exceptions
  include it, and while running, a scrubbing filter sits on the loggers of PTB
  and httpx as well (the app's RedactSecrets is the first line of defence).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol
from urllib.parse import urlsplit

from telegram import BotCommand, Chat, ChatMember, ChatMemberUpdated, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.adapters.telegram_messages import NO_PREVIEW, is_gone, keyboard, offered, send_reply
from bot.adapters.telegram_pacing import BULK, OVERALL_PER_S, TelegramPacing
from bot.adapters.telegram_updates import ChatOrderedUpdates
from bot.commands.dispatch import Dispatcher
from bot.commands.ports import Caller
from bot.commands.registry import COMMANDS, find
from bot.plumbing.delivery import DeliveryRefused, DestinationGone
from bot.plumbing.redact import RedactSecrets
from bot.replies.model import Reply
from bot.replies.render_plain import render_plain
from bot.replies.render_telegram import render_telegram

log = logging.getLogger(__name__)

PLATFORM = "telegram"
CALLBACK_ANSWER_LIMIT = 200
ADMIN_STATUSES = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR})
GROUP_TYPES = frozenset({Chat.GROUP, Chat.SUPERGROUP})
GROUP_ANONYMOUS_BOT_ID = 1087968824  # "from" of messages sent by anonymous group admins
ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER)
MENU_LOCALES = ("en", "zh")  # en is also the default menu for every other language
WEBHOOK_SECRET_ENV = "LIQBOT_TELEGRAM_WEBHOOK_SECRET"
# Loggers that may see Bot API URLs or request parameters (the token, the webhook secret).
SCRUBBED_LOGGERS = (
    "telegram",
    "telegram.Bot",
    "telegram.ext",
    "telegram.ext.ExtBot",
    "telegram.ext.Application",
    "telegram.ext.Updater",
    "bot.adapters.telegram_pacing",
    "telegram.request",
    "telegram.request.BaseRequest",
    "telegram.request.HTTPXRequest",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
)


class TelegramSettings(Protocol):
    """What the adapter reads from `bot.config.TelegramConfig` (adapters do not import config)."""

    base_url: str
    base_file_url: str
    mode: str  # polling | webhook
    webhook_url: str
    webhook_listen: str
    webhook_port: int


class TelegramStartError(RuntimeError):
    """Telegram could not start. The message is one line, fit to log as is, without secrets."""


class TelegramTokenError(TelegramStartError):
    """The bot token is missing or Telegram rejected it."""


class TelegramDeliveryError(RuntimeError):
    """A send failed for a reason other than the chat being gone (network, flood wait exhausted)."""


def chat_key_of(chat_id: int) -> str:
    return f"{PLATFORM}:{chat_id}"


def chat_id_of(chat_key: str) -> int:
    platform, _, raw = chat_key.partition(":")
    if platform != PLATFORM or not raw.lstrip("-").isdigit():
        raise ValueError(f"not a Telegram chat key: {chat_key!r}")
    return int(raw)


def default_rate_limiter() -> TelegramPacing:
    """Telegram's documented limits (~30 messages/s overall, 1/s per chat, 20/min per group); 429s retried."""
    return TelegramPacing(overall_per_s=OVERALL_PER_S, private_per_s=1, private_burst=3, group_per_minute=20, max_retries=3)


def menu_commands(locale: str) -> list[BotCommand]:
    """The command menu for one language, from the registry."""
    return [BotCommand(spec.name, spec.summary[locale]) for spec in COMMANDS]



async def _constant(value: bool) -> bool:
    return value


class TelegramAdapter:
    """Serves the dispatcher's commands on Telegram, and sends alerts and digests.

    `start()` connects (one clear `TelegramStartError` if it cannot), `send()`
    delivers a Reply to a chat key, `stop()` disconnects. Also an async context
    manager.
    """

    def __init__(
        self,
        config: TelegramSettings,
        token: str | None,
        dispatcher: Dispatcher,
        on_chat_gone: Callable[[str], Awaitable[None]],
        *,
        webhook_secret: str | None = None,
        rate_limiter: TelegramPacing | None = None,
        clock: Callable[[], float] = time.monotonic,
        admin_cache_seconds: float = 60.0,
        poll_timeout_seconds: float = 10.0,
        drain_seconds: float = 5.0,
    ) -> None:
        self._config = config
        self._token = (token or "").strip()
        self._dispatcher = dispatcher
        self._on_chat_gone = on_chat_gone
        self._webhook_secret = webhook_secret  # the composition root reads it from the environment
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._admin_cache_seconds = admin_cache_seconds
        self._poll_timeout_seconds = poll_timeout_seconds
        self._drain_seconds = drain_seconds  # on stop, queued updates get this long to be answered
        self._admin_cache: dict[tuple[int, int], tuple[bool, float]] = {}
        self._scrubber = RedactSecrets([self._token, self._webhook_secret or ""])
        self._app: Application | None = None
        self._requests: tuple[HTTPXRequest, ...] = ()
        self._updates: ChatOrderedUpdates | None = None  # per start: its queues live on that loop
        self.bot_username: str | None = None

    def __repr__(self) -> str:  # PTB's Bot and Application put the token in theirs
        return f"TelegramAdapter(username={self.bot_username!r}, mode={self._config.mode!r})"

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> TelegramAdapter:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._app is not None:
            raise RuntimeError("the Telegram adapter is already running")
        self._check_settings()
        self._attach_scrubber()
        self._requests = (HTTPXRequest(read_timeout=10.0, write_timeout=10.0), HTTPXRequest())
        self._updates = ChatOrderedUpdates()
        app = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(self._config.base_url)
            .base_file_url(self._config.base_file_url)
            .request(self._requests[0])
            .get_updates_request(self._requests[1])
            .rate_limiter(self._rate_limiter or default_rate_limiter())
            .job_queue(None)  # the app has its own scheduler
            .concurrent_updates(self._updates)  # chats at once, each in order
            .build()
        )
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self._on_message))
        app.add_handler(CallbackQueryHandler(self._on_callback))
        app.add_handler(ChatMemberHandler(self._on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
        app.add_error_handler(self._on_error)
        try:
            await self._connect(app)
        except BaseException:
            try:
                await self._shutdown(app)
            finally:
                self._detach_scrubber()
            raise
        self._app = app
        log.info("telegram: running as @%s (%s)", self.bot_username, self._config.mode)

    def _check_settings(self) -> None:
        if not self._token:
            raise TelegramTokenError(
                "Telegram is enabled but LIQBOT_TELEGRAM_TOKEN is not set (create a bot with @BotFather)"
            )
        if any(ch.isspace() for ch in self._token):
            raise TelegramTokenError("LIQBOT_TELEGRAM_TOKEN contains whitespace; paste the token from @BotFather")
        if self._config.mode not in ("polling", "webhook"):
            raise TelegramStartError(f"telegram.mode must be polling or webhook, not {self._config.mode!r}")
        if self._config.mode == "webhook":
            if not self._config.webhook_url.startswith("https://"):
                raise TelegramStartError("telegram.mode is webhook but telegram.webhook_url is not an https:// URL")
            secret = self._webhook_secret or ""
            if not secret or len(secret) > 256 or not all(ch.isalnum() or ch in "_-" for ch in secret):
                raise TelegramStartError(
                    f"telegram.mode is webhook: set {WEBHOOK_SECRET_ENV} to 1-256 characters of A-Z a-z 0-9 _ -"
                )

    async def _connect(self, app: Application) -> None:
        host = urlsplit(self._config.base_url).netloc or self._config.base_url
        try:
            await app.initialize()  # getMe
        except InvalidToken:
            raise TelegramTokenError(
                "Telegram rejected LIQBOT_TELEGRAM_TOKEN (getMe: Unauthorized); check the token with @BotFather"
            ) from None
        except TelegramError as error:
            raise TelegramStartError(f"cannot reach the Telegram Bot API at {host}: {self._scrub(error)}") from None
        self.bot_username = app.bot.username
        await self._set_menus(app)
        try:
            if self._config.mode == "webhook":
                await app.updater.start_webhook(
                    listen=self._config.webhook_listen,
                    port=self._config.webhook_port,
                    url_path=urlsplit(self._config.webhook_url).path.lstrip("/"),
                    webhook_url=self._config.webhook_url,
                    allowed_updates=list(ALLOWED_UPDATES),
                    secret_token=self._webhook_secret,
                )
            else:
                await app.updater.start_polling(  # deleteWebhook, then long polling
                    timeout=self._poll_timeout_seconds,
                    allowed_updates=list(ALLOWED_UPDATES),
                    error_callback=self._on_polling_error,
                )
            await app.start()
        except InvalidToken:
            raise TelegramTokenError("Telegram rejected LIQBOT_TELEGRAM_TOKEN while starting updates") from None
        except TelegramError as error:
            raise TelegramStartError(f"cannot start Telegram updates: {self._scrub(error)}") from None
        except RuntimeError as error:  # e.g. webhook mode without python-telegram-bot[webhooks]
            raise TelegramStartError(f"cannot start Telegram {self._config.mode}: {self._scrub(error)}") from None
        except OSError as error:  # webhook port in use
            raise TelegramStartError(f"cannot listen for Telegram webhooks: {self._scrub(error)}") from None

    async def _set_menus(self, app: Application) -> None:
        try:
            await app.bot.set_my_commands(menu_commands("en"))
            for locale in MENU_LOCALES:
                if locale != "en":
                    await app.bot.set_my_commands(menu_commands(locale), language_code=locale)
        except TelegramError as error:  # a missing menu is no reason not to answer
            log.warning("telegram: could not set the command menu: %s", self._scrub(error))

    async def stop(self) -> None:
        app = self._app
        if app is None:
            return
        try:
            await self._shutdown(app)  # still running meanwhile: queued updates are answered
        finally:
            self._app = None
            self._detach_scrubber()
            log.info("telegram: stopped")

    async def _shutdown(self, app: Application) -> None:
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()  # take no more updates first
            if app.running:
                await self._drain(app)
                await app.stop()
            await app.shutdown()
        finally:
            for request in self._requests:  # open even when initialize() failed half way
                await request.shutdown()
            self._requests = ()

    async def _drain(self, app: Application) -> None:
        """Answer the updates already fetched for up to `drain_seconds`; drop the rest in one line."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_handled(app), self._drain_seconds)
        dropped = self._updates.drop_queued()
        while not app.update_queue.empty():
            app.update_queue.get_nowait()
            app.update_queue.task_done()
            dropped += 1
        if dropped:
            log.warning("telegram: stopping: %d queued update(s) dropped unanswered", dropped)
        await self._updates.idle()  # those being answered finish while the bot can still send

    async def _all_handled(self, app: Application) -> None:
        await app.update_queue.join()  # handed to the chats' queues...
        await self._updates.idle()  # ...and handled there

    def _attach_scrubber(self) -> None:
        for name in SCRUBBED_LOGGERS:
            logging.getLogger(name).addFilter(self._scrubber)

    def _detach_scrubber(self) -> None:
        for name in SCRUBBED_LOGGERS:
            logging.getLogger(name).removeFilter(self._scrubber)

    def _scrub(self, error: object) -> str:
        return self._scrubber.scrub(str(error)).replace("\n", " ")

    # -- outgoing -------------------------------------------------------------

    async def send(self, chat_key: str, reply: Reply) -> None:
        """Deliver a reply to a chat (alerts, digests).

        Raises DestinationGone (after calling on_chat_gone) when the chat blocked
        or removed the bot, DeliveryRefused for any other 400 Bad Request (the
        message itself: "can't parse entities", "message is too long"),
        TelegramDeliveryError for anything else.
        """
        if self._app is None:
            raise RuntimeError("the Telegram adapter is not running")
        chat_id = chat_id_of(chat_key)
        try:
            await send_reply(self._app.bot, chat_id, reply, pacing=BULK)
        except TelegramError as error:
            if is_gone(error):
                reason = self._scrub(error)
                await self._gone(chat_key, reason)
                raise DestinationGone(chat_key, reason) from None
            if isinstance(error, BadRequest):
                raise DeliveryRefused(chat_key, self._scrub(error)) from None
            raise TelegramDeliveryError(f"{chat_key}: {self._scrub(error)}") from None

    async def _answer(self, chat_id: int, reply: Reply, reply_to: int | None, thread_id: int | None) -> None:
        """Reply to a command; failures are logged (or reported as a gone chat), never raised."""
        try:
            await send_reply(self._app.bot, chat_id, reply, reply_to, thread_id)
        except TelegramError as error:
            if is_gone(error):
                await self._gone(chat_key_of(chat_id), self._scrub(error))
            else:
                log.warning("telegram: reply to %s failed: %s", chat_key_of(chat_id), self._scrub(error))

    async def _gone(self, chat_key: str, reason: str) -> None:
        log.info("telegram: %s is gone (%s); marking it inactive", chat_key, reason)
        try:
            await self._on_chat_gone(chat_key)
        except Exception:
            log.exception("telegram: marking %s inactive failed", chat_key)

    # -- incoming -------------------------------------------------------------

    def _caller(self, chat: Chat, user_id: int, is_admin: Callable[[], Awaitable[bool]] | None = None) -> Caller:
        return Caller(
            platform=PLATFORM,
            chat_key=chat_key_of(chat.id),
            user_key=f"{PLATFORM}:{user_id}",
            is_group=chat.type in GROUP_TYPES,
            is_admin=is_admin or partial(self._is_admin, chat.id, user_id),
        )

    async def _is_admin(self, chat_id: int, user_id: int) -> bool:
        now = self._clock()
        cached = self._admin_cache.get((chat_id, user_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            member = await self._app.bot.get_chat_member(chat_id, user_id)
        except TelegramError as error:
            log.warning("telegram: getChatMember in %s failed: %s", chat_key_of(chat_id), self._scrub(error))
            return False
        admin = member.status in ADMIN_STATUSES
        if len(self._admin_cache) > 4096:
            self._admin_cache = {k: v for k, v in self._admin_cache.items() if v[1] > now}
        self._admin_cache[(chat_id, user_id)] = (admin, now + self._admin_cache_seconds)
        return admin

    @staticmethod
    def _meant_for_someone_else(text: str) -> bool:
        """In a group: an unknown command without @ is probably another bot's."""
        name, _, addressee = text.split(maxsplit=1)[0][1:].partition("@")
        return not addressee and find(name) is None

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or not message.text or not message.text.startswith("/"):
            return
        chat = message.chat
        if chat.type == Chat.CHANNEL:
            return
        if chat.type in GROUP_TYPES and self._meant_for_someone_else(message.text):
            return
        if message.sender_chat is not None:  # an anonymous admin (the group itself) or a linked channel
            caller = self._caller(chat, message.sender_chat.id, partial(_constant, message.sender_chat.id == chat.id))
        elif message.from_user is not None:
            anonymous = message.from_user.id == GROUP_ANONYMOUS_BOT_ID
            caller = self._caller(chat, message.from_user.id, partial(_constant, True) if anonymous else None)
        else:
            return
        reply = await self._dispatcher.handle(message.text, caller, self.bot_username)
        if reply is None:
            return
        thread_id = message.message_thread_id if message.is_topic_message else None
        await self._answer(chat.id, reply, message.message_id, thread_id)

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        message = query.message
        if not query.data or message is None or not offered(message, query.data):
            await self._answer_query(query)
            return
        chat = message.chat
        reply = await self._dispatcher.handle(query.data, self._caller(chat, query.from_user.id), self.bot_username)
        if reply is None:
            await self._answer_query(query)
            return
        if reply.ephemeral:  # refusals and errors: only the presser sees them
            await self._answer_query(query, render_plain(reply)[:CALLBACK_ANSWER_LIMIT], alert=True)
            return
        await self._answer_query(query)
        parts = render_telegram(reply)
        if message.is_accessible and message.text is not None and len(parts) == 1 and reply.image is None:
            try:
                await self._app.bot.edit_message_text(
                    parts[0],
                    chat_id=chat.id,
                    message_id=message.message_id,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(reply),
                    link_preview_options=NO_PREVIEW,
                )
            except BadRequest as error:
                if "not modified" not in error.message.lower():
                    log.warning("telegram: refresh in %s failed: %s", chat_key_of(chat.id), self._scrub(error))
            except TelegramError as error:
                if is_gone(error):
                    await self._gone(chat_key_of(chat.id), self._scrub(error))
                else:
                    log.warning("telegram: refresh in %s failed: %s", chat_key_of(chat.id), self._scrub(error))
            return
        # Several parts, a photo, or a message too old to edit: answer anew below it.
        thread_id = message.message_thread_id if message.is_accessible and message.is_topic_message else None
        await self._answer(chat.id, reply, message.message_id if message.is_accessible else None, thread_id)

    async def _answer_query(self, query, text: str | None = None, alert: bool = False) -> None:
        try:
            await query.answer(text=text, show_alert=alert)
        except TelegramError as error:  # too old, already answered: nothing to do
            log.debug("telegram: answerCallbackQuery failed: %s", self._scrub(error))

    async def _on_my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change: ChatMemberUpdated = update.my_chat_member
        if change.new_chat_member.status in (ChatMember.LEFT, ChatMember.BANNED):
            await self._gone(chat_key_of(change.chat.id), f"bot is now {change.new_chat_member.status}")

    # -- errors -----------------------------------------------------------------

    def _on_polling_error(self, error: TelegramError) -> None:
        log.warning("telegram: polling failed, retrying: %s", self._scrub(error))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        error = context.error
        log.error(
            "telegram: update %s failed: %s: %s",
            update_id,
            type(error).__name__,
            self._scrub(error),
            exc_info=(type(error), error, error.__traceback__) if error is not None else None,
        )
