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
import copy
import json
import marshal
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

from bot.core.models import Window
from bot.feeds.market_replay import MarketPoll
from bot.feeds.recording import DecodeStats, RecordingDecoder

# One batch as a decoder sees it: its chunks in order, each with whether it is this decoder's own.
Share = list[tuple[bool, list[bytes]]]

_LENGTH_BYTES = 8
_EXIT_WAIT_S = 5.0  # for a worker to finish its share and leave once its stdin is closed
# Starts a worker with the parent's module path, as multiprocessing's spawn does.
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from bot.services.parse_worker import serve; serve()"
)


class Decoded(NamedTuple):
    """A decoder's share of a batch: the rows of its own chunk, what the decoder
    has seen up to the end of the batch, and the market polls of its chunk."""

    rows: list[tuple] | bytes  # marshalled when from a worker
    stats: DecodeStats
    spans: dict[tuple[str, str], Window]
    polls: list[MarketPoll]


class ParseWorkerError(Exception):
    """A worker failed (its traceback) or exited."""


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
    while a share is decoded."""
    # Ctrl-C in a terminal signals the whole process group: the parent decides how to
    # stop (finish the batch, record spans) and closes this worker's stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print goes to stderr, not among the answers
    shares: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    answers: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_read_messages, args=(sys.stdin.buffer, shares.put), name="shares in", daemon=True).start()
    sending = threading.Thread(target=_write_messages, args=(answers_out, answers), name="answers out")
    sending.start()
    decoder = RecordingDecoder()
    answers.put(pickle.dumps(None))  # ready: imported and listening
    while (message := shares.get()) is not None:
        try:
            share = pickle.loads(message)
            decoded = decoded_share(decoder, share)
            if not has_own(share):
                continue  # passed over: nothing to answer
            answer = decoded._replace(rows=marshal.dumps(decoded.rows))
        except Exception:
            # The decoder's state is unknown now: say why and leave (the parent fails what was queued).
            answers.put(pickle.dumps(ParseWorkerError(f"replay's parse worker failed:\n{traceback.format_exc()}")))
            break
        answers.put(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
    answers.put(None)
    sending.join()
    # Leave at once: after a failure the reading thread still waits on stdin, holding its
    # lock, and the interpreter's shutdown aborts on that. Nothing is left unwritten.
    os._exit(0)


def _read_messages(source: BinaryIO, deliver: Callable[[bytes | None], None]) -> None:
    """Each message of `source` to `deliver`, then None at its end (the other side closed it, or is gone)."""
    while len(header := source.read(_LENGTH_BYTES)) == _LENGTH_BYTES:
        deliver(source.read(int.from_bytes(header, "little")))
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
    Use as `async with ParseWorker.start() as worker:`."""

    def __init__(self, process: subprocess.Popen, loop: asyncio.AbstractEventLoop) -> None:
        self._process = process
        self._loop = loop
        self._waiting: collections.deque[asyncio.Future[Decoded]] = collections.deque()
        self._exit_code: int | None = None
        self._closing = False
        self.ready = False
        self._shares: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._threads = [  # daemons: never holding up this process's exit
            threading.Thread(target=_write_messages, args=(process.stdin, self._shares), name="shares out", daemon=True),
            threading.Thread(target=_read_messages, args=(process.stdout, self._received), name="answers in", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    def start(cls) -> ParseWorker:
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, json.dumps(sys.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        return cls(process, asyncio.get_running_loop())

    def decode(self, share: Share) -> asyncio.Future[Decoded] | None:
        """The worker's decoding of `share` (queued behind the shares sent before);
        None for a share with no chunk of its own: passed over, and not answered."""
        decoded: asyncio.Future[Decoded] | None = self._loop.create_future() if has_own(share) else None
        if self._exit_code is not None:
            if decoded is not None:
                _fail(decoded, self._exit_code)
            return decoded
        if decoded is not None:
            self._waiting.append(decoded)
        self._shares.put(pickle.dumps(share, pickle.HIGHEST_PROTOCOL))
        return decoded

    def _received(self, message: bytes | None) -> None:
        """On the reading thread: an answer, or None once the worker has exited."""
        if message is None:
            self._loop.call_soon_threadsafe(self._exited, self._process.wait())
        else:
            self._loop.call_soon_threadsafe(self._answered, pickle.loads(message))

    def _answered(self, answer: Decoded | ParseWorkerError | None) -> None:
        if answer is None:
            self.ready = True
            return
        decoded = self._waiting.popleft()
        if decoded.done() or self._closing:
            decoded.cancel()  # nobody waits for it any more
        elif isinstance(answer, ParseWorkerError):
            decoded.set_exception(answer)
        else:
            decoded.set_result(answer)

    def _exited(self, code: int) -> None:
        self._exit_code = code
        while self._waiting:
            decoded = self._waiting.popleft()
            if self._closing or decoded.done():
                decoded.cancel()
            else:
                _fail(decoded, code)

    async def __aenter__(self) -> ParseWorker:
        return self

    async def __aexit__(self, *exc_info) -> None:
        """Close its stdin: it finishes the share at hand and leaves (killed if it
        does not); what it still answers is read and dropped."""
        self._closing = True
        self._shares.put(None)
        await asyncio.to_thread(self._stop)  # the reading thread's last calls run before this returns

    def _stop(self) -> None:
        try:
            self._process.wait(_EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for thread in self._threads:
            thread.join()


def _fail(decoded: asyncio.Future, exit_code: int) -> None:
    decoded.set_exception(ParseWorkerError(f"replay's parse worker exited (code {exit_code})"))
    decoded.exception()  # marked seen: replay raises the first it awaits, the others would only repeat it
