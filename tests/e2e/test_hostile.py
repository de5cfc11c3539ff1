"""Hostile clients against a real `brokerage serve` on loopback.

Each attack runs while a probe asks `/api/health` every few tens of milliseconds; every probe
must be answered (within its generous timeout), every attack must get a 4xx (never a 500), and
the attacked state must not change. Each test sends from its own loopback address (127.0.0.N),
so the per-address rate limits of one test do not spill into another. At the end, the server's
whole output (debug logs included) must hold no secret that any client sent or was given.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from gateway.server.app import free_port

BROKERAGE = str(Path(sys.executable).with_name("brokerage"))
ADMIN_SECRET = "admin-secret-never-logged-7f3a"
REQUEST_TIMEOUT = 1.5
HUGE = "1e999999"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    output: Path
    secrets: set[str] = field(default_factory=lambda: {ADMIN_SECRET})
    next_address: int = 2

    @property
    def admin(self) -> dict[str, str]:
        return {"APCA-API-KEY-ID": "ADMIN", "APCA-API-SECRET-KEY": ADMIN_SECRET}

    def client(self) -> httpx.Client:
        """A client that sends from a loopback address of its own."""
        address = f"127.0.0.{self.next_address}"
        self.next_address += 1
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=self.url, transport=transport, timeout=10)

    def signup(self, client: httpx.Client, user_id: str, **extra: Any) -> dict[str, str]:
        body = {"user_id": user_id, "name": user_id.title(), "initial_deposit": "10000", **extra}
        answer = client.post("/api/accounts", json=body)
        assert answer.status_code == 201, answer.text
        opened = answer.json()
        self.secrets.add(opened["api_secret_key"])
        return {
            "APCA-API-KEY-ID": opened["api_key_id"],
            "APCA-API-SECRET-KEY": opened["api_secret_key"],
        }


@contextlib.contextmanager
def serve(tmp: Path, *flags: str) -> Iterator[Server]:
    port = free_port()
    output = tmp / f"serve-{port}.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                BROKERAGE,
                "serve",
                "--port",
                str(port),
                "--admin-key-id",
                "ADMIN",
                "--admin-secret",
                ADMIN_SECRET,
                "--feed-interval",
                "0.1",
                "--log-level",
                "debug",
                "--request-timeout",
                str(REQUEST_TIMEOUT),
                "--data",
                str(tmp / f"data-{port}"),
                *flags,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, output)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, output.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/api/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "brokerage serve did not start"
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module", params=["one process", "two fronts"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server as one process, and as an engine process behind two front processes
    (`--workers 2`), where the fronts take every connection and its limits."""
    workers = ("--workers", "2") if request.param == "two fronts" else ()
    with serve(tmp_path_factory.mktemp("hostile"), "--allow-private-webhooks", *workers) as running:
        yield running
        log = running.output.read_text(errors="replace")
        leaked = [s for s in running.secrets if s in log]
        assert leaked == [], "secrets reached the logs"
        assert "Traceback" not in log


