"""Notifications: delivers fills, cancels, rejections and triggered alerts to each user's
chosen channels, off the matching path.

The notification actor runs on the side worker (with the event bus), so a channel that is slow
or down never slows trading. A failed delivery is retried with exponential backoff by a timer
that tells the actor again later (the actor never sleeps); one that still fails is kept, and
`Brokerage.undelivered()` reads it.

Channels: console (a structlog event), email over SMTP (`smtplib`), push (an HTTP POST of JSON
to the user's webhook URL) and SMS (an HTTP POST of JSON `{"to", "message"}` to an SMS
gateway's URL).
"""

from __future__ import annotations

import json
import smtplib
import threading
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from actors.runtime import BrokerActor, handles, send
from engine.commands import Reply
from engine.events import (
    AlertTriggered,
    Event,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
)

KINDS: dict[str, type] = {
    "fill": OrderFilled,
    "cancel": OrderCancelled,
    "reject": OrderRejected,
    "alert": AlertTriggered,
}
CHANNELS = ("console", "email", "push", "sms")


@dataclass(frozen=True)
class NotificationSettings:
    """Where the channels deliver.

    Attributes:
        smtp_host, smtp_port, sender: The SMTP server email goes through, and the From address.
        sms_gateway_url: Where SMS messages are POSTed (None: SMS is not available).
        retries: Attempts after the first, per delivery.
        backoff_seconds: Wait before the first retry; each later wait doubles.
        timeout_seconds: How long one attempt may take.
    """

    smtp_host: str = "localhost"
    smtp_port: int = 25
    sender: str = "brokerage@localhost"
    sms_gateway_url: str | None = None
    retries: int = 3
    backoff_seconds: float = 0.5
    timeout_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Preferences:
    """One user's channels (name -> address: an email, a webhook URL, a phone number; console
    takes none) and the kinds of event wanted ("fill", "cancel", "reject", "alert")."""

    channels: dict[str, str | None]
    kinds: frozenset[str]


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
class SetPreferences:
    """Set a user's notification preferences."""

    user_id: str
    preferences: Preferences
    reply: Reply


@dataclass(frozen=True, slots=True)
class KnowAccount:
    """Tell the notifier which user holds an account."""

    account_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Notify:
    """An event to notify about."""

    event: Event


@dataclass(frozen=True, slots=True)
class Attempt:
    """Try (again) to deliver one notification."""

    delivery: Delivery


@dataclass(frozen=True, slots=True)
class GetUndelivered:
    """Read the notifications that could not be delivered."""

    reply: Reply


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


class NotificationActor(BrokerActor):
    """Holds preferences, sends notifications, retries, and keeps what could not be sent."""

    side_work = True  # deliveries block on the network: keep them off the trading workers

    def __init__(self, log: Any, settings: NotificationSettings) -> None:
        super().__init__(log, actor="notifications")
        self.settings = settings
        self.preferences: dict[str, Preferences] = {}
        self.owners: dict[str, str] = {}
        self.undelivered: list[Undelivered] = []
        self.delivered = 0

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
            self._attempt(Delivery(user_id, channel, address, subject, body))

    @handles(Attempt)
    def _retry(self, message: Attempt) -> None:
        self._attempt(message.delivery)

    @handles(GetUndelivered)
    def _undelivered(self, message: GetUndelivered) -> None:
        message.reply.set(list(self.undelivered))

    def _attempt(self, delivery: Delivery) -> None:
        tried = Delivery(
            delivery.user_id,
            delivery.channel,
            delivery.address,
            delivery.subject,
            delivery.body,
            delivery.attempts + 1,
        )
        try:
            self._send(tried)
            self.delivered += 1
        except Exception as error:  # a channel's failure must not reach the engine
            if tried.attempts <= self.settings.retries:
                wait = self.settings.backoff_seconds * 2 ** (tried.attempts - 1)
                timer = threading.Timer(wait, send, (self.actor_ref, Attempt(tried)))
                timer.daemon = True
                timer.start()
                return
            self.log.warning(
                "notification.undelivered",
                channel=tried.channel,
                user_id=tried.user_id,
                error=repr(error),
            )
            self.undelivered.append(
                Undelivered(
                    tried.user_id,
                    tried.channel,
                    tried.address,
                    tried.subject,
                    tried.body,
                    tried.attempts,
                    repr(error),
                )
            )

    def _send(self, delivery: Delivery) -> None:
        settings = self.settings
        if delivery.channel == "console":
            self.log.warning("notification", user_id=delivery.user_id, subject=delivery.subject)
        elif delivery.channel == "email":
            email = EmailMessage()
            email["From"] = settings.sender
            email["To"] = delivery.address
            email["Subject"] = delivery.subject
            email.set_content(delivery.body)
            with smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
            ) as smtp:
                smtp.send_message(email)
        elif delivery.channel == "push":
            assert delivery.address is not None
            _post(
                delivery.address,
                {"user_id": delivery.user_id, "subject": delivery.subject, "body": delivery.body},
                settings.timeout_seconds,
            )
        else:
            if settings.sms_gateway_url is None:
                raise RuntimeError("no SMS gateway is configured")
            _post(
                settings.sms_gateway_url,
                {"to": delivery.address, "message": f"{delivery.subject}. {delivery.body}"},
                settings.timeout_seconds,
            )


def _post(url: str, payload: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{url} answered {response.status}")
