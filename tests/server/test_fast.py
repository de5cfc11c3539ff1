"""The hot routes' fast path (gateway/server/fast.py) answers exactly as the FastAPI routes do.

Each request is sent twice to one app in front of one brokerage: once as served (the fast path
first) and once to the FastAPI app alone. Reads and refusals (which change nothing) must come
back byte for byte the same; `dumps` must write what `json.dumps(plain(...))` writes for every
kind of snapshot; and many threads moving cash and trading through the fast path conserve it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from gateway import Brokerage
from gateway.server import KeyStore, ServerThread, create_app, fast
from gateway.server.encode import dumps, plain
from gateway.server.fast import HOT, HOT_PREFIXED, hot_route
from gateway.server.limits import Limits

ADMIN = {"APCA-API-KEY-ID": "ADMIN", "APCA-API-SECRET-KEY": "admin-secret"}


class FrameworkOnly:
    """The same app past its fast path (its lifespan is the served twin's to run)."""

    def __init__(self, app: FastAPI) -> None:
        self.state = app.state
        self.app = functools.partial(FastAPI.__call__, app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


class Twin:
    """One app served two ways: `fast` as `brokerage serve` serves it, `framework` past the
    fast path."""

    def __init__(self) -> None:
        self.broker = Brokerage(timeout=20, runtime="mn").start()
        self.broker.list_stock("AAPL", "Apple Inc.", "150.00")
        self.broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        limits = Limits(signups_per_minute=0, auth_failures_per_minute=0)
        self.app = create_app(self.broker, KeyStore("ADMIN", "admin-secret"), limits=limits)
        self.servers = [ServerThread(self.app), ServerThread(FrameworkOnly(self.app))]  # type: ignore[arg-type]
        self.url, framework_url = (server.start() for server in self.servers)
        self.fast = httpx.Client(base_url=self.url, timeout=20)
        self.framework = httpx.Client(base_url=framework_url, timeout=20)

    def close(self) -> None:
        self.fast.close()
        self.framework.close()
        for server in self.servers:
            server.stop()
        self.broker.close()

    def signup(self, user_id: str, deposit: str = "10000") -> dict[str, str]:
        body = {"user_id": user_id, "name": user_id.title(), "initial_deposit": deposit}
        answer = self.fast.post("/api/accounts", json=body)
        assert answer.status_code == 201, answer.text
        opened = answer.json()
        return {
            "APCA-API-KEY-ID": opened["api_key_id"],
            "APCA-API-SECRET-KEY": opened["api_secret_key"],
        }

    def both(self, method: str, path: str, **request: Any) -> tuple[Any, Any]:
        return (
            self.fast.request(method, path, **request),
            self.framework.request(method, path, **request),
        )


@pytest.fixture(scope="module")
def twin() -> Iterator[Twin]:
    served = Twin()
    yield served
    served.broker.audit()
    served.close()


def _same(fast: Any, framework: Any) -> None:
    assert (fast.status_code, fast.content) == (framework.status_code, framework.content)
    for header in ("content-type", "content-length", "retry-after"):
        assert fast.headers.get(header) == framework.headers.get(header), header


def test_every_hot_route_is_a_route_of_the_app(twin: Twin) -> None:
    """The fast path serves only paths the FastAPI app has (and documents) itself."""
    documented = {
        (method.upper(), path)
        for path, operations in twin.app.openapi()["paths"].items()
        for method in operations
    }
    for method, path in HOT:
        assert (method, path) in documented
    for method, prefix in HOT_PREFIXED:
        assert any(m == method and p.startswith(prefix) for m, p in documented)
    assert hot_route("GET", "/api/stocks/AAPL/depth") is None
    assert hot_route("GET", "/api/stocks/") is None
    assert hot_route("GET", "/api/orders") is None
    assert hot_route("POST", "/api/stocks/AAPL") is None


def test_reads_answer_the_same_both_ways(twin: Twin) -> None:
    me = twin.signup("reader")
    placed = twin.fast.post(
        "/api/orders",
        json={"symbol": "AAPL", "side": "buy", "quantity": 2, "type": "limit", "limit_price": "1"},
        headers=me,
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    twin.fast.post("/api/orders", json={"symbol": "AAPL", "side": "buy", "quantity": 3}, headers=me)
    for path in (
        "/api/health",
        "/api/account",
        "/api/account/portfolio",
        "/api/stocks/AAPL",
        "/api/stocks/BOOK",
        "/api/search?q=app",
        "/api/search?q=b&limit=1",
        "/api/search?q=%C3%A9t%C3%A9&limit=100",
        "/api/search?q=app&unknown=1",
        f"/api/orders/{order_id}",
    ):
        fast, framework = twin.both("GET", path, headers=me)
        assert fast.status_code == 200, (path, fast.text)
        _same(fast, framework)


ORDER = {"symbol": "AAPL", "side": "buy", "quantity": 1}
REFUSALS: list[tuple[str, str, str, dict[str, Any]]] = [
    # (method, path, whose key: "me", "none", "admin", "wrong" or "id only", the request)
    ("GET", "/api/account", "none", {}),
    ("GET", "/api/account", "id only", {}),
    ("GET", "/api/account", "wrong", {}),
    ("GET", "/api/account", "admin", {}),
    ("GET", "/api/account/portfolio", "admin", {}),
    ("GET", "/api/account/portfolio", "wrong", {}),
    ("POST", "/api/account/deposit", "none", {"json": {"amount": "1"}}),
    ("GET", "/api/stocks/NOPE", "me", {}),
    ("GET", "/api/stocks/" + "Z" * 300, "me", {}),
    ("GET", "/api/stocks/AAPL", "none", {}),
    ("GET", "/api/search", "me", {}),
    ("GET", "/api/search?q=", "me", {}),
    ("GET", "/api/search?q=" + "a" * 65, "me", {}),
    ("GET", "/api/search?q=a&limit=0", "me", {}),
    ("GET", "/api/search?q=a&limit=101", "me", {}),
    ("GET", "/api/search?q=a&limit=1e1", "me", {}),
    ("GET", "/api/search?q=a&limit=-1", "me", {}),
    ("GET", "/api/search?q=a&limit=99999999999999999999", "me", {}),
    ("GET", "/api/search?q=a", "wrong", {}),
    ("GET", "/api/orders/O-999999", "me", {}),
    ("GET", "/api/orders/nonsense", "me", {}),
    ("DELETE", "/api/orders/O-999999", "me", {}),
    ("DELETE", "/api/orders/O-999999", "none", {}),
    ("POST", "/api/orders", "none", {"json": ORDER}),
    ("POST", "/api/orders", "admin", {"json": ORDER}),
    ("POST", "/api/orders", "me", {"json": {"symbol": "AAPL", "side": "buy"}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"side": "hold"}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"quantity": 1.5}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"quantity": "-1"}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"quantity": 0}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"quantity": 10**30}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"extra": 1}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"symbol": "NOPE"}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"type": "limit"}}),
    ("POST", "/api/orders", "me", {"json": ORDER | {"type": "limit", "limit_price": "0"}}),
    ("POST", "/api/orders", "me", {"json": [1, 2]}),
    ("POST", "/api/orders", "me", {"content": b"{not json"}),
    ("POST", "/api/orders", "me", {"content": b"{not json", "type": "text/plain"}),
    ("POST", "/api/orders", "me", {"content": b"", "type": "application/json"}),
    ("POST", "/api/orders", "me", {"content": b'{"symbol":"\\ud800"}', "type": "application/json"}),
    ("POST", "/api/orders", "me", {"content": b"x" * (64 * 1024 + 1)}),
    ("POST", "/api/account/deposit", "me", {"json": {"amount": "abc"}}),
    ("POST", "/api/account/deposit", "me", {"json": {"amount": "-5"}}),
    ("POST", "/api/account/deposit", "me", {"json": {"amount": "1.234"}}),
    ("POST", "/api/account/deposit", "me", {"json": {"amount": 1.5}}),
    ("POST", "/api/account/deposit", "me", {"json": {"amount": "9" * 40}}),
    ("POST", "/api/account/deposit", "me", {"json": {}}),
    ("POST", "/api/account/withdraw", "me", {"json": {"amount": "99999999"}}),
    ("POST", "/api/accounts", "none", {"json": {"user_id": "reader-twin", "name": "Again"}}),
    ("POST", "/api/accounts", "none", {"json": {"name": "No Id"}}),
    ("POST", "/api/accounts", "none", {"json": {"user_id": "", "name": "Empty"}}),
    ("POST", "/api/accounts", "me", {"json": {"user_id": "someone-else", "name": "Not Mine"}}),
    ("POST", "/api/accounts", "wrong", {"json": {"user_id": "new-one", "name": "New"}}),
]


