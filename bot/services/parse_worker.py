"""Replay's parse workers: child processes that decode their shares of each
batch (bot.services.ingest), each fed on its stdin and answering on its stdout,
one length-prefixed pickle a message, in order.

Plain child processes rather than multiprocessing's: its spawn re-imports the
parent's main module in the child (for `liqbot replay`, the whole command line:
0.5-0.7 s of CPU before the first line is parsed), while this one imports the
decoder only (0.2 s); and a worker leaves when its stdin closes, which a parent killed
with SIGKILL closes too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import marshal
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO, NamedTuple

from bot.core.models import Window
from bot.feeds.market_replay import MarketPoll
from bot.feeds.recording import DecodeStats, RecordingDecoder

# One batch as a decoder sees it: its chunks in order, each with whether it is this decoder's own.
Share = list[tuple[bool, list[bytes]]]

_LENGTH_BYTES = 8
_EXIT_WAIT_S = 5.0  # for a worker to finish the shares queued and leave once its stdin is closed
# Starts a worker with the parent's module path, as multiprocessing's spawn does (-P: the
# current directory's modules never shadow the standard library's before it is set).
_BOOTSTRAP = "import sys; sys.path[:] = sys.argv[1:]; from bot.services.parse_worker import serve; serve()"


class Decoded(NamedTuple):
    """A decoder's share of a batch: the rows of its own chunk, what the decoder
    has seen up to the end of the batch, and the market polls of its chunk."""

    rows: list[tuple] | bytes  # marshalled when from a worker
    stats: DecodeStats
    spans: dict[tuple[str, str], Window]
    polls: list[MarketPoll]


class ParseWorkerError(Exception):
    """A worker failed, exited, or did not start: one line for a person."""


def has_own(share: Share) -> bool:
    return any(own for own, _lines in share)


def decoded_share(decoder: RecordingDecoder, share: Share) -> Decoded:
    rows: list[tuple] = []
    for own, lines in share:
        if own:
            rows += decoder.feed_rows(lines)
        else:
            decoder.pass_over(lines)
    # A copy of the counts: the writer parses its next share before this one is written.
    return Decoded(rows, copy.deepcopy(decoder.stats), decoder.spans(), decoder.take_market_polls(final=True))


# -- the worker process -------------------------------------------------------


def serve() -> None:
    """The worker: decode shares until stdin closes. Reading and writing run on
    threads of their own, so the next share arrives and the last answer leaves
    while a share is decoded. It runs in a process group of its own: the
    terminal's Ctrl-C and Ctrl-Z reach the parent, which decides how to stop."""
    # Buffered: a raw write may write part of a message (a signal mid-write), a buffered one retries.
    answers_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print goes to stderr, not among the answers
    shares: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    answers: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_read_messages, args=(sys.stdin.buffer, shares.put), name="shares in", daemon=True).start()
    sending = threading.Thread(target=_write_messages, args=(answers_out, answers), name="answers out")
    sending.start()
    try:
        decoder = RecordingDecoder()
        answers.put(pickle.dumps(None))  # ready: imported and listening
        while (message := shares.get()) is not None:
            share = pickle.loads(message)
            decoded = decoded_share(decoder, share)
            if has_own(share):  # else passed over: nothing to answer
                answers.put(pickle.dumps(decoded._replace(rows=marshal.dumps(decoded.rows)), pickle.HIGHEST_PROTOCOL))
    except Exception as error:
        # The decoder's state is unknown now: say why (the traceback on stderr) and leave.
        traceback.print_exc()
        answers.put(pickle.dumps(ParseWorkerError(f"replay's parse worker failed: {type(error).__name__}: {error}")))
    finally:
        answers.put(None)
        sending.join()
        # Leave at once: the reading thread may still wait on stdin, holding its lock,
        # and the interpreter's shutdown aborts on that. Nothing is left unwritten.
        os._exit(0)


def _read_message(source: BinaryIO) -> bytes | None:
    """The next message, or None at the end (the other side closed its end, or is gone)."""
    header = source.read(_LENGTH_BYTES)
    if len(header) < _LENGTH_BYTES:
        return None
    length = int.from_bytes(header, "little")
    message = source.read(length)
    return message if len(message) == length else None  # None: cut off mid-message


def _read_messages(source: BinaryIO, deliver: Callable[[bytes | None], None]) -> None:
    """Each message of `source` to `deliver`, then None."""
    while (message := _read_message(source)) is not None:
        deliver(message)
    deliver(None)


def _write_messages(sink: BinaryIO, messages: queue.SimpleQueue) -> None:
    """The messages put in `messages` until None, then close `sink` (the other side reads its end)."""
    try:
        with sink:
            while (message := messages.get()) is not None:
                sink.write(len(message).to_bytes(_LENGTH_BYTES, "little"))
                sink.write(message)
                sink.flush()
    except BrokenPipeError:
        pass  # the other side is gone: nobody wants the messages


