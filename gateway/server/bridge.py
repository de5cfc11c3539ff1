"""ASGI over a local socket: HTTP served by worker processes in front of one engine process.

One interpreter runs one thread of Python at a time. With 10,000 users `brokerage serve` spent
about a third of its one core on the socket work around each request (reading it, uvicorn's
HTTP parsing and request cycle, writing the answer), all on the loop the engine's actors run
on. `brokerage serve --workers N` moves that work to N front processes: each accepts clients
on the shared listening socket, parses their HTTP with uvicorn and the same limits, and hands
every request to the engine process as ASGI events over a Unix socket (`BridgeApp`). The
engine process runs the one app, with its one engine, keys and limits, on what arrives
(`EngineLink`) and sends its ASGI events back the same way.

Everything the app decides stays in the engine process, so every route, refusal, limit (they
count by the client's address, which the front passes on) and the consistency contract is
what one process gives: the fronts keep nothing between requests.

A frame is a 4-byte big-endian length and a `marshal`ed `(stream, kind, data)` tuple, between
this project's own processes on a socket only they can open (its folder is the owner's
alone). Frames are gathered and written once per turn of each loop, so a busy engine writes
one answer batch per turn, not one per request.

- front to engine: `OPEN (scope, first event)`, then `EVENT event` (the rest of a body, a
  WebSocket's messages), and `END` when the client is gone or its stream was closed;
- engine to front: `EVENT event` (what the app sent) and `END` when the app has returned.
"""

from __future__ import annotations

import asyncio
import collections
import marshal
import os
from collections.abc import Callable, MutableMapping
from typing import Any, cast

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.log import where
from gateway.server.errors import MAX_BODY_BYTES, error_body, log_failure
from gateway.server.streams import QUEUE_LIMIT

OPEN, EVENT, END = 0, 1, 2
_SIZE = 4
_SCOPE_KEYS = (
    "type",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "query_string",
    "root_path",
    "headers",
    "client",
    "server",
    "subprotocols",
)
"""What a front passes of a request's scope: everything that came from the client."""
_ASGI = {"version": "3.0", "spec_version": "2.4"}

log = structlog.get_logger("gateway.server.bridge")


class _Link(asyncio.Protocol):
    """One end of the socket: frames in (to `arrived`), frames out gathered per loop turn."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._flushing = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not its subclasses

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start, end = 0, len(buffer)
        while end - start >= _SIZE:
            size = int.from_bytes(buffer[start : start + _SIZE], "big")
            if end - start - _SIZE < size:
                break
            frame = marshal.loads(buffer[start + _SIZE : start + _SIZE + size])
            start += _SIZE + size
            try:
                self.arrived(*frame)
            except Exception as error:  # a frame's handling must not end the link for all
                kind = type(error).__name__
                log.error("bridge.frame_failed", error_type=kind, where=where(error))
        del buffer[:start]

    def arrived(self, stream: int, kind: int, data: Any) -> None:
        raise NotImplementedError

    def put(self, stream: int, kind: int, data: Any = None) -> None:
        """Send a frame at the end of this turn of the loop (with the turn's others)."""
        if self.lost:
            return
        payload = marshal.dumps((stream, kind, data))
        self._out.append(len(payload).to_bytes(_SIZE, "big"))
        self._out.append(payload)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        if self.transport is not None and not self.lost:
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._out.clear()


# -- the engine's end -----------------------------------------------------------------------------


class _Exchange:
    """One request (or WebSocket) from a front, as the app sees it: `receive` and `send`."""

    __slots__ = ("_waiter", "closed", "events", "kind", "link", "stream")

    def __init__(self, link: EngineLink, stream: int, kind: str) -> None:
        self.link = link
        self.stream = stream
        self.kind = kind
        self.events: collections.deque[dict[str, Any]] = collections.deque()
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: dict[str, Any] | None) -> None:
        """An event from the client, or None: the client is gone. A client that sends more
        than the app has read by `QUEUE_LIMIT` messages is closed (uvicorn, serving alone,
        would stop reading it instead; the front reads on, so the bound is kept here)."""
        if self.closed:  # nothing more is taken once the app has been told the client is gone
            return
        if event is None:
            self.closed = True
        elif len(self.events) >= QUEUE_LIMIT:
            self.closed = True
            self.events.clear()
            if self.kind == "websocket":
                close = {"type": "websocket.close", "code": 1008, "reason": "too many unread"}
                self.link.put(self.stream, EVENT, close)
        else:
            self.events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def receive(self) -> dict[str, Any]:
        while not self.events:
            if self.closed:
                if self.kind == "websocket":
                    return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
                return {"type": "http.disconnect"}
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self.events.popleft()

    async def send(self, event: MutableMapping[str, Any]) -> None:
        if not self.closed:
            self.link.put(self.stream, EVENT, event)


