"""The embedding tier: `Brokerage`, the public embedded API, with the server and the
applications (cli, demo, simulate, feeds) beside it."""

from __future__ import annotations

from actors.gateway import AccountInfo
from gateway.brokerage import Brokerage, SubscriptionHandle, WatchlistQuotes

__all__ = [
    "AccountInfo",
    "Brokerage",
    "SubscriptionHandle",
    "WatchlistQuotes",
]
