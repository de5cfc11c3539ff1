"""The one hierarchy of exceptions the brokerage raises for misuse and broken invariants.

Business refusals (insufficient funds or shares) are not exceptions: they come back as an
order in status REJECTED with a `RejectReason`. Every message here ends with the value given.
"""

from __future__ import annotations

from typing import Any


class BrokerageError(Exception):
    """Base class of every error the brokerage raises on purpose."""


class ValidationError(BrokerageError, ValueError):
    """A request field had a value the brokerage cannot accept.

    Attributes:
        field: The name of the offending field, as the caller spelled it.
        value: The value given.
    """

    def __init__(self, field: str, problem: str, value: Any) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field} {problem}, was {value!r}")


class NotFoundError(BrokerageError, LookupError):
    """Something named by id does not exist."""

    kind = "object"

    def __init__(self, value: Any) -> None:
        self.value = value
        super().__init__(f"unknown {self.kind}, was {value!r}")


class UnknownAccountError(NotFoundError):
    """No account has the given id."""

    kind = "account"


class UnknownSymbolError(NotFoundError):
    """No stock is listed under the given symbol."""

    kind = "symbol"


class UnknownOrderError(NotFoundError):
    """No order has the given id."""

    kind = "order"


class UnknownUserError(NotFoundError):
    """No user has the given id."""

    kind = "user"


class UnknownAlertError(NotFoundError):
    """No active alert has that id."""

    kind = "alert"


class UnknownWatchlistError(NotFoundError):
    """The account has no watchlist of that name."""

    kind = "watchlist"


class DuplicateError(BrokerageError):
    """Something that must be unique (a symbol, an account id) exists already."""

    def __init__(self, what: str, value: Any) -> None:
        self.value = value
        super().__init__(f"{what} already exists, was {value!r}")


class OrderNotCancellableError(BrokerageError):
    """A cancel named an order that is already finished."""

    def __init__(self, order_id: str, status: str) -> None:
        self.order_id = order_id
        self.status = status
        super().__init__(f"order {order_id} cannot be cancelled: it is {status}, was {order_id!r}")


class OrderNotReplaceableError(BrokerageError):
    """A replace named an order that is finished, does not rest (a market order), or has a
    replace pending already."""

    def __init__(self, order_id: str, status: str) -> None:
        self.order_id = order_id
        self.status = status
        super().__init__(f"order {order_id} cannot be replaced: it is {status}, was {order_id!r}")


class InvalidTransitionError(BrokerageError):
    """The order state machine was asked for a transition it does not allow."""

    def __init__(self, order_id: str, current: str, requested: str) -> None:
        super().__init__(
            f"order {order_id} cannot move from {current} to {requested}, was {requested!r}"
        )


class AccountBusyError(BrokerageError):
    """An account could not be reset: orders of it were still open (placed meanwhile)."""

    def __init__(self, account_id: str, open_orders: int) -> None:
        self.account_id = account_id
        self.open_orders = open_orders
        super().__init__(
            f"account {account_id} cannot be reset while it has open orders ({open_orders} "
            f"still open: cancel them, or stop placing them, and reset again), was {account_id!r}"
        )


class InsufficientAvailableCashError(BrokerageError):
    """A withdrawal asked for more than the cash not reserved by pending buy orders."""

    def __init__(self, requested: Any, available: Any) -> None:
        self.requested = requested
        self.available = available
        super().__init__(f"withdrawal exceeds available cash of {available}, was {requested}")


class SymbolHaltedError(BrokerageError):
    """A stock stopped trading after a failure its actor could not recover from."""

    def __init__(self, symbol: str, operation: str) -> None:
        self.symbol = symbol
        super().__init__(f"{symbol} is halted after a failure: {operation} refused, was {symbol!r}")


class JournalFailedError(BrokerageError):
    """The journal could not be written: the brokerage takes no more changes (reads go on)."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"the journal could not be written, so no change is taken, was {cause!r}")


class BrokerStoppedError(BrokerageError):
    """The brokerage was used after it was stopped (or before it was started)."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"the brokerage is not running, was asked for {operation!r}")
