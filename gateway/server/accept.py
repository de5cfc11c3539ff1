"""An event loop that accepts every waiting connection at each of its turns.

uvloop (libuv 1.45 and later) accepts one connection per turn of its loop and leaves the
others in the kernel's listen queue for the next turns. Under load a turn is long (it serves
every socket with something to read), so `brokerage serve` with 10,000 users arriving at a
thousand a second accepted about a hundred a second: the listen queue (the kernel caps it at
`net.core.somaxconn`, 4,096 here) stayed full for twenty seconds, the kernel dropped the new
connections' SYNs, and clients waited out TCP's retransmits (1, 3, 7, 15 s...: sign-ups took
14 s at the median). The standard library's loop accepts up to the listen backlog per turn,
but serves each request at a higher cost than uvloop.

`BatchAcceptLoop` is uvloop's loop whose `create_server` (for plain TCP on a host and port,
what `brokerage serve` asks uvicorn for) listens on sockets of its own and, whenever one is
readable, accepts every waiting connection (at most the backlog) and hands each to uvloop as
an accepted socket, so each connection is then served by uvloop's own transport and uvicorn's
protocol exactly as before. uvicorn takes it by name (`loop=LOOP`).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Iterable
from typing import Any

import structlog
import uvloop

RETRY_AFTER_ERROR = 1.0
"""Seconds the listening stops after the process ran out of descriptors or memory (as the
standard library's loop does), so that the turns in between serve the open connections."""
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

log = structlog.get_logger("gateway.server.accept")


class BatchAcceptServer(asyncio.AbstractServer):
    """Listening sockets whose waiting connections are all accepted at each turn."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sockets: Iterable[socket.socket],
        backlog: int,
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._sockets = list(sockets)
        self._backlog = backlog
        self._serving = False
        self._handshakes: set[asyncio.Task[Any]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._serving or not self._sockets:
            return
        self._serving = True
        for listener in self._sockets:
            self._loop.add_reader(listener.fileno(), self._accept, listener)

    async def serve_forever(self) -> None:
        await self.start_serving()
        await asyncio.Event().wait()

    def close(self) -> None:
        """Stop listening; connections already accepted carry on."""
        sockets, self._sockets = self._sockets, []
        for listener in sockets:
            if self._serving:
                self._loop.remove_reader(listener.fileno())
            listener.close()
        self._serving = False

    async def wait_closed(self) -> None:
        return None

    def _accept(self, listener: socket.socket) -> None:
        """Accept every waiting connection (at most the backlog) and serve each."""
        for _ in range(self._backlog):
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while waiting: the next one
            except OSError as error:
                if error.errno not in _RESOURCE_ERRORS:
                    raise
                log.error("accept_paused", error=str(error), seconds=RETRY_AFTER_ERROR)
                self._loop.remove_reader(listener.fileno())
                self._loop.call_later(RETRY_AFTER_ERROR, self._resume, listener)
                return
            connection.setblocking(False)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._serve(connection))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    def _resume(self, listener: socket.socket) -> None:
        if self._serving and listener in self._sockets:
            self._loop.add_reader(listener.fileno(), self._accept, listener)

    async def _serve(self, connection: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, connection)
        except Exception as error:  # the client went away before it was set up
            connection.close()
            log.debug("connection_not_served", error=str(error))


def listening_sockets(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Non-blocking sockets listening on every address of `host` (all when None), as
    `loop.create_server` would bind them."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            listener = socket.socket(family, kind, proto)
            sockets.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(address)
            listener.listen(backlog)
            listener.setblocking(False)
    except OSError:
        for listener in sockets:
            listener.close()
        raise
    return sockets


class BatchAcceptLoop(uvloop.Loop):
    """uvloop's loop, accepting every waiting connection at each turn (see the module)."""

    async def create_server(  # type: ignore[override]  # uvloop's stubs: two overloads
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        backlog: int = 100,
        ssl: Any = None,
        sock: socket.socket | None = None,
        **options: Any,
    ) -> asyncio.AbstractServer:
        if ssl is not None or options or (port is None and sock is None):
            plain: Any = super()  # uvloop's own, for what is not plain TCP on a host and port
            return await plain.create_server(  # type: ignore[no-any-return]
                protocol_factory, host, port, backlog=backlog, ssl=ssl, sock=sock, **options
            )
        if sock is not None:
            sock.setblocking(False)
            sockets = [sock]
        else:
            assert port is not None
            sockets = listening_sockets(host, port, backlog)
        server = BatchAcceptServer(self, protocol_factory, sockets, backlog)
        await server.start_serving()
        return server


LOOP = f"{__name__}:{BatchAcceptLoop.__name__}"
"""The loop for uvicorn's `loop` setting (an import string of the loop's factory)."""