@pytest.mark.parametrize(("method", "path", "whose", "request_"), REFUSALS)
def test_refusals_answer_the_same_both_ways(
    twin: Twin, method: str, path: str, whose: str, request_: dict[str, Any]
) -> None:
    """Every refusal changes nothing, so both ways must give the same status, text and
    headers (a request the fast path cannot take goes to the framework, which answers it)."""
    if not hasattr(twin, "me"):
        twin.me = twin.signup("reader-twin")  # type: ignore[attr-defined]
    me: dict[str, str] = twin.me  # type: ignore[attr-defined]
    headers = {
        "me": me,
        "none": {},
        "admin": ADMIN,
        "wrong": {"APCA-API-KEY-ID": me["APCA-API-KEY-ID"], "APCA-API-SECRET-KEY": "wrong"},
        "id only": {"APCA-API-KEY-ID": me["APCA-API-KEY-ID"]},
    }[whose]
    request = dict(request_)
    if "type" in request:
        headers = {**headers, "content-type": request.pop("type")}
    account = twin.broker.accounts(user_id="reader-twin")[0]
    before = (twin.broker.balance(account), len(twin.broker.accounts()))
    fast, framework = twin.both(method, path, headers=headers, **request)
    assert fast.status_code >= 400, fast.text
    _same(fast, framework)
    assert (twin.broker.balance(account), len(twin.broker.accounts())) == before


