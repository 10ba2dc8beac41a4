"""Fake venue websocket endpoints on 127.0.0.1, and a compressed clock.

`FakeVenueServer` speaks just enough of one venue stream (websockets 17
server): Bybit answers `{"op":"subscribe"}` (refusing more than 10 args, like
its spot endpoint) and `{"op":"ping"}`; OKX answers `subscribe` and the text
`ping`; Binance needs nothing; the other venues are described by a
`WsProtocol` in `PROTOCOLS` (greeting, answers, which frames a subscription
receives, how frames are encoded). Frames come from `bot.feeds.synthetic` or the
tests and are sent with `broadcast()` to the connections subscribed to them. A test can
refuse handshakes (status + headers), close every connection at once on
accept, drop connections, or make them go silent (stop reading: no pongs).

`VirtualClock` runs time `scale` times faster than the wall clock: `sleep(s)`
waits s/scale real seconds and is recorded, `now_ms()` advances accordingly.
With `scale=None` sleeps take no real time at all and jump the clock (for
tests where nothing else runs meanwhile, like handshake refusals).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

BASE_MS = 1_750_000_000_000  # 2025-06-15T15:06:40Z


class VirtualClock:
    def __init__(self, scale: float | None = 100.0, start_ms: int = BASE_MS) -> None:
        self.scale = scale
        self._start_ms = start_ms
        self._jumped_s = 0.0
        self._t0 = asyncio.get_running_loop().time()
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        elapsed = asyncio.get_running_loop().time() - self._t0
        real_part = elapsed * self.scale if self.scale is not None else 0.0
        return self._start_ms + int((real_part + self._jumped_s) * 1000)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self.quiet_sleep(seconds)

    async def quiet_sleep(self, seconds: float) -> None:
        """A sleep on this clock that is not recorded (for the fakes' own timers)."""
        if self.scale is None:
            self._jumped_s += max(seconds, 0.0)
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(max(seconds, 0.0) / self.scale)

    def real_s(self, virtual_s: float) -> float:
        return virtual_s / self.scale if self.scale else 0.0


@dataclass(frozen=True)
class Answer:
    """What a fake venue does with one client message."""

    replies: tuple[str, ...] = ()
    topics: tuple[object, ...] = ()  # what the connection now receives
    ping: bool = False  # an app-level ping (counted in `app_pings`)
    subscribe: bool = False  # a subscribe request (kept in `subscribe_requests`)


def _as_sent(text: str) -> str | bytes:
    return text


@dataclass(frozen=True)
class WsProtocol:
    """One venue's side of the conversation, for `FakeVenueServer`."""

    answer: Callable[[str | bytes], Answer]
    topic_of: Callable[[object], object]  # the topic a frame belongs to; None: every connection
    greeting: tuple[str, ...] = ()  # sent on accept
    url_subscribes: bool = False  # the URL is the subscription: every connection receives
    encode: Callable[[str], str | bytes] = _as_sent  # how every message leaves the server


def _compact(message: object) -> str:
    return json.dumps(message, separators=(",", ":"))


def _gate_answer(message: str | bytes) -> Answer:
    request = json.loads(message)
    head = {"time": request.get("time"), "time_ms": request.get("time", 0) * 1000, "channel": request.get("channel")}
    if request.get("channel") == "futures.ping":
        return Answer((_compact({**head, "channel": "futures.pong", "event": "", "result": None}),), ping=True)
    if request.get("event") != "subscribe":
        return Answer()
    reply = _compact({**head, "event": "subscribe", "result": {"status": "success"}})
    return Answer((reply,), topics=tuple((request["channel"], item) for item in request["payload"]), subscribe=True)


HTX_PING = _compact({"op": "ping", "ts": "1750000000000"})


def _htx_answer(message: str | bytes) -> Answer:
    request = json.loads(message)
    if request.get("op") == "pong":
        return Answer(ping=True)
    if request.get("op") != "sub":
        return Answer()
    reply = _compact({"op": "sub", "cid": request.get("cid"), "topic": request["topic"], "ts": 1750000000000, "err-code": 0})
    return Answer((reply,), topics=(request["topic"],), subscribe=True)


def _bitget_answer(message: str | bytes) -> Answer:
    if message == "ping":
        return Answer(("pong",), ping=True)
    request = json.loads(message)
    if request.get("op") != "subscribe":
        return Answer()
    args = request["args"]
    replies = tuple(_compact({"event": "subscribe", "arg": arg, "connId": "fake"}) for arg in args)
    topics = tuple((arg["instType"].lower(), arg["topic"]) for arg in args)
    return Answer(replies, topics=topics, subscribe=True)


def _kraken_answer(message: str | bytes) -> Answer:
    # {"event":"subscribe","feed":"trade","product_ids":[..]} and {"event":"subscribe","feed":"heartbeat"}
    request = json.loads(message)
    if request.get("event") != "subscribe":
        return Answer()
    feed, products = request.get("feed"), request.get("product_ids")
    reply = {"event": "subscribed", "feed": feed, **({"product_ids": products} if products else {})}
    topics = tuple((feed, product) for product in products) if products else ((feed, None),)
    return Answer((_compact(reply),), topics=topics, subscribe=True)


def _kraken_topic(frame: dict) -> object:
    feed = frame.get("feed")
    return ("heartbeat", None) if feed == "heartbeat" else ("trade", frame.get("product_id"))


def _bitmex_answer(message: str | bytes) -> Answer:
    return Answer(("pong",), ping=True) if message == "ping" else Answer()


def _deribit_answer(message: str | bytes) -> Answer:
    request = json.loads(message)
    method, request_id = request.get("method"), request.get("id")
    if method == "public/test":
        return Answer((_compact({"jsonrpc": "2.0", "id": request_id, "result": {"version": "1.2.26"}}),), ping=True)
    if method == "public/set_heartbeat":
        return Answer((_compact({"jsonrpc": "2.0", "id": request_id, "result": "ok"}),))
    if method == "public/subscribe":
        channels = tuple(request["params"]["channels"])
        reply = _compact({"jsonrpc": "2.0", "id": request_id, "result": list(channels)})
        return Answer((reply,), topics=channels, subscribe=True)
    return Answer()


BITFINEX_CHANNEL_ID = 91684  # the docs' example chanId


def _bitfinex_answer(message: str | bytes) -> Answer:
    request = json.loads(message)
    if request.get("event") == "ping":
        return Answer((_compact({"event": "pong", "ts": 1750000000000, "cid": request.get("cid")}),), ping=True)
    if request.get("event") == "subscribe":
        reply = {"event": "subscribed", "channel": request["channel"], "chanId": BITFINEX_CHANNEL_ID,
                 "key": request["key"]}
        return Answer((_compact(reply),), topics=((request["channel"], request["key"]),), subscribe=True)
    return Answer()


def _dydx_answer(message: str | bytes) -> Answer:
    # {"type":"subscribe","channel":"v4_trades","id":"BTC-USD","batched":true}: an empty snapshot
    request = json.loads(message)
    if request.get("type") != "subscribe":
        return Answer()
    topic = (request.get("channel"), request.get("id"))
    reply = {"type": "subscribed", "connection_id": "c1", "message_id": 1, "channel": topic[0], "id": topic[1],
             "contents": {"trades": []}}
    return Answer((_compact(reply),), topics=(topic,), subscribe=True)


PROTOCOLS: dict[str, WsProtocol] = {
    # HTX gzips everything it sends, and pings first: a client must answer with the same ts.
    "htx": WsProtocol(
        _htx_answer, lambda frame: "public.*.liquidation_orders", greeting=(HTX_PING,),
        encode=lambda text: gzip.compress(text.encode()),
    ),
    # Every test subscribes Gate's `!all`.
    "gate": WsProtocol(_gate_answer, lambda frame: (frame["channel"], "!all")),
    "bitget": WsProtocol(_bitget_answer, lambda frame: (frame["arg"]["instType"].lower(), frame["arg"]["topic"])),
    "aster": WsProtocol(lambda message: Answer(), lambda frame: None, url_subscribes=True),
    "kraken": WsProtocol(_kraken_answer, _kraken_topic, greeting=(_compact({"event": "info", "version": 1}),)),
    "bitmex": WsProtocol(
        _bitmex_answer, lambda frame: None, url_subscribes=True,
        greeting=(
            _compact({"info": "Welcome to the BitMEX Realtime API.", "version": "2020-10-09T21:10:34.000Z",
                      "timestamp": "2020-10-12T16:46:20.255Z", "docs": "https://www.bitmex.com/app/wsAPI",
                      "limit": {"remaining": 38}}),
            _compact({"success": True, "subscribe": "liquidation",
                      "request": {"op": "subscribe", "args": "liquidation"}}),
        ),
    ),
    "deribit": WsProtocol(_deribit_answer, lambda frame: frame.get("params", {}).get("channel")),
    "bitfinex": WsProtocol(
        _bitfinex_answer, lambda frame: ("status", "liq:global"),
        greeting=(_compact({"event": "info", "version": 2, "serverId": "fake", "platform": {"status": 1}}),),
    ),
    "dydx": WsProtocol(
        _dydx_answer, lambda frame: (frame.get("channel"), frame.get("id")),
        greeting=(_compact({"type": "connected", "connection_id": "c1", "message_id": 0}),),
    ),
}


def _topic_of(venue: str, frame: object) -> object:
    """What a client must have subscribed to to get this frame."""
    if venue == "bybit":
        return frame.get("topic")  # type: ignore[union-attr]
    if venue == "okx":
        return ("liquidation-orders", frame.get("arg", {}).get("instType"))  # type: ignore[union-attr]
    protocol = PROTOCOLS.get(venue)
    return protocol.topic_of(frame) if protocol is not None else None


class FakeVenueServer:
    """One venue stream endpoint. Use `async with FakeVenueServer(...) as server:`."""

    def __init__(self, venue: str, stream: str, *, bybit_max_args: int = 10) -> None:
        self.venue = venue
        self.stream = stream
        self.bybit_max_args = bybit_max_args
        self.url = ""
        # What happened.
        self.attempts = 0  # handshakes seen, refused ones included
        self.request_headers: list[dict[str, str]] = []  # of every handshake, refused ones included
        self.connections = 0  # handshakes accepted
        self.received: list[str] = []  # every message clients sent
        self.subscribe_requests: list[dict] = []
        self.app_pings = 0
        self.accepted_at_ms: list[int] = []
        # Behaviour.
        self.refusals: list[tuple[int, dict[str, str]]] = []  # next handshakes to refuse
        self.close_on_accept = False
        self.clock: VirtualClock | None = None
        self._clients: dict[ServerConnection, set] = {}
        self._silenced: set[ServerConnection] = set()
        self._server = None
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> FakeVenueServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def start(self) -> str:
        self._server = await serve(
            self._handler, "127.0.0.1", 0, process_request=self._process_request, ping_interval=None
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/{self.venue}/{self.stream}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            for ws in list(self._clients):
                ws.transport.abort()
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # -- handshake ------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        self.request_headers.append(dict(request.headers.raw_items()))
        if self.refusals:
            status, headers = self.refusals.pop(0)
            response = connection.respond(status, f"refused with {status}\n")
            for name, value in headers.items():
                response.headers[name] = value
            return response
        return None

    # -- connections ----------------------------------------------------

    @property
    def open_connections(self) -> int:
        return len(self._clients)

    def subscribed_connections(self) -> int:
        """Connections that would receive frames now."""
        protocol = PROTOCOLS.get(self.venue)
        if self.venue == "binance" or (protocol is not None and protocol.url_subscribes):
            return len(self._clients)
        return sum(1 for topics in self._clients.values() if topics)

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        if self.clock is not None:
            self.accepted_at_ms.append(self.clock.now_ms())
        if self.close_on_accept:
            await ws.close()
            return
        self._clients[ws] = set()
        protocol = PROTOCOLS.get(self.venue)
        for greeting in protocol.greeting if protocol is not None else ():
            await ws.send(protocol.encode(greeting))
        await self._notify()
        try:
            async for message in ws:
                self.received.append(message)
                await self._answer(ws, message)
        except ConnectionClosed:
            pass
        finally:
            self._clients.pop(ws, None)
            self._silenced.discard(ws)
            await self._notify()

    async def _answer(self, ws: ServerConnection, message: str | bytes) -> None:
        if self.venue == "okx":
            if message == "ping":
                self.app_pings += 1
                await ws.send("pong")
                return
            request = json.loads(message)
            if request.get("op") == "subscribe":
                self.subscribe_requests.append(request)
                for arg in request["args"]:
                    self._clients[ws].add((arg["channel"], arg["instType"]))
                    await ws.send(json.dumps({"event": "subscribe", "arg": arg, "connId": "a4d3ae55"}))
                await self._notify()
        elif self.venue == "bybit":
            request = json.loads(message)
            op = request.get("op")
            if op == "ping":
                self.app_pings += 1
                await ws.send(json.dumps({"success": True, "ret_msg": "pong", "conn_id": "c1", "op": "ping"}))
            elif op == "subscribe":
                self.subscribe_requests.append(request)
                args = request.get("args", [])
                if len(args) > self.bybit_max_args:
                    await ws.send(json.dumps({
                        "success": False, "ret_msg": f"args size >{self.bybit_max_args}",
                        "conn_id": "c1", "op": "subscribe",
                    }))
                    return
                self._clients[ws].update(args)
                await ws.send(json.dumps({"success": True, "ret_msg": "", "conn_id": "c1", "op": "subscribe"}))
                await self._notify()
        elif self.venue in PROTOCOLS:
            protocol = PROTOCOLS[self.venue]
            answer = protocol.answer(message)
            self.app_pings += answer.ping
            if answer.subscribe:
                self.subscribe_requests.append(json.loads(message))
            self._clients[ws].update(answer.topics)
            for reply in answer.replies:
                await ws.send(protocol.encode(reply))
            if answer.topics:
                await self._notify()
        else:
            self.subscribe_requests.append({"raw": message})

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate, timeout: float = 5.0) -> None:
        """Wait until `predicate(self)` holds (checked on every connection change)."""
        async def waiting() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

        await asyncio.wait_for(waiting(), timeout)

    # -- sending --------------------------------------------------------

    async def broadcast(self, frame: dict | list | str) -> int:
        """Send one frame to every connection subscribed to it, encoded as the
        venue encodes it (HTX: gzip); how many got it."""
        protocol = PROTOCOLS.get(self.venue)
        text = frame if isinstance(frame, str) else _compact(frame)
        data = protocol.encode(text) if protocol is not None else text
        topic = _topic_of(self.venue, frame) if not isinstance(frame, str) else None
        delivered = 0
        for ws, topics in list(self._clients.items()):
            if ws in self._silenced:
                continue
            if topic is not None and topic not in topics:
                continue
            try:
                await ws.send(data)
            except ConnectionClosed:
                continue
            delivered += 1
        return delivered

    async def burst(self, frames: Sequence[dict]) -> None:
        """Send many frames to every open connection (topics not checked) at the
        speed of the socket, not of one awaited send each, then `round_trip()`."""
        clients = [ws for ws in self._clients if ws not in self._silenced]
        for frame in frames:
            broadcast(clients, json.dumps(frame, separators=(",", ":")), raise_exceptions=True)
        await self.round_trip()

    async def round_trip(self, timeout: float = 30.0) -> None:
        """Ping every open connection and wait for the pongs: the client has read
        what was sent before (all but the few messages its library still queues)."""
        pongs = [await ws.ping() for ws in list(self._clients) if ws not in self._silenced]
        await asyncio.wait_for(asyncio.gather(*pongs), timeout)

    async def send_raw(self, data: str | bytes) -> int:
        """Send anything (garbage included) to every open connection."""
        delivered = 0
        for ws in list(self._clients):
            if ws in self._silenced:
                continue
            with contextlib.suppress(ConnectionClosed):
                await ws.send(data)
                delivered += 1
        return delivered

    async def drop(self) -> int:
        """Close every connection cleanly (what was sent before arrives first)."""
        clients = list(self._clients)
        for ws in clients:
            self._clients.pop(ws, None)
        await asyncio.gather(*(ws.close(1001, "going away") for ws in clients), return_exceptions=True)
        await self._notify()
        return len(clients)

    def silence(self) -> None:
        """Stop sending and stop reading on every open connection: no pongs, no answers."""
        for ws in self._clients:
            self._silenced.add(ws)
            ws.transport.pause_reading()


async def fake_servers(streams: Sequence[tuple[str, str]]) -> dict[tuple[str, str], FakeVenueServer]:
    servers = {}
    for venue, stream in streams:
        server = FakeVenueServer(venue, stream)
        await server.start()
        servers[venue, stream] = server
    return servers
