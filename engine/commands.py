"""Imperative requests: the messages actors send each other. All are frozen and never mutated.

Requests the gateway receives carry the caller's raw values (it validates them); the messages it
routes on carry parsed values (integer cents, whole shares, enums). A `reply` is a one-shot
channel (a future) that the actor finishing the request fills with a result or an error.

The five messages every order passes through (`PlaceOrder`, `AcceptOrder`, `SubmitOrder`,
`SettleMatch`, `SettleFill`) are `NamedTuple`s rather than frozen dataclasses: just as
immutable, and about four times cheaper to build (a frozen dataclass sets each field through
`object.__setattr__`), which counts on the matching path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from engine.ids import OrderId, Symbol
from engine.matching import Fill, MatchResult, OrderTicket
from engine.orders import CancelReason, Order, OrderStatus, Side


class Reply(Protocol):
    """Where the result of a request goes: pykka's futures fit."""

    def set(self, value: Any = None) -> None:
        """Deliver the result."""

    def set_exception(self, exc_info: Any = None) -> None:
        """Deliver an error as `(type, value, traceback)`."""


# -- requests to the gateway (raw caller values) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAccount:
    """Open an account for a user, registering the user on first sight (with `new_user`, only
    a user not seen before: an existing user id is refused, and nothing about that user is
    told)."""

    user_id: Any
    name: Any
    email: Any
    phone: Any
    initial_deposit: Any
    account_id: Any
    reply: Reply
    new_user: bool = False


@dataclass(frozen=True, slots=True)
class ListStock:
    """List a new stock at an initial price in a liquidity mode."""

    symbol: Any
    name: Any
    price: Any
    mode: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class Deposit:
    """Add cash to an account."""

    account_id: Any
    amount: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Take cash out of an account, at most its available cash."""

    account_id: Any
    amount: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GrantShares:
    """Credit shares to an account at a stated cost."""

    account_id: Any
    symbol: Any
    quantity: Any
    price: Any
    reply: Reply


class PlaceOrder(NamedTuple):
    """Place a market or limit order.

    `admitted` is False when the caller found too many orders in flight: the gateway still
    validates it and gives it an id, then rejects it with reason BUSY, keeping nothing of it.
    With `keep_refused` False an order the pre-trade check refuses is not kept in the account's
    history either (as on Alpaca, where a refused order is no order).
    """

    account_id: Any
    symbol: Any
    side: Any
    quantity: Any
    order_type: Any
    limit_price: Any
    time_in_force: Any
    reply: Reply
    placed_monotonic_ns: int = 0
    admitted: bool = True
    keep_refused: bool = True


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel what remains of a pending or partially filled order."""

    order_id: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetOrder:
    """Read one order."""

    order_id: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetOrders:
    """Read an account's orders, optionally filtered by status and symbol, a page of them:
    `limit` (None: all) from the `offset`-th on."""

    account_id: Any
    status: Any
    symbol: Any
    reply: Reply
    offset: Any = 0
    limit: Any = None
    side: Any = None
    after: Any = None
    until: Any = None
    newest_first: Any = False


@dataclass(frozen=True, slots=True)
class GetBalance:
    """Read an account's cash, reserved and available."""

    account_id: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetAccountState:
    """Read an account's cash and positions, for valuation."""

    account_id: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetTransactions:
    """Read an account's transaction history, a page of it: `limit` (None: all) from the
    `offset`-th on."""

    account_id: Any
    reply: Reply
    offset: Any = 0
    limit: Any = None


@dataclass(frozen=True, slots=True)
class GetAccounts:
    """Read the accounts of a user (or of every user)."""

    user_id: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetQuote:
    """Read a symbol's quote."""

    symbol: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetPriceHistory:
    """Read a symbol's price history."""

    symbol: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetDepth:
    """Read the best `levels` price levels of each side of a symbol's book."""

    symbol: Any
    levels: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetTrades:
    """Read a symbol's last `limit` trades."""

    symbol: Any
    limit: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetBars:
    """Read a symbol's last `limit` OHLCV bars of one interval ("1m", "5m" or "1d")."""

    symbol: Any
    interval: Any
    limit: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class Search:
    """Find listed stocks by symbol or company name."""

    query: Any
    limit: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetStocks:
    """Read every listed stock's quote."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class UpdatePrice:
    """Move a symbol's price (the price feed's entry point)."""

    symbol: Any
    price: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class Audit:
    """Check every actor's invariants and report its totals (an account's `AccountAudit`, a
    symbol's `MarketAudit`); at the gateway, of every actor."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class GetChildren:
    """Read the refs of every account and symbol actor the gateway started (to stop them)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class EditWatchlist:
    """Change an account's watchlists: `action` is "create" (`value`: symbols), "rename"
    (`value`: the new name), "delete", "add" or "remove" (`value`: a symbol)."""

    account_id: Any
    action: str
    name: Any
    value: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetWatchlists:
    """Read an account's watchlists (all of them, or the one named)."""

    account_id: Any
    name: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class AddAlert:
    """Set a price alert on a symbol for an account (the gateway fills in `alert_id` and the
    parsed threshold in cents before routing it to the symbol's actor)."""

    account_id: Any
    symbol: Any
    condition: Any
    threshold: Any
    one_shot: Any
    reply: Reply
    alert_id: str = ""
    created_ns: int = 0