def test_another_accounts_order_is_not_found_both_ways(twin: Twin) -> None:
    me = twin.signup("nosy")
    other = twin.signup("private")
    theirs = twin.fast.post(
        "/api/orders",
        json={"symbol": "BOOK", "side": "buy", "quantity": 1, "type": "limit", "limit_price": "1"},
        headers=other,
    ).json()["order_id"]
    for method in ("GET", "DELETE"):
        fast, framework = twin.both(method, f"/api/orders/{theirs}", headers=me)
        assert fast.status_code == 404
        _same(fast, framework)
    cancelled = twin.fast.delete(f"/api/orders/{theirs}", headers=other)
    assert cancelled.json()["status"] == "cancelled"
    fast, framework = twin.both("DELETE", f"/api/orders/{theirs}", headers=other)
    assert fast.status_code == 422  # already finished
    _same(fast, framework)


def test_dumps_writes_what_plain_and_json_write(twin: Twin) -> None:
    """Every kind of snapshot the API answers with, written by `dumps` (orjson) and by
    `json.dumps(plain(...))` with Starlette's settings, gives the same bytes."""
    broker = twin.broker
    seller = broker.open_account("dumps-seller", "Seller", initial_deposit="1000").account_id
    buyer = broker.open_account("dumps-buyer", "Buyer", initial_deposit="100000").account_id
    broker.grant_shares(seller, "BOOK", 10, "90")
    resting = broker.place_order(seller, "BOOK", "sell", 5, "limit", "101.5")
    broker.place_order(buyer, "BOOK", "buy", 2, "limit", "101.5")
    broker.place_order(buyer, "AAPL", "buy", 3)
    refused = broker.place_order(buyer, "AAPL", "buy", 10**6)
    cancelled = broker.place_order(buyer, "AAPL", "buy", 1, "limit", "1")
    broker.cancel_order(cancelled.order_id)
    broker.create_watchlist(buyer, "tech", ["AAPL", "BOOK"])
    broker.add_alert(buyer, "AAPL", "above", "500")
    values: list[Any] = [
        broker.get_order(resting.order_id),
        refused,
        broker.get_order(cancelled.order_id),
        broker.orders(buyer),
        broker.transactions(buyer),
        broker.portfolio(buyer),
        broker.balance(buyer),
        broker.quote("BOOK"),
        broker.stocks(),
        broker.depth("BOOK", 5),
        broker.trades("BOOK", 5),
        broker.bars("BOOK", "1m", 5),
        broker.search("b", 5),
        broker.watchlists(buyer),
        broker.watchlist(buyer, "tech"),
        broker.alerts(buyer),
        broker.metrics(),
        broker.audit(),
        broker.set_notification_preferences("dumps-buyer", console=True, events=["fill"]),
        broker.open_account("dumps-new", "Ünïcode ✓ \u2028", initial_deposit="0.01"),
        {"nested": [Decimal("1E+2"), {"b", "a"}, frozenset({3, 1}), None, True]},
    ]
    for value in values:
        expected = json.dumps(
            plain(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
        assert dumps(value) == expected, value


def test_many_threads_move_cash_and_trade_through_the_fast_path(twin: Twin) -> None:
    """16 threads deposit, withdraw, place, cancel, quote and read portfolios at once through
    the fast path; cash moves exactly by what was deposited and withdrawn, nothing stays
    reserved, and every account and book reconciles."""
    keys = [twin.signup(f"busy-{i}", deposit="50000") for i in range(16)]
    before = twin.broker.audit()
    moved: list[Decimal] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        me = keys[index % len(keys)]
        client = httpx.Client(base_url=twin.url, timeout=20)
        net = Decimal(0)
        for step in range(12):
            deposit = client.post("/api/account/deposit", json={"amount": "10.01"}, headers=me)
            withdraw = client.post("/api/account/withdraw", json={"amount": "3.5"}, headers=me)
            order = client.post(
                "/api/orders",
                json={"symbol": "BOOK", "side": "buy", "quantity": 1 + step % 2, "type": "limit"}
                | {"limit_price": str(90 + step % 7)},
                headers=me,
            )
            client.get("/api/stocks/BOOK", headers=me)
            client.get("/api/account/portfolio", headers=me)
            for answer in (deposit, withdraw, order):
                if answer.status_code not in (200, 201):
                    with lock:
                        errors.append(answer.text)
            net += Decimal("10.01") - Decimal("3.5")
            if order.status_code == 201 and step % 3:
                client.delete(f"/api/orders/{order.json()['order_id']}", headers=me)
        client.close()
        with lock:
            moved.append(net)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(32)))
    assert errors == []
    for me in keys:
        for order in twin.broker.orders(
            twin.fast.get("/api/account", headers=me).json()["account_id"],
            ["pending", "partially_filled"],
        ):
            assert twin.fast.delete(f"/api/orders/{order.order_id}", headers=me).status_code == 200
    after = twin.broker.audit()
    assert after.cash - before.cash == sum(moved)
    for me in keys:
        balance = twin.fast.get("/api/account", headers=me).json()["balance"]
        assert balance["reserved"] == "0.00"
        assert Decimal(balance["cash"]) >= 0


