"""Many threads at once on one account and one symbol: nothing overdrawn, oversold or leaked,
and cash and shares conserved to the cent."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from engine import (
    DuplicateError,
    InsufficientAvailableCashError,
    OrderNotCancellableError,
    OrderSnapshot,
    OrderStatus,
)
from gateway import Brokerage

THREADS = 16


def run_together(work: Callable[[int], None], threads: int = THREADS) -> None:
    """Run `work(n)` in `threads` threads released at the same moment; re-raise any error."""
    start = threading.Barrier(threads)

    def task(n: int) -> None:
        start.wait()
        work(n)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(task, n) for n in range(threads)]:
            future.result()


def cancel_everything_open(broker: Brokerage, accounts: Sequence[str]) -> None:
    for account in accounts:
        for order in broker.orders(account, status=["pending", "partially_filled"]):
            with contextlib.suppress(OrderNotCancellableError):
                broker.cancel_order(order.order_id)


def cash_from_orders(orders: list[OrderSnapshot]) -> Decimal:
    return sum(
        (o.filled_amount if o.side == "sell" else -o.filled_amount for o in orders), Decimal(0)
    )


def test_concurrent_withdrawals_never_overdraw(broker: Brokerage) -> None:
    account = broker.open_account("U1", "One", initial_deposit="1000").account_id
    succeeded = []

    def withdraw_ten_times(n: int) -> None:
        for _ in range(10):
            try:
                broker.withdraw(account, "10.00")
                succeeded.append(n)
            except InsufficientAvailableCashError:
                pass

    run_together(withdraw_ten_times)

    assert len(succeeded) == 100  # 1,600 asked for, exactly 1,000 available
    assert broker.balance(account).cash == Decimal("0.00")


def assert_balances_sound(broker: Brokerage, accounts: Sequence[str]) -> None:
    for account in accounts:
        balance = broker.balance(account)
        assert balance.cash >= 0, balance
        assert 0 <= balance.reserved <= balance.cash, balance


def test_many_threads_on_one_account_in_market_mode(broker: Brokerage) -> None:
    account = broker.open_account("U1", "One", initial_deposit="8000").account_id
    moved = {"deposits": Decimal(0), "withdrawals": Decimal(0), "granted": Decimal(0)}
    lock = threading.Lock()  # guards the test's own tally, not the engine

    def trade(n: int) -> None:
        rng = random.Random(n)
        mine: list[str] = []
        for _ in range(60):
            action = rng.random()
            if n == 0:  # one thread is the price feed
                broker.update_price("AAPL", f"{rng.randint(14000, 16000) / 100:.2f}")
            elif n == 1:  # one thread watches the balance while the others trade
                assert_balances_sound(broker, [account])
            elif action < 0.3:
                order = broker.place_order(
                    account, "AAPL", rng.choice(["buy", "sell"]), rng.randint(1, 20)
                )
                mine.append(order.order_id)
            elif action < 0.6:
                order = broker.place_order(
                    account,
                    "AAPL",
                    rng.choice(["buy", "sell"]),
                    rng.randint(1, 20),
                    "limit",
                    f"{rng.randint(14000, 16000) / 100:.2f}",
                )
                mine.append(order.order_id)
            elif action < 0.8 and mine:
                with contextlib.suppress(OrderNotCancellableError):
                    broker.cancel_order(rng.choice(mine))
            elif action < 0.9:
                try:
                    broker.withdraw(account, "150")
                    with lock:
                        moved["withdrawals"] += Decimal(150)
                except InsufficientAvailableCashError:
                    pass
            elif action < 0.95:
                broker.deposit(account, "100")
                with lock:
                    moved["deposits"] += Decimal(100)
            else:
                broker.grant_shares(account, "AAPL", 3, "120")
                with lock:
                    moved["granted"] += 3

    run_together(trade)
    cancel_everything_open(broker, [account])

    report = broker.audit()
    balance = broker.balance(account)
    orders = broker.orders(account)
    assert balance.cash >= 0
    assert balance.reserved == Decimal("0.00")
    assert report.reserved_shares == {"AAPL": 0, "BOOK": 0}
    assert balance.cash == (
        Decimal(8000) + moved["deposits"] - moved["withdrawals"] + cash_from_orders(orders)
    )
    bought = sum(o.filled_quantity for o in orders if o.side == "buy")
    sold = sum(o.filled_quantity for o in orders if o.side == "sell")
    assert report.shares["AAPL"] == moved["granted"] + bought - sold >= 0
    assert all(o.status.is_final for o in orders)


@pytest.mark.parametrize("seed", [1, 2])
def test_many_threads_on_one_book_symbol_conserve_cash_and_shares(
    broker: Brokerage, seed: int
) -> None:
    accounts = [
        broker.open_account(f"U{n}", f"user {n}", initial_deposit="3000").account_id
        for n in range(12)
    ]
    for account in accounts:
        broker.grant_shares(account, "BOOK", 50, "100")
    withdrawn: list[Decimal] = []

    def trade(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        placed: list[str] = []
        for _ in range(80):
            if n == 0:  # one thread watches the balances while the others trade
                assert_balances_sound(broker, accounts)
                continue
            account = rng.choice(accounts)
            action = rng.random()
            side = rng.choice(["buy", "sell"])
            if action < 0.55:
                price = f"{rng.randint(95, 105)}.{rng.randint(0, 99):02d}"
                tif = rng.choice(["gtc", "gtc", "ioc", "fok"])
                order = broker.place_order(
                    account, "BOOK", side, rng.randint(1, 15), "limit", price, time_in_force=tif
                )
                placed.append(order.order_id)
            elif action < 0.7:
                broker.place_order(account, "BOOK", side, rng.randint(1, 10))
            elif action < 0.95 and placed:
                with contextlib.suppress(OrderNotCancellableError):
                    broker.cancel_order(placed.pop(rng.randrange(len(placed))))
            else:
                try:
                    broker.withdraw(account, "75.25")
                    withdrawn.append(Decimal("75.25"))
                except InsufficientAvailableCashError:
                    pass

    run_together(trade, threads=8)
    cancel_everything_open(broker, accounts)

    report = broker.audit()  # also checks bought == sold, paid == received per book symbol
    assert report.cash == Decimal(3000 * 12) - sum(withdrawn, Decimal(0))
    assert report.shares["BOOK"] == 50 * 12
    assert report.reserved_cash == Decimal("0.00")
    assert report.resting_orders == report.open_orders == 0
    assert broker.quote("BOOK").volume > 0
    for account in accounts:
        balance = broker.balance(account)
        assert balance.cash >= 0
        assert balance.reserved == Decimal("0.00")
        for holding in broker.portfolio(account).holdings:
            assert holding.quantity >= 0
            assert holding.reserved == 0


def test_cancel_racing_a_fill_settles_exactly_once(broker: Brokerage) -> None:
    seller = broker.open_account("S", "Seller").account_id
    buyer = broker.open_account("B", "Buyer", initial_deposit="1000000").account_id
    broker.grant_shares(seller, "BOOK", 10_000, "90")
    outcomes: list[str] = []

    for _ in range(40):
        resting = broker.place_order(seller, "BOOK", "sell", 10, "limit", "100")

        def race(n: int, order_id: str = resting.order_id) -> None:
            if n == 0:
                try:
                    broker.cancel_order(order_id)
                    outcomes.append("cancelled")
                except OrderNotCancellableError:
                    outcomes.append("too late")
            else:
                broker.place_order(buyer, "BOOK", "buy", 5, "limit", "100", time_in_force="ioc")

        run_together(race, threads=3)
        final = broker.get_order(resting.order_id)
        assert final.status in (OrderStatus.CANCELLED, OrderStatus.EXECUTED)

    report = broker.audit()
    assert report.shares["BOOK"] == 10_000
    assert report.reserved_cash == Decimal("0.00")
    assert len(outcomes) == 40


def test_refused_orders_not_kept_leave_no_trace_while_many_threads_trade(broker: Brokerage) -> None:
    """Orders placed as `/v2` places them (`keep_refused=False`) from many threads on one book:
    the ones the pre-trade check refuses are in no history, nothing is reserved for them, and
    cash and shares are conserved."""
    broker.list_stock("BK", "Book", "100", mode="book")
    accounts = [
        broker.open_account(f"U{n}", f"User {n}", initial_deposit="2000").account_id
        for n in range(4)
    ]
    for account in accounts:
        broker.grant_shares(account, "BK", 30, "100")
    answered: list[OrderSnapshot] = []

    def trade(n: int) -> None:
        rng = random.Random(n)
        for _ in range(40):
            account = rng.choice(accounts)
            side = rng.choice(["buy", "sell"])
            quantity = rng.randint(1, 25)  # often more than the account can afford or holds
            price = str(rng.randint(95, 105))
            answered.append(
                broker.place_order(
                    account, "BK", side, quantity, "limit", price, keep_refused=False
                )
            )

    run_together(trade)
    cancel_everything_open(broker, accounts)

    refused = {o.order_id for o in answered if o.status is OrderStatus.REJECTED}
    assert refused  # the mix does get refusals
    kept = {o.order_id for account in accounts for o in broker.orders(account)}
    assert kept == {o.order_id for o in answered} - refused
    report = broker.audit()
    assert report.cash == Decimal("8000.00")
    assert report.shares["BK"] == 120
    assert report.reserved_cash == 0
    assert report.reserved_shares["BK"] == 0


def test_one_client_order_id_gives_one_order_whatever_the_threads(broker: Brokerage) -> None:
    """Many threads place orders under a few client order ids at once, some refused and not kept
    (which frees the id): per account and id at most one kept order holds it, every duplicate is
    refused with DuplicateError and changes nothing, and cash and shares are conserved."""
    accounts = [
        broker.open_account(f"U{n}", f"User {n}", initial_deposit="3000").account_id
        for n in range(2)
    ]
    for account in accounts:
        broker.grant_shares(account, "BOOK", 40, "100")
    placed: list[OrderSnapshot] = []
    duplicates: list[str] = []

    def trade(n: int) -> None:
        rng = random.Random(n)
        for _ in range(30):
            account = rng.choice(accounts)
            client_id = f"bot-{rng.randint(0, 11)}"
            side = rng.choice(["buy", "sell"])
            quantity = rng.randint(1, 40)  # sometimes more than the account can afford
            try:
                placed.append(
                    broker.place_order(
                        account,
                        "BOOK",
                        side,
                        quantity,
                        "limit",
                        str(rng.randint(97, 103)),
                        client_order_id=client_id,
                        keep_refused=False,
                    )
                )
            except DuplicateError:
                duplicates.append(client_id)

    run_together(trade)
    assert duplicates  # the ids do collide
    for account in accounts:
        kept = broker.orders(account)
        client_ids = [o.client_order_id for o in kept]
        assert len(client_ids) == len(set(client_ids)), client_ids
        for order in kept:
            assert order.client_order_id is not None
            found = broker.order_by_client_id(account, order.client_order_id)
            assert found.order_id == order.order_id
    cancel_everything_open(broker, accounts)
    report = broker.audit()
    assert report.cash == Decimal("6000.00")
    assert report.shares["BOOK"] == 80
    assert report.reserved_cash == 0
    assert report.reserved_shares["BOOK"] == 0
