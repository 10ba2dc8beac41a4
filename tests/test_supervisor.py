"""Supervised tasks: a failing task is retried with one log line per failure."""

from __future__ import annotations

import logging

from bot.services.supervisor import supervise


async def test_each_retry_is_one_line_and_the_traceback_is_logged_once_at_debug(caplog):
    attempts, delays = [], []

    async def unreachable() -> None:
        attempts.append(1)
        if len(attempts) <= 3:
            raise ConnectionError("cannot reach api.example: connection refused\nsecond line")

    async def no_wait(delay_s: float) -> None:
        delays.append(delay_s)

    caplog.set_level(logging.DEBUG, logger="bot.services.supervisor")
    await supervise("telegram", unreachable, sleep=no_wait, monotonic=lambda: 0.0)

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"telegram failed: ConnectionError: cannot reach api.example: connection refused; "
        f"retrying in {delay:.1f} s (failure {n} in a row)"
        for n, delay in enumerate(delays, start=1)
    ]
    assert all(r.exc_info is None for r in errors)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert [r.levelno for r in tracebacks] == [logging.DEBUG]
    assert len(attempts) == 4


async def test_a_permanent_error_ends_supervision_in_one_line(caplog):
    async def rejected() -> None:
        raise PermissionError("token rejected")

    await supervise("discord", rejected, permanent=(PermissionError,))
    assert [r.getMessage() for r in caplog.records] == ["discord stopped: token rejected"]