def test_a_bug_in_a_hot_route_answers_500_and_logs_no_secret(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `Contain` does for the framework's routes: one event with the method, path and where,
    nothing of the request or the error's text; the answer a plain 500."""
    logged: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def error(self, event: str, **fields: Any) -> None:
            logged.append((event, fields))

    async def broken(_: Any) -> tuple[int, Any]:
        raise RuntimeError("secret-from-the-request")

    monkeypatch.setitem(fast.HOT, ("GET", "/api/health"), broken)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/health", "headers": []}
    routes = fast.FastRoutes(twin.app, twin.app.state.server, Log())
    asyncio.run(routes(scope, receive, send))
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"])["code"] == 50010000
    assert [event for event, _ in logged] == ["request.failed"]
    assert logged[0][1]["error_type"] == "RuntimeError"
    assert "secret" not in repr(logged)


# -- the hot routes answered by the protocol itself (HotHttpProtocol) ----------------------------


def _connect(url: str) -> socket.socket:
    """A TCP connection to the server at `url` (http://host:port)."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _exchange(
    url: str, raw: bytes, answers: int, closes: bool = False
) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Send `raw` bytes on one connection; read `answers` answers: (status line, headers, body);
    if the server `closes` the connection then, one more with what it sent before closing."""
    with _connect(url) as connection:
        connection.sendall(raw)
        stream = connection.makefile("rb")
        read = []
        for _ in range(answers):
            status = stream.readline().rstrip()
            headers: dict[bytes, bytes] = {}
            while line := stream.readline().rstrip():
                name, _, value = line.partition(b": ")
                headers[name.lower()] = value
            read.append((status, headers, stream.read(int(headers[b"content-length"]))))
        if closes:
            read.append((b"", {}, stream.read()))
        return read


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_the_protocol_answers_pipelined_requests_in_order_then_closes_when_asked(
    twin: Twin,
) -> None:
    me = twin.signup("piper")
    order = json.dumps({"symbol": "AAPL", "side": "buy", "quantity": 1}).encode()
    raw = (
        _request("GET", "/api/stocks/AAPL", me)
        + _request("POST", "/api/orders", me, order)
        + _request("POST", "/api/orders", me, b'{"symbol": 5}')  # refused by the framework
        + _request("GET", "/api/account/portfolio", {**me, "Connection": "close"})
    )
    answers = _exchange(twin.url, raw, 4, closes=True)
    assert [status for status, _, _ in answers[:4]] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 201 Created",
        b"HTTP/1.1 422 Unprocessable Entity",
        b"HTTP/1.1 200 OK",
    ]
    assert json.loads(answers[0][2])["symbol"] == "AAPL"
    assert json.loads(answers[1][2])["status"] == "executed"
    assert json.loads(answers[3][2])["holdings"][0]["symbol"] == "AAPL"
    for _, headers, _ in answers[:4]:
        assert headers[b"content-type"] == b"application/json"
        assert b"date" in headers
    assert answers[3][1][b"connection"] == b"close"
    assert answers[4][2] == b""  # and the connection ended there


