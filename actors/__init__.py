"""The actors, on one base class: the gateway (router), one per account, one per symbol, the
event bus and the notifier; their runtimes and replies live beside them."""

from __future__ import annotations

from actors.account import AccountActor
from actors.base import BrokerActor
from actors.bus import EventBusActor
from actors.futures import new_future
from actors.gateway import GatewayActor
from actors.log import make_logger
from actors.messages import Subscription
from actors.notify import NotificationActor
from actors.symbol import SymbolActor

__all__ = [
    "AccountActor",
    "BrokerActor",
    "EventBusActor",
    "GatewayActor",
    "NotificationActor",
    "Subscription",
    "SymbolActor",
    "make_logger",
    "new_future",
]
