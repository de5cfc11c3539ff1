"""The one place that validates an order request and builds the order with its id."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from engine.errors import ValidationError
from engine.ids import AccountId, OrderId, Symbol
from engine.money import parse_percent, parse_price, parse_quantity
from engine.orders import Order, OrderType, Side, TimeInForce

DEFAULT_COLLAR_PERCENT = 5


def collar_price(price_cents: int, collar_percent: Fraction) -> int:
    """The highest price a market buy may fill at: `price` plus `collar_percent`, rounded up
    to the cent so that the collar is never below the price it was set from."""
    factor = 1 + collar_percent / 100
    return -(-price_cents * factor.numerator // factor.denominator)


class OrderFactory:
    """Validates the fields of an order request and builds the `Order`.

    Args:
        collar_percent: How far above the current price a market buy may fill (and how much
            cash it reserves per share): 5 % by default.
    """

    def __init__(self, collar_percent: Any = DEFAULT_COLLAR_PERCENT) -> None:
        self.collar_percent: Fraction = parse_percent(collar_percent, "collar_percent")
        factor = 1 + self.collar_percent / 100
        self._up, self._down = factor.numerator, factor.denominator

    def create(
        self,
        order_id: OrderId,
        account_id: AccountId,
        symbol: Symbol,
        side: Any,
        quantity: Any,
        order_type: Any,
        limit_price: Any,
        time_in_force: Any,
        created_ns: int,
        market_price: int,
        placed_monotonic_ns: int = 0,
    ) -> Order:
        """Return a new PENDING order, or raise `ValidationError` naming the bad field.

        `market_price` (cents) is the symbol's current price, from which a market buy's collar
        is set.
        """
        parsed_side: Side = Side.parse(side, "side")
        parsed_type: OrderType = OrderType.parse(order_type, "order_type")
        tif: TimeInForce = TimeInForce.parse(time_in_force, "time_in_force")
        parsed_quantity = parse_quantity(quantity)
        limit: int | None = None
        if parsed_type is OrderType.LIMIT:
            if limit_price is None:
                raise ValidationError("limit_price", "is required for a limit order", limit_price)
            limit = parse_price(limit_price, "limit_price")
        elif limit_price is not None:
            raise ValidationError("limit_price", "must be None for a market order", limit_price)
        reserve: int | None = None
        if parsed_side is Side.BUY:
            # collar_price in integers: ceil(price * up / down)
            reserve = limit if limit is not None else -(-market_price * self._up // self._down)
        return Order(
            order_id=order_id,
            account_id=account_id,
            symbol=symbol,
            side=parsed_side,
            order_type=parsed_type,
            time_in_force=tif,
            quantity=parsed_quantity,
            limit_price=limit,
            reserve_price=reserve,
            created_ns=created_ns,
            placed_monotonic_ns=placed_monotonic_ns,
        )