# -- the parent's side ---------------------------------------------------------


class ParseWorker:
    """One worker process: `decode(share)` answers in order (`ready` once it has
    started, which takes a fresh interpreter ~0.2 s of CPU). Its pipes are written
    and read by threads of this process, as multiprocessing's pool does, so shares
    and answers flow while the event loop is busy parsing this process's own share.
    Once it has failed or exited, every `decode` raises, and every answer awaited
    fails, with the same ParseWorkerError. Start and stop them with `running`."""

    def __init__(self, process: subprocess.Popen, loop: asyncio.AbstractEventLoop) -> None:
        self._process = process
        self._loop = loop
        self._waiting: collections.deque[asyncio.Future[Decoded]] = collections.deque()
        self._started = asyncio.Event()  # set when ready, and when it failed before
        self._failure: ParseWorkerError | None = None
        self._closing = False
        self._shares: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._threads = [  # daemons: never holding up this process's exit
            threading.Thread(target=_write_messages, args=(process.stdin, self._shares), name="shares out", daemon=True),
            threading.Thread(target=self._read_answers, name="answers in", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    def start(cls) -> ParseWorker:
        process = subprocess.Popen(
            [sys.executable, "-P", "-c", _BOOTSTRAP, *sys.path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0,
        )
        try:
            return cls(process, asyncio.get_running_loop())
        except BaseException:
            process.kill()
            process.wait()
            raise

    @property
    def ready(self) -> bool:
        return self._started.is_set() and self._failure is None

    async def started(self, timeout_s: float) -> None:
        """Wait until it is ready; ParseWorkerError if it failed or takes longer."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._started.wait()
        except TimeoutError:
            raise ParseWorkerError(f"replay's parse worker did not start within {timeout_s:g} s") from None
        if self._failure is not None:
            raise ParseWorkerError(str(self._failure))

    def decode(self, share: Share) -> asyncio.Future[Decoded] | None:
        """The worker's decoding of `share` (queued behind the shares sent before);
        None for a share with no chunk of its own: passed over, and not answered."""
        if self._failure is not None:
            raise ParseWorkerError(str(self._failure))
        decoded: asyncio.Future[Decoded] | None = None
        if has_own(share):
            decoded = self._loop.create_future()
            self._waiting.append(decoded)
        self._shares.put(pickle.dumps(share, pickle.HIGHEST_PROTOCOL))
        return decoded

    def _read_answers(self) -> None:
        """On its thread: each answer to the event loop, then how the worker ended."""
        try:
            while (message := _read_message(self._process.stdout)) is not None:
                answer = pickle.loads(message)
                self._loop.call_soon_threadsafe(self._answered, answer)
            ending = f"replay's parse worker exited (code {self._process.wait()})"
        except Exception as error:  # a garbled answer: nothing it says can be trusted any more
            self._process.kill()
            ending = f"replay's parse worker sent an unreadable answer ({type(error).__name__}: {error})"
        with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._failed, ParseWorkerError(ending))

    def _answered(self, answer: Decoded | ParseWorkerError | None) -> None:
        if answer is None:
            self._started.set()
        elif isinstance(answer, ParseWorkerError):
            self._failed(answer)
        elif self._waiting:
            decoded = self._waiting.popleft()
            if decoded.done() or self._closing:
                decoded.cancel()  # nobody waits for it any more
            else:
                decoded.set_result(answer)

    def _failed(self, failure: ParseWorkerError) -> None:
        """The first failure is the one every waiting and later decoding gets."""
        if self._failure is None:
            self._failure = failure
        self._started.set()
        while self._waiting:
            decoded = self._waiting.popleft()
            if self._closing or decoded.done():
                decoded.cancel()
            else:
                decoded.set_exception(self._failure)
                decoded.exception()  # marked seen: replay raises the first it awaits, the others would repeat it

    def _close_input(self) -> None:
        """It finishes the shares queued and leaves; what it still answers is read and dropped."""
        self._closing = True
        self._shares.put(None)

    def _stop(self, deadline_s: float) -> None:
        try:
            self._process.wait(max(0.0, deadline_s - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for thread in self._threads:
            thread.join()
        self._process.stdout.close()


@contextlib.asynccontextmanager
async def running(count: int) -> AsyncIterator[list[ParseWorker]]:
    """`count` workers, all stopped at the end, together (`_EXIT_WAIT_S` at most)."""
    workers: list[ParseWorker] = []
    try:
        for _ in range(count):
            workers.append(ParseWorker.start())
        yield workers
    finally:
        for worker in workers:
            worker._close_input()
        deadline_s = time.monotonic() + _EXIT_WAIT_S
        await asyncio.to_thread(lambda: [worker._stop(deadline_s) for worker in workers])
