"""The ASGI app and the ways to run it: `ServerThread` (in-process, for tests and tools) and
`serve` (the `brokerage serve` command).

Hot routes are coroutines that await the engine (`Brokerage.a*`); the rest are plain
functions run on a thread pool, each blocking on the engine for about a millisecond.
`brokerage serve` runs the engine on the server's own event loop (the "asyncio" runtime), so
a request reaches the actors and comes back with no thread switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import os
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio.to_thread
import uvicorn
import uvloop
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from actors.log import make_logger
from actors.notify import NotificationSettings
from gateway.apps.feeds import FeedRunner, random_walk
from gateway.apps.venue import Venue
from gateway.brokerage import Brokerage
from gateway.server import alpaca, bridge, native, streams
from gateway.server.auth import ADMIN_NOTE, KEY_NOTE, KeyStore
from gateway.server.config import GC_THRESHOLDS, server_config
from gateway.server.context import WATCHLIST_NOTE, ServerState, document_security
from gateway.server.desk import install_desk
from gateway.server.errors import BodyLimit, Contain, install
from gateway.server.fast import FastRoutes, HotHttpProtocol
from gateway.server.limits import Limits, raise_file_limit
from gateway.server.workers import serve_with_workers

DEFAULT_THREADS = 64


def create_app(
    broker: Brokerage,
    keys: KeyStore,
    *,
    threads: int = DEFAULT_THREADS,
    universe: str | None = None,
    feed_interval: float | None = None,
    agents: int = 0,
    announce: Callable[[str], Any] | None = None,
    limits: Limits | None = None,
    log_level: str = "warning",
    fast: bool = True,
) -> FastAPI:
    """An app in front of `broker`; `keys` holds the admin key and the accounts'.

    With `fast` (the default) the hot routes are answered by `FastRoutes` before the framework
    sees them (gateway/server/fast.py); False leaves every request to FastAPI.

    `limits` sets what is capped, timed out and rate-limited (`Limits()` by default); server
    errors are logged as one JSON event at `log_level` or above.

    A broker that is not running yet is started when the app starts (on its event loop, which
    an "asyncio" runtime needs) and closed when it stops. `universe` ("market" or "book")
    lists the default universe at start, and `feed_interval` starts a random-walk price feed
    moving every listed stock that often. `agents` trader agents trade the listed stocks
    beside the users (`Venue`, gateway/apps/venue.py: market makers and noise traders).
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        owned = not broker.running
        if owned:
            broker.start()
        if keys.restore_admin(broker.notes(ADMIN_NOTE)):
            if announce is not None:
                announce(f"  admin key id: {keys.admin.key_id} (kept: its secret was shown before)")
        else:
            await broker.anote(ADMIN_NOTE, keys.admin_note())  # the same key after a restart
            if announce is not None:
                announce(f"  admin key id: {keys.admin.key_id}")
                if keys.secret_made:
                    announce(f"  admin secret: {keys.admin.secret}")
        restored = keys.restore(broker.notes(KEY_NOTE))
        app.state.server.restore_watchlists(broker.notes(WATCHLIST_NOTE))
        if restored and announce is not None:
            accounts = await broker.aaccounts()
            announce(f"recovered {len(accounts)} accounts and {restored} keys")
        feed = venue = None
        try:
            if universe is not None:
                listed = await asyncio.to_thread(broker.list_universe, universe)
                if feed_interval:
                    symbols = [q.symbol for q in await asyncio.to_thread(broker.stocks)]
                    walk = await asyncio.to_thread(
                        random_walk, broker, symbols, seed=time.time_ns()
                    )
                    feed = FeedRunner(broker, walk, interval=feed_interval).start()
                if announce is not None:
                    announce(f"listed {len(listed)} stocks ({universe} mode)")
            if agents:
                venue = await asyncio.to_thread(_venue, broker, agents, seed=time.time_ns())
                if announce is not None:
                    announce(f"  {agents} trader agents ({venue.mode} mode) trading beside you")
            if owned:  # a server process: keep start-up's objects out of the collector's walks
                gc.collect()
                gc.freeze()
            yield
        finally:
            if venue is not None:
                await asyncio.to_thread(venue.stop)
            if feed is not None:
                await asyncio.to_thread(feed.stop)
            await asyncio.to_thread(hub.close)
            if owned:
                await broker.aclose()

    app = BrokerageApi(
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

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_security(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    hub = streams.StreamHub(broker)
    app.state.server = ServerState(broker, keys, limits or Limits())
    app.state.hub = hub
    install(app)
    app.include_router(native.router)
    app.include_router(alpaca.router)
    app.include_router(streams.router)
    install_desk(app)
    app.add_middleware(BodyLimit)
    log = make_logger(log_level)
    app.add_middleware(Contain, log=log)  # outermost: it sees every error
    if fast:
        app.fast = FastRoutes(functools.partial(FastAPI.__call__, app), app.state.server, log)
    return app


class BrokerageApi(FastAPI):
    """The FastAPI app, with its hot routes answered first by `fast` where set."""

    fast: FastRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast is not None and scope["type"] == "http":
            await self.fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    state = getattr(app.state, "server", None)
    limits = state.limits if state is not None else Limits()
    return server_config(
        app, limits, host=host, port=port, log_level=log_level, protocol=HotHttpProtocol
    )


class ServerThread:
    """Serve an app from a background thread (`with ServerThread(app) as url: ...`).

    `bridged` serves it as `brokerage serve --workers` does, in one thread: a front
    (`bridge.BridgeApp`) takes the clients and passes each request over a Unix socket to the
    app on the same loop (for tests of the bridge; see workers.py for the processes)."""

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        bridged: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        target: Callable[[], None]
        if bridged:
            self._folder = tempfile.TemporaryDirectory(prefix="brokerage-")
            path = os.path.join(self._folder.name, "engine.sock")
            limits = app.state.server.limits
            front = bridge.BridgeApp(path)
            config = server_config(front, limits, host=host, port=self.port)
            self._server = uvicorn.Server(config)
            target = functools.partial(self._bridged, app, path)
        else:
            self._server = uvicorn.Server(_config(app, host, self.port, "warning"))
            target = self._server.run
        self._thread = threading.Thread(target=target, name="http", daemon=True)

    def _bridged(self, app: FastAPI, path: str) -> None:
        async def both() -> None:
            async with app.router.lifespan_context(app):
                engine = await bridge.serve_engine(app, path)
                try:
                    await self._server.serve()
                finally:
                    engine.close()

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(both())

    @property
    def url(self) -> str:
        """The base URL, such as http://127.0.0.1:8123."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> str:
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
        self._thread.join(timeout=30)
        if self._folder is not None:
            self._folder.cleanup()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving_beside(
    broker: Brokerage,
    host: str,
    port: int,
    *,
    admin_key_id: str | None = None,
    admin_secret: str | None = None,
    announce: Callable[[str], Any] = print,
    progress: Callable[[], dict[str, Any]] | None = None,
) -> Iterator[str]:
    """Serve a running `broker` (a simulation's) over HTTP from a thread while the `with`
    body runs: the full API, keys and all, the admin key given or made and announced; the
    server stops, and the requests under way with it, when the body ends. Yields the URL.
    `progress()` tells how far the run is (`GET /api/admin/simulation`)."""
    keys = KeyStore(admin_key_id, admin_secret)
    app = create_app(broker, keys, announce=announce)
    app.state.server.progress = progress
    with ServerThread(app, host, port) as url:
        announce(f"serving the run on {url} (Alpaca base URL; sign up: POST {url}/api/accounts)")
        yield url


def _venue(broker: Brokerage, count: int, *, seed: int) -> Venue:
    """`count` agents trading every listed stock, in the mode most of them trade in."""
    quotes = broker.stocks()
    books = sum(q.mode.value == "book" for q in quotes)
    mode = "book" if books * 2 > len(quotes) else "market"
    return Venue(broker, [q.symbol for q in quotes], count, mode, seed=seed).start()


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    mode: str = "market",
    feed_interval: float | None = 1.0,
    agents: int = 0,
    admin_key_id: str | None = None,
    admin_secret: str | None = None,
    threads: int = DEFAULT_THREADS,
    log_level: str = "warning",
    announce: Callable[[str], Any] = print,
    limits: Limits | None = None,
    workers: int = 0,
    **broker_options: Any,
) -> None:
    """Run `brokerage serve`: the engine on the server's event loop, the default universe
    listed, a random-walk price feed (every `feed_interval` seconds; None for none) and
    `agents` trader agents, until interrupted. The open-file limit is raised to its maximum
    first, and the connection cap lowered to fit under it if it must be. `workers` > 0 serves
    HTTP from that many front processes before this one, which runs the app (workers.py)."""
    limits = limits or Limits()
    room = raise_file_limit(limits.max_connections)
    if room < limits.max_connections:
        announce(f"  the open-file limit leaves room for {room} connections: capped there")
        limits = dataclasses.replace(limits, max_connections=room)
    keys = KeyStore(admin_key_id, admin_secret)
    gc.set_threshold(*GC_THRESHOLDS)
    broker_options.setdefault(
        "notifications",
        NotificationSettings(allow_private_addresses=limits.allow_private_webhooks),
    )
    broker = Brokerage(log_level=log_level, runtime="asyncio", **broker_options)
    store = broker_options.get("store")
    announce(f"  kept in: {store.split('@')[-1] if store else 'memory only (--memory)'}")
    app = create_app(
        broker,
        keys,
        threads=threads,
        universe=mode,
        feed_interval=feed_interval,
        agents=agents,
        announce=announce,
        limits=limits,
        log_level=log_level,
    )
    announce(f"brokerage serving on http://{host}:{port}")
    announce(f"  API docs: http://{host}:{port}/docs  Alpaca base URL: http://{host}:{port}")
    if workers:
        serve_with_workers(
            app,
            host,
            port,
            workers=workers,
            limits=limits,
            log_level=log_level,
            announce=announce,
        )
    else:
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once shut down
            uvicorn.Server(_config(app, host, port, log_level)).run()
    announce("brokerage stopped")
