"""Stop, stop limit and trailing stop orders through the embedded API, in both liquidity modes,
with their reservations, events and cancels; and many threads trading against waiting stops
while prices move, then the audit."""

from __future__ import annotations

import contextlib
import random
import threading
from decimal import Decimal
from typing import Any

import pytest

from engine import (
    CancelReason,
    OrderFilled,
    OrderNotCancellableError,
    OrderNotReplaceableError,
    OrderStatus,
    RejectReason,
    ValidationError,
)
from gateway import Brokerage
from tests.integration.test_concurrency import run_together


def funded(broker: Brokerage, user: str, cash: str = "100000") -> str:
    return broker.open_account(user, user.lower(), initial_deposit=cash).account_id


def test_a_sell_stop_waits_holding_its_shares_then_sells_when_the_price_falls(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1")
    broker.grant_shares(account, "AAPL", 10, "100")
    filled: list[OrderFilled] = []
    seen = threading.Event()

    def on_fill(event: object) -> None:
        assert isinstance(event, OrderFilled)
        filled.append(event)
        seen.set()

    broker.subscribe(on_fill, [OrderFilled])

    order = broker.place_order(account, "AAPL", "sell", 10, "stop", stop_price="140")

    assert order.status is OrderStatus.PENDING
    assert order.stop_price == Decimal("140.00")
    assert order.triggered_at is None
    assert broker.portfolio(account).holdings[0].reserved == 10
    broker.update_price("AAPL", "141")
    assert broker.get_order(order.order_id).status is OrderStatus.PENDING

    broker.update_price("AAPL", "139.50")

    done = broker.get_order(order.order_id)
    assert done.status is OrderStatus.EXECUTED
    assert done.average_fill_price == Decimal("139.50")
    assert done.triggered_at is not None
    assert broker.balance(account).cash == Decimal("101395.00")
    assert seen.wait(5)
    assert filled[0].order.order_id == order.order_id


def test_a_stop_buy_reserves_as_a_market_buy_at_its_stop_and_is_refused_without_it(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1", cash="1000")

    refused = broker.place_order(account, "AAPL", "buy", 7, "stop", stop_price="160")
    assert refused.status is OrderStatus.REJECTED  # 7 x 168.00 (160 + 5 %) > 1,000
    assert refused.reject_reason is RejectReason.INSUFFICIENT_FUNDS

    order = broker.place_order(account, "AAPL", "buy", 5, "stop", stop_price="160")
    assert broker.balance(account).reserved == Decimal("840.00")  # 5 x 168.00

    cancelled = broker.cancel_order(order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert broker.balance(account).reserved == Decimal("0.00")
    broker.update_price("AAPL", "170")
    assert broker.get_order(order.order_id).status is OrderStatus.CANCELLED


def test_a_stop_limit_becomes_a_resting_limit_that_fills_later(broker: Brokerage) -> None:
    account = funded(broker, "U1")
    order = broker.place_order(
        account, "AAPL", "buy", 4, "stop_limit", "152.00", stop_price="151.00"
    )
    assert broker.balance(account).reserved == Decimal("608.00")  # at its limit

    broker.update_price("AAPL", "153")  # triggered: a buy limited at 152 rests
    resting = broker.get_order(order.order_id)
    assert resting.status is OrderStatus.PENDING
    assert resting.triggered_at is not None

    broker.update_price("AAPL", "151.50")
    assert broker.get_order(order.order_id).status is OrderStatus.EXECUTED
    assert broker.balance(account).reserved == Decimal("0.00")


def test_a_trailing_stop_reports_its_mark_and_stop_when_it_triggers(broker: Brokerage) -> None:
    account = funded(broker, "U1")
    broker.grant_shares(account, "AAPL", 3, "100")
    order = broker.place_order(account, "AAPL", "sell", 3, "trailing_stop", trail_percent="2")
    assert (order.hwm, order.stop_price, order.trail_percent) == (
        Decimal("150.00"),
        Decimal("147.00"),
        Decimal("2.00"),
    )

    for price in ("155", "160", "158"):
        broker.update_price("AAPL", price)
    waiting = broker.get_order(order.order_id)  # its mark and stop as they are now
    assert (waiting.status, waiting.hwm, waiting.stop_price) == (
        OrderStatus.PENDING,
        Decimal("160.00"),
        Decimal("156.80"),
    )
    [listed] = broker.orders(account, status="pending")  # a listing shows them so too
    assert (listed.hwm, listed.stop_price) == (Decimal("160.00"), Decimal("156.80"))

    broker.update_price("AAPL", "156.80")

    done = broker.get_order(order.order_id)
    assert done.status is OrderStatus.EXECUTED
    assert (done.hwm, done.stop_price) == (Decimal("160.00"), Decimal("156.80"))
    assert done.average_fill_price == Decimal("156.80")


def test_in_book_mode_a_trade_triggers_a_stop_that_trades_with_the_book(
    broker: Brokerage,
) -> None:
    maker, taker, stopper = (funded(broker, u) for u in ("M", "T", "S"))
    broker.grant_shares(taker, "BOOK", 5, "90")
    broker.grant_shares(stopper, "BOOK", 5, "90")
    broker.place_order(maker, "BOOK", "buy", 5, "limit", "99")
    broker.place_order(maker, "BOOK", "buy", 5, "limit", "98")
    stop = broker.place_order(stopper, "BOOK", "sell", 5, "stop", stop_price="99")
    broker.update_price("BOOK", "90")  # the feed's reference price triggers nothing in a book
    assert broker.get_order(stop.order_id).status is OrderStatus.PENDING

    broker.place_order(taker, "BOOK", "sell", 5, "market")  # trades at 99: the stop triggers

    done = broker.get_order(stop.order_id)
    assert done.status is OrderStatus.EXECUTED
    assert done.average_fill_price == Decimal("98.00")
    assert broker.portfolio(maker).holdings[0].quantity == 10


def test_a_triggered_stop_market_with_nothing_to_trade_is_cancelled_and_released(
    broker: Brokerage,
) -> None:
    maker, taker, stopper = (funded(broker, u) for u in ("M", "T", "S"))
    broker.grant_shares(taker, "BOOK", 1, "90")
    broker.grant_shares(stopper, "BOOK", 5, "90")
    broker.place_order(maker, "BOOK", "buy", 1, "limit", "99")
    stop = broker.place_order(stopper, "BOOK", "sell", 5, "stop", stop_price="99")

    broker.place_order(taker, "BOOK", "sell", 1, "market")

    done = broker.get_order(stop.order_id)
    assert done.status is OrderStatus.CANCELLED
    assert done.cancel_reason is CancelReason.NO_LIQUIDITY
    assert broker.portfolio(stopper).holdings[0].reserved == 0


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"order_type": "stop"}, "stop_price"),
        ({"order_type": "stop", "stop_price": "1.001"}, "stop_price"),
        ({"order_type": "trailing_stop", "trail_percent": "-1"}, "trail_percent"),
        ({"order_type": "stop", "stop_price": "10", "time_in_force": "fok"}, "time_in_force"),
    ],
)
def test_bad_stop_terms_are_refused_naming_the_field(
    broker: Brokerage, terms: dict[str, str], field: str
) -> None:
    account = funded(broker, "U1")
    with pytest.raises(ValidationError) as error:
        broker.place_order(account, "AAPL", "sell", 1, **terms)  # type: ignore[arg-type]
    assert error.value.field == field
    assert broker.orders(account) == []