class Probe:
    """Asks /api/health every 50 ms from its own thread; counts answers and failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.failures: list[str] = []
        self.slowest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        transport = httpx.HTTPTransport(local_address="127.0.0.1")
        with httpx.Client(base_url=self.url, timeout=5, transport=transport) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = client.get("/api/health").status_code
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                self.slowest = max(self.slowest, time.monotonic() - started)
                if status == 200:
                    self.answered += 1
                else:
                    self.failures.append(f"status {status}")
                self._stop.wait(0.05)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        deadline = time.monotonic() + 10
        while self.answered < 2 and not self.failures and time.monotonic() < deadline:
            time.sleep(0.05)  # at least one probe after the attacks
        self._stop.set()
        self._thread.join()
        assert self.failures == [], self.failures
        assert self.answered > 0


def assert_refused(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"code", "message"}
    assert len(answer.content) < 1_000  # a hostile value is never echoed whole


def test_huge_numbers_are_refused_by_their_text_and_change_nothing(server: Server) -> None:
    with server.client() as client, Probe(server.url):
        me = server.signup(client, "huge-numbers")
        assert client.post(
            "/api/orders", json={"symbol": "AAPL", "side": "buy", "quantity": 1}, headers=me
        ).is_success
        before = client.get("/api/account", headers=me).json()
        attacks = [
            ("POST", "/api/orders", {"symbol": "AAPL", "side": "buy", "quantity": HUGE}, me),
            (
                "POST",
                "/api/orders",
                {
                    "symbol": "AAPL",
                    "side": "buy",
                    "type": "limit",
                    "quantity": 1,
                    "limit_price": HUGE,
                },
                me,
            ),
            ("POST", "/api/account/deposit", {"amount": HUGE}, me),
            ("POST", "/api/account/withdraw", {"amount": HUGE}, me),
            ("POST", "/api/account/deposit", {"amount": "1_000"}, me),
            ("POST", "/api/account/deposit", {"amount": "\u0661\u0660\u0660"}, me),
            ("POST", "/api/account/deposit", {"amount": "\uff11\uff10\uff10"}, me),
            ("POST", "/api/account/deposit", {"amount": "9" * 60_000}, me),
            (
                "POST",
                "/api/alerts",
                {"symbol": "AAPL", "condition": "above", "threshold": HUGE},
                me,
            ),
            (
                "POST",
                "/api/accounts",
                {"user_id": "huge-2", "name": "H", "initial_deposit": HUGE},
                None,
            ),
            (
                "POST",
                "/api/admin/stocks",
                {"symbol": "HUGE", "name": "H", "price": HUGE},
                server.admin,
            ),
            ("PUT", "/api/admin/stocks/AAPL/price", {"price": HUGE}, server.admin),
        ]
        for method, path, body, headers in attacks:
            answer = client.request(method, path, json=body, headers=headers)
            assert answer.status_code in (413, 422), (path, body, answer.text)
            assert_refused(answer, answer.status_code)
        # /v2 bodies carry JSON numbers: a huge exponent, a number too long to be one
        for qty in (HUGE, "9" * 5_000, "1e-999999"):
            answer = client.post(
                "/v2/orders",
                content=f'{{"symbol": "AAPL", "qty": {qty}, "side": "buy", "type": "market",'
                f' "time_in_force": "day"}}',
                headers={**me, "Content-Type": "application/json"},
            )
            assert answer.status_code in (400, 422), answer.text
        for qty in (HUGE, "1_0", "\u0661"):
            assert_refused(
                client.delete("/v2/positions/AAPL", params={"qty": qty}, headers=me), 422
            )
        assert_refused(
            client.delete("/v2/positions/AAPL", params={"percentage": HUGE}, headers=me), 422
        )
        after = client.get("/api/account", headers=me).json()
        orders = client.get("/api/orders", headers=me).json()
        audit = client.get("/api/admin/audit", headers=server.admin)

    assert after == before
    assert len(orders) == 1
    assert audit.status_code == 200, audit.text


def test_a_user_id_cannot_be_taken_over_by_a_sign_up(server: Server) -> None:
    with server.client() as client, Probe(server.url):
        victim = server.signup(client, "victim", email="victim@example.test", phone="+15550100")
        taken = client.post(
            "/api/accounts", json={"user_id": "victim", "name": "Mallory", "initial_deposit": "1"}
        )
        bare = client.post("/api/accounts", json={"user_id": "victim"})
        mallory = server.signup(client, "mallory")
        with_own_key = client.post("/api/accounts", json={"user_id": "victim"}, headers=mallory)
        second = client.post("/api/accounts", json={"user_id": "victim"}, headers=victim)

    assert_refused(taken, 409)
    assert_refused(bare, 409)
    for refused in (taken, bare):
        assert "victim@" not in refused.text
        assert "5550100" not in refused.text
        assert "Victim" not in refused.text
    assert_refused(with_own_key, 403)
    assert second.status_code == 201
    assert second.json()["user"]["email"] == "victim@example.test"  # the owner may see it
    server.secrets.add(second.json()["api_secret_key"])


def test_sign_ups_and_failed_keys_are_rate_limited_per_address(server: Server) -> None:
    with server.client() as flood, server.client() as bystander, Probe(server.url):
        answers = [
            flood.post("/api/accounts", json={"user_id": f"flood-{n}", "name": "F"})
            for n in range(12)
        ]
        limited = [a for a in answers if a.status_code == 429]
        ok = bystander.post("/api/accounts", json={"user_id": "bystander", "name": "B"})
        guesses = [
            flood.get(
                "/api/account",
                headers={"APCA-API-KEY-ID": "PKGUESS", "APCA-API-SECRET-KEY": f"guess-{n}"},
            )
            for n in range(32)
        ]
        bystander_keys = {
            "APCA-API-KEY-ID": ok.json()["api_key_id"],
            "APCA-API-SECRET-KEY": ok.json()["api_secret_key"],
        }
        server.secrets.add(ok.json()["api_secret_key"])
        right_key_from_flood = flood.get("/api/account", headers=bystander_keys)
        right_key_elsewhere = bystander.get("/api/account", headers=bystander_keys)

    assert [a.status_code for a in answers[:10]] == [201] * 10
    assert limited
    assert all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    assert ok.status_code == 201
    assert [g.status_code for g in guesses[:30]] == [401] * 30
    assert {g.status_code for g in guesses[30:]} == {429}
    assert int(guesses[-1].headers["Retry-After"]) >= 1
    assert right_key_from_flood.status_code == 429  # the address is held back, not the key
    assert right_key_elsewhere.status_code == 200


def test_a_forwarded_for_header_buys_no_new_budget(server: Server) -> None:
    """The limits count by the connecting address, even from loopback: X-Forwarded-For is
    not believed (a local process could claim any address with it)."""
    transport = httpx.HTTPTransport(local_address="127.0.0.1")
    with httpx.Client(base_url=server.url, transport=transport, timeout=10) as client:
        answers = [
            client.post(
                "/api/accounts",
                json={"user_id": f"forwarded-{n}", "name": "F"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            for n in range(12)
        ]
    server.secrets.update(a.json()["api_secret_key"] for a in answers if a.status_code == 201)
    assert 429 in [a.status_code for a in answers]


def test_idle_and_trickling_sockets_are_closed_and_never_starve_the_server(
    server: Server,
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    sockets = []
    with Probe(server.url) as probe:
        for n in range(300):
            raw = socket.create_connection((host, int(port)), source_address=("127.0.0.50", 0))
            if n % 2:
                raw.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # never finished
            sockets.append(raw)
        time.sleep(REQUEST_TIMEOUT + 1.5)
        readable, _, _ = select.select(sockets, [], [], 2)  # a closed socket reads EOF
        closed = 0
        for raw in readable:
            try:
                closed += raw.recv(1) == b""
            except ConnectionResetError:
                closed += 1
        for raw in sockets:
            raw.close()
    assert closed == len(sockets)
    assert probe.answered > 0


def test_the_open_file_limit_is_raised_at_start(server: Server) -> None:
    limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard


def test_a_chunked_body_over_the_limit_is_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 8_192

    with server.client() as client:
        me = server.signup(client, "chunky")
        answer = client.post(
            "/api/account/deposit",
            content=chunks(),
            headers={**me, "Content-Type": "application/json"},
        )
    assert_refused(answer, 413)


class Webhooks:
    """A local webhook receiver: /hung never answers; /ok records what it was sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/hung":
                    outer.release.wait(30)
                    return
                outer.received.append(body)
                outer.arrived.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()


