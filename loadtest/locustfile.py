"""Locust users for the brokerage.

`BrokerageUser` is a customer of a running `brokerage serve`: it signs up, deposits, then
searches, reads quotes, places market and limit orders, cancels, and reads its portfolio, with a
think time between actions. It measures the whole network path: HTTP, auth, JSON and the
engine.

`EmbeddedUser` does the same against a `Brokerage` inside the locust process and reports each
call through locust's request events (request type "embedded"). It measures the engine alone,
as an embedding program sees it. Locust runs users as gevent greenlets and patches threading
on import, so the engine's threads become greenlets too; at the end of a run the embedded
brokerage is audited and a broken invariant fails the run.

    locust -f loadtest/locustfile.py BrokerageUser --host http://127.0.0.1:8000
    locust -f loadtest/locustfile.py EmbeddedUser --headless -u 100 -t 30s

Think time: `LOADTEST_WAIT_MIN` and `LOADTEST_WAIT_MAX` seconds (1 and 5 by default). Each of
`BrokerageUser`'s tasks has a tag (search, quote, portfolio, order, limit, deposit), so that
`--tags quote` measures one endpoint alone.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import random
import select
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlsplit

import gevent.monkey
from geventhttpclient import HTTPClient
from geventhttpclient.connectionpool import ConnectionPool
from locust import User, between, events, tag, task
from locust.env import Environment

from engine.orders import OrderStatus, RejectReason
from engine.universe import DEFAULT_UNIVERSE
from gateway.brokerage import Brokerage

WAIT = between(
    float(os.environ.get("LOADTEST_WAIT_MIN", "1")), float(os.environ.get("LOADTEST_WAIT_MAX", "5"))
)
SYMBOLS = [symbol for symbol, _, _ in DEFAULT_UNIVERSE]
QUERIES = ["app", "micro", "bank", "energy", "tesla", "co", "inc", "pharma", "NV", "J"]
DEPOSIT = "100000"
TIMEOUT = 60.0
"""Seconds a connection or an answer may take before the request counts as failed."""
_RUN = uuid.uuid4().hex[:8]
_users = itertools.count(1)


def _limit_below(price: str) -> str:
    """A buy limit a little under the price, so that it rests (and can be cancelled)."""
    cents = int(price.replace(".", "")) * 95 // 100
    return f"{cents // 100}.{cents % 100:02d}"


class BrokerageUser(User):
    """A customer over HTTP (see the module's docstring).

    Each user keeps one HTTP/1.1 connection, as a browser tab or a trading program does, on
    geventhttpclient's `HTTPClient`: the client `FastHttpUser` wraps, without the layers a
    customer of this API never uses (a cookie jar, redirects, URL re-parsing, header merging
    per request). Measured against `loadtest/null_server.py` with 10,000 users, locust needed
    1.60 cores with `FastHttpUser` and 1.12 with this, for the same requests; the server's
    side is the same either way. Every answer is checked: its exact status (201 for a sign-up
    and an order, 200 otherwise) and, where the user reads it, its JSON.
    """

    wait_time = WAIT

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if self.host is None:
            raise ValueError("BrokerageUser needs --host")
        url = urlsplit(self.host)
        self.http = HTTPClient(
            url.hostname or "127.0.0.1",
            port=url.port,
            concurrency=1,
            connection_timeout=TIMEOUT,
            network_timeout=TIMEOUT,
        )
        self.headers: dict[str, str] = {}
        self.held: dict[str, int] = {}

    def _call(self, method: str, path: str, name: str, body: Any = None, expect: int = 200) -> Any:
        """Send one request and report it to locust; its JSON if it answered `expect`, else
        None (the request counted as failed)."""
        started = time.perf_counter()
        error: BaseException | None = None
        content = b""
        try:
            if body is None:
                answer = self.http.request(method, path, headers=self.headers)
            else:
                payload = json.dumps(body)
                headers = {**self.headers, "Content-Type": "application/json"}
                answer = self.http.request(method, path, body=payload, headers=headers)
            try:
                content = answer.read()
            finally:
                answer.release()
            if answer.status_code != expect:
                said = content[:200].decode(errors="replace")
                error = WrongAnswerError(f"{answer.status_code} {said}")
        except Exception as raised:  # the connection failed or timed out
            error = raised
        self.environment.events.request.fire(
            request_type=method,
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(content),
            exception=error,
            context={},
        )
        if error is not None:
            return None
        try:
            return json.loads(content)
        except ValueError as broken:
            self._failed(f"{name}: JSON", str(broken))
            return None

    def _order(self, body: dict[str, Any], name: str) -> dict[str, Any] | None:
        order: dict[str, Any] | None = self._call("POST", "/api/orders", name, body, 201)
        if order is not None and order["reject_reason"] == RejectReason.BUSY:
            self._failed(name, "rejected: busy")
        return order

    def _failed(self, name: str, why: str) -> None:
        """Count a request that answered as expected but with a wrong content."""
        self.environment.events.request.fire(
            request_type="CHECK",
            name=name,
            response_time=0,
            response_length=0,
            exception=WrongAnswerError(why),
            context={},
        )

    def on_start(self) -> None:
        user_id = f"L{_RUN}-{os.getpid()}-{next(_users)}"  # workers fork after the import
        body = {"user_id": user_id, "name": user_id, "initial_deposit": DEPOSIT}
        opened = self._call("POST", "/api/accounts", "signup", body, 201)
        if opened is None:
            raise RuntimeError("signup failed")
        self.headers = {
            "APCA-API-KEY-ID": opened["api_key_id"],
            "APCA-API-SECRET-KEY": opened["api_secret_key"],
        }

    def on_stop(self) -> None:
        self.http.close()

    @tag("search")
    @task(3)
    def search(self) -> None:
        self._call("GET", f"/api/search?q={url_quote(random.choice(QUERIES))}", "search")

    @tag("quote")
    @task(3)
    def quote(self) -> None:
        self._call("GET", f"/api/stocks/{random.choice(SYMBOLS)}", "quote")

    @tag("portfolio")
    @task(2)
    def portfolio(self) -> None:
        self._call("GET", "/api/account/portfolio", "portfolio")

    @tag("order")
    @task(2)
    def market_order(self) -> None:
        symbol = random.choice(SYMBOLS[:20])
        if self.held.get(symbol, 0) >= 2 and random.random() < 0.5:
            body = {"symbol": symbol, "side": "sell", "quantity": 1}
            order = self._order(body, "order: market sell")
            if order and order["status"] == OrderStatus.EXECUTED:
                self.held[symbol] -= 1
            return
        order = self._order({"symbol": symbol, "side": "buy", "quantity": 1}, "order: market buy")
        if order and order["status"] == OrderStatus.EXECUTED:
            self.held[symbol] = self.held.get(symbol, 0) + 1

    @tag("limit")
    @task(1)
    def limit_order_then_cancel(self) -> None:
        symbol = random.choice(SYMBOLS[:20])
        quoted = self._call("GET", f"/api/stocks/{symbol}", "quote")
        if quoted is None:
            return
        body = {
            "symbol": symbol,
            "side": "buy",
            "quantity": 1,
            "type": "limit",
            "limit_price": _limit_below(quoted["last_price"]),
        }
        order = self._order(body, "order: limit buy")
        if order and order["status"] == OrderStatus.PENDING:
            self._call("DELETE", f"/api/orders/{order['order_id']}", "cancel")

    @tag("deposit")
    @task(1)
    def deposit(self) -> None:
        self._call("POST", "/api/account/deposit", "deposit", {"amount": "100"})


class WrongAnswerError(Exception):
    """An answer with another status than the request expects, or a wrong content."""


# -- keep-alive past 1,024 connections -------------------------------------------------------------

_poll = gevent.monkey.get_original("select", "poll")  # the system's, not gevent's: never waits
_POLL_DEAD = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def _is_socket_alive(_: ConnectionPool, sock: Any) -> bool:
    """Whether a pooled keep-alive socket may be used again: idle means nothing to read.

    geventhttpclient (2.6.1) asks `select.select`, which refuses descriptors past 1,023 with
    ValueError, which it takes for a dead socket: past about a thousand users every request
    then opened a new connection (several hundred a second at 2,000 users, each left in
    TIME_WAIT), which no browser or HTTP client does. `poll` has no such bound; the test is
    the same (a socket with something to read, an end of file or an error, is dead)."""
    if sock is None or sock.fileno() < 0:
        return False
    poller = _poll()
    poller.register(sock.fileno(), _POLL_DEAD)
    return not poller.poll(0)


ConnectionPool._is_socket_alive = _is_socket_alive  # type: ignore[method-assign,assignment]


# -- every failure counts ----------------------------------------------------------------------

_failures: collections.Counter[str] = collections.Counter()


@events.request.add_listener
def _count_failure(name: str = "", exception: BaseException | None = None, **_: Any) -> None:
    if exception is not None:
        _failures[f"{name}: {str(exception)[:160]}"] += 1


@events.quitting.add_listener
def _fail_on_any_failure(environment: Environment, **_: Any) -> None:
    """Exit 1 if any request failed during the whole run, the ramp-up included (locust's own
    check sees only the statistics, which `--reset-stats` clears once every user is up), and
    say which failed most."""
    if _failures:
        print(f"{sum(_failures.values())} requests failed during the run; the most common:")
        for failure, count in _failures.most_common(5):
            print(f"  {count} x {failure}")
        environment.process_exit_code = 1


# -- the embedded engine ---------------------------------------------------------------------

_embedded: dict[str, Brokerage] = {}
_starting = threading.Lock()  # gevent's, once locust has patched threading


def _broker() -> Brokerage:
    """The one embedded brokerage of this process, started by the first user to need it."""
    with _starting:  # starting yields to other greenlets: they must wait, not start another
        broker = _embedded.get("broker")
        if broker is None:
            broker = Brokerage(timeout=60).start()
            broker.list_universe()
            _embedded["broker"] = broker
    return broker


@events.test_stop.add_listener
def _audit_embedded(environment: Environment, **_: Any) -> None:
    broker = _embedded.pop("broker", None)
    if broker is None:
        return
    try:
        report = broker.audit()
        print(f"embedded audit: OK, {report.accounts} accounts, {report.open_orders} open orders")
    except AssertionError as broken:
        print(f"embedded audit FAILED: {broken}")
        environment.process_exit_code = 1
    finally:
        broker.close()


class EmbeddedUser(User):
    """A customer of an in-process `Brokerage` (see the module's docstring)."""

    wait_time = WAIT

    def _timed(self, name: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        error: BaseException | None = None
        result = None
        try:
            result = call()
            if getattr(result, "reject_reason", None) is RejectReason.BUSY:
                error = RuntimeError("rejected: busy")
        except Exception as raised:
            error = raised
        self.environment.events.request.fire(
            request_type="embedded",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )
        return result

    def on_start(self) -> None:
        self.broker = _broker()
        user_id = f"E{_RUN}-{os.getpid()}-{next(_users)}"
        opened = self._timed(
            "signup", lambda: self.broker.open_account(user_id, user_id, initial_deposit=DEPOSIT)
        )
        self.account_id = opened.account_id
        self.held: dict[str, int] = {}

    @task(3)
    def search(self) -> None:
        self._timed("search", lambda: self.broker.search(random.choice(QUERIES)))

    @task(3)
    def quote(self) -> None:
        self._timed("quote", lambda: self.broker.quote(random.choice(SYMBOLS)))

    @task(2)
    def portfolio(self) -> None:
        self._timed("portfolio", lambda: self.broker.portfolio(self.account_id))

    @task(2)
    def market_order(self) -> None:
        symbol = random.choice(SYMBOLS[:20])
        side = "sell" if self.held.get(symbol, 0) >= 2 and random.random() < 0.5 else "buy"
        order = self._timed(
            f"order: market {side}",
            lambda: self.broker.place_order(self.account_id, symbol, side, 1),
        )
        if order is not None and order.status is OrderStatus.EXECUTED:
            self.held[symbol] = self.held.get(symbol, 0) + (1 if side == "buy" else -1)

    @task(1)
    def limit_order_then_cancel(self) -> None:
        symbol = random.choice(SYMBOLS[:20])
        quote = self._timed("quote", lambda: self.broker.quote(symbol))
        if quote is None:
            return
        limit = _limit_below(str(quote.last_price))
        order = self._timed(
            "order: limit buy",
            lambda: self.broker.place_order(self.account_id, symbol, "buy", 1, "limit", limit),
        )
        if order is not None and order.status is OrderStatus.PENDING:
            self._timed("cancel", lambda: self.broker.cancel_order(order.order_id))

    @task(1)
    def deposit(self) -> None:
        self._timed("deposit", lambda: self.broker.deposit(self.account_id, "100"))
