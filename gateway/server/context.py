"""What every route shares: the brokerage, the keys, the Alpaca id maps, and the caller."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request, WebSocket

from engine.equity import PortfolioHistory
from engine.errors import UnknownOrderError
from engine.ids import AccountId
from engine.orders import OrderSnapshot
from gateway.brokerage import Brokerage
from gateway.server.auth import KEY_ID_HEADER, SECRET_HEADER, KeyRecord, KeyStore
from gateway.server.encode import Encoded
from gateway.server.errors import ApiError
from gateway.server.limits import Limits, RateLimiter

# Alpaca's ids are UUIDs. An order's UUID spells the engine's order number in its last twelve
# hex digits, so no table is needed to go either way; an asset's is derived from its symbol.
WATCHLIST_NOTE = "v2-watchlist"
"""The kind of note a `/v2` watchlist's UUID is kept under (see `Brokerage.note`)."""
_ORDER_PREFIX = "0e7de700-0000-4000-8000-"
_ASSETS = uuid.UUID("5a3e7c1d-8f1b-4c7e-9d2a-6b0f4e8a1c55")
_EXECUTIONS = uuid.UUID("2c9d7e41-3b6a-4f08-8e15-97d0a4b3c6f2")


def order_uuid(order_id: str) -> str:
    """The UUID of an engine order id ("O-000042")."""
    return f"{_ORDER_PREFIX}{int(order_id[2:]):012x}"


def order_id_of(value: str) -> str | None:
    """The engine order id of an order UUID, or None if it is not one."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    text = str(parsed)
    if not text.startswith(_ORDER_PREFIX):
        return None
    return f"O-{int(text[len(_ORDER_PREFIX) :], 16):06d}"


def asset_uuid(symbol: str) -> str:
    """The UUID of a listed symbol."""
    return str(uuid.uuid5(_ASSETS, symbol))


def execution_uuid(trade_id: str) -> str:
    """The UUID of a trade."""
    return str(uuid.uuid5(_EXECUTIONS, trade_id))


@dataclass
class ServerState:
    """The state of one server: its brokerage, its keys and the Alpaca-side indexes.

    Routes run on a thread pool; every index here is a dict written with single,
    atomic operations (`setdefault`, item assignment), so it needs no lock. The rate limiters
    are used only from the event loop (by async dependencies and routes), so they need none
    either.
    """

    broker: Brokerage
    keys: KeyStore
    limits: Limits = field(default_factory=Limits)
    watchlist_ids: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # UUID -> (account, name)
    watchlist_by_name: dict[tuple[str, str], str] = field(default_factory=dict)
    watchlist_times: dict[str, tuple[str, str]] = field(default_factory=dict)  # created, updated
    asset_names: dict[str, str] = field(default_factory=dict)  # symbol -> name
    asset_symbols: dict[str, str] = field(default_factory=dict)  # asset UUID -> symbol
    progress: Callable[[], dict[str, Any]] | None = None
    """How far the simulation this server serves is (None: it serves none)."""
    encoded: Encoded = field(default_factory=Encoded)
    """The JSON of the shared answers (quotes, searches) the hot routes give (event loop only)."""
    signups: RateLimiter = field(init=False)
    auth_failures: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.signups = RateLimiter("sign-ups", self.limits.signups_per_minute)
        self.auth_failures = RateLimiter(
            "failed authentications", self.limits.auth_failures_per_minute
        )

    def keep_watchlist(self, wid: str) -> None:
        """Keep what `/v2` knows of a watchlist (its UUID, account, name and times; or that it
        is gone) with the brokerage's journal, so a restarted server gives it the same UUID."""
        where = self.watchlist_ids.get(wid)
        if where is None:
            data: dict[str, Any] = {"wid": wid, "deleted": True}
        else:
            created, updated = self.watchlist_times.get(wid, (None, None))
            data = {"wid": wid, "account": where[0], "name": where[1]}
            data |= {"created": created, "updated": updated}
        self.broker.note(WATCHLIST_NOTE, json.dumps(data))

    def restore_watchlists(self, notes: list[str]) -> None:
        """Take back what `keep_watchlist` kept, the newest of each watchlist winning."""
        for text in notes:
            data = json.loads(text)
            wid = data["wid"]
            old = self.watchlist_ids.pop(wid, None)
            if old is not None:
                self.watchlist_by_name.pop(old, None)
            self.watchlist_times.pop(wid, None)
            if data.get("deleted"):
                continue
            key = (data["account"], data["name"])
            self.watchlist_ids[wid] = key
            self.watchlist_by_name[key] = wid
            if data.get("created"):
                self.watchlist_times[wid] = (data["created"], data["updated"] or data["created"])

    def listed(self, *, refresh: bool = False) -> dict[str, str]:
        """Listed symbols and their names, read from the engine once (and on `refresh`);
        the asset-UUID index is filled in the same pass."""
        if refresh or not self.asset_names:
            quotes = self.broker.stocks()
            self.asset_symbols.update((asset_uuid(q.symbol), q.symbol) for q in quotes)
            self.asset_names.update((q.symbol, q.name) for q in quotes)
        return self.asset_names

    def symbol_of_asset(self, value: str) -> str:
        """A symbol from a symbol or an asset UUID."""
        if len(value) == 36 and value.count("-") == 4:
            self.listed()
            found = self.asset_symbols.get(value.lower())
            if found is None:
                raise ApiError(404, f"asset not found, was {value!r}")
            return found
        return value.upper()