def test_threads_place_cancel_and_trade_against_stops_while_prices_move(
    broker: Brokerage,
) -> None:
    """Stops of every kind, on both symbols, placed, cancelled and triggered from many threads
    while the feed moves AAPL and trades move BOOK; then the audit (conservation, no leaked
    reservation, books and stop books consistent) and every order final or still waiting."""
    accounts = [funded(broker, f"U{n}") for n in range(6)]
    for account in accounts:
        broker.grant_shares(account, "AAPL", 200, "150")
        broker.grant_shares(account, "BOOK", 200, "100")

    def trade(n: int) -> None:
        rng = random.Random(n)
        mine: list[str] = []
        for _ in range(60):
            account = rng.choice(accounts)
            symbol = rng.choice(["AAPL", "BOOK"])
            base = 150 if symbol == "AAPL" else 100
            roll = rng.random()
            if roll < 0.15:
                broker.update_price("AAPL", f"{rng.uniform(140, 160):.2f}")
            elif roll < 0.25 and mine:
                with contextlib.suppress(OrderNotCancellableError):  # done meanwhile
                    broker.cancel_order(mine.pop(rng.randrange(len(mine))))
            elif roll < 0.6:
                side = rng.choice(["buy", "sell"])
                kind = rng.choice(["stop", "stop_limit", "trailing_stop"])
                offset = rng.uniform(0.5, 5) * (1 if side == "buy" else -1)
                terms: dict[str, Any] = {}
                limit = None
                if kind == "trailing_stop":
                    terms["trail_price" if rng.random() < 0.5 else "trail_percent"] = (
                        f"{rng.uniform(0.5, 3):.2f}"
                    )
                else:
                    terms["stop_price"] = f"{base + offset:.2f}"
                    if kind == "stop_limit":
                        limit = f"{base + offset * 1.5:.2f}"
                order = broker.place_order(
                    account, symbol, side, rng.randint(1, 5), kind, limit, "gtc", **terms
                )
                if not order.status.is_final:
                    mine.append(order.order_id)
            else:
                price = f"{base + rng.uniform(-4, 4):.2f}"
                broker.place_order(account, symbol, rng.choice(["buy", "sell"]), 3, "limit", price)

    run_together(trade, threads=6)
    report = broker.audit()
    assert report.open_orders == report.resting_orders
    for account in accounts:
        balance = broker.balance(account)
        assert balance.available >= 0
        for holding in broker.portfolio(account).holdings:
            assert 0 <= holding.reserved <= holding.quantity


