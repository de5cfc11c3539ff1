"""A server that answers `BrokerageUser`'s requests with fixed JSON at almost no cost, to
measure what the load generator itself needs on a machine (`python -m loadtest.run --null`).

    python -m loadtest.null_server --port 8099

Every answer is a constant of the shape the user checks (a sign-up's key, an order's id and
status, a quote's last price), written by one asyncio protocol on uvloop with no framework and
no engine: what it spends per request is close to the least any Python server can. With locust
and this server on one machine, the CPU locust uses is the share of the machine a real server
can never have under that load.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import cast

import uvloop


def _answer(status: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


SIGNUP = _answer(b"201 Created", b'{"account_id":"A-1","api_key_id":"PK","api_secret_key":"s"}')
ORDER = _answer(b"201 Created", b'{"order_id":"O-000001","status":"pending","reject_reason":null}')
QUOTE = _answer(b"200 OK", b'{"symbol":"AAPL","last_price":"150.00"}')
OTHER = _answer(b"200 OK", b'{"status":"ok"}')


class NullProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: each complete request (head and Content-Length body) gets its
    fixed answer, in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's, not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                length = int(head[at + 17 :].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            line = head.split(b"\r\n", 1)[0]
            if line.startswith(b"post /api/accounts"):
                answer = SIGNUP
            elif line.startswith(b"post /api/orders"):
                answer = ORDER
            elif line.startswith(b"get /api/stocks/"):
                answer = QUOTE
            else:
                answer = OTHER
            assert self.transport is not None
            self.transport.write(answer)


async def serve(host: str, port: int) -> None:
    """Answer on host:port until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(NullProtocol, host, port, backlog=16_384)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
