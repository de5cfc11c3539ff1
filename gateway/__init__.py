"""The embedding tier: the wiring (`bootstrap`), `Brokerage`, the public embedded API
(`brokerage`, its operations defined once in `operations`), the HTTP server (`server`) and the
applications (`apps`: cli, demo, simulate, feeds)."""

from __future__ import annotations

from actors.gateway import AccountInfo
from gateway.brokerage import Brokerage, SubscriptionHandle, WatchlistQuotes

__all__ = [
    "AccountInfo",
    "Brokerage",
    "SubscriptionHandle",
    "WatchlistQuotes",
]
