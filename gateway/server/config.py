"""How uvicorn is set up to serve: the limits, the protocol and the loop (see limits.py and
accept.py), for one process (`brokerage serve`) and for each front of several (workers.py)."""

from __future__ import annotations

from typing import Any

import uvicorn

from gateway.server import accept
from gateway.server.errors import MAX_BODY_BYTES
from gateway.server.limits import Limits, TimedHttpProtocol, timed_protocol

BACKLOG = 16_384
"""The listen queue asked for (the kernel caps it at `net.core.somaxconn`)."""
GC_THRESHOLDS = (20_000, 20, 100)
"""A server's collector thresholds (CPython's are 700, 10, 10). Every request allocates,
and the engine keeps every order and transaction, so with the defaults the collector ran
about 1,600 times a minute under 3,000 users and its full passes stopped the event loop for
up to 209 ms; with these, and start-up's objects frozen, it ran 23 times, 0.3 s in all."""


def server_config(
    app: Any,
    limits: Limits,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    protocol: type[TimedHttpProtocol] = TimedHttpProtocol,
) -> uvicorn.Config:
    """uvicorn's settings for serving `app` under `limits`, with `protocol` (given the
    request deadline) for HTTP."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        # the limits count by the connecting address (README, "Security and limits"): no
        # X-Forwarded-For is believed, not even from loopback, where uvicorn would by default
        proxy_headers=False,
        http=timed_protocol(limits.request_timeout, protocol),
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive,
        ws_max_size=MAX_BODY_BYTES,  # a WebSocket message, like a body, is at most 64 KiB
        backlog=BACKLOG,
        loop=accept.LOOP,  # every waiting connection accepted at each turn (accept.py)
    )