def test_a_hung_webhook_delays_nobody_else(server: Server) -> None:
    hooks = Webhooks()
    try:
        with server.client() as client, Probe(server.url):
            slow = server.signup(client, "slow-hook")
            fast = server.signup(client, "fast-hook")
            assert client.put(
                "/api/notifications", json={"push": f"{hooks.url}/hung"}, headers=slow
            ).is_success
            assert client.put(
                "/api/notifications", json={"push": f"{hooks.url}/ok"}, headers=fast
            ).is_success
            for _ in range(5):
                client.post(
                    "/api/orders",
                    json={"symbol": "AAPL", "side": "buy", "quantity": 1},
                    headers=slow,
                ).raise_for_status()
            ws_url = server.url.replace("http", "ws") + "/stream/market"
            with connect(ws_url) as stream:
                json.loads(stream.recv(timeout=5))
                stream.send(
                    json.dumps(
                        {
                            "action": "auth",
                            "key": fast["APCA-API-KEY-ID"],
                            "secret": fast["APCA-API-SECRET-KEY"],
                        }
                    )
                )
                json.loads(stream.recv(timeout=5))
                stream.send(json.dumps({"action": "subscribe", "quotes": ["*"]}))
                client.post(
                    "/api/orders",
                    json={"symbol": "MSFT", "side": "buy", "quantity": 1},
                    headers=fast,
                ).raise_for_status()
                quotes = 0
                while quotes < 20:  # the feed moves prices every 0.1 s: they keep coming
                    quotes += sum(m.get("T") == "q" for m in json.loads(stream.recv(timeout=5)))
            assert hooks.arrived.wait(10), "the other user's webhook was held up"
    finally:
        hooks.close()
    assert hooks.received[0]["subject"].startswith("Filled: buy 1 MSFT")


def test_the_connection_cap_answers_503_past_it_and_recovers(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, "--max-connections", "40") as small:
        host, port = small.url.removeprefix("http://").split(":")
        held = [
            socket.create_connection((host, int(port)), source_address=("127.0.0.60", 0))
            for _ in range(40)
        ]
        time.sleep(0.3)
        over = httpx.get(f"{small.url}/api/health", timeout=5)
        for raw in held:
            raw.close()
        time.sleep(0.3)
        after = httpx.get(f"{small.url}/api/health", timeout=5)
    assert over.status_code == 503
    assert after.status_code == 200


def test_oversized_heads_and_websocket_messages_are_refused(server: Server) -> None:
    from websockets.exceptions import ConnectionClosed

    with server.client() as client, Probe(server.url):
        many_headers = {f"X-Pad-{n}": "x" * 1_000 for n in range(40)}
        headers = client.get("/api/health", headers=many_headers)
        url = client.get("/api/health?" + "q" * 40_000)
        with connect(server.url.replace("http", "ws") + "/stream/market") as stream:
            json.loads(stream.recv(timeout=5))
            stream.send("x" * 100_000)
            with pytest.raises(ConnectionClosed) as closed:
                stream.recv(timeout=5)

    assert headers.status_code == 431
    assert url.status_code == 431
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # message too big
