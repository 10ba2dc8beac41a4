"""What a chat adapter tells the notifier when a destination no longer exists, or refuses a message."""

from __future__ import annotations


class UndeliverableError(Exception):
    """A send that retrying cannot make succeed: which chat, and the platform's reason."""

    def __init__(self, chat_key: str, reason: str) -> None:
        super().__init__(f"{chat_key}: {reason}")
        self.chat_key = chat_key
        self.reason = reason


class DestinationGone(UndeliverableError):
    """The chat blocked or removed the bot (Telegram 403, Discord unknown channel).

    The notifier marks the destination inactive instead of retrying forever.
    """


class DeliveryRefused(UndeliverableError):
    """The platform refused this message itself (Telegram 400 Bad Request, Discord 400
    Invalid Form Body): the chat is there, and the same message sent again would be
    refused again, so the notifier does not retry it."""
