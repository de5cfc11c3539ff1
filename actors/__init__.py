"""The actors: one per account, one per symbol, and the event bus, on one base class."""

from __future__ import annotations

from actors.account import AccountActor
from actors.base import BrokerActor
from actors.bus import EventBusActor, Subscription
from actors.futures import new_future
from actors.log import make_logger
from actors.symbol import SymbolActor

__all__ = [
    "AccountActor",
    "BrokerActor",
    "EventBusActor",
    "Subscription",
    "SymbolActor",
    "make_logger",
    "new_future",
]
