from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from engine import CancelReason, OrderCancelled, OrderStatus, RejectReason
from engine.session import NEW_YORK, SimulatedClock
from gateway import Brokerage


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime(2026, 11, 23, 10, 0, tzinfo=NEW_YORK))  # a Monday


@pytest.fixture
def nyse(clock: SimulatedClock) -> Iterator[Brokerage]:
    with Brokerage(session="nyse", clock=clock, session_poll=None) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        yield broker
        broker.audit()


def test_orders_outside_the_session_are_rejected_market_closed(
    nyse: Brokerage, clock: SimulatedClock
) -> None:
    account = nyse.open_account("U1", "One", initial_deposit="10000").account_id
    assert nyse.market_open()

    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=NEW_YORK))
    order = nyse.place_order(account, "AAPL", "buy", 1)

    assert not nyse.market_open()
    assert (order.status, order.reject_reason) == (OrderStatus.REJECTED, RejectReason.MARKET_CLOSED)
    assert nyse.balance(account).cash == Decimal("10000.00")


def test_day_orders_still_resting_at_the_close_expire_and_release_their_cash(
    nyse: Brokerage, clock: SimulatedClock
) -> None:
    account = nyse.open_account("U1", "One", initial_deposit="10000").account_id
    day = nyse.place_order(account, "AAPL", "buy", 10, "limit", "140", time_in_force="day")
    gtc = nyse.place_order(account, "AAPL", "buy", 10, "limit", "139")

    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=NEW_YORK))
    expired = nyse.expire_day_orders()

    assert expired == 1
    after = nyse.get_order(day.order_id)
    assert (after.status, after.cancel_reason) == (OrderStatus.CANCELLED, CancelReason.EXPIRED)
    assert nyse.get_order(gtc.order_id).status is OrderStatus.PENDING
    assert nyse.balance(account).reserved == Decimal("1390.00")


def test_the_session_watcher_expires_day_orders_when_the_clock_passes_the_close(
    clock: SimulatedClock,
) -> None:
    expired = threading.Event()
    with Brokerage(session="nyse", clock=clock, session_poll=0.01) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        account = broker.open_account("U1", "One", initial_deposit="10000").account_id
        broker.subscribe(lambda event: expired.set(), [OrderCancelled])
        order = broker.place_order(account, "AAPL", "buy", 1, "limit", "100", time_in_force="day")

        clock.set(datetime(2026, 11, 23, 16, 0, 1, tzinfo=NEW_YORK))

        assert expired.wait(10)
        assert broker.get_order(order.order_id).cancel_reason is CancelReason.EXPIRED


def test_day_and_gtc_orders_from_many_threads_leave_only_gtc_reserved_after_the_close(
    nyse: Brokerage, clock: SimulatedClock
) -> None:
    accounts = [
        nyse.open_account(f"U{n}", f"user {n}", initial_deposit="100000").account_id
        for n in range(6)
    ]
    placed: list[Any] = []
    lock = threading.Lock()

    def place(n: int) -> None:
        for k in range(30):
            tif = "day" if k % 2 else "gtc"
            order = nyse.place_order(
                accounts[n], "AAPL", "buy", 1, "limit", f"{100 + k}.00", time_in_force=tif
            )
            with lock:
                placed.append(order)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(place, range(6)))
    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=NEW_YORK))
    expired = nyse.expire_day_orders()

    gtc_cash = sum((o.limit_price for o in placed if o.time_in_force == "gtc"), Decimal(0))
    report = nyse.audit()
    assert expired == 90
    assert report.reserved_cash == gtc_cash
    assert report.cash == Decimal(600000)
    assert report.open_orders == 90


def test_a_replace_outside_the_session_is_rejected_market_closed_and_the_order_stays(
    nyse: Brokerage, clock: SimulatedClock
) -> None:
    account = nyse.open_account("U1", "One", initial_deposit="10000").account_id
    order = nyse.place_order(account, "AAPL", "buy", 10, "limit", "140")

    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=NEW_YORK))
    refused = nyse.replace_order(order.order_id, limit_price="141")

    assert (refused.status, refused.reject_reason) == (
        OrderStatus.REJECTED,
        RejectReason.MARKET_CLOSED,
    )
    assert nyse.get_order(order.order_id).status is OrderStatus.PENDING
    assert nyse.balance(account).reserved == Decimal("1400.00")