async def server_state(request: Request) -> ServerState:
    """The server's shared state."""
    found: ServerState = request.app.state.server
    return found


def client_address(request: Request | WebSocket) -> str:
    """What rate limits count by: the address a request came from, or for IPv6 its /64 network
    (one host commonly holds a whole /64, so counting single addresses would not hold it back)."""
    return address_of(request.client.host if request.client is not None else None)


def address_of(host: str | None) -> str:
    """`client_address` of a peer's host (None: not known)."""
    if host is None:
        return "unknown"
    if ":" in host:
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_network(f"{host.split('%', 1)[0]}/64", strict=False))
    return host


def authenticate(request: Request) -> KeyRecord | None:
    """The key a request was made with, None if it sent none; 401 if wrong, 429 once its
    address has failed too often (checked before the key, so guessing stops there)."""
    headers = request.headers
    return key_of(
        request.app.state.server,
        client_address(request),
        headers.get(KEY_ID_HEADER),
        headers.get(SECRET_HEADER),
    )


def key_of(
    shared: ServerState, address: str, key_id: str | None, secret: str | None
) -> KeyRecord | None:
    """`authenticate` from the two header values (None where absent)."""
    if not key_id and not secret:
        return None
    record = verify_key(shared, address, key_id, secret)
    if record is None:
        raise ApiError(401, "request is not authorized: unknown key id or wrong secret")
    return record


def verify_key(shared: ServerState, address: str, key_id: Any, secret: Any) -> KeyRecord | None:
    """The record of a key if the secret matches, else None, counted as a failure against
    `address`; RateLimitedError once that address has failed too often (checked first, so
    guessing stops there). Used by the HTTP routes and both streams."""
    shared.auth_failures.check(address)
    record = None
    if isinstance(key_id, str) and isinstance(secret, str):
        record = shared.keys.check(key_id, secret)
    if record is None:
        shared.auth_failures.spend(address)
    return record


async def caller(request: Request) -> KeyRecord:
    """The key a request was made with; 401 if missing or wrong (see `authenticate`).

    The headers are read here rather than through FastAPI's `Security` sub-dependencies,
    which cost a tenth of a hot request; `security_schemes` documents them instead.
    """
    return required(authenticate(request))


def required(record: KeyRecord | None) -> KeyRecord:
    """`record`, or 401 where the request sent no key."""
    if record is None:
        raise ApiError(401, f"request is not authorized: send {KEY_ID_HEADER} and {SECRET_HEADER}")
    return record


def document_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the two key headers to an OpenAPI document: as security schemes, required by every
    operation that takes a key (the ones that depend on `caller`)."""
    components = schema.setdefault("components", {})
    components["securitySchemes"] = {
        "keyId": {"type": "apiKey", "in": "header", "name": KEY_ID_HEADER},
        "secretKey": {"type": "apiKey", "in": "header", "name": SECRET_HEADER},
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if (method.upper(), path) not in PUBLIC:
                operation["security"] = [{"keyId": [], "secretKey": []}]
    return schema


PUBLIC = {("GET", "/api/health"), ("POST", "/api/accounts")}
"""The operations that need no key."""


Caller = Annotated[KeyRecord, Depends(caller)]
Shared = Annotated[ServerState, Depends(server_state)]


def own_account(record: KeyRecord) -> AccountId:
    """The account a key trades for; 403 for the admin key, which has none."""
    if record.account_id is None:
        raise ApiError(403, "the admin key has no account; use an account's key")
    return record.account_id


def require_admin(record: KeyRecord) -> None:
    """403 unless the admin key was used."""
    if not record.is_admin:
        raise ApiError(403, "this needs the admin key")


async def own_order(shared: ServerState, account_id: str, order_id: str) -> OrderSnapshot:
    """An order of the caller's account; 404 for any other, as for one that never was."""
    try:
        order: OrderSnapshot = await shared.broker.aget_order(order_id)
    except UnknownOrderError:
        raise ApiError(404, f"order not found, was {order_id!r}") from None
    if order.account_id != account_id:
        raise ApiError(404, f"order not found, was {order_id!r}")
    return order


@dataclass(frozen=True)
class HistoryQuery:
    """The query parameters of a portfolio history, as Alpaca names them: its `period` and
    `timeframe` (`Brokerage.portfolio_history`), up to `end` (default now), or from `start`
    to it."""

    period: Annotated[str, Query(max_length=8)] = "1M"
    timeframe: Annotated[str | None, Query(max_length=8)] = None
    end: datetime | None = None
    start: datetime | None = None

    def of(self, shared: ServerState, account_id: str) -> PortfolioHistory:
        """The account's history (blocking: a long one takes a while to rebuild, so the routes
        run it on the request threads, not the event loop)."""
        return shared.broker.portfolio_history(
            account_id, self.period, self.timeframe, end=self.end, start=self.start
        )