def test_the_protocol_closes_after_an_http_1_0_request_and_answers_100_continue(
    twin: Twin,
) -> None:
    raw = b"GET /api/health HTTP/1.0\r\n\r\n"
    answers = _exchange(twin.url, raw, 1, closes=True)
    assert answers[0][0] == b"HTTP/1.1 200 OK"
    assert answers[0][1][b"connection"] == b"close"
    assert json.loads(answers[0][2]) == {"status": "ok"}
    assert answers[1][2] == b""
    me = twin.signup("asker")
    body = json.dumps({"amount": "5"}).encode()
    head = _request("POST", "/api/account/deposit", {**me, "Expect": "100-continue"}, body)
    with _connect(twin.url) as connection:
        connection.sendall(head[: -len(body)])
        assert connection.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(body)
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["cash"] == "10005.00"


def test_the_protocol_refuses_a_body_over_the_limit_as_the_framework_does(twin: Twin) -> None:
    me = twin.signup("bulky")
    body = b'{"amount": "' + b"1" * 70_000 + b'"}'
    fast_answer = _exchange(twin.url, _request("POST", "/api/account/deposit", me, body), 1)[0]
    framework_url = str(twin.framework.base_url).rstrip("/")
    framework_answer = _exchange(
        framework_url, _request("POST", "/api/account/deposit", me, body), 1
    )[0]
    assert fast_answer[0] == framework_answer[0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert fast_answer[2] == framework_answer[2]


def test_a_failure_past_the_route_ends_the_connection(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route's own errors are answered (above); should writing the answer fail, the
    connection ends instead of hanging, and the next connection is served."""

    async def unwritable(_: Any) -> tuple[int, Any]:
        return 999, {"status": "ok"}  # no status line for it: the write fails

    monkeypatch.setitem(fast.HOT, ("GET", "/api/health"), unwritable)
    with _connect(twin.url) as connection:
        connection.sendall(b"GET /api/health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert connection.recv(100) == b""
    monkeypatch.undo()
    assert twin.fast.get("/api/health").json() == {"status": "ok"}


def test_the_protocol_answers_a_request_sent_in_pieces_and_a_get_with_a_body(twin: Twin) -> None:
    """A body-less hot request starts once the parser reaches its end: in pieces, that is
    after the last one; a GET that declares a body reads it first, as before."""
    me = twin.signup("slow")
    raw = _request("GET", "/api/stocks/AAPL", me)
    with _connect(twin.url) as connection:
        for start in range(0, len(raw), 7):
            connection.sendall(raw[start : start + 7])
            time.sleep(0.002)
        stream = connection.makefile("rb")
        assert stream.readline().rstrip() == b"HTTP/1.1 200 OK"
    quoted = twin.fast.get("/api/stocks/AAPL", headers=me).json()
    raw = _request("GET", "/api/stocks/AAPL", me, b"{}") + _request("GET", "/api/stocks/AAPL", me)
    answers = _exchange(twin.url, raw, 2)
    assert [json.loads(body) for _, _, body in answers] == [quoted, quoted]
