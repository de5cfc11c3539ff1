"""Past-tense facts the brokerage publishes. Subscribers receive these; nothing mutates them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from engine.account import Transaction
from engine.alerts import AlertSnapshot
from engine.ids import AccountId, Symbol
from engine.orders import CancelReason, OrderSnapshot, RejectReason


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Something happened to an order; `order` is its snapshot just after."""

    order: OrderSnapshot

    @property
    def account_id(self) -> AccountId:
        """The account the event concerns."""
        return self.order.account_id

    @property
    def symbol(self) -> Symbol:
        """The symbol the event concerns."""
        return self.order.symbol


@dataclass(frozen=True, slots=True)
class OrderAccepted(OrderEvent):
    """An order passed its pre-trade check; its cash or shares are reserved."""


@dataclass(frozen=True, slots=True)
class OrderRejected(OrderEvent):
    """An order was refused before reaching the book; nothing moved."""

    reason: RejectReason


@dataclass(frozen=True, slots=True)
class OrderFilled(OrderEvent):
    """An order traded (in part or in full) and the fill is settled in its account."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class OrderCancelled(OrderEvent):
    """What remained of an order was cancelled and its reservation released."""

    reason: CancelReason


@dataclass(frozen=True, slots=True)
class OrderReplaced(OrderEvent):
    """What remained of an order was replaced by `by` (`order` is the old one, REPLACED)."""

    by: OrderSnapshot


@dataclass(frozen=True, slots=True)
class PriceChanged:
    """A symbol's price moved (a feed update or, in book mode, a trade)."""

    symbol: Symbol
    old_price: Decimal
    new_price: Decimal
    at: datetime

    @property
    def account_id(self) -> AccountId | None:
        """Price changes concern no single account."""
        return None


@dataclass(frozen=True, slots=True)
class AlertTriggered:
    """A price alert fired: `alert.price` is the price that fired it."""

    alert: AlertSnapshot

    @property
    def account_id(self) -> AccountId:
        """The account that set the alert."""
        return self.alert.account_id

    @property
    def symbol(self) -> Symbol:
        """The symbol whose price fired it."""
        return self.alert.symbol


@dataclass(frozen=True, slots=True)
class MarginCall:
    """A margin account's equity fell below its maintenance requirement at the last prices
    (told once as it falls below; again only after it was back above)."""

    account_id: AccountId
    equity: Decimal
    maintenance: Decimal
    deficit: Decimal
    """What equity lacks to meet maintenance: deposit it, or close positions."""
    at: datetime

    @property
    def symbol(self) -> Symbol | None:
        """A margin call concerns no single symbol."""
        return None


Event = OrderEvent | PriceChanged | AlertTriggered | MarginCall
"""Any event the brokerage publishes."""
