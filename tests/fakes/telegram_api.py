"""A fake Telegram Bot API server on 127.0.0.1, for driving python-telegram-bot.

It speaks the wire format PTB uses: `POST /bot<token>/<method>` with
form-encoded bodies (nested objects as JSON strings) or multipart for uploads;
answers `{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description",
"parameters"}` with the matching HTTP status. It records every call, serves
updates that the test pushes through a long-polled getUpdates, and keeps the
messages the bot sent so callbacks and edits refer to real message ids.

Like Telegram, it refuses what Telegram refuses: a wrong token (401), an unknown
chat ("chat not found"), messages over 4096 UTF-16 units of parsed text,
captions over 1024, unbalanced or unsupported HTML, callback data over 64
bytes, and an edit that changes nothing. Failures can be programmed per method
with `fail(...)` (429 with retry_after, 403 blocked, ...).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

GROUP_ANONYMOUS_BOT = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
SUPPORTED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a", "tg-spoiler",
                  "blockquote", "span", "tg-emoji"}
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64


@dataclass
class Call:
    """One request the server received."""

    method: str
    params: dict[str, str]
    files: dict[str, tuple[str, bytes]]  # field -> (file name, content)
    token: str
    status: int = 200
    result: Any = None  # what the server answered, when it succeeded
    at: float = field(default_factory=time.monotonic)

    def json(self, key: str) -> Any:
        """A parameter PTB sent as a JSON string (reply_markup, reply_parameters, commands)."""
        value = self.params.get(key)
        return None if value is None else json.loads(value)

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return None if value is None else int(value)

    @property
    def reply_to(self) -> int | None:
        parameters = self.json("reply_parameters")
        if parameters:
            return parameters["message_id"]
        value = self.params.get("reply_to_message_id")
        return None if value is None else int(value)


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None
    remaining: int
    chat_id: int | None  # only calls to this chat fail (None: any)


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class _HtmlCheck(HTMLParser):
    """Telegram's HTML parse mode: supported tags only, properly nested. Collects the plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag not in SUPPORTED_TAGS:
            self.error = self.error or f"unsupported start tag \"{tag}\""
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f"unexpected end tag \"{tag}\""
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text: str) -> str:
    """The text Telegram would show, or an ApiError like Telegram's for bad markup."""
    checker = _HtmlCheck()
    checker.feed(text)
    checker.close()
    if checker.stack and not checker.error:
        checker.error = f"can't find end tag corresponding to start tag \"{checker.stack[-1]}\""
    if checker.error:
        raise ApiError(400, f"Bad Request: can't parse entities: {checker.error}")
    return "".join(checker.text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegramAPI:
    def __init__(
        self,
        token: str = "7012345678:AAFakeTokenForTests_abcdefghijklmnopq",
        bot_username: str = "liqbot_test_bot",
        bot_id: int = 7012345678,
    ) -> None:
        self.token = token
        self.bot = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "liqbot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.webhook: dict[str, str] | None = None
        self.commands: dict[tuple[str, str], list[dict]] = {}  # (scope, language) -> commands
        self._chats: dict[int, dict] = {}
        self._admins: dict[int, dict[int, str]] = {}  # chat -> user -> creator | administrator
        self._messages: dict[tuple[int, int], dict] = {}
        self._message_ids: dict[int, itertools.count] = {}
        self._update_ids = itertools.count(100_000)
        self._callback_ids = itertools.count(1)
        self._updates: list[dict] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._changed = asyncio.Condition()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> FakeTelegramAPI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        async with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegramAPI:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- what the test programs -------------------------------------------

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ):
        """The next `times` calls of `method` (to `chat_id`, if given) fail like Telegram would."""
        self._failures.setdefault(method, []).append(_Failure(status, description, retry_after, times, chat_id))

    def make_admin(self, chat: dict, user: dict, owner: bool = False) -> None:
        self._admins.setdefault(chat["id"], {})[user["id"]] = "creator" if owner else "administrator"

    @staticmethod
    def user(user_id: int, first_name: str = "Trader", username: str | None = None, language_code: str = "en"):
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}
        if username:
            user["username"] = username
        return user

    def private_chat(self, user: dict) -> dict:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return self._register(chat)

    def group(self, chat_id: int, title: str = "Degens") -> dict:
        return self._register({"id": chat_id, "type": "group", "title": title})

    def supergroup(self, chat_id: int, title: str = "Liquidation Watch", is_forum: bool = False) -> dict:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        if is_forum:
            chat["is_forum"] = True
        return self._register(chat)

    def _register(self, chat: dict) -> dict:
        self._chats[chat["id"]] = chat
        return chat

    def push_update(self, update: dict) -> dict:
        """Queue a raw update (an update_id is added when missing)."""
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._notify()
        return update

    def push_message(
        self,
        chat: dict,
        user: dict | None,
        text: str,
        *,
        sender_chat: dict | None = None,
        thread_id: int | None = None,
    ) -> dict:
        """A user (or, with sender_chat, an anonymous admin) writes `text` in `chat`."""
        message = self._message(chat, user if user is not None else GROUP_ANONYMOUS_BOT)
        message["text"] = text
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        if sender_chat is not None:
            message["sender_chat"] = sender_chat
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        self.push_update({"message": message})
        return message

    def push_callback(self, message: dict, user: dict, data: str) -> dict:
        """`user` presses the inline button carrying `data` under the bot's `message`."""
        query = {
            "id": str(next(self._callback_ids)),
            "from": user,
            "message": self._messages.get((message["chat"]["id"], message["message_id"]), message),
            "chat_instance": f"ci{message['chat']['id']}",
            "data": data,
        }
        self.push_update({"callback_query": query})
        return query

    def push_my_chat_member(self, chat: dict, user: dict, old: str, new: str) -> dict:
        """The bot's own membership changed (kicked from a group, blocked in private)."""
        member = {"chat": chat, "from": user, "date": int(time.time())}
        member["old_chat_member"] = {"status": old, "user": self.bot}
        member["new_chat_member"] = {"status": new, "user": self.bot, **({"until_date": 0} if new == "kicked" else {})}
        return self.push_update({"my_chat_member": member})

    # -- what the test inspects -------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """The first `count` calls of `method`, waiting for them to arrive."""

        def enough() -> bool:
            return len(self.calls_of(method)) >= count

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(enough), timeout)
            except TimeoutError:
                seen = [call.method for call in self.calls]
                raise AssertionError(f"expected {count} {method} call(s) within {timeout}s; got {seen}") from None
        return self.calls_of(method)[:count]

    def message(self, chat_id: int, message_id: int) -> dict:
        return self._messages[(chat_id, message_id)]

    # -- HTTP -----------------------------------------------------------------

    def _notify(self) -> None:
        async def notify():
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        if path.startswith("/file/"):
            return web.Response(status=404)
        head, _, method = path.lstrip("/").partition("/")
        token = head.removeprefix("bot")
        params, files = await self._params(request)
        call = Call(method, params, files, token)
        self.calls.append(call)
        self._notify()
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            self._injected_failure(method, call.chat_id)
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = handler(params, files)
            if asyncio.iscoroutine(result):
                result = await result
            call.result = result
            body = {"ok": True, "result": result}
        except ApiError as error:
            call.status = error.status
            body = {"ok": False, "error_code": error.status, "description": error.description}
            if error.parameters:
                body["parameters"] = error.parameters
        finally:
            self._notify()
        return web.json_response(body, status=call.status)

    @staticmethod
    async def _params(request: web.Request) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
        params: dict[str, str] = dict(request.query)
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "application/json":  # PTB never does this; Telegram accepts it
            body = await request.json()
            params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = (value.filename, value.file.read())
                else:
                    params[key] = value
        return params, files

    def _injected_failure(self, method: str, chat_id: int | None) -> None:
        queue = [f for f in self._failures.get(method, ()) if f.chat_id in (None, chat_id)]
        if not queue:
            return
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            self._failures[method].remove(failure)
        parameters = {"retry_after": failure.retry_after} if failure.retry_after is not None else None
        raise ApiError(failure.status, failure.description, parameters)

    # -- Bot API methods ----------------------------------------------------

    def _api_getMe(self, params, files):
        return self.bot

    def _api_deleteWebhook(self, params, files):
        self.webhook = None
        if params.get("drop_pending_updates") == "true":
            self._updates.clear()
        return True

    def _api_setWebhook(self, params, files):
        self.webhook = params
        return True

    def _api_setMyCommands(self, params, files):
        scope = params.get("scope", '{"type": "default"}')
        self.commands[(json.loads(scope)["type"], params.get("language_code", ""))] = json.loads(params["commands"])
        return True

    async def _api_getUpdates(self, params, files):
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        allowed = json.loads(params["allowed_updates"]) if params.get("allowed_updates") else None
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")

        def pending() -> list[dict]:
            if offset:
                self._updates[:] = [u for u in self._updates if u["update_id"] >= offset]
            if allowed:
                self._updates[:] = [u for u in self._updates if set(u) - {"update_id"} <= set(allowed)]
            return self._updates[:limit]

        if not pending() and timeout > 0 and not self._closing:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(pending()) or self._closing), timeout)
                except TimeoutError:
                    pass
        return pending()

    def _chat(self, params) -> dict:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, ValueError):
            raise ApiError(400, "Bad Request: chat_id is empty") from None
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _message(self, chat: dict, sender: dict) -> dict:
        ids = self._message_ids.setdefault(chat["id"], itertools.count(1))
        message = {"message_id": next(ids), "date": int(time.time()), "chat": chat, "from": sender}
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    @staticmethod
    def _markup(params) -> dict | None:
        markup = json.loads(params["reply_markup"]) if params.get("reply_markup") else None
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                if len(button.get("callback_data", "").encode()) > CALLBACK_DATA_LIMIT:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _styled_text(self, params, key: str, limit: int, too_long: str) -> str | None:
        if key not in params:
            return None
        shown = parse_html(params[key]) if params.get("parse_mode") == "HTML" else params[key]
        if utf16_len(shown) > limit:
            raise ApiError(400, f"Bad Request: {too_long}")
        return shown

    def _reply_checks(self, chat: dict, params) -> None:
        reply = json.loads(params["reply_parameters"]) if params.get("reply_parameters") else None
        if reply and (chat["id"], reply["message_id"]) not in self._messages:
            if not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")

    def _api_sendMessage(self, params, files):
        chat = self._chat(params)
        text = self._styled_text(params, "text", MESSAGE_LIMIT, "message is too long")
        if not text or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        self._reply_checks(chat, params)
        markup = self._markup(params)
        message = self._message(chat, self.bot)
        message["text"] = text
        message["html"] = params["text"]  # not in Telegram's answer; handy for assertions
        if markup:
            message["reply_markup"] = markup
        return message

    def _api_sendPhoto(self, params, files):
        chat = self._chat(params)
        if "photo" not in files and "photo" not in params:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        caption = self._styled_text(params, "caption", CAPTION_LIMIT, "message caption is too long")
        self._reply_checks(chat, params)
        markup = self._markup(params)
        message = self._message(chat, self.bot)
        size = len(files["photo"][1]) if "photo" in files else 0
        message["photo"] = [
            {"file_id": f"photo{message['message_id']}", "file_unique_id": f"u{message['message_id']}",
             "width": 800, "height": 400, "file_size": size}
        ]
        if caption:
            message["caption"] = caption
        if markup:
            message["reply_markup"] = markup
        return message

    def _api_editMessageText(self, params, files):
        chat = self._chat(params)
        message = self._messages.get((chat["id"], int(params.get("message_id", 0))))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = self._styled_text(params, "text", MESSAGE_LIMIT, "MESSAGE_TOO_LONG")
        markup = self._markup(params)
        if text == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        message = {**message, "text": text, "html": params["text"], "edit_date": int(time.time())}
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _api_answerCallbackQuery(self, params, files):
        if "callback_query_id" not in params:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    def _api_getChatMember(self, params, files):
        chat = self._chat(params)
        user_id = int(params["user_id"])
        user = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        status = self._admins.get(chat["id"], {}).get(user_id, "member")
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status == "administrator":
            rights = ("can_be_edited can_manage_chat can_delete_messages can_manage_video_chats can_restrict_members "
                      "can_promote_members can_change_info can_invite_users can_post_stories can_edit_stories "
                      "can_delete_stories").split()
            return {"status": "administrator", "user": user, "is_anonymous": False, **dict.fromkeys(rights, False),
                    "can_manage_chat": True}
        return {"status": "member", "user": user}

