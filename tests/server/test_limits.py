"""The rate limiter and what it counts by, on a clock the test moves; the sweep that keeps
the request deadline and the keep-alive timeout, on a real server."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from gateway import Brokerage
from gateway.server import KeyStore, ServerThread, create_app
from gateway.server.context import client_address
from gateway.server.limits import Limits, RateLimitedError, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refuses_until_it_refills() -> None:
    clock = Clock()
    limiter = RateLimiter("sign-ups", 6, clock=clock)  # one token every 10 s

    for _ in range(6):
        limiter.take("10.0.0.1")
    with pytest.raises(RateLimitedError) as refused:
        limiter.take("10.0.0.1")
    limiter.take("10.0.0.2")  # another address has its own bucket
    clock.now += 10
    limiter.take("10.0.0.1")

    assert refused.value.retry_after == 10
    with pytest.raises(RateLimitedError):
        limiter.take("10.0.0.1")


def test_check_takes_nothing_and_a_zero_limit_is_no_limit() -> None:
    limiter = RateLimiter("failed authentications", 1, clock=Clock())
    for _ in range(5):
        limiter.check("a")
    limiter.spend("a")

    with pytest.raises(RateLimitedError):
        limiter.check("a")
    unlimited = RateLimiter("sign-ups", 0)
    for _ in range(1_000):
        unlimited.take("a")


def test_the_table_of_buckets_is_bounded_least_recently_used_first() -> None:
    limiter = RateLimiter("sign-ups", 1, max_keys=100, clock=Clock())
    for n in range(1_000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")

    assert len(limiter._buckets) == 100
    limiter.take("10.0.0.0")  # its bucket was dropped: a full one again


@dataclass
class Peer:
    host: str


@dataclass
class Asking:
    client: Any


@pytest.mark.parametrize(
    ("host", "counted"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_ipv4_counts_by_address_and_ipv6_by_its_64_network(host: str, counted: str) -> None:
    assert client_address(Asking(Peer(host))) == counted  # type: ignore[arg-type]
    assert client_address(Asking(None)) == "unknown"  # type: ignore[arg-type]


def _read_answer(connection: socket.socket) -> bytes:
    """One whole answer (head and a Content-Length body) from `connection`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += connection.recv(65536)
    return head


def test_one_sweep_closes_idle_and_unfinished_connections_and_spares_busy_ones() -> None:
    """The request deadline and the keep-alive timeout, kept by the loop's sweep: an idle
    keep-alive and an unfinished request are closed about on time, a connection that keeps
    asking is not, and a WebSocket is no longer the sweep's once upgraded."""
    with Brokerage(timeout=20) as broker:
        limits = Limits(signups_per_minute=0, keep_alive=1, request_timeout=1.0)
        app = create_app(broker, KeyStore("ADMIN", "admin-secret"), limits=limits)
        with ServerThread(app) as url:
            host, port = url.removeprefix("http://").split(":")
            health = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
            idle = socket.create_connection((host, int(port)), timeout=10)
            idle.sendall(health)
            assert _read_answer(idle).startswith(b"HTTP/1.1 200")
            unfinished = socket.create_connection((host, int(port)), timeout=10)
            unfinished.sendall(b"GET /api/health HTTP/1.1\r\n")
            busy = socket.create_connection((host, int(port)), timeout=10)
            with ws_connect(url.replace("http", "ws") + "/stream/market") as stream:
                assert json.loads(stream.recv(timeout=5)) == [{"T": "success", "msg": "connected"}]
                started = time.monotonic()
                while time.monotonic() - started < 2.5:  # past both timeouts and a sweep
                    busy.sendall(health)
                    assert _read_answer(busy).startswith(b"HTTP/1.1 200")
                    time.sleep(0.3)
                assert idle.recv(1) == b""  # closed: idle past keep-alive
                assert unfinished.recv(1) == b""  # closed: past the request deadline
                stream.send("{not json")  # still open after the upgrade
                assert json.loads(stream.recv(timeout=5))[0]["code"] == 400
            for connection in (idle, unfinished, busy):
                connection.close()
