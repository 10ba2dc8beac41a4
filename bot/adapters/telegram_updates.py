"""How the Telegram adapter takes updates: one chat's in order, different chats at once.

python-telegram-bot handles updates one at a time by default, so a group whose
replies wait on Telegram's 20-messages-a-minute pacing held up every other
chat (35 commands in one group delayed a private /help by 45 s). With this
processor each chat has its own queue and worker: a chat's updates are handled
in the order they came, and a backlog in one chat never delays another. At
most `max_concurrent` updates are handled at once; the others wait in their
chat's queue, where stopping can drop them (`drop_queued`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

MAX_CONCURRENT_UPDATES = 32


def _chat_of(update: object) -> int | None:
    chat = update.effective_chat if isinstance(update, Update) else None
    return chat.id if chat is not None else None


class ChatOrderedUpdates(BaseUpdateProcessor):
    """A PTB update processor: per-chat queues and workers (see the module docstring)."""

    def __init__(self, max_concurrent: int = MAX_CONCURRENT_UPDATES) -> None:
        # PTB's own limit only bounds hand-offs, which return at once (ours bounds the work);
        # above 1 it hands updates over without waiting for the previous one.
        super().__init__(max_concurrent_updates=max(2, max_concurrent))
        self._max_concurrent = max_concurrent
        self._slots: asyncio.Semaphore | None = None
        self._queues: dict[int | None, deque[Coroutine[Any, Any, Any]]] = {}
        self._workers: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones
        self._idle = asyncio.Event()
        self._idle.set()

    async def initialize(self) -> None:
        self._slots = asyncio.Semaphore(self._max_concurrent)

    async def shutdown(self) -> None:
        self.drop_queued()
        await self.idle()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = _chat_of(update)
        queue = self._queues.get(chat)
        if queue is None:
            queue = self._queues[chat] = deque()
            worker = asyncio.create_task(self._work(chat, queue), name=f"telegram updates of chat {chat}")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
            self._idle.clear()
        queue.append(coroutine)

    async def _work(self, chat: int | None, queue: deque[Coroutine[Any, Any, Any]]) -> None:
        try:
            while queue:
                async with self._slots:
                    if not queue:  # dropped while waiting for a slot
                        break
                    # PTB's process_update hands handler errors to the error handlers: it does not raise.
                    await queue.popleft()
        finally:
            del self._queues[chat]
            for coroutine in queue:  # cancelled: never leave a coroutine un-awaited and unclosed
                coroutine.close()
            if not self._queues:
                self._idle.set()

    async def idle(self) -> None:
        """Returns once every queued update has been handled (or dropped)."""
        await self._idle.wait()

    def drop_queued(self) -> int:
        """Drop the updates waiting in their chat's queue (those being handled finish); how many."""
        dropped = 0
        for queue in self._queues.values():
            while queue:
                queue.pop().close()
                dropped += 1
        return dropped
