"""Progress of long-running commands (`replay`; later `migrate` and backfills),
drawn by rich at a terminal: bar, share, bytes, rate, time left and a count.
Nothing is drawn when the stream is not a terminal (a pipe, a log file)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

# update(done_bytes, total_bytes, count)
ProgressUpdate = Callable[[int, int, int], None]


@contextmanager
def progress_bar(title: str, counted: str, stream: TextIO) -> Iterator[ProgressUpdate | None]:
    """An `update` to call while the block runs, or None when `stream` is not a terminal.

    `counted` names what the count is ("liquidations stored")."""
    if not stream.isatty():
        yield None
        return
    # Imported here: only a terminal draws, and start-up stays quick without it.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn(title),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn(f"{{task.fields[count]:,}} {counted}"),
    )
    with Progress(*columns, console=Console(file=stream)) as progress:
        task = progress.add_task(title, total=None, count=0)

        def update(done_bytes: int, total_bytes: int, count: int) -> None:
            progress.update(task, completed=done_bytes, total=total_bytes, count=count)

        yield update