# -- self-trade prevention ---------------------------------------------------------------------


def test_an_account_does_not_trade_with_itself_by_default_in_book_mode(broker: Brokerage) -> None:
    me, other = funded(broker, "ME"), funded(broker, "OTHER")
    broker.grant_shares(me, "BOOK", 10, "90")
    resting = broker.place_order(me, "BOOK", "sell", 5, "limit", "100")

    mine = broker.place_order(me, "BOOK", "buy", 5, "limit", "101")

    assert mine.status is OrderStatus.CANCELLED
    assert mine.cancel_reason is CancelReason.SELF_TRADE
    assert mine.self_trade_prevention == "cancel_newest"
    assert broker.get_order(resting.order_id).status is OrderStatus.PENDING
    assert broker.balance(me).reserved == Decimal("0.00")
    theirs = broker.place_order(other, "BOOK", "buy", 5, "limit", "101")
    assert theirs.status is OrderStatus.EXECUTED


def test_per_account_and_per_order_self_trade_prevention(broker: Brokerage) -> None:
    me = funded(broker, "ME")
    broker.grant_shares(me, "BOOK", 20, "90")
    assert broker.set_self_trade_prevention(me, "Cancel_Oldest") == "cancel_oldest"
    old = broker.place_order(me, "BOOK", "sell", 5, "limit", "100")

    mine = broker.place_order(me, "BOOK", "buy", 5, "limit", "100")  # the account's mode

    assert broker.get_order(old.order_id).cancel_reason is CancelReason.SELF_TRADE
    assert mine.status is OrderStatus.PENDING  # went on, found nothing else, rests
    allowed = broker.place_order(
        me, "BOOK", "sell", 5, "limit", "100", self_trade_prevention="allow"
    )
    assert allowed.status is OrderStatus.EXECUTED
    assert broker.portfolio(me).holdings[0].quantity == 20  # bought from itself
    bid = broker.place_order(me, "BOOK", "buy", 1, "limit", "98")
    both = broker.place_order(
        me, "BOOK", "sell", 1, "limit", "98", self_trade_prevention="cancel_both"
    )
    assert both.cancel_reason is CancelReason.SELF_TRADE
    assert broker.get_order(bid.order_id).cancel_reason is CancelReason.SELF_TRADE
    with pytest.raises(ValidationError) as error:
        broker.set_self_trade_prevention(me, "cancel_all")
    assert error.value.field == "self_trade_prevention"


