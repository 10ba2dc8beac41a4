"""The outbox: alerts and digests are sent exactly once, across restarts and replicas.

Writing: a service adds each message (the platform-neutral Reply, as JSON) and
its sends ((idempotency key, chat) pairs) inside the transaction that records
the state change they follow from (an alert rule's state, a digest's last-sent
date), then calls `wake()`. A crash before that commit sends nothing and leaves
the state unchanged; after it, the sends are in the database and some sender
will make them.

A big-order alert grows while its group collects orders: `put` writes it at the
group's first order and replaces its message as orders join, with a due time a
sender waits for (the group's end plus a grace, which the leader shortens to
"now" when it closes the group). A leader killed mid-group leaves the alert as
last written, and the next sender sends it after that due time.

Sending: one pump per process claims rows (a lease of `lease_ms`, renewed while
they wait in the Notifier's queue), hands them to the Notifier (alerts urgent,
ahead of digests; per platform at most `in_flight_rows` alerts, and digests in what
the alerts leave of that share, so the leases of a 10k-chat digest fan-out are not
all ticking in one queue, such a fan-out never keeps an alert in the table, and a
slow platform never takes the others' room; claimed alerts bring their chats' other
waiting alerts along, up to as many again, for the Notifier to send together), and
records each row as done ("sent", or "failed" once the Notifier gave up on it) right
after the platform answered: a finished send wakes the pump, which records every send
finished within `RECORD_EVERY_S` (50 ms) of it in one statement. PostgreSQL claims
with `FOR UPDATE SKIP LOCKED`, so two senders never take the same row.

Guarantees:
- Never lost: a row is done only after the platform answered; a sender that
  dies (or loses its connection) leaves its claims to run out, and the next
  sender's pass takes them. On SQLite the one runner (bot.storage.runlock)
  releases an earlier process's claims at start instead of waiting.
- Never twice for one key in the normal path: keys are unique in the table,
  rows are claimed by one sender at a time and done rows are never claimed.
- At least once across a crash: a send the platform accepted in the moment
  before its row was recorded done (at most 50 ms and one database round trip
  after the answer, plus the sends in flight: the Notifier's senders per platform, each
  message up to `MAX_JOINED` alerts of one chat) is sent again by the next sender. Neither platform offers an idempotency key for sendMessage or
  channel messages, so this window can be made small, not closed.
- Leases compare the replicas' wall clocks: keep them NTP-synchronized (skew far
  below `lease_ms`).

Only the leader adds and sends (in a replica set, the leader runs alert
evaluation and the digest scheduler, and the pump with them), so the Notifier's
pacing, which follows Telegram's and Discord's limits per bot token, stays the
one pacing of that token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial

from bot.core.models import DAY_MS, HOUR_MS
from bot.plumbing.clock import wall_clock_ms
from bot.replies.codec import reply_from_json, reply_to_json
from bot.replies.model import Reply
from bot.services.metrics import Submitter
from bot.services.notifier import platform_of
from bot.storage.database import Transaction
from bot.storage.outbox_store import Claimed, OutboxStore
from bot.storage.store import Store

log = logging.getLogger(__name__)

# A claim lasts this long unless renewed (every third of it while queued): after a
# leader dies, its successor sends what it held after at most this long.
LEASE_MS = 30_000
POLL_S = 1.0  # without a wake-up, a pass this often (claims that ran out, other writers)
IN_FLIGHT_ROWS = 256  # per platform: claimed and handed to the Notifier, not yet answered
# Answers are recorded together when they come this close (a digest fan-out answers 25 a
# second: one statement for a few, not one each); a row added goes out without this wait.
RECORD_EVERY_S = 0.05
KEEP_DONE_MS = 2 * DAY_MS  # done rows (and their keys) kept this long
PRUNE_EVERY_MS = HOUR_MS


def _ignore(kind: str, ok: bool) -> None:
    pass


class Outbox:
    """The outbox of one process: `add` inside a transaction, then `wake()`;
    `run()` while the bot runs (a `wake()` starts the pump too)."""

    def __init__(
        self,
        store: Store,
        notifier: Submitter,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
        lease_ms: int = LEASE_MS,
        poll_s: float = POLL_S,
        in_flight_rows: int = IN_FLIGHT_ROWS,
        on_done: Callable[[str, bool], None] = _ignore,
    ) -> None:
        self._rows = OutboxStore(store)
        self._backend = store.db.backend
        self._notifier = notifier
        self._now_ms = now_ms
        self._lease_ms = lease_ms
        self._poll_s = poll_s
        self._in_flight_rows = in_flight_rows
        self._on_done = on_done
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"  # claimed_by
        self._in_flight: dict[int, Claimed] = {}
        self._handed: dict[int, asyncio.Future] = {}  # row id -> its send in the Notifier
        self._finished: list[tuple[Claimed, bool]] = []  # answered, not yet recorded
        self._waiters: dict[str, list[asyncio.Future]] = {}
        self._wake = asyncio.Event()  # something to do: sends added, or answered
        self._added = asyncio.Event()  # sends added: no gathering of answers first
        self._pass_lock = asyncio.Lock()
        self._pump: asyncio.Task | None = None
        self._renewed_ms = 0
        self._pruned_ms = 0
        self._settled_s = float("-inf")

    # -- writing ------------------------------------------------------------------

    async def add(
        self, tx: Transaction, reply: Reply, sends: Iterable[tuple[str, str]], kind: str, urgent: bool
    ) -> None:
        """`reply` to each chat of `sends` ((idempotency key, chat key) pairs), inside `tx`;
        `wake()` once it has committed."""
        await self._rows.add(tx, reply_to_json(reply), list(sends), kind, urgent, self._now_ms())

    async def put(
        self, tx: Transaction, reply: Reply, key: str, chat_key: str, kind: str, urgent: bool, due_ms: int
    ) -> bool:
        """`reply` as the one send of `key` to `chat_key`, claimable from `due_ms`, inside `tx`:
        added, or replacing the message while it is not claimed yet. False when a sender
        claimed it already (it goes out as it stood)."""
        return await self._rows.put(tx, reply_to_json(reply), key, chat_key, kind, urgent, self._now_ms(), due_ms)

    def wake(self) -> None:
        """Something was added: claim and send it now."""
        self._added.set()
        self._wake.set()
        self._ensure_pump()

    async def delivered(self, keys: Iterable[str]) -> int:
        """Wait until the sends of `keys` are done (by whichever sender); how many were sent."""
        loop = asyncio.get_running_loop()
        futures = []
        for key in keys:
            futures.append(loop.create_future())
            self._waiters.setdefault(key, []).append(futures[-1])
        if not futures:
            return 0
        self.wake()
        return sum(await asyncio.gather(*futures))

    async def backlog(self) -> int:
        """Sends not done yet, of every sender (the /metrics gauge)."""
        return await self._rows.backlog()

    # -- sending ------------------------------------------------------------------

    async def run(self) -> None:
        """The pump, until cancelled (a leader's term: run it with what only the leader
        runs). On SQLite, claims an earlier process left are released first."""
        if self._backend == "sqlite":
            released = await self._rows.release_all()
            if released:
                log.info("outbox: %d send(s) an earlier run had claimed are sent now", released)
        self._ensure_pump()
        try:
            await self._pump
        finally:  # cancelled (this replica no longer leads, or it stops): no more claims
            await self.close()

    async def close(self) -> None:
        """Stop the pump, record the sends answered so far and withdraw the ones still
        queued (close it before the Notifier). Every unfinished row keeps its claim
        until the lease runs out (one being sent at this moment may or may not reach
        the platform), then the next sender takes it."""
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        try:
            async with self._pass_lock:
                await self._record_finished(self._now_ms())
        except Exception:  # the database is away: those sends are made again after their lease
            log.warning("outbox: %d answered send(s) could not be recorded at close", len(self._finished))
        # Sends still waiting in the Notifier's queue are withdrawn (it skips them): after
        # this process stops leading, only the next leader makes them, once.
        for future in list(self._handed.values()):
            future.cancel()
        self._in_flight.clear()  # no longer renewed: a later term of this process claims afresh

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._pump_forever(), name="outbox")

    async def _pump_forever(self) -> None:
        while True:
            self._wake.clear()
            self._added.clear()
            try:
                await self.send_pending()
            except Exception:  # the database went away: the next pass tries again
                if asyncio.current_task().cancelling():
                    raise  # an error raised on the way out of a cancelled statement: stop
                log.exception("outbox: a pass failed")
            # asyncio.timeout, not wait_for: on 3.11 a wait_for whose event is set as the pump
            # is cancelled can swallow the cancellation, and close() then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()
            if not self._added.is_set():  # only answers so far: gather a few more for one statement
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECORD_EVERY_S):
                        await self._added.wait()

    async def send_pending(self) -> int:
        """One pass: record the sends answered since the last, renew the claims still
        queued, claim what may be claimed and hand it to the Notifier. Returns how many
        rows it claimed."""
        async with self._pass_lock:
            now_ms = self._now_ms()
            await self._record_finished(now_ms)
            if self._in_flight and now_ms - self._renewed_ms >= self._lease_ms // 3:
                await self._rows.renew(self.owner, list(self._in_flight), now_ms + self._lease_ms)
                self._renewed_ms = now_ms
            # Per platform: a platform sending slowly (its pacing, its 429s) fills its own
            # share, never the room of the others. Alerts have the share to themselves, and
            # digests what the alerts leave of it: a digest fan-out filling a platform's share
            # never keeps an alert in the table until digests are answered.
            held = Counter(platform_of(row.chat_key) for row in self._in_flight.values())
            held_urgent = Counter(platform_of(row.chat_key) for row in self._in_flight.values() if row.urgent)
            claimed = []
            for platform, count in sorted(held.items()):
                claimed_urgent = await self._rows.claim(
                    self.owner, now_ms, self._lease_ms, self._in_flight_rows - held_urgent[platform],
                    platform=platform, urgent=True,
                )
                claimed += claimed_urgent + await self._rows.claim(
                    self.owner, now_ms, self._lease_ms, self._in_flight_rows - count - len(claimed_urgent),
                    platform=platform, urgent=False,
                )
            claimed += await self._rows.claim(  # platforms with nothing in flight
                self.owner, now_ms, self._lease_ms, self._in_flight_rows, other_than=sorted(held)
            )
            if claimed and not self._in_flight:
                self._renewed_ms = now_ms  # the claim itself set a fresh lease
            replies: dict[int, Reply | None] = {}
            for row in claimed:
                if row.message_id not in replies:
                    replies[row.message_id] = self._decoded(row)
                reply = replies[row.message_id]
                self._in_flight[row.row_id] = row
                if reply is None:
                    self._finished.append((row, False))
                    continue
                (future,) = self._notifier.submit([row.chat_key], reply, urgent=row.urgent)
                self._handed[row.row_id] = future
                future.add_done_callback(partial(self._answered, row))
            # A look-up of waited-for keys at most once per poll (a 10k-chat digest waits on 10k keys).
            if self._waiters and time.monotonic() - self._settled_s >= self._poll_s:
                self._settled_s = time.monotonic()
                await self._settle_waiters()
            if now_ms - self._pruned_ms >= PRUNE_EVERY_MS:
                self._pruned_ms = now_ms
                await self._rows.prune(now_ms - KEEP_DONE_MS)
            return len(claimed)

    @staticmethod
    def _decoded(row: Claimed) -> Reply | None:
        try:
            return reply_from_json(row.body)
        except (ValueError, KeyError, TypeError):
            log.error("outbox: message %d cannot be read; its sends are recorded failed", row.message_id)
            return None

    def _answered(self, row: Claimed, future: asyncio.Future) -> None:
        self._handed.pop(row.row_id, None)
        if future.cancelled():
            return  # withdrawn at close: its claim runs out and the next sender makes it
        self._finished.append((row, bool(future.result())))
        self._wake.set()

    async def _record_finished(self, now_ms: int) -> None:
        finished, self._finished = self._finished, []
        if not finished:
            return
        try:
            await self._rows.finish([(row.row_id, "sent" if ok else "failed") for row, ok in finished], now_ms)
        except BaseException:
            self._finished[:0] = finished  # recorded at the next pass
            raise
        for row, ok in finished:
            self._in_flight.pop(row.row_id, None)
            self._on_done(row.kind, ok)
            for waiter in self._waiters.pop(row.idem_key, ()):
                if not waiter.done():
                    waiter.set_result(ok)

    async def _settle_waiters(self) -> None:
        """Waiters for sends another sender made (or keys never added) learn it from the table."""
        in_flight_keys = {row.idem_key for row in self._in_flight.values()}
        elsewhere = [key for key in self._waiters if key not in in_flight_keys]
        if not elsewhere:
            return
        outcomes = await self._rows.outcomes(elsewhere)
        for key in elsewhere:
            if key in outcomes and outcomes[key] is None:
                continue  # queued or claimed elsewhere: not done yet
            for waiter in self._waiters.pop(key, ()):
                if not waiter.done():
                    waiter.set_result(outcomes.get(key) == "sent")
