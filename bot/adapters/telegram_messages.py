"""A Reply as Telegram Bot API messages, for the Telegram adapter.

- The rendered HTML parts go out in order, the first as a reply to the command;
  `Reply.image` goes out first with sendPhoto, its caption the first part when
  that fits.
- `Reply.actions` become inline buttons on the last message. A button carries
  its command as callback data; `offered` tells whether pressed data is on the
  message's own keyboard, since a client can send any callback data.
- `is_gone` reads an error as "the chat blocked or removed the bot".
"""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    MaybeInaccessibleMessage,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.replies.layout import utf16_len
from bot.replies.model import Reply
from bot.replies.render_telegram import render_telegram

log = logging.getLogger(__name__)

CAPTION_LIMIT_UTF16 = 1024  # measured on our HTML, which is longer than the parsed caption
CALLBACK_DATA_LIMIT_BYTES = 64
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# BadRequest descriptions that mean the chat is gone for good (403s always do).
GONE_DESCRIPTIONS = ("chat not found", "group chat was deactivated", "user is deactivated", "peer_id_invalid")


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's actions as one row of buttons (one whose command is over Telegram's
    64 bytes of callback data is left out, with a log line)."""
    buttons = []
    for action in reply.actions:
        if len(action.command.encode()) > CALLBACK_DATA_LIMIT_BYTES:
            log.warning("telegram: button %r dropped: its command is over 64 bytes", action.label)
            continue
        buttons.append(InlineKeyboardButton(action.label, callback_data=action.command))
    return InlineKeyboardMarkup([buttons]) if buttons else None


def offered(message: MaybeInaccessibleMessage, data: str) -> bool:
    """Whether `data` is on one of the message's own buttons. A client can send any
    callback data; Telegram fills in the message, so its keyboard is what we offered."""
    markup = message.reply_markup if isinstance(message, Message) else None
    return markup is not None and any(b.callback_data == data for row in markup.inline_keyboard for b in row)


def is_gone(error: TelegramError) -> bool:
    if isinstance(error, Forbidden):
        return True
    return isinstance(error, BadRequest) and any(d in error.message.lower() for d in GONE_DESCRIPTIONS)


async def send_reply(
    bot: Bot, chat_id: int, reply: Reply, reply_to: int | None = None, thread_id: int | None = None,
    *, pacing: object = None,
) -> None:
    """Send `reply` as photo and/or messages, in order; `pacing` is the rate limiter's
    argument for each call. Raises TelegramError on failure."""
    parts = render_telegram(reply)
    buttons = keyboard(reply)
    reply_parameters = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
    if reply.image is not None:
        caption = parts[0] if parts and utf16_len(parts[0]) <= CAPTION_LIMIT_UTF16 else None
        if caption is not None:
            parts = parts[1:]
        await bot.send_photo(
            chat_id,
            InputFile(reply.image.png, filename=reply.image.filename),
            caption=caption,
            parse_mode=ParseMode.HTML if caption else None,
            reply_parameters=reply_parameters,
            reply_markup=None if parts else buttons,
            message_thread_id=thread_id,
            rate_limit_args=pacing,
        )
        reply_parameters = None
    for index, part in enumerate(parts):
        await bot.send_message(
            chat_id,
            part,
            parse_mode=ParseMode.HTML,
            reply_parameters=reply_parameters if index == 0 else None,
            reply_markup=buttons if index == len(parts) - 1 else None,
            link_preview_options=NO_PREVIEW,
            message_thread_id=thread_id,
            rate_limit_args=pacing,
        )