class EngineLink(_Link):
    """The engine's end of one front's socket: runs `app` on each request that arrives."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__()
        self.app = app
        self.exchanges: dict[int, _Exchange] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def arrived(self, stream: int, kind: int, data: Any) -> None:
        if kind == OPEN:
            scope, first = data  # the front sent only `_SCOPE_KEYS`, in a dict of its own
            scope["asgi"] = dict(_ASGI)
            scope["state"] = {}
            scope["extensions"] = {}
            exchange = self.exchanges[stream] = _Exchange(self, stream, scope["type"])
            exchange.offer(first)
            task = asyncio.ensure_future(self._run(scope, exchange))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        found = self.exchanges.get(stream)  # None: the app has returned already
        if found is not None:
            found.offer(data if kind == EVENT else None)

    async def _run(self, scope: Scope, exchange: _Exchange) -> None:
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception as error:  # the app answers its own errors (`Contain`); past it,
            log_failure(log, scope, error)  # logged as `Contain` logs: nothing of the request
        finally:
            del self.exchanges[exchange.stream]
            self.put(exchange.stream, END)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for exchange in list(self.exchanges.values()):
            exchange.offer(None)


async def serve_engine(app: ASGIApp, path: str) -> asyncio.AbstractServer:
    """Serve `app` to the fronts that connect to the Unix socket at `path`."""
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lambda: EngineLink(app), path)
    os.chmod(path, 0o600)
    return server


# -- a front's end --------------------------------------------------------------------------------

_LOST = object()


class _Inbox(asyncio.Queue[Any]):
    """What the engine sent for one stream, waiting for the client to take it: events, None
    (the app returned) or `_LOST` (the engine is gone). Bounded as a stream's `Listener` is:
    a client slower than its stream is closed, as the app would close it."""

    def __init__(self) -> None:
        super().__init__(QUEUE_LIMIT)
        self.ended = False
        self.overflowed = False

    def offer(self, item: Any) -> None:
        try:
            self.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class FrontLink(_Link):
    """A front's end of the engine's socket: sorts what arrives into each stream's inbox."""

    def __init__(self, on_lost: Callable[[], Any]) -> None:
        super().__init__()
        self.inboxes: dict[int, _Inbox] = {}
        self._next = 0
        self._on_lost = on_lost

    def open(self) -> tuple[int, _Inbox]:
        self._next += 1
        inbox = self.inboxes[self._next] = _Inbox()
        return self._next, inbox

    def arrived(self, stream: int, kind: int, data: Any) -> None:
        inbox = self.inboxes.get(stream)  # None: the client is gone already
        if inbox is not None:
            if kind == END:
                inbox.ended = True
                inbox.offer(None)
            else:
                inbox.offer(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for inbox in self.inboxes.values():
            inbox.offer(_LOST)
        self._on_lost()


_UNAVAILABLE = orjson.dumps(error_body(503, "the engine process is not reachable; try again"))


class BridgeApp:
    """A front's ASGI app: every request goes to the engine process over the socket at `path`
    and its answer comes back (see the module). `on_lost` is called if that socket closes."""

    def __init__(self, path: str, on_lost: Callable[[], Any] = lambda: None) -> None:
        self.path = path
        self.on_lost = on_lost
        self.link: FrontLink | None = None
        self._closing = False

    async def connect(self) -> None:
        """Reach the engine's socket (which listens before any front starts: a front that
        cannot reach it has outlived its engine, and fails its start)."""
        loop = asyncio.get_running_loop()
        _, self.link = await loop.create_unix_connection(lambda: FrontLink(self._lost), self.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        link = self.link
        websocket = scope["type"] == "websocket"
        if link is None or link.lost:
            await _unavailable(websocket, send)
            return
        stream, inbox = link.open()
        first = await receive()
        link.put(stream, OPEN, ({key: scope[key] for key in _SCOPE_KEYS if key in scope}, first))
        pump = None
        if websocket or first.get("more_body"):
            pump = asyncio.ensure_future(_pump(link, stream, receive, websocket, first))
        started = False
        try:
            while (event := await inbox.get()) is not None:
                if event is _LOST or inbox.overflowed:
                    if inbox.overflowed and websocket:
                        await send({"type": "websocket.close", "code": 1008, "reason": "too slow"})
                    elif not started:
                        await _unavailable(websocket, send)
                    return
                started = True
                await send(event)
        except (OSError, RuntimeError):  # the client went away mid-send
            return
        finally:
            del link.inboxes[stream]
            if pump is not None:
                pump.cancel()
            if not inbox.ended:
                link.put(stream, END)

    def _lost(self) -> None:
        if not self._closing:
            self.on_lost()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.connect()
                except OSError as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._closing = True
                if self.link is not None and self.link.transport is not None:
                    self.link.transport.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _pump(
    link: FrontLink, stream: int, receive: Receive, websocket: bool, first: Message
) -> None:
    """Pass on the client's further events: the rest of a body (as far as one past the limit,
    which the app refuses), or a WebSocket's messages until it disconnects."""
    body = len(first.get("body", b""))
    while True:
        event = await receive()
        link.put(stream, EVENT, event)
        if websocket:
            if event["type"] == "websocket.disconnect":
                return
        else:
            body += len(event.get("body", b""))
            if not event.get("more_body") or body > MAX_BODY_BYTES:
                return


async def _unavailable(websocket: bool, send: Send) -> None:
    if websocket:
        await send({"type": "websocket.close", "code": 1011, "reason": "engine unreachable"})
        return
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _UNAVAILABLE})
