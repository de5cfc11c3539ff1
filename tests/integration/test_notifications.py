"""Notifications through a real local SMTP server (aiosmtpd) and a real local HTTP server."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from actors.notify import NotificationSettings
from engine import ValidationError
from engine.events import OrderFilled
from gateway import Brokerage


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Inbox:
    """What the local servers received; `arrived` is set at each arrival."""

    emails: list[Any] = field(default_factory=list)
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def add_email(self, envelope: Any) -> None:
        with self.arrived:
            self.emails.append(envelope)
            self.arrived.notify_all()

    def add_post(self, path: str, body: dict[str, Any]) -> None:
        with self.arrived:
            self.posts.append((path, body))
            self.arrived.notify_all()

    def wait_for(self, emails: int, posts: int) -> None:
        with self.arrived:
            assert self.arrived.wait_for(
                lambda: len(self.emails) >= emails and len(self.posts) >= posts, timeout=20
            ), (self.emails, self.posts)


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int, int]]:
    received = Inbox()

    class SmtpHandler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.add_email(envelope)
            return "250 OK"

    class HttpHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/down":
                self.send_response(503)
            else:
                received.add_post(self.path, body)
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    smtp_port = free_port()
    smtp = Controller(SmtpHandler(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), HttpHandler)
    serving = threading.Thread(target=http.serve_forever, daemon=True)
    serving.start()
    yield received, smtp_port, http.server_address[1]
    http.shutdown()
    smtp.stop()


def test_a_fill_reaches_email_push_and_sms_and_an_alert_reaches_push(
    inbox: tuple[Inbox, int, int],
) -> None:
    received, smtp_port, http_port = inbox
    settings = NotificationSettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        sender="desk@brokerage.test",
        sms_gateway_url=f"http://127.0.0.1:{http_port}/sms",
        retries=0,
        allow_private_addresses=True,  # the local servers listen on loopback
    )
    with Brokerage(notifications=settings) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        alice = broker.open_account("U1", "Alice", initial_deposit="10000").account_id
        broker.set_notification_preferences(
            "U1",
            email="alice@example.test",
            push=f"http://127.0.0.1:{http_port}/hook",
            sms="+15550001",
            events=["fill"],
        )
        broker.place_order(alice, "AAPL", "buy", 10)
        received.wait_for(emails=1, posts=2)
        broker.set_notification_preferences(
            "U1", push=f"http://127.0.0.1:{http_port}/hook", events=["alert"]
        )
        broker.add_alert(alice, "AAPL", "above", "151")
        broker.update_price("AAPL", "152")
        received.wait_for(emails=1, posts=3)

    (email,) = received.emails
    assert email.mail_from == "desk@brokerage.test"
    assert email.rcpt_tos == ["alice@example.test"]
    assert b"Filled: buy 10 AAPL @ 150.00" in email.content
    paths = [path for path, _ in received.posts]
    assert sorted(paths[:2]) == ["/hook", "/sms"]
    sms = next(body for path, body in received.posts if path == "/sms")
    assert sms["to"] == "+15550001"
    assert received.posts[2][1]["subject"] == "Price alert: AAPL above 151.00"


def test_a_margin_call_reaches_the_users_push_channel(inbox: tuple[Inbox, int, int]) -> None:
    received, _smtp_port, http_port = inbox
    settings = NotificationSettings(retries=0, allow_private_addresses=True)
    with Brokerage(notifications=settings, margin_check_seconds=None) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "100.00")
        bob = broker.open_account("U2", "Bob", initial_deposit="10000", margin=True).account_id
        broker.set_notification_preferences(
            "U2", push=f"http://127.0.0.1:{http_port}/hook", events=["margin_call"]
        )
        broker.place_order(bob, "AAPL", "sell", 100)  # short $10,000
        broker.update_price("AAPL", "160.00")  # equity $4,000 against 30 % of $16,000
        [call] = broker.margin_calls()
        assert call.figures.deficit == 800_00
        received.wait_for(emails=0, posts=1)

    [(path, body)] = received.posts
    assert path == "/hook"
    assert body["subject"] == "Margin call: 800.00 below maintenance"


def test_a_channel_that_is_down_is_retried_then_kept_and_trading_goes_on(
    inbox: tuple[Inbox, int, int],
) -> None:
    received, _smtp_port, http_port = inbox
    settings = NotificationSettings(
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        retries=2,
        backoff_seconds=0.01,
        timeout_seconds=1,
        allow_private_addresses=True,
    )
    with Brokerage(notifications=settings) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        alice = broker.open_account("U1", "Alice", initial_deposit="10000").account_id
        broker.set_notification_preferences(
            "U1",
            email="alice@example.test",
            push=f"http://127.0.0.1:{http_port}/down",
            events=["fill"],
        )
        orders = [broker.place_order(alice, "AAPL", "buy", 1) for _ in range(3)]
        assert all(o.status == "executed" for o in orders)  # nothing waited for the channels

        pause = threading.Event()  # retries run on timers: look until all six gave up
        for _ in range(400):
            if len(broker.undelivered()) >= 6:
                break
            pause.wait(0.05)
        undelivered = broker.undelivered()

    assert sorted(u.channel for u in undelivered) == ["email"] * 3 + ["push"] * 3
    assert all(u.attempts == 3 for u in undelivered)
    assert received.posts == []


def test_bad_preferences_are_refused(inbox: tuple[Inbox, int, int]) -> None:
    with Brokerage() as broker:
        broker.open_account("U1", "Alice")

        with pytest.raises(ValidationError, match="email"):
            broker.set_notification_preferences("U1", email="not-an-address")
        with pytest.raises(ValidationError, match="push"):
            broker.set_notification_preferences("U1", push="ftp://x")
        with pytest.raises(ValidationError, match="sms"):
            broker.set_notification_preferences("U1", sms="+1555")
        with pytest.raises(ValidationError, match="events"):
            broker.set_notification_preferences("U1", events=["everything"])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "https://100.64.0.1/hook",
    ],
)
def test_push_urls_on_private_or_local_addresses_are_refused_unless_allowed(url: str) -> None:
    with Brokerage() as broker:
        broker.open_account("U1", "Alice")
        with pytest.raises(ValidationError, match="push"):
            broker.set_notification_preferences("U1", push=url)
    allowing = NotificationSettings(allow_private_addresses=True)
    with Brokerage(notifications=allowing) as broker:
        broker.open_account("U1", "Alice")
        assert broker.set_notification_preferences("U1", push=url).channels == {"push": url}


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(
    inbox: tuple[Inbox, int, int],
) -> None:
    received, _smtp_port, http_port = inbox
    name = socket.gethostname()
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, http_port)}
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if any(ipaddress.ip_address(str(a)).is_global for a in found):
        pytest.skip(f"this machine's name {name!r} resolves to a public address")
    settings = NotificationSettings(retries=0)
    with Brokerage(notifications=settings) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        alice = broker.open_account("U1", "Alice", initial_deposit="1000").account_id
        broker.set_notification_preferences("U1", push=f"http://{name}:{http_port}/hook")
        broker.place_order(alice, "AAPL", "buy", 1)
        undelivered = wait_for_undelivered(broker, 1)

    assert "not a public address" in undelivered[0].error
    assert received.posts == []


def wait_for_undelivered(broker: Brokerage, count: int) -> list[Any]:
    pause = threading.Event()
    for _ in range(400):
        found = broker.undelivered()
        if len(found) >= count:
            return found
        pause.wait(0.05)
    raise AssertionError(f"fewer than {count} undelivered: {broker.undelivered()}")


@pytest.fixture
def hooks() -> Iterator[tuple[str, Inbox, threading.Event]]:
    """/hung never answers (until released), /moved redirects to /hook, /hook records."""
    received = Inbox()
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/hung":
                release.wait(30)
                return
            if self.path == "/moved":
                self.send_response(307)
                self.send_header("Location", "/hook")
                self.end_headers()
                return
            received.add_post(self.path, body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_address[1]}", received, release
    release.set()
    http.shutdown()


def test_a_hung_webhook_holds_up_only_its_own_user(
    hooks: tuple[str, Inbox, threading.Event],
) -> None:
    """Alice's webhook never answers; Bob's notifications, and every subscriber of the event
    bus, go on at once, and Alice's queue stays bounded."""
    url, received, _release = hooks
    settings = NotificationSettings(
        allow_private_addresses=True, timeout_seconds=3, retries=1, queue_limit=3
    )
    with Brokerage(notifications=settings) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        alice = broker.open_account("alice", "Alice", initial_deposit="10000").account_id
        bob = broker.open_account("bob", "Bob", initial_deposit="10000").account_id
        broker.set_notification_preferences("alice", push=f"{url}/hung", events=["fill"])
        broker.set_notification_preferences("bob", push=f"{url}/hook", events=["fill"])
        seen: list[Any] = []
        broker.subscribe(seen.append, [OrderFilled])
        for _ in range(10):
            broker.place_order(alice, "AAPL", "buy", 1)
        broker.place_order(bob, "AAPL", "buy", 2)
        broker.flush_events()  # the bus is not held up by the hung webhook
        assert len(seen) == 11
        received.wait_for(emails=0, posts=1)  # long before Alice's first attempt times out
        dropped = wait_for_undelivered(broker, 6)

    assert received.posts[0][1]["subject"] == "Filled: buy 2 AAPL @ 150.00"
    assert {u.user_id for u in dropped} == {"alice"}
    assert any("already waiting" in u.error for u in dropped)  # her queue holds 3 at most


