"""The native JSON API under `/api/`: everything the embedded `Brokerage` offers.

Money and prices travel as strings ("150.25") or whole numbers, never as JSON floats;
quantities as whole numbers. A key sees only its own account: another account's orders,
watchlists or alerts are 404, like ids that never existed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from engine.errors import UnknownOrderError
from engine.orders import OrderSnapshot
from gateway.server.context import Caller, Shared, own_account, require_admin
from gateway.server.encode import iso, plain
from gateway.server.errors import ApiError

Money = Annotated[
    StrictStr | StrictInt,
    Field(description="a decimal string with at most two places, or a whole number"),
]
Quantity = Annotated[StrictInt | StrictStr, Field(description="a positive whole number")]
Text = Annotated[StrictStr, Field(max_length=200)]

router = APIRouter(prefix="/api")


class Strict(BaseModel):
    """Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class OpenAccountBody(Strict):
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    initial_deposit: Money | None = None


class AmountBody(Strict):
    amount: Money


class OrderBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    side: Literal["buy", "sell"]
    quantity: Quantity
    type: Literal["market", "limit"] = "market"
    limit_price: Money | None = None
    time_in_force: Literal["gtc", "day", "ioc", "fok"] = "gtc"


class WatchlistBody(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    symbols: Annotated[list[Annotated[StrictStr, Field(max_length=16)]], Field(max_length=200)] = []


class RenameBody(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]


class SymbolBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]


class AlertBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    condition: Literal["above", "below"]
    threshold: Money
    one_shot: StrictBool = True


class NotificationBody(Strict):
    console: StrictBool = False
    email: Text | None = None
    push: Text | None = None
    sms: Text | None = None
    events: Annotated[list[Literal["fill", "cancel", "reject", "alert"]], Field(max_length=4)] = [
        "fill",
        "cancel",
        "reject",
        "alert",
    ]


class ListStockBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    price: Money
    mode: Literal["market", "book"] = "market"


class PriceBody(Strict):
    price: Money


def _own_order(shared: Shared, account_id: str, order_id: str) -> OrderSnapshot:
    """An order of the caller's account; 404 for any other (no hint that it exists)."""
    try:
        order: OrderSnapshot = shared.broker.get_order(order_id)
    except UnknownOrderError:
        raise ApiError(404, f"order not found, was {order_id!r}") from None
    if order.account_id != account_id:
        raise ApiError(404, f"order not found, was {order_id!r}")
    return order


# -- public --------------------------------------------------------------------------------------


@router.get("/health", tags=["service"])
def health(shared: Shared) -> dict[str, Any]:
    """Whether the engine is running (no key needed)."""
    return {"status": "ok" if shared.broker.running else "stopped"}


@router.post("/accounts", status_code=201, tags=["accounts"])
def open_account(body: OpenAccountBody, shared: Shared) -> dict[str, Any]:
    """Open an account (and its user, the first time) and issue its API key. The secret is
    shown only in this answer."""
    opened = shared.broker.open_account(
        body.user_id, body.name, body.email, body.phone, initial_deposit=body.initial_deposit
    )
    key = shared.keys.issue(opened.account_id, opened.user.user_id)
    return {**plain(opened), "api_key_id": key.key_id, "api_secret_key": key.secret}


# -- the caller's account ------------------------------------------------------------------------


@router.get("/account", tags=["accounts"])
def account(record: Caller, shared: Shared) -> dict[str, Any]:
    """The caller's account id, user and balance."""
    account_id = own_account(record)
    return {
        "account_id": account_id,
        "user_id": record.user_id,
        "balance": plain(shared.broker.balance(account_id)),
    }


