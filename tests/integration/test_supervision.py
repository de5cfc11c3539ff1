"""Fault injection: a symbol actor stopped or failing mid-load. Whatever happens to it, every
order is answered, nothing stays reserved that no open order holds, cash and shares are
conserved, and `audit()` and the listing calls keep working and report the failure."""

from __future__ import annotations

import contextlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from actors.symbol import SymbolActor
from engine import CancelReason, OrderStatus, SymbolHaltedError
from engine.errors import OrderNotCancellableError
from gateway import Brokerage

THREADS = 8
ORDERS_PER_THREAD = 150
TRADERS = 8


class Crash(BaseException):
    """A failure that escapes every handler's own containment (as a bug below it would)."""


def symbol_ref(broker: Brokerage, symbol: str) -> Any:
    gateway: Any = broker._gateway
    return gateway._actor_weakref().symbols[symbol]


def symbol_actor(broker: Brokerage, symbol: str) -> SymbolActor:
    actor: SymbolActor = symbol_ref(broker, symbol)._actor_weakref()
    return actor


def open_traders(broker: Brokerage) -> list[str]:
    accounts: list[str] = []
    for n in range(TRADERS):
        account = broker.open_account(f"U{n}", f"Trader {n}", initial_deposit="100000").account_id
        broker.grant_shares(account, "BOOK", 1_000, "100")
        accounts.append(account)
    return accounts


def trade(broker: Brokerage, accounts: list[str], seed: int, fault: threading.Event) -> list[Any]:
    """Limit orders on both sides and some cancels; set `fault` halfway."""
    rng = random.Random(seed)
    answered = []
    for n in range(ORDERS_PER_THREAD):
        if seed == 0 and n == ORDERS_PER_THREAD // 2:
            fault.set()
        account = rng.choice(accounts)
        side = rng.choice(["buy", "sell"])
        price = str(rng.randint(95, 105))
        order = broker.place_order(account, "BOOK", side, rng.randint(1, 20), "limit", price)
        answered.append(order)
        if order.status is OrderStatus.PENDING and rng.random() < 0.3:
            with contextlib.suppress(OrderNotCancellableError):  # filled meanwhile
                answered.append(broker.cancel_order(order.order_id))
    return answered


def conserved(broker: Brokerage, accounts: list[str]) -> None:
    """Cash and shares to the cent and the share: what was deposited and granted is all here."""
    report = broker.audit()
    assert report.cash == Decimal("100000.00") * TRADERS
    assert report.shares["BOOK"] == 1_000 * TRADERS
    for account in accounts:
        balance = broker.balance(account)
        assert balance.cash >= 0
        assert balance.available >= 0
    open_orders = sum(
        len(broker.orders(a, status=["pending", "partially_filled"])) for a in accounts
    )
    assert report.open_orders == report.resting_orders == open_orders


@pytest.mark.parametrize("runtime", ["mn", "threads"])
def test_a_symbol_actor_stopped_mid_load_restarts_from_its_state_and_loses_nothing(
    runtime: str,
) -> None:
    with Brokerage(runtime=runtime) as broker:
        broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        accounts = open_traders(broker)
        fault = threading.Event()

        def stopper() -> None:
            fault.wait(30)
            for _ in range(3):
                symbol_ref(broker, "BOOK").stop()  # as `ActorRegistry.stop_all()` would

        killer = threading.Thread(target=stopper)
        killer.start()
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(lambda s: trade(broker, accounts, s, fault), range(THREADS)))
        killer.join()

        assert all(o.status in set(OrderStatus) for batch in results for o in batch)
        conserved(broker, accounts)
        report = broker.audit()
        assert report.failures == ["BOOK: restarted after a stop outside close"] * 3
        assert [q.symbol for q in broker.stocks()] == ["BOOK"]
        assert broker.metrics().counters["actors_restarted"] == 3
        for account in accounts:  # everything still open cancels and frees its reservation
            for order in broker.orders(account, status=["pending", "partially_filled"]):
                broker.cancel_order(order.order_id)
        assert broker.audit().reserved_cash == 0
        assert sum(broker.audit().reserved_shares.values()) == 0


def test_a_failure_while_matching_halts_the_symbol_and_releases_every_reservation() -> None:
    with Brokerage() as broker:
        broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        broker.list_stock("SAFE", "Safe Co.", "50.00")
        accounts = open_traders(broker)
        fault = threading.Event()
        actor = symbol_actor(broker, "BOOK")
        submit = actor.market.submit

        def failing_submit(*args: Any) -> Any:
            if fault.is_set():
                fault.clear()
                raise Crash("the matcher broke")
            return submit(*args)

        actor.market.submit = failing_submit  # type: ignore[method-assign,assignment]
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(lambda s: trade(broker, accounts, s, fault), range(THREADS)))
        orders = [o for batch in results for o in batch]

        halted = [o for o in orders if o.cancel_reason is CancelReason.HALTED]
        assert halted  # the order being matched, and every one after it
        assert all(
            o.status in (OrderStatus.CANCELLED, OrderStatus.PARTIALLY_FILLED) for o in halted
        )
        report = broker.audit()
        assert report.failures == ["BOOK: halted after Crash in SubmitOrder"]
        assert report.reserved_cash == 0  # nothing rests on a halted book
        assert sum(report.reserved_shares.values()) == 0
        conserved(broker, accounts)
        quotes = {str(q.symbol): q for q in broker.stocks()}
        assert quotes["BOOK"].halted
        assert not quotes["SAFE"].halted
        late = broker.place_order(accounts[0], "BOOK", "buy", 1, "limit", "100")
        assert (late.status, late.cancel_reason) == (OrderStatus.CANCELLED, CancelReason.HALTED)
        with pytest.raises(SymbolHaltedError, match="BOOK"):
            broker.update_price("BOOK", "101")
        assert broker.place_order(accounts[0], "SAFE", "buy", 1).status is OrderStatus.EXECUTED
        assert broker.metrics().counters["symbols_halted"] == 1
        assert broker.audit().reserved_cash == 0


def test_a_failure_while_reading_restarts_the_symbol_and_answers_the_read_with_the_error() -> None:
    with Brokerage() as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        actor = symbol_actor(broker, "AAPL")
        quote = actor.market.quote
        calls = iter([Crash("a bug"), None])

        def failing_quote() -> Any:
            error = next(calls, None)
            if error is not None:
                raise error
            return quote()

        actor.market.quote = failing_quote  # type: ignore[method-assign]
        with pytest.raises(Crash):
            broker.quote("AAPL")

        assert broker.quote("AAPL").last_price == Decimal("150.00")
        assert broker.audit().failures == ["AAPL: restarted after Crash in GetQuote"]


def test_a_failure_during_a_price_move_halts_the_symbol_and_the_move_is_answered() -> None:
    with Brokerage() as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        account = broker.open_account("U1", "One", initial_deposit="10000").account_id
        resting = broker.place_order(account, "AAPL", "buy", 10, "limit", "140.00")
        actor = symbol_actor(broker, "AAPL")

        def failing_update(*args: Any) -> Any:
            raise Crash("the price path broke")

        actor.market.update_price = failing_update  # type: ignore[method-assign,assignment]
        with pytest.raises(SymbolHaltedError):
            broker.update_price("AAPL", "139.00")

        cancelled = broker.get_order(resting.order_id)
        assert (cancelled.status, cancelled.cancel_reason) == (
            OrderStatus.CANCELLED,
            CancelReason.HALTED,
        )
        assert broker.balance(account).reserved == 0
        assert broker.audit().failures == ["AAPL: halted after Crash in UpdatePrice"]
