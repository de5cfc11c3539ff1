"""`BatchAcceptLoop` accepts every waiting connection at one turn of the loop, pauses on
running out of descriptors, serves each connection with uvloop's transport, and stops
listening when closed."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from gateway.server.accept import BatchAcceptLoop, BatchAcceptServer


class Echo(asyncio.Protocol):
    made: ClassVar[list[Any]] = []

    def connection_made(self, transport: Any) -> None:  # uvloop's own transport class
        Echo.made.append(transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())


@pytest.fixture
def served() -> Iterator[tuple[BatchAcceptLoop, BatchAcceptServer, int]]:
    Echo.made = []
    loop = BatchAcceptLoop()
    server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0, backlog=1000))
    assert isinstance(server, BatchAcceptServer)
    yield loop, server, server.sockets[0].getsockname()[1]
    server.close()
    for transport in Echo.made:
        transport.close()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def _turns(loop: asyncio.AbstractEventLoop, count: int) -> None:
    for _ in range(count):
        loop.run_until_complete(asyncio.sleep(0))


def test_every_waiting_connection_is_accepted_at_one_turn(
    served: tuple[BatchAcceptLoop, BatchAcceptServer, int],
) -> None:
    loop, _, port = served
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    try:
        _turns(loop, 3)  # one turn accepts them all; the next sets their transports up
        assert len(Echo.made) == 300
        clients[-1].sendall(b"ping")
        _turns(loop, 3)
        assert clients[-1].recv(10) == b"PING"
    finally:
        for client in clients:
            client.close()


def test_running_out_of_descriptors_pauses_listening_then_resumes(
    served: tuple[BatchAcceptLoop, BatchAcceptServer, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, server, port = served
    listener = server.sockets[0]

    class Exhausted:
        def fileno(self) -> int:
            return listener.fileno()

        def accept(self) -> Any:
            raise OSError(errno.EMFILE, "Too many open files")

    later: list[tuple[float, Any]] = []
    monkeypatch.setattr(loop, "call_later", lambda delay, *call: later.append((delay, call)))
    server._accept(Exhausted())  # type: ignore[arg-type]
    assert [delay for delay, _ in later] == [1.0]
    client = socket.create_connection(("127.0.0.1", port))  # waits in the listen queue
    try:
        _turns(loop, 3)
        assert Echo.made == []  # the listening paused
        resume, _ = later[0][1]
        resume(listener)
        _turns(loop, 3)
        assert len(Echo.made) == 1
    finally:
        client.close()


def test_a_closed_server_refuses_new_connections(
    served: tuple[BatchAcceptLoop, BatchAcceptServer, int],
) -> None:
    loop, server, port = served
    server.close()
    assert not server.is_serving()
    _turns(loop, 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