def test_threads_crossing_their_own_orders_never_self_trade_and_conserve_everything(
    broker: Brokerage,
) -> None:
    accounts = [funded(broker, f"U{n}") for n in range(3)]
    for account in accounts:
        broker.grant_shares(account, "BOOK", 500, "100")
    modes = ["cancel_newest", "cancel_oldest", "cancel_both"]

    def trade(n: int) -> None:
        rng = random.Random(n)
        for _ in range(80):
            broker.place_order(
                rng.choice(accounts),
                "BOOK",
                rng.choice(["buy", "sell"]),
                rng.randint(1, 5),
                "limit",
                f"{100 + rng.randint(-3, 3) / 10:.2f}",
                rng.choice(["gtc", "ioc"]),
                self_trade_prevention=rng.choice(modes),
            )

    run_together(trade, threads=6)
    for account in accounts:
        trades = broker.transactions(account)
        bought = {t.trade_id for t in trades if t.kind == "buy"}
        sold = {t.trade_id for t in trades if t.kind == "sell"}
        assert not bought & sold, f"{account} traded with itself"
        for order in broker.orders(account, status=["pending", "partially_filled"]):
            broker.cancel_order(order.order_id)
    report = broker.audit()
    assert report.reserved_cash == 0
    assert report.shares["BOOK"] == 1_500


# -- replace ------------------------------------------------------------------------------------


def test_a_replace_down_keeps_priority_and_moves_the_reservation(broker: Brokerage) -> None:
    me, other, seller = (funded(broker, u) for u in ("ME", "OTHER", "SELLER"))
    broker.grant_shares(seller, "BOOK", 10, "90")
    mine = broker.place_order(me, "BOOK", "buy", 10, "limit", "99")
    broker.place_order(other, "BOOK", "buy", 10, "limit", "99")

    new = broker.replace_order(mine.order_id, 4)

    assert (new.quantity, new.status, new.replaces) == (4, OrderStatus.PENDING, mine.order_id)
    old = broker.get_order(mine.order_id)
    assert (old.status, old.replaced_by) == (OrderStatus.REPLACED, new.order_id)
    assert broker.balance(me).reserved == Decimal("396.00")
    broker.place_order(seller, "BOOK", "sell", 4, "market")
    assert broker.get_order(new.order_id).status is OrderStatus.EXECUTED  # still first in line
    with pytest.raises(OrderNotReplaceableError):
        broker.replace_order(mine.order_id, 3)


def test_a_replace_the_account_cannot_afford_is_refused_and_the_old_order_stays(
    broker: Brokerage,
) -> None:
    me = funded(broker, "ME", cash="1000")
    mine = broker.place_order(me, "BOOK", "buy", 9, "limit", "100")

    refused = broker.replace_order(mine.order_id, limit_price="120")  # 9 x 120 > 1,000

    assert refused.status is OrderStatus.REJECTED
    assert refused.reject_reason is RejectReason.INSUFFICIENT_FUNDS
    assert broker.get_order(mine.order_id).status is OrderStatus.PENDING
    assert broker.balance(me).reserved == Decimal("900.00")
    assert [o.order_id for o in broker.orders(me)] == [mine.order_id]
    moved = broker.replace_order(mine.order_id, limit_price="110", time_in_force="day")
    assert (moved.limit_price, moved.time_in_force) == (Decimal("110.00"), "day")
    assert broker.balance(me).reserved == Decimal("990.00")


def test_a_replaced_quantity_counts_what_the_old_order_filled(broker: Brokerage) -> None:
    me, seller = funded(broker, "ME"), funded(broker, "SELLER")
    broker.grant_shares(seller, "BOOK", 10, "90")
    mine = broker.place_order(me, "BOOK", "buy", 10, "limit", "99")
    broker.place_order(seller, "BOOK", "sell", 4, "market")

    new = broker.replace_order(mine.order_id, 6, "98")

    assert new.quantity == 2  # 6 in all, 4 of them filled by the old order
    assert broker.get_order(mine.order_id).filled_quantity == 4
    broker.place_order(seller, "BOOK", "sell", 1, "limit", "98")  # 1 of the new 2 fills
    with pytest.raises(ValidationError) as error:
        broker.replace_order(new.order_id, 1)  # no more than it has filled
    assert error.value.field == "quantity"
    assert broker.get_order(new.order_id).status is OrderStatus.PARTIALLY_FILLED