@dataclass(frozen=True, slots=True)
class CancelAlert:
    """Remove an active alert."""

    alert_id: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetAlerts:
    """Read an account's active alerts."""

    account_id: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class ExpireDayOrders:
    """The session closed: cancel every DAY order still resting (reason EXPIRED)."""

    reply: Reply


# -- messages the gateway and the actors route on (parsed values) --------------------------------


@dataclass(frozen=True, slots=True)
class MoveCash:
    """Deposit (`cents > 0`) or withdraw (`cents < 0`) cash in an account."""

    cents: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class CreditShares:
    """Credit `quantity` shares of `symbol` at `price` cents each."""

    symbol: Symbol
    quantity: int
    price: int
    reply: Reply


class AcceptOrder(NamedTuple):
    """Make the pre-trade check for a new order and send it on to its symbol's actor.

    An order the gateway already rejected (MARKET_CLOSED) is only recorded; its reply was sent.
    The `order` belongs to the receiving account actor from here on; no one else touches it.
    With `keep_refused` False a refused order is forgotten once answered.
    """

    order: Order
    symbol_ref: Any
    reply: Reply | None
    keep_refused: bool = True


@dataclass(frozen=True, slots=True)
class QueryOrders:
    """Read a page of an account's orders with parsed filters."""

    status: frozenset[OrderStatus] | None
    symbol: Symbol | None
    reply: Reply
    offset: int = 0
    limit: int | None = None
    side: Side | None = None
    after_ns: int | None = None
    until_ns: int | None = None
    newest_first: bool = False


class SubmitOrder(NamedTuple):
    """Match an accepted order in its symbol's book (its account has reserved for it)."""

    ticket: OrderTicket
    reply: Reply | None


class SettleMatch(NamedTuple):
    """Tell the order's own account what its submission did at once, to settle and reply.

    `waits` are the `done` replies of the fills sent to resting orders' accounts: the caller's
    answer holds once they are settled too.
    """

    order_id: OrderId
    result: MatchResult
    reply: Reply | None
    waits: tuple[Any, ...] = ()


class SettleFill(NamedTuple):
    """Tell a resting order's account that it traded; `done` (if any) is set once settled."""

    order_id: OrderId
    fill: Fill
    done: Reply | None


@dataclass(frozen=True, slots=True)
class RemoveFromBook:
    """Take a resting order out of its symbol's book, on its account's request."""

    order_id: OrderId
    account_ref: Any
    reply: Reply


@dataclass(frozen=True, slots=True)
class RemovedFromBook:
    """The symbol's answer to `RemoveFromBook`: whether the order was still resting."""

    order_id: OrderId
    removed: bool
    reply: Reply


@dataclass(frozen=True, slots=True)
class OrderExpired:
    """An order was taken out of its book by its symbol (a DAY order at the close: EXPIRED; every
    resting order of a halted symbol: HALTED); `done` is set once the account cancelled it."""

    order_id: OrderId
    done: Reply
    reason: CancelReason = CancelReason.EXPIRED


@dataclass(frozen=True, slots=True)
class SetPrice:
    """Move the symbol's price to `price` cents."""

    price: int
    reply: Reply


__all__ = [
    "AcceptOrder",
    "AddAlert",
    "Audit",
    "CancelAlert",
    "CancelOrder",
    "CreditShares",
    "Deposit",
    "EditWatchlist",
    "ExpireDayOrders",
    "GetAccountState",
    "GetAccounts",
    "GetAlerts",
    "GetBalance",
    "GetBars",
    "GetChildren",
    "GetDepth",
    "GetOrder",
    "GetOrders",
    "GetPriceHistory",
    "GetQuote",
    "GetStocks",
    "GetTrades",
    "GetTransactions",
    "GetWatchlists",
    "GrantShares",
    "ListStock",
    "MoveCash",
    "OpenAccount",
    "OrderExpired",
    "PlaceOrder",
    "QueryOrders",
    "RemoveFromBook",
    "RemovedFromBook",
    "Reply",
    "Search",
    "SetPrice",
    "SettleFill",
    "SettleMatch",
    "SubmitOrder",
    "UpdatePrice",
    "Withdraw",
]
