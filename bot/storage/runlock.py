"""One `liqbot run` per SQLite database.

Two runners on one database would record every feed twice over, send each alert and
digest twice (each keeps its own cooldowns and "last sent" reads race), and fight over
Telegram's long polling (409 Conflict). So `liqbot run` holds an exclusive lock on a
file beside the database (`<database>.run.lock`, with the holder's pid in it) for as
long as it runs, taken before the database is opened; a second `run` on the same
database refuses to start with one line.

Why a lock file and not SQLite's own `locking_mode=EXCLUSIVE`: that would also shut
out `console`, `doctor`, `backup`, `health` and `replay`, which are meant to work
beside a running bot (SQLite's WAL and busy timeout keep them consistent). `flock`
locks belong to the open file, so the kernel releases them however the process ends
(kill -9 included): a left-over lock file never blocks the next start. Like SQLite's
own locking, it needs a local file system (not NFS). On a platform without `fcntl`
(Windows) there is no lock, and the rule is the operator's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None


class AlreadyRunning(RuntimeError):
    """Another process holds the database's runner lock; the message is one line."""


def lock_path(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".run.lock")


@contextlib.contextmanager
def single_runner(db_path: str | Path) -> Iterator[None]:
    """Hold the runner lock of the SQLite database at `db_path` for the `with` block."""
    if fcntl is None:
        yield
        return
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Opened without truncating: the holder's pid must stay readable until we own the lock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise AlreadyRunning(
                f"another liqbot run (pid {holder}) is using {db_path}; one runner per SQLite database "
                f"(stop it first; console, doctor, backup and replay work beside it)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