def test_bad_replaces_are_refused_naming_the_field(broker: Brokerage) -> None:
    me = funded(broker, "ME")
    broker.grant_shares(me, "AAPL", 5, "100")
    limit_order = broker.place_order(me, "BOOK", "buy", 1, "limit", "50")
    stop = broker.place_order(me, "AAPL", "sell", 5, "stop", stop_price="100")
    for order_id, terms, field in (
        (limit_order.order_id, {}, "quantity"),
        (limit_order.order_id, {"stop_price": "40"}, "stop_price"),
        (stop.order_id, {"limit_price": "90"}, "limit_price"),
        (stop.order_id, {"time_in_force": "ioc"}, "time_in_force"),
        (stop.order_id, {"trail_price": "1", "trail_percent": "1"}, "trail_price"),
    ):
        with pytest.raises(ValidationError) as error:
            broker.replace_order(order_id, **terms)
        assert error.value.field == field
    moved = broker.replace_order(stop.order_id, stop_price="120")  # a sell stop under 150: waits
    assert moved.replaces == stop.order_id


def test_replaces_racing_fills_and_cancels_lose_and_double_nothing(broker: Brokerage) -> None:
    """Threads replace, cancel and trade against the same resting orders in both modes while
    the feed moves prices; then the audit: cash and shares conserved, no reservation leaked,
    every order final or resting, and no order over its quantity."""
    accounts = [funded(broker, f"U{n}") for n in range(4)]
    for account in accounts:
        broker.grant_shares(account, "BOOK", 300, "100")
        broker.grant_shares(account, "AAPL", 300, "150")
    shared: list[str] = []
    lock = threading.Lock()

    def trade(n: int) -> None:
        rng = random.Random(n)
        for _ in range(70):
            account = rng.choice(accounts)
            symbol = rng.choice(["BOOK", "AAPL"])
            base = 100 if symbol == "BOOK" else 150
            roll = rng.random()
            if roll < 0.35 and shared:
                with lock:
                    order_id = rng.choice(shared)
                try:
                    new = broker.replace_order(
                        order_id,
                        rng.randint(1, 8),
                        f"{base + rng.randint(-5, 5) / 10:.2f}",
                    )
                except (OrderNotReplaceableError, ValidationError):
                    continue  # finished, or filled past the new total, meanwhile
                if not new.status.is_final:
                    with lock:
                        shared.append(new.order_id)
            elif roll < 0.45 and shared:
                with lock:
                    order_id = rng.choice(shared)
                with contextlib.suppress(OrderNotCancellableError):
                    broker.cancel_order(order_id)
            elif roll < 0.55:
                broker.update_price("AAPL", f"{base + rng.uniform(-1, 1):.2f}")
            else:
                order = broker.place_order(
                    account,
                    symbol,
                    rng.choice(["buy", "sell"]),
                    rng.randint(1, 6),
                    "limit",
                    f"{base + rng.randint(-5, 5) / 10:.2f}",
                )
                if not order.status.is_final:
                    with lock:
                        shared.append(order.order_id)

    run_together(trade, threads=6)
    report = broker.audit()
    assert report.open_orders == report.resting_orders
    assert broker.metrics().counters.get("orders_replaced", 0) > 0
    assert report.shares["BOOK"] == 1_200  # in a book, shares only change hands
    for account in accounts:
        for order in broker.orders(account):
            assert order.filled_quantity <= order.quantity
            if order.status is OrderStatus.REPLACED:
                assert order.replaced_by is not None


def test_a_replace_whose_trades_trigger_a_stop_that_trades_with_the_new_order(
    broker: Brokerage,
) -> None:
    """The new order's account hears of it before the news of the stops its trades triggered,
    which name it when they trade with its rest."""
    replacer, seller, stopper = (funded(broker, user) for user in ("R", "M", "S"))
    broker.grant_shares(seller, "BOOK", 2, "100")
    broker.grant_shares(stopper, "BOOK", 5, "100")
    broker.place_order(seller, "BOOK", "sell", 2, "limit", "99")
    stop = broker.place_order(stopper, "BOOK", "sell", 5, "stop", stop_price="99")
    old = broker.place_order(replacer, "BOOK", "buy", 10, "limit", "98")

    new = broker.replace_order(old.order_id, 10, "99")  # buys 2 at 99: the stop sells into it

    new = broker.get_order(new.order_id)
    assert (new.status, new.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 7)
    assert broker.get_order(stop.order_id).status is OrderStatus.EXECUTED
    assert broker.balance(replacer).reserved == Decimal("297.00")  # 3 x 99.00 left
