"""The bridge between a front and the engine process, at the ASGI level (gateway/server/
bridge.py). The served suites run through it too (`served`'s "bridged"); these check what
only the bridge does: the client's address passed on, a lost engine, a WebSocket client slower
than its stream and one that sends faster than the app reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from gateway.server import bridge

Message = MutableMapping[str, Any]
App = Callable[[Any, Any, Any], Awaitable[None]]
HTTP = {"type": "http", "method": "GET", "path": "/x", "headers": [], "client": ("1.2.3.4", 5)}
SOCKET = {"type": "websocket", "path": "/stream", "headers": [], "client": ("1.2.3.4", 5)}
REQUEST = {"type": "http.request", "body": b"hello", "more_body": False}


class Pair:
    """An engine end serving `app` on a Unix socket, and a front connected to it."""

    def __init__(self, app: App, folder: Path) -> None:
        self.app = app
        self.path = str(folder / "engine.sock")
        self.links: list[bridge.EngineLink] = []
        self.lost = 0
        self.front = bridge.BridgeApp(self.path, on_lost=self._lost)

    def _lost(self) -> None:
        self.lost += 1

    def _link(self) -> bridge.EngineLink:
        self.links.append(bridge.EngineLink(self.app))
        return self.links[-1]

    async def start(self) -> None:
        await asyncio.get_running_loop().create_unix_server(self._link, self.path)
        await self.front.connect()


class Client:
    """One client of the front: it sends `events` then waits (or disconnects), and keeps what
    it is sent; `slow` holds each send until released."""

    def __init__(self, events: list[Message], *, slow: bool = False) -> None:
        self.events = list(events)
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.release = asyncio.Event()
        if not slow:
            self.release.set()

    async def receive(self) -> Message:
        if self.events:
            return self.events.pop(0)
        await self.gone.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, event: Message) -> None:
        await self.release.wait()
        self.sent.append(event)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


def test_a_request_reaches_the_app_with_the_clients_address_and_its_answer_comes_back(
    tmp_path: Path,
) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = await receive()
        seen.append((scope["client"], scope["path"], body["body"]))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
        await send({"type": "http.response.body", "body": b"done"})

    async def test() -> None:
        pair = Pair(app, tmp_path)
        await pair.start()
        client = Client([REQUEST])
        await pair.front(HTTP, client.receive, client.send)
        assert seen == [(("1.2.3.4", 5), "/x", b"hello")]
        assert [e["type"] for e in client.sent] == ["http.response.start", "http.response.body"]
        assert client.sent[1]["body"] == b"done"
        assert pair.front.link is not None
        assert pair.front.link.inboxes == {}
        assert pair.links[0].exchanges == {}

    run(test)


def test_a_lost_engine_is_a_503_in_the_error_shape_and_stops_the_front(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await asyncio.Event().wait()  # no answer: the engine goes first

    async def test() -> None:
        pair = Pair(app, tmp_path)
        await pair.start()
        client = Client([REQUEST])
        waiting = asyncio.ensure_future(pair.front(HTTP, client.receive, client.send))
        await started.wait()
        assert pair.links[0].transport is not None
        pair.links[0].transport.close()  # as the engine process's end closes when it dies
        await waiting
        assert client.sent[0]["status"] == 503
        assert (b"retry-after", b"1") in client.sent[0]["headers"]
        body = json.loads(client.sent[1]["body"])
        assert set(body) == {"code", "message"}
        assert "engine" in body["message"]
        assert pair.lost == 1
        later = Client([REQUEST])  # what comes after is answered at once
        await pair.front(HTTP, later.receive, later.send)
        assert later.sent[0]["status"] == 503

    run(test)


def test_a_websocket_slower_than_its_stream_is_closed_and_the_app_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge, "QUEUE_LIMIT", 5)
    told: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for n in range(50):
            await send({"type": "websocket.send", "text": str(n)})
        told.append(await receive())

    async def test() -> None:
        pair = Pair(app, tmp_path)
        await pair.start()
        client = Client([{"type": "websocket.connect"}], slow=True)
        waiting = asyncio.ensure_future(pair.front(SOCKET, client.receive, client.send))
        while not told and not (
            pair.front.link and any(inbox.overflowed for inbox in pair.front.link.inboxes.values())
        ):
            await asyncio.sleep(0.01)
        client.release.set()
        await waiting
        assert client.sent[-1]["type"] == "websocket.close"  # what was queued is dropped
        assert client.sent[-1]["code"] == 1008
        assert len(client.sent) < 10
        while not told:
            await asyncio.sleep(0.01)
        assert told[0]["type"] == "websocket.disconnect"

    run(test)


def test_a_websocket_sending_faster_than_the_app_reads_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge, "QUEUE_LIMIT", 5)
    reading = asyncio.Event()
    told: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await reading.wait()  # reads nothing until the flood is in
        while (event := await receive())["type"] != "websocket.disconnect":
            told.append(event)
        told.append(event)

    async def test() -> None:
        pair = Pair(app, tmp_path)
        await pair.start()
        flood = [{"type": "websocket.receive", "text": str(n)} for n in range(50)]
        client = Client([{"type": "websocket.connect"}, *flood])
        waiting = asyncio.ensure_future(pair.front(SOCKET, client.receive, client.send))
        while not any(e["type"] == "websocket.close" for e in client.sent):
            await asyncio.sleep(0.01)
        assert client.sent[-1]["code"] == 1008
        reading.set()
        client.gone.set()
        await waiting
        assert told == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]

    run(test)
