"""The gateway actor and `Brokerage`, the public embedded API."""

from __future__ import annotations

from gateway.actor import AccountInfo, GatewayActor
from gateway.brokerage import Brokerage, SubscriptionHandle, WatchlistQuotes

__all__ = [
    "AccountInfo",
    "Brokerage",
    "GatewayActor",
    "SubscriptionHandle",
    "WatchlistQuotes",
]