def test_a_webhook_redirect_is_not_followed(hooks: tuple[str, Inbox, threading.Event]) -> None:
    url, received, _release = hooks
    settings = NotificationSettings(allow_private_addresses=True, retries=0)
    with Brokerage(notifications=settings) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        alice = broker.open_account("alice", "Alice", initial_deposit="1000").account_id
        broker.set_notification_preferences("alice", push=f"{url}/moved", events=["fill"])
        broker.place_order(alice, "AAPL", "buy", 1)
        (undelivered,) = wait_for_undelivered(broker, 1)

    assert "307" in undelivered.error
    assert received.posts == []


def test_preferences_survive_a_restart_with_a_store(
    inbox: tuple[Inbox, int, int], tmp_path: Any
) -> None:
    """With a store the preferences are journaled: after a restart a fill still notifies."""
    received, _smtp_port, http_port = inbox
    settings = NotificationSettings(retries=0, allow_private_addresses=True)
    store = f"sqlite:///{tmp_path}/brokerage.db"
    with Brokerage(notifications=settings, store=store) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        alice = broker.open_account("U1", "Alice", initial_deposit="10000").account_id
        broker.set_notification_preferences(
            "U1", push=f"http://127.0.0.1:{http_port}/first", events=["fill"]
        )
        broker.set_notification_preferences(
            "U1", push=f"http://127.0.0.1:{http_port}/hook", events=["fill"]
        )
    with Brokerage(notifications=settings, store=store) as broker:
        broker.place_order(alice, "AAPL", "buy", 1)
        received.wait_for(emails=0, posts=1)
    assert [path for path, _ in received.posts] == ["/hook"]
