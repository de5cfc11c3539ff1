"""Notifications through a real local SMTP server (aiosmtpd) and a real local HTTP server."""

from __future__ import annotations

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
