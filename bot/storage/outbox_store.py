"""The outbox of alerts and digests in the liqbot database (tables from migrations 0012, 0013).

A message body (text the service encodes: a Reply as JSON) is stored once per
distinct content; each send of it to one chat is a row keyed by its idempotency
key, added inside the caller's transaction (the one that records the state
change the send follows from). A key already present is skipped, so two writers
of the same send (a leader and its successor re-evaluating the same moment)
leave one row.

Senders claim rows: a claim sets `claimed_until_ms` (the lease) and
`claimed_by`, in one statement that on PostgreSQL locks the candidate rows with
`FOR UPDATE SKIP LOCKED` (two senders never take the same row; neither waits for
the other). On SQLite the one process that may run (bot.storage.runlock) claims
with the same plain UPDATE. A row whose lease ran out unfinished is claimable
again: its sender died or lost its connection. A row with `due_ms` is claimable
only from then on; until it is claimed, `put` may replace its message (a
big-order alert growing as orders join its group).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.storage.database import Transaction
from bot.storage.sibling import SiblingStore

_KEYS_PER_QUERY = 1_000  # bound parameters per statement (PostgreSQL allows 32,767)


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claimed send: the row, its chat and its message body."""

    row_id: int
    idem_key: str
    chat_key: str
    kind: str
    urgent: bool
    message_id: int
    body: str


