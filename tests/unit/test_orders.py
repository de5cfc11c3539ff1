from __future__ import annotations

from decimal import Decimal

import pytest

from engine.commands import PlaceOrder
from engine.errors import InvalidTransitionError, ValidationError
from engine.factory import OrderFactory, collar_price
from engine.ids import AccountId, OrderId, Symbol
from engine.orders import (
    CancelReason,
    Order,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)


def make_order(side: Side = Side.BUY, quantity: int = 10, limit: int | None = 15000) -> Order:
    return Order(
        OrderId("O-1"),
        AccountId("A-1"),
        Symbol("AAPL"),
        side,
        OrderType.LIMIT if limit else OrderType.MARKET,
        TimeInForce.GTC,
        quantity,
        limit,
        limit if side is Side.BUY else None,
        created_ns=1,
    )


def test_partial_then_full_fill_moves_pending_to_partially_filled_to_executed() -> None:
    order = make_order()

    order.fill(4, 14900, 2)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    order.fill(6, 15000, 3)

    assert order.status is OrderStatus.EXECUTED
    assert order.filled_quantity == 10
    assert order.remaining == 0
    assert order.snapshot().average_fill_price == Decimal("149.60")


@pytest.mark.parametrize("final", ["execute", "cancel", "reject"])
def test_a_final_order_refuses_every_further_transition(final: str) -> None:
    order = make_order()
    if final == "execute":
        order.fill(10, 15000, 2)
    elif final == "cancel":
        order.cancel(CancelReason.REQUESTED, 2)
    else:
        order.reject(RejectReason.INSUFFICIENT_FUNDS, 2)

    with pytest.raises(InvalidTransitionError):
        order.cancel(CancelReason.REQUESTED, 3)
    with pytest.raises(InvalidTransitionError):
        order.fill(1, 15000, 3)
    with pytest.raises(InvalidTransitionError):
        order.reject(RejectReason.INSUFFICIENT_FUNDS, 3)


def test_a_partially_filled_order_cannot_be_rejected_or_overfilled() -> None:
    order = make_order()
    order.fill(3, 15000, 2)

    with pytest.raises(InvalidTransitionError):
        order.reject(RejectReason.INSUFFICIENT_FUNDS, 3)
    with pytest.raises(InvalidTransitionError):
        order.fill(8, 15000, 3)


def test_reservation_of_a_buy_follows_what_remains() -> None:
    order = make_order(quantity=10, limit=15000)
    assert order.reserved_cents == 150000

    order.fill(4, 14000, 2)

    assert order.reserved_cents == 6 * 15000
    order.cancel(CancelReason.REQUESTED, 3)
    assert order.reserved_cents == 0


def test_collar_is_five_percent_above_the_price_rounded_up_to_the_cent() -> None:
    assert collar_price(15000, OrderFactory().collar_percent) == 15750
    assert collar_price(101, OrderFactory().collar_percent) == 107  # 106.05 -> 107


def test_factory_builds_a_market_buy_reserving_at_the_collar() -> None:
    factory = OrderFactory()

    command = PlaceOrder.parse("A", "aapl", "BUY", 10, "market", None, "gtc")
    order = factory.create(OrderId("O-1"), command, 1, 15000)

    assert order.reserve_price == 15750
    assert order.reserved_cents == 157500
    assert order.status is OrderStatus.PENDING


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"side": "hold"}, "side"),
        ({"order_type": "stop_loss"}, "order_type"),
        ({"order_type": "stop"}, "stop_price"),
        ({"order_type": "stop", "stop_price": "0"}, "stop_price"),
        ({"order_type": "stop_limit", "stop_price": "10"}, "limit_price"),
        ({"order_type": "limit", "limit_price": "10", "stop_price": "9"}, "stop_price"),
        ({"order_type": "stop", "stop_price": "10", "time_in_force": "ioc"}, "time_in_force"),
        ({"order_type": "trailing_stop"}, "trail_price"),
        ({"order_type": "trailing_stop", "trail_price": "1", "trail_percent": "1"}, "trail_price"),
        ({"order_type": "trailing_stop", "trail_percent": "100"}, "trail_percent"),
        ({"order_type": "trailing_stop", "trail_percent": "0.001"}, "trail_percent"),
        ({"order_type": "trailing_stop", "trail_price": "0.001"}, "trail_price"),
        ({"order_type": "market", "trail_percent": "2"}, "trail_percent"),
        ({"time_in_force": "gtd"}, "time_in_force"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"order_type": "limit", "limit_price": None}, "limit_price"),
        ({"order_type": "limit", "limit_price": "1.234"}, "limit_price"),
        ({"order_type": "market", "limit_price": "10"}, "limit_price"),
    ],
)
def test_place_order_command_refuses_bad_fields_naming_the_field(
    fields: dict[str, object], field: str
) -> None:
    request: dict[str, object] = {
        "side": "buy",
        "quantity": 1,
        "order_type": "market",
        "limit_price": None,
        "time_in_force": "gtc",
    }
    request.update(fields)

    with pytest.raises(ValidationError) as error:
        PlaceOrder.parse(
            "A",
            "AAPL",
            request["side"],
            request["quantity"],
            request["order_type"],
            request["limit_price"],
            request["time_in_force"],
            stop_price=request.get("stop_price"),
            trail_price=request.get("trail_price"),
            trail_percent=request.get("trail_percent"),
        )

    assert error.value.field == field


def test_a_naive_time_is_taken_as_utc_and_converts_to_nanoseconds_exactly() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from engine.orders import datetime_to_ns, ns_to_datetime

    aware = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

    assert datetime_to_ns(aware.replace(tzinfo=None)) == datetime_to_ns(aware)
    assert datetime_to_ns(aware.astimezone(timezone(timedelta(hours=2)))) == datetime_to_ns(aware)
    assert ns_to_datetime(datetime_to_ns(aware)) == aware
