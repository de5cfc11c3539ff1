"""The ASGI app and the ways to run it: `ServerThread` (in-process, for tests and tools) and
`serve` (the `brokerage serve` command).

Routes are plain functions run on a thread pool: each blocks on the engine for about a
millisecond while the event loop goes on serving other connections.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import uvicorn
from fastapi import FastAPI

from gateway.brokerage import Brokerage
from gateway.feeds import FeedRunner, random_walk
from gateway.server import alpaca, native, streams
from gateway.server.auth import KeyStore
from gateway.server.context import Gate
from gateway.server.errors import BodyLimit, install

DEFAULT_THREADS = 64


def create_app(broker: Brokerage, keys: KeyStore, *, threads: int = DEFAULT_THREADS) -> FastAPI:
    """An app in front of a started `broker`; `keys` holds the admin key and the accounts'."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield
        hub.close()

    app = FastAPI(
        title="Brokerage",
        version="0.1.0",
        summary="An actor-model brokerage and matching engine over HTTP and WebSocket",
        description=(
            "The native API lives under `/api/`; an Alpaca-compatible surface under `/v2/`. "
            "Authenticate with the `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY` headers. "
            "Money and prices are decimal strings. Every refusal is "
            '`{"code": ..., "message": ...}`.'
        ),
        lifespan=lifespan,
    )
    hub = streams.StreamHub(broker)
    app.state.gate = Gate(broker, keys)
    app.state.hub = hub
    install(app)
    app.include_router(native.router)
    app.include_router(alpaca.router)
    app.include_router(streams.router)
    app.add_middleware(BodyLimit)
    return app


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class ServerThread:
    """Serve an app from a background thread (`with ServerThread(app) as url: ...`)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    @property
    def url(self) -> str:
        """The base URL, such as http://127.0.0.1:8123."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; return the base URL once the server listens."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    mode: str = "market",
    feed_interval: float | None = 1.0,
    admin_key_id: str | None = None,
    admin_secret: str | None = None,
    threads: int = DEFAULT_THREADS,
    log_level: str = "warning",
    announce: Any = print,
    **broker_options: Any,
) -> None:
    """Run `brokerage serve`: list the default universe, start a random-walk price feed (every
    `feed_interval` seconds; None for none), and serve until interrupted."""
    keys = KeyStore(admin_key_id, admin_secret)
    with Brokerage(log_level=log_level, **broker_options) as broker:
        listed = broker.list_universe(mode)
        feed = None
        if feed_interval:
            walk = random_walk(broker, [q.symbol for q in listed], seed=int(time.time()))
            feed = FeedRunner(broker, walk, interval=feed_interval).start()
        announce(f"brokerage serving {len(listed)} stocks on http://{host}:{port}")
        announce(f"  API docs: http://{host}:{port}/docs  Alpaca base URL: http://{host}:{port}")
        announce(f"  admin key id: {keys.admin.key_id}")
        if admin_secret is None:
            announce(f"  admin secret: {keys.admin.secret}")
        app = create_app(broker, keys, threads=threads)
        try:
            uvicorn.run(
                app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on"
            )
        finally:
            if feed is not None:
                feed.stop()
