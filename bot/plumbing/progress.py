"""Progress of long-running commands (`replay` in bytes read, `migrate` in rows
copied), drawn by rich at a terminal: bar, share, amount, rate, time left and a
count. Nothing is drawn when the stream is not a terminal (a pipe, a log file)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

# update(done, total, count): done and total in bytes, or in rows (`in_rows`)
ProgressUpdate = Callable[[int, int, int], None]


@contextmanager
def progress_bar(title: str, counted: str, stream: TextIO, in_rows: bool = False) -> Iterator[ProgressUpdate | None]:
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
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    amount = (
        (MofNCompleteColumn(), TextColumn("rows {task.fields[rate]}"))
        if in_rows else (DownloadColumn(), TransferSpeedColumn())
    )
    columns = (
        TextColumn(title),
        BarColumn(),
        TaskProgressColumn(),
        *amount,
        TimeRemainingColumn(),
        TextColumn(f"{{task.fields[count]:,}} {counted}"),
    )
    with Progress(*columns, console=Console(file=stream)) as progress:
        task = progress.add_task(title, total=None, count=0, rate="")

        def update(done: int, total: int, count: int) -> None:
            progress.update(task, completed=done, total=total, count=count)
            speed = progress.tasks[0].speed
            if in_rows and speed:
                progress.update(task, rate=f"{speed:,.0f}/s")

        yield update
