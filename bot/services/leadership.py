"""This process's role among replicas of one database: leader or follower.

The leader runs what must run once (the venue feeds and ingest, the market poller,
alert evaluation, the digest scheduler, Telegram long polling); every replica answers
commands. On SQLite there is exactly one runner (bot.storage.runlock), and it is
always the leader. PostgreSQL's election (an advisory lock held on a dedicated
connection, issue 13 §2) is what will call `become` as it wins or loses the lock;
`/healthz` and `/metrics` read the role and count the changes.
"""

from __future__ import annotations

import logging
from typing import Literal

log = logging.getLogger(__name__)

Role = Literal["leader", "follower"]


class Leadership:
    def __init__(self, role: Role = "leader") -> None:
        self.role: Role = role
        self.changes = 0  # times the role changed since start

    @property
    def is_leader(self) -> bool:
        return self.role == "leader"

    def become(self, role: Role) -> None:
        if role == self.role:
            return
        log.warning("this replica is now the %s (was the %s)", role, self.role)
        self.role = role
        self.changes += 1