class OutboxStore(SiblingStore):
    async def add(
        self,
        tx: Transaction,
        body: str,
        sends: Sequence[tuple[str, str]],
        kind: str,
        urgent: bool,
        now_ms: int,
        due_ms: int | None = None,
    ) -> None:
        """One message and its sends ((idempotency key, chat key) each), inside `tx`;
        claimable from `due_ms` (None: at once)."""
        if not sends:
            return
        (message_id,) = await tx.fetchone(
            "INSERT INTO outbox_messages (body, created_ms) VALUES (?, ?) RETURNING id", (body, now_ms)
        )
        await tx.executemany(
            "INSERT INTO outbox (idem_key, chat_key, message_id, kind, urgent, created_ms, due_ms)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (idem_key) DO NOTHING",
            [(key, chat_key, message_id, kind, int(urgent), now_ms, due_ms) for key, chat_key in sends],
        )

    async def put(
        self, tx: Transaction, body: str, key: str, chat_key: str, kind: str, urgent: bool, now_ms: int, due_ms: int
    ) -> bool:
        """The one send `key` with this message, claimable from `due_ms`: added, or (not yet
        claimed) its message and due time replaced. False when it was claimed already
        (it is being sent, or was, as it stood)."""
        # On PostgreSQL the row is locked until `tx` ends: a claim skips it meanwhile (SKIP
        # LOCKED) and takes it, revised, after; a claim that came first makes this see it claimed.
        lock = " FOR UPDATE" if self._db.backend == "postgresql" else ""
        found = await tx.fetchone(f"SELECT message_id, claimed_until_ms, done_ms FROM outbox WHERE idem_key = ?{lock}", (key,))
        if found is None:
            await self.add(tx, body, [(key, chat_key)], kind, urgent, now_ms, due_ms)
            return True
        message_id, claimed_until_ms, done_ms = found
        if claimed_until_ms is not None or done_ms is not None:
            return False
        await tx.execute("UPDATE outbox_messages SET body = ? WHERE id = ?", (body, message_id))
        await tx.execute("UPDATE outbox SET due_ms = ? WHERE idem_key = ?", (due_ms, key))
        return True

    async def claim(
        self, owner: str, now_ms: int, lease_ms: int, limit: int,
        platform: str | None = None, other_than: Sequence[str] = (), urgent: bool | None = None,
    ) -> list[Claimed]:
        """Up to `limit` unfinished rows nobody holds (urgent ones first, oldest first),
        leased to `owner` until `now_ms + lease_ms`: only chats of `platform` if given,
        none of the platforms `other_than`, only urgent or only ordinary rows if `urgent`
        is given. With the urgent ones come the other urgent rows waiting for the same
        chats (up to `limit` more), which the Notifier sends in one message with them: a
        chat's alerts of a cascade leave together."""
        if limit <= 0:
            return []
        skip_locked = " FOR UPDATE SKIP LOCKED" if self._db.backend == "postgresql" else ""
        # A platform's chat keys are the range ["platform:", "platform;"): exact on both backends.
        among = (" AND chat_key >= ? AND chat_key < ?" if platform else "") + (
            " AND NOT (chat_key >= ? AND chat_key < ?)" * len(other_than)
        ) + ("" if urgent is None else f" AND urgent = {int(urgent)}")
        among_args = [bound for name in ([platform] if platform else []) + list(other_than) for bound in (f"{name}:", f"{name};")]
        claim = (
            "UPDATE outbox SET claimed_until_ms = ?, claimed_by = ?, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM outbox WHERE done_ms IS NULL"
            " AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?) AND (due_ms IS NULL OR due_ms <= ?){among}"
            f" ORDER BY urgent DESC, id LIMIT ?{skip_locked})"
            " RETURNING id, idem_key, chat_key, kind, urgent, message_id"
        )
        async with self._db.transaction() as tx:
            rows = await tx.fetch(claim.format(among=among), (now_ms + lease_ms, owner, now_ms, now_ms, *among_args, limit))
            if not rows:
                return []
            urgent_chats = sorted({row[2] for row in rows if row[4]})
            if urgent_chats:
                rows += await tx.fetch(
                    claim.format(among=f" AND urgent = 1 AND chat_key IN ({','.join('?' * len(urgent_chats))})"),
                    (now_ms + lease_ms, owner, now_ms, now_ms, *urgent_chats, limit),
                )
            message_ids = sorted({row[5] for row in rows})
            marks = ",".join("?" * len(message_ids))
            bodies = dict(await tx.fetch(f"SELECT id, body FROM outbox_messages WHERE id IN ({marks})", message_ids))
        rows.sort(key=lambda row: (-row[4], row[0]))
        return [
            Claimed(row_id, key, chat_key, kind, bool(urgent), message_id, bodies[message_id])
            for row_id, key, chat_key, kind, urgent, message_id in rows
        ]

    async def renew(self, owner: str, row_ids: Sequence[int], until_ms: int) -> None:
        """Extend `owner`'s lease on rows still queued for sending (not ones another sender took over)."""
        if not row_ids:
            return
        async with self._db.transaction() as tx:
            await tx.executemany(
                "UPDATE outbox SET claimed_until_ms = ? WHERE id = ? AND claimed_by = ? AND done_ms IS NULL",
                [(until_ms, row_id, owner) for row_id in row_ids],
            )

    async def finish(self, outcomes: Sequence[tuple[int, str]], now_ms: int) -> None:
        """Record rows as done: (row id, "sent" or "failed") each."""
        if not outcomes:
            return
        async with self._db.transaction() as tx:
            await tx.executemany(
                "UPDATE outbox SET done_ms = ?, outcome = ?, claimed_until_ms = NULL WHERE id = ?",
                [(now_ms, outcome, row_id) for row_id, outcome in outcomes],
            )

    async def release_all(self) -> int:
        """Every unfinished claim made claimable: for the one SQLite runner at start,
        which knows no earlier sender is alive."""
        return await self._db.execute(
            "UPDATE outbox SET claimed_until_ms = NULL WHERE done_ms IS NULL AND claimed_until_ms IS NOT NULL"
        )

    async def backlog(self) -> int:
        """Sends not done yet (queued, or claimed and in flight)."""
        (count,) = await self._db.fetchone("SELECT COUNT(*) FROM outbox WHERE done_ms IS NULL")
        return count

    async def outcomes(self, keys: Sequence[str]) -> dict[str, str | None]:
        """Each key's outcome (None while not done); keys never added are absent."""
        found: dict[str, str | None] = {}
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = list(keys[start:start + _KEYS_PER_QUERY])
            marks = ",".join("?" * len(chunk))
            found.update(await self._db.fetch(f"SELECT idem_key, outcome FROM outbox WHERE idem_key IN ({marks})", chunk))
        return found

    async def prune(self, done_before_ms: int) -> int:
        """Delete rows done before `done_before_ms` and messages no row needs any more."""
        async with self._db.transaction() as tx:
            deleted = await tx.execute("DELETE FROM outbox WHERE done_ms < ?", (done_before_ms,))
            await tx.execute(
                "DELETE FROM outbox_messages WHERE created_ms < ?"
                " AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.message_id = outbox_messages.id)",
                (done_before_ms,),
            )
        return deleted
