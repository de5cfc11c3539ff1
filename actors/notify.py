"""Notifications: delivers fills, cancels, rejections and triggered alerts to each user's
chosen channels, off the matching path.

The notification actor holds the preferences and turns events into deliveries; it never does
I/O. The deliveries run on a worker of their own (`Deliverer`: one thread with an asyncio
loop), where each user has a bounded queue worked through one delivery at a time, with a short
deadline per attempt. So a channel that is slow or dead delays only its own user's
notifications: never trading, the event bus, the streams or another user. A failed delivery is
retried with exponential backoff; one that still fails (or finds its user's queue full) is
kept, at most `UNDELIVERED_KEPT` of them, and `Brokerage.undelivered()` reads them.

Channels: console (a structlog event), email over SMTP (`smtplib`, on a helper thread), push
(an HTTP POST of JSON to the user's webhook URL, redirects not followed) and SMS (an HTTP POST
of JSON `{"to", "message"}` to the operator's SMS gateway). A push URL is the user's own
choice, so unless the operator allows it (`allow_private_addresses`), one that names or
resolves to a loopback, link-local, private or otherwise non-public address is refused, and the
POST goes to the address that was checked.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import smtplib
import socket
import threading
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx

from actors.base import BrokerActor, handles
from actors.messages import GetUndelivered, KnowAccount, Notify, Preferences, SetPreferences
from engine.errors import ValidationError
from engine.events import (
    AlertTriggered,
    Event,
    MarginCall,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
)

KINDS: dict[str, type] = {
    "fill": OrderFilled,
    "cancel": OrderCancelled,
    "reject": OrderRejected,
    "alert": AlertTriggered,
    "margin_call": MarginCall,
}
CHANNELS = ("console", "email", "push", "sms")
UNDELIVERED_KEPT = 10_000
"""Failed notifications kept for `undelivered()`; older ones are dropped first."""


@dataclass(frozen=True)
class NotificationSettings:
    """Where the channels deliver.

    Attributes:
        smtp_host, smtp_port, sender: The SMTP server email goes through, and the From address.
        sms_gateway_url: Where SMS messages are POSTed (None: SMS is not available).
        retries: Attempts after the first, per delivery.
        backoff_seconds: Wait before the first retry; each later wait doubles.
        timeout_seconds: How long one attempt may take, all in (resolving, connecting,
            sending, the answer).
        queue_limit: Notifications waiting per user; past it new ones are kept as undelivered.
        allow_private_addresses: Accept push URLs on loopback, link-local and private
            addresses (tests and local set-ups; never on a server open to users).
    """

    smtp_host: str = "localhost"
    smtp_port: int = 25
    sender: str = "brokerage@localhost"
    sms_gateway_url: str | None = None
    retries: int = 3
    backoff_seconds: float = 0.5
    timeout_seconds: float = 3.0
    queue_limit: int = 100
    allow_private_addresses: bool = False


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A notification that failed every attempt."""

    user_id: str
    channel: str
    address: str | None
    subject: str
    body: str
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification on one channel, and how many attempts it has had."""

    user_id: str
    channel: str
    address: str | None
    subject: str
    body: str
    attempts: int = 0


def describe(event: Event) -> tuple[str, str]:
    """A subject and a body for an event."""
    if isinstance(event, AlertTriggered):
        a = event.alert
        return (
            f"Price alert: {a.symbol} {a.condition} {a.threshold}",
            f"{a.symbol} traded at {a.price}, {a.condition} your threshold of {a.threshold}.",
        )
    if isinstance(event, MarginCall):
        return (
            f"Margin call: {event.deficit} below maintenance",
            f"Account {event.account_id}'s equity of {event.equity} is below its maintenance "
            f"requirement of {event.maintenance}: deposit {event.deficit} or close positions.",
        )
    order = event.order  # type: ignore[union-attr]
    if isinstance(event, OrderFilled):
        t = event.transaction
        return (
            f"Filled: {t.side} {t.quantity} {t.symbol} @ {t.price}",
            f"Order {order.order_id}: {t.side} {t.quantity} {t.symbol} at {t.price} "
            f"({order.status}, {order.filled_quantity} of {order.quantity} filled).",
        )
    reason = getattr(event, "reason", "")
    verb = "Rejected" if isinstance(event, OrderRejected) else "Cancelled"
    return (
        f"{verb}: {order.side} {order.quantity} {order.symbol}",
        f"Order {order.order_id} was {verb.lower()} ({reason}).",
    )


def _public(address: str) -> bool:
    """Whether an IP address is a public, unicast one (not loopback, private, link-local,
    shared, reserved or multicast), an IPv4-mapped IPv6 address judged as its IPv4 one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_push_url(url: Any, *, allow_private: bool) -> str:
    """Return a webhook URL fit to POST to: http(s), a host, at most 2,000 characters, and,
    unless `allow_private`, no host that is an address other than a public one or a name of
    this machine. (Names are resolved, and checked again, at each delivery.)"""
    if not isinstance(url, str) or len(url) > 2_000:
        raise ValidationError("push", "must be an http(s) URL of at most 2000 characters", url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (a bad port raises here)
    except ValueError:
        raise ValidationError("push", "must be an http(s) URL", url) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationError("push", "must be an http(s) URL", url)
    if allow_private:
        return url
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise ValidationError("push", "must not point at this machine or a private network", url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return url
    if not _public(str(literal)):
        raise ValidationError("push", "must not point at a private or local address", url)
    return url


class Deliverer:
    """Sends notifications on its own thread and asyncio loop, one user at a time per user:
    each user has a bounded queue and one task working through it, so a dead channel holds up
    only its own user. Made lazily, on the first delivery; `close()` ends it."""

    def __init__(self, settings: NotificationSettings, log: Any) -> None:
        self.settings = settings
        self.log = log
        self._undelivered: collections.deque[Undelivered] = collections.deque(
            maxlen=UNDELIVERED_KEPT
        )
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._client: httpx.AsyncClient | None = None

    # -- from the actor's thread ---------------------------------------------------------------

    def submit(self, delivery: Delivery) -> None:
        """Queue a delivery for its user (never blocks)."""
        loop = self._loop
        if loop is None:
            loop = self._start()
        try:
            loop.call_soon_threadsafe(self._enqueue, delivery)
        except RuntimeError:  # closed: the brokerage is stopping
            self._give_up(delivery, "the notifier was stopped")

    def undelivered(self) -> list[Undelivered]:
        """The notifications that failed, oldest first."""
        with self._lock:
            return list(self._undelivered)

    def close(self) -> None:
        """Stop the loop (dropping what waits) and wait for its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=self.settings.timeout_seconds + 2)

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._run, args=(loop,), name="notify", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)  # users' queues still at work: dropped
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            if self._client is not None:
                loop.run_until_complete(self._client.aclose())
            loop.close()

    # -- on the notify loop ----------------------------------------------------------------------

    def _give_up(self, delivery: Delivery, error: str) -> None:
        self.log.warning(  # the error's kind only: its text may quote a URL with a token in it
            "notification.undelivered",
            channel=delivery.channel,
            user_id=delivery.user_id,
            attempts=delivery.attempts,
            error_type=error.split(":", 1)[0],
        )
        with self._lock:
            self._undelivered.append(
                Undelivered(
                    delivery.user_id,
                    delivery.channel,
                    delivery.address,
                    delivery.subject,
                    delivery.body,
                    delivery.attempts,
                    error,
                )
            )

    def _enqueue(self, delivery: Delivery) -> None:
        queue = self._queues.get(delivery.user_id)
        if queue is None:
            queue = self._queues[delivery.user_id] = asyncio.Queue(self.settings.queue_limit)
            asyncio.get_running_loop().create_task(self._work(delivery.user_id, queue))
        try:
            queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self._give_up(delivery, f"{self.settings.queue_limit} notifications already waiting")

    async def _work(self, user_id: str, queue: asyncio.Queue[Delivery]) -> None:
        """Deliver one user's notifications in order; end once the queue is empty."""
        settings = self.settings
        while not queue.empty():
            waiting = queue.get_nowait()
            delivery = replace(waiting, attempts=waiting.attempts + 1)
            try:
                await asyncio.wait_for(self._send(delivery), settings.timeout_seconds)
            except Exception as error:  # a channel's failure must not reach anything else
                if delivery.attempts <= settings.retries:
                    wait = settings.backoff_seconds * 2 ** (delivery.attempts - 1)
                    asyncio.get_running_loop().call_later(wait, self._enqueue, delivery)
                else:
                    self._give_up(delivery, _describe(error))
        if self._queues.get(user_id) is queue:
            del self._queues[user_id]

    async def _send(self, delivery: Delivery) -> None:
        settings = self.settings
        if delivery.channel == "console":
            self.log.warning("notification", user_id=delivery.user_id, subject=delivery.subject)
        elif delivery.channel == "email":
            await asyncio.to_thread(self._email, delivery)
        elif delivery.channel == "push":
            assert delivery.address is not None
            payload = {
                "user_id": delivery.user_id,
                "subject": delivery.subject,
                "body": delivery.body,
            }
            await self._post(delivery.address, payload, check=True)
        else:
            if settings.sms_gateway_url is None:
                raise RuntimeError("no SMS gateway is configured")
            message = f"{delivery.subject}. {delivery.body}"
            await self._post(
                settings.sms_gateway_url, {"to": delivery.address, "message": message}, check=False
            )

    def _email(self, delivery: Delivery) -> None:
        settings = self.settings
        email = EmailMessage()
        email["From"] = settings.sender
        email["To"] = delivery.address
        email["Subject"] = delivery.subject
        email.set_content(delivery.body)
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
        ) as smtp:
            smtp.send_message(email)

    async def _post(self, address: str, payload: dict[str, Any], *, check: bool) -> None:
        """POST JSON, following no redirect. With `check` (a user's URL, where private
        addresses are not allowed) the host is resolved here, every address it has must be
        public, and the request goes to the first of them, so the name cannot point
        elsewhere between the check and the connection."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                timeout=self.settings.timeout_seconds,
                limits=httpx.Limits(max_connections=1_000, max_keepalive_connections=50),
            )
        url = httpx.URL(address)
        headers: dict[str, str] = {}
        extensions: dict[str, Any] = {}
        if check and not self.settings.allow_private_addresses:
            host = url.host
            port = url.port or (443 if url.scheme == "https" else 80)
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            addresses = [str(info[4][0]) for info in found]
            if not addresses or not all(_public(a) for a in addresses):
                raise PermissionError(f"{host} is not a public address")
            headers["Host"] = url.netloc.decode("ascii")
            if url.scheme == "https":
                extensions["sni_hostname"] = host
            url = url.copy_with(host=addresses[0])
        response = await self._client.post(
            url, json=payload, headers=headers, extensions=extensions
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"the endpoint answered {response.status_code}")


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "TimeoutError: no answer in time"
    return f"{type(error).__name__}: {error}"[:300]


class NotificationActor(BrokerActor):
    """Holds preferences and turns events into deliveries for the `Deliverer`; never blocks."""

    side_work = True
    supervised = True  # a stop request outside close restarts it from its state

    def __init__(self, log: Any, settings: NotificationSettings) -> None:
        super().__init__(log, actor="notifications")
        self.settings = settings
        self.preferences: dict[str, Preferences] = {}
        self.owners: dict[str, str] = {}
        self.deliverer = Deliverer(settings, log)

    def on_stop(self) -> None:
        self.deliverer.close()

    @handles(SetPreferences)
    def _set(self, message: SetPreferences) -> None:
        self.preferences[message.user_id] = message.preferences
        message.reply.set(message.preferences)

    @handles(KnowAccount)
    def _know(self, message: KnowAccount) -> None:
        self.owners[message.account_id] = message.user_id

    @handles(Notify)
    def _notify(self, message: Notify) -> None:
        user_id = self.owners.get(message.event.account_id or "")
        preferences = self.preferences.get(user_id or "")
        if user_id is None or preferences is None:
            return
        if not any(isinstance(message.event, KINDS[k]) for k in preferences.kinds):
            return
        subject, body = describe(message.event)
        for channel, address in preferences.channels.items():
            self.deliverer.submit(Delivery(user_id, channel, address, subject, body))

    @handles(GetUndelivered)
    def _undelivered(self, message: GetUndelivered) -> None:
        message.reply.set(self.deliverer.undelivered())
