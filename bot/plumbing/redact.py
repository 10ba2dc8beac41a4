"""Keep secrets (bot tokens) out of log output.

httpx logs request URLs and Telegram URLs contain the token; exceptions can
quote URLs too. A record that mentions a secret is rendered, scrubbed and
frozen; others pass untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "[REDACTED]"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            record.msg, record.args = self.scrub(message), None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            if any(secret in formatted for secret in self._secrets):
                record.exc_text, record.exc_info = self.scrub(formatted), None
        return True
