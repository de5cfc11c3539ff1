"""Builds an order from its command (`engine.commands.PlaceOrder`, which validated the
caller's values), with its id and the reservation price of a buy."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from engine.commands import PlaceOrder, PlaceWithExits
from engine.ids import OrderId
from engine.money import parse_percent
from engine.orders import Order, OrderClass, OrderStatus, OrderType, Side
from engine.stops import trailing_stop

DEFAULT_COLLAR_PERCENT = 5


def collar_price(price_cents: int, collar_percent: Fraction) -> int:
    """The highest price a market buy may fill at: `price` plus `collar_percent`, rounded up
    to the cent so that the collar is never below the price it was set from."""
    factor = 1 + collar_percent / 100
    return -(-price_cents * factor.numerator // factor.denominator)


class OrderFactory:
    """Builds the `Order` a `PlaceOrder` command asks for.

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
        command: PlaceOrder,
        created_ns: int,
        market_price: int,
        placed_monotonic_ns: int = 0,
    ) -> Order:
        """Return the new PENDING order `command` asks for, under `order_id`.

        `market_price` (cents) is the symbol's current price, from which a market buy's collar
        is set. A buy that becomes a market order when triggered reserves as a market buy would
        at its stop price (a trailing stop's: the one its trail sets from `market_price`, from
        where it can only fall).
        """
        limit = command.limit_price
        stop = command.stop_price
        hwm: int | None = None
        if command.order_type is OrderType.TRAILING_STOP:
            hwm = market_price
            stop = trailing_stop(command.side, hwm, command.trail_price, command.trail_bps)
        reserve: int | None = None
        if command.side is Side.BUY:
            # collar_price in integers: ceil(price * up / down)
            if limit is not None:
                reserve = limit
            else:
                base = market_price if stop is None else stop
                reserve = -(-base * self._up // self._down)
        return Order(
            order_id=order_id,
            account_id=command.account_id,
            symbol=command.symbol,
            side=command.side,
            order_type=command.order_type,
            time_in_force=command.time_in_force,
            quantity=command.quantity,
            limit_price=limit,
            reserve_price=reserve,
            created_ns=created_ns,
            placed_monotonic_ns=placed_monotonic_ns,
            client_order_id=command.client_order_id,
            stop_price=stop,
            trail_price=command.trail_price,
            trail_bps=command.trail_bps,
            hwm=hwm,
            self_trade=command.self_trade,
        )

    def create_legs(
        self,
        parent: Order,
        command: PlaceWithExits,
        new_id: Callable[[], OrderId],
        created_ns: int,
        market_price: int,
        placed_monotonic_ns: int = 0,
    ) -> list[Order]:
        """The exit legs `command` gives `parent` (the order `create` made of it), each under
        an id from `new_id`, linked to it and to each other; `parent` becomes their parent. A
        bracket's or OTO's legs are HELD until the entry ends; a pair's stop-loss is its
        shadow (its take-profit holds for both: as a buy, per share the higher of the two legs'
        reserve prices)."""
        parent.order_class = command.order_class
        legs = [
            self.create(new_id(), leg, created_ns, market_price, placed_monotonic_ns)
            for leg in command.leg_commands()
        ]
        parent.legs = tuple(leg.order_id for leg in legs)
        for leg in legs:
            leg.order_class = command.order_class
            leg.parent = parent.order_id
            if command.order_class is not OrderClass.OCO:
                leg.status = OrderStatus.HELD
        pair = [parent, *legs] if command.order_class is OrderClass.OCO else legs
        if len(pair) == 2:
            profit, loss = pair
            profit.sibling, loss.sibling = loss.order_id, profit.order_id
            loss.shadow = True
            if profit.side is Side.BUY:
                assert profit.reserve_price is not None
                assert loss.reserve_price is not None
                profit.reserve_price = max(profit.reserve_price, loss.reserve_price)
        return legs
