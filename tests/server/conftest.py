from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway import Brokerage
from gateway.server import KeyStore, ServerThread, create_app
from gateway.server.limits import Limits

ADMIN = {"APCA-API-KEY-ID": "ADMIN", "APCA-API-SECRET-KEY": "admin-secret"}


@dataclass
class Served:
    """A running server in front of a brokerage with AAPL (market, $150) and BOOK (book,
    $100) listed."""

    url: str
    broker: Brokerage
    client: httpx.Client
    app: FastAPI

    def signup(self, user_id: str, deposit: str = "10000") -> dict[str, Any]:
        """Open an account; return its JSON with `headers` for its key added."""
        body = {"user_id": user_id, "name": user_id.title(), "initial_deposit": deposit}
        answer = self.client.post("/api/accounts", json=body)
        assert answer.status_code == 201, answer.text
        opened: dict[str, Any] = answer.json()
        opened["headers"] = {
            "APCA-API-KEY-ID": opened["api_key_id"],
            "APCA-API-SECRET-KEY": opened["api_secret_key"],
        }
        return opened


@contextlib.contextmanager
def serving(runtime: str, **options: Any) -> Iterator[Served]:
    """A server in front of a new brokerage made with `options`. On "asyncio" the engine runs
    on the server's event loop, started and closed by the app (as `brokerage serve` runs it);
    on "mn" it runs on its own worker thread. "bridged" is "asyncio" with every request passed
    from a front to the app over the bridge's Unix socket, as `brokerage serve --workers`
    passes it (the front on the same loop here; tests/server/test_workers.py runs processes)."""
    bridged = runtime == "bridged"
    if bridged:
        runtime = "asyncio"
    broker = Brokerage(timeout=20, runtime=runtime, **options)
    if runtime == "mn":
        broker.start()
    # every test signs up from loopback: no sign-up limit here (tests/server/test_hostile.py
    # runs the served defaults)
    limits = Limits(signups_per_minute=0)
    app = create_app(broker, KeyStore("ADMIN", "admin-secret"), limits=limits)
    server = ServerThread(app, bridged=bridged)
    with server as url, httpx.Client(base_url=url, timeout=20) as client:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        yield Served(url, broker, client, app)
        broker.audit()
    assert not broker.running or runtime == "mn"
    broker.close()


@pytest.fixture(scope="module", params=["asyncio", "mn", "bridged"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """A server on each runtime in turn, and through the bridge (see `serving`)."""
    with serving(request.param) as found:
        yield found
