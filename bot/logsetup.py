"""Logging set-up: one format, secrets redacted from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from bot.plumbing.redact import RedactSecrets


def install_logging(level: str, secrets: Iterable[str] = (), stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO, and Telegram URLs carry the token.
    for noisy in ("httpx", "httpcore", "websockets", "apscheduler", "telegram.ext", "discord"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