@router.post("/account/deposit", tags=["accounts"])
def deposit(body: AmountBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Add cash; answer the new balance."""
    return plain(shared.broker.deposit(own_account(record), body.amount))


@router.post("/account/withdraw", tags=["accounts"])
def withdraw(body: AmountBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Take out cash, at most the available cash (403 beyond it)."""
    return plain(shared.broker.withdraw(own_account(record), body.amount))


@router.get("/account/portfolio", tags=["accounts"])
def portfolio(record: Caller, shared: Shared) -> dict[str, Any]:
    """Holdings at current prices with unrealized and realized profit and loss."""
    return plain(shared.broker.portfolio(own_account(record)))


@router.get("/account/transactions", tags=["accounts"])
def transactions(record: Caller, shared: Shared) -> list[dict[str, Any]]:
    """Every movement of cash or shares, oldest first."""
    return plain(shared.broker.transactions(own_account(record)))


# -- orders --------------------------------------------------------------------------------------


@router.post("/orders", status_code=201, tags=["orders"])
def place_order(body: OrderBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Place an order. A refusal (insufficient funds or shares, busy, market closed) is the
    order in status `rejected` with its `reject_reason`."""
    order = shared.broker.place_order(
        own_account(record),
        body.symbol,
        body.side,
        body.quantity,
        body.type,
        body.limit_price,
        body.time_in_force,
    )
    return plain(order)


@router.get("/orders", tags=["orders"])
def list_orders(
    record: Caller,
    shared: Shared,
    status: Annotated[
        list[Literal["pending", "partially_filled", "executed", "cancelled", "rejected"]] | None,
        Query(max_length=5),
    ] = None,
    symbol: Annotated[str | None, Query(max_length=16)] = None,
) -> list[dict[str, Any]]:
    """The caller's orders, oldest first, optionally of some statuses and one symbol."""
    return plain(shared.broker.orders(own_account(record), status or None, symbol))


@router.get("/orders/{order_id}", tags=["orders"])
def get_order(order_id: str, record: Caller, shared: Shared) -> dict[str, Any]:
    """One of the caller's orders."""
    return plain(_own_order(shared, own_account(record), order_id))


@router.delete("/orders/{order_id}", tags=["orders"])
def cancel_order(order_id: str, record: Caller, shared: Shared) -> dict[str, Any]:
    """Cancel what remains of one of the caller's orders (422 if it is finished)."""
    _own_order(shared, own_account(record), order_id)
    return plain(shared.broker.cancel_order(order_id))


# -- market data ---------------------------------------------------------------------------------


@router.get("/stocks", tags=["market data"])
def stocks(_: Caller, shared: Shared) -> list[dict[str, Any]]:
    """Every listed stock's quote."""
    return plain(shared.broker.stocks())


@router.get("/stocks/{symbol}", tags=["market data"])
def quote(symbol: str, _: Caller, shared: Shared) -> dict[str, Any]:
    """A stock's quote: last price, best bid and ask, the day's open, high, low and volume."""
    return plain(shared.broker.quote(symbol))


@router.get("/stocks/{symbol}/depth", tags=["market data"])
def depth(
    symbol: str,
    _: Caller,
    shared: Shared,
    levels: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> dict[str, Any]:
    """The book's best price levels on each side."""
    return plain(shared.broker.depth(symbol, levels))


@router.get("/stocks/{symbol}/trades", tags=["market data"])
def trades(
    symbol: str,
    _: Caller,
    shared: Shared,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """The latest trades, newest first."""
    return plain(shared.broker.trades(symbol, limit))


@router.get("/stocks/{symbol}/bars", tags=["market data"])
def bars(
    symbol: str,
    _: Caller,
    shared: Shared,
    interval: Literal["1m", "5m", "1d"] = "1m",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    """OHLCV bars of an interval, oldest first."""
    return plain(shared.broker.bars(symbol, interval, limit))


@router.get("/search", tags=["market data"])
def search(
    _: Caller,
    shared: Shared,
    q: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[dict[str, Any]]:
    """Stocks whose symbol or name matches, best first."""
    return plain(shared.broker.search(q, limit))


@router.get("/clock", tags=["market data"])
def clock(_: Caller, shared: Shared) -> dict[str, Any]:
    """Whether the session takes orders now."""
    return {"is_open": shared.broker.market_open(), "timestamp": iso(datetime.now(UTC))}


# -- watchlists ----------------------------------------------------------------------------------


@router.get("/watchlists", tags=["watchlists"])
def watchlists(record: Caller, shared: Shared) -> list[dict[str, Any]]:
    """The caller's watchlists with their symbols."""
    return plain(shared.broker.watchlists(own_account(record)))


@router.post("/watchlists", status_code=201, tags=["watchlists"])
def create_watchlist(body: WatchlistBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Create a watchlist of listed symbols."""
    return plain(shared.broker.create_watchlist(own_account(record), body.name, body.symbols))


@router.get("/watchlists/{name}", tags=["watchlists"])
def watchlist(name: str, record: Caller, shared: Shared) -> dict[str, Any]:
    """A watchlist with a live quote for each symbol."""
    return plain(shared.broker.watchlist(own_account(record), name))


@router.patch("/watchlists/{name}", tags=["watchlists"])
def rename_watchlist(name: str, body: RenameBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Rename a watchlist."""
    return plain(shared.broker.rename_watchlist(own_account(record), name, body.name))


@router.delete("/watchlists/{name}", status_code=204, tags=["watchlists"])
def delete_watchlist(name: str, record: Caller, shared: Shared) -> Response:
    """Delete a watchlist."""
    shared.broker.delete_watchlist(own_account(record), name)
    return Response(status_code=204)


@router.post("/watchlists/{name}/symbols", tags=["watchlists"])
def add_symbol(name: str, body: SymbolBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Add a symbol to a watchlist."""
    return plain(shared.broker.add_to_watchlist(own_account(record), name, body.symbol))


@router.delete("/watchlists/{name}/symbols/{symbol}", tags=["watchlists"])
def remove_symbol(name: str, symbol: str, record: Caller, shared: Shared) -> dict[str, Any]:
    """Remove a symbol from a watchlist."""
    return plain(shared.broker.remove_from_watchlist(own_account(record), name, symbol))


# -- alerts and notifications --------------------------------------------------------------------


@router.get("/alerts", tags=["alerts"])
def alerts(record: Caller, shared: Shared) -> list[dict[str, Any]]:
    """The caller's active price alerts."""
    return plain(shared.broker.alerts(own_account(record)))


@router.post("/alerts", status_code=201, tags=["alerts"])
def add_alert(body: AlertBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Alert when a price goes at or above, or at or below, a threshold."""
    return plain(
        shared.broker.add_alert(
            own_account(record), body.symbol, body.condition, body.threshold, one_shot=body.one_shot
        )
    )


@router.delete("/alerts/{alert_id}", tags=["alerts"])
def cancel_alert(alert_id: str, record: Caller, shared: Shared) -> dict[str, Any]:
    """Remove one of the caller's active alerts."""
    account_id = own_account(record)
    if not any(a.alert_id == alert_id for a in shared.broker.alerts(account_id)):
        raise ApiError(404, f"alert not found, was {alert_id!r}")
    return plain(shared.broker.cancel_alert(alert_id))


@router.put("/notifications", tags=["alerts"])
def notifications(body: NotificationBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Choose where the caller's user is notified (console, email, push webhook, SMS) and of
    which events."""
    own_account(record)
    assert record.user_id is not None
    chosen = shared.broker.set_notification_preferences(
        record.user_id,
        console=body.console,
        email=body.email,
        push=body.push,
        sms=body.sms,
        events=body.events,
    )
    return plain(chosen)


# -- admin ---------------------------------------------------------------------------------------


@router.post("/admin/stocks", status_code=201, tags=["admin"])
def list_stock(body: ListStockBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """List a stock (admin key)."""
    require_admin(record)
    listed = shared.broker.list_stock(body.symbol, body.name, body.price, body.mode)
    shared.asset_symbols.clear()
    shared.asset_names.clear()
    return plain(listed)


@router.put("/admin/stocks/{symbol}/price", tags=["admin"])
def move_price(symbol: str, body: PriceBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Move a stock's price; resting limit orders it reaches fill (admin key)."""
    require_admin(record)
    return plain(shared.broker.update_price(symbol, body.price))


@router.get("/admin/metrics", tags=["admin"])
def metrics(record: Caller, shared: Shared) -> dict[str, Any]:
    """Counters, latency percentiles, orders in flight and live actors (admin key)."""
    require_admin(record)
    return plain(shared.broker.metrics())


@router.get("/admin/audit", tags=["admin"])
def audit(record: Caller, shared: Shared) -> dict[str, Any]:
    """Check every invariant of every account and book (admin key)."""
    require_admin(record)
    return plain(shared.broker.audit())
