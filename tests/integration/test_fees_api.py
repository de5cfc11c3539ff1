"""A brokerage with a fee schedule: every fill pays its order's fees as `fee` transactions, out
of cash held when the order was accepted, from many threads at once and across a restart; cash
+ fees paid is what came in, to the cent."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import OrderNotCancellableError, OrderNotReplaceableError, ValidationError
from engine.errors import InsufficientAvailableCashError
from engine.fees import FeeSchedule
from gateway import Brokerage
from tests.integration.test_concurrency import (
    assert_balances_sound,
    cancel_everything_open,
    run_together,
)

SCHEDULE = (
    "per_order=0.25,per_share=0.005,percent=0.05,minimum=1,maximum=20,"
    "sec_per_million=27.80,taf_per_share=0.000166,taf_max=8.30"
)
FEES = FeeSchedule.parse_text(SCHEDULE)


@pytest.fixture(params=["mn", "threads"])
def broker(request: pytest.FixtureRequest) -> Iterator[Brokerage]:
    with Brokerage(timeout=20, runtime=request.param, fees=SCHEDULE) as b:
        b.list_stock("AAPL", "Apple Inc.", "150.00")
        b.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        yield b
        b.audit()


def cents(amount: Decimal) -> int:
    return int(amount * 100)


def assert_each_order_paid_its_fees(broker: Brokerage, accounts: Sequence[str]) -> Decimal:
    """Every order's fee transactions add up to its schedule's fees for what it filled;
    return the fees paid in all."""
    total = Decimal(0)
    for account in accounts:
        paid: dict[str, Decimal] = {}
        for fee in broker.transactions(account, kind="fee"):
            assert fee.order_id is not None
            paid[fee.order_id] = paid.get(fee.order_id, Decimal(0)) + fee.amount
        for order in broker.orders(account):
            side = order.side
            expected = FEES.charged(side, order.filled_quantity, cents(order.filled_amount))
            assert cents(paid.pop(order.order_id, Decimal(0))) == expected, order
        assert not paid  # no fee without its order
        portfolio = broker.portfolio(account)
        spent = sum((t.amount for t in broker.transactions(account, kind="fee")), Decimal(0))
        assert portfolio.fees == spent
        total += spent
    return total


def test_fills_pay_fees_into_cost_and_out_of_realized_pl(broker: Brokerage) -> None:
    seller = broker.open_account("S", "Seller", initial_deposit="0").account_id
    buyer = broker.open_account("B", "Buyer", initial_deposit="10000").account_id
    broker.grant_shares(seller, "BOOK", 50, "90")
    resting = broker.place_order(seller, "BOOK", "sell", 50, "limit", "100")
    assert broker.balance(seller).reserved == 0  # its limit covers its fees
    filled = broker.place_order(buyer, "BOOK", "buy", 30, "limit", "101")
    assert filled.filled_quantity == 30

    # buyer: $0.25 + 30 * $0.005 + 0.05 % of $3,000 = $1.90; seller: the same + SEC + TAF
    buy_fee = Decimal("1.90")
    sell_fee = buy_fee + Decimal("0.09") + Decimal("0.01")
    [fee] = broker.transactions(buyer, kind="fee")
    assert (fee.amount, fee.order_id, fee.symbol, fee.side) == (
        buy_fee,
        filled.order_id,
        "BOOK",
        "buy",
    )
    assert broker.balance(buyer).cash == Decimal(7000) - buy_fee
    [holding] = broker.portfolio(buyer).holdings
    assert holding.cost_basis == Decimal(3000) + buy_fee
    seller_view = broker.portfolio(seller)
    assert seller_view.realized_pl == Decimal(300) - sell_fee
    assert seller_view.fees == sell_fee
    broker.cancel_order(resting.order_id)
    report = broker.audit()
    assert report.fees == buy_fee + sell_fee
    assert report.cash == Decimal(10000) - report.fees
    assert_each_order_paid_its_fees(broker, [seller, buyer])


def test_an_order_short_of_cash_for_its_fees_is_refused_with_the_reason(
    broker: Brokerage,
) -> None:
    account = broker.open_account("U", "U", initial_deposit="1000").account_id
    refused = broker.place_order(account, "BOOK", "buy", 10, "limit", "100")
    assert refused.status == "rejected"
    assert refused.reject_reason == "insufficient_funds"
    assert broker.balance(account).reserved == 0
    placed = broker.place_order(account, "BOOK", "buy", 9, "limit", "100")
    assert placed.status == "pending"
    assert broker.balance(account).reserved == Decimal(900) + Decimal("1.00")


@pytest.mark.parametrize("seed", [1, 2])
def test_many_threads_trading_with_fees_conserve_cash_and_shares(
    broker: Brokerage, seed: int
) -> None:
    accounts = [
        broker.open_account(f"U{n}", f"user {n}", initial_deposit="3000").account_id
        for n in range(10)
    ]
    for account in accounts:
        broker.grant_shares(account, "BOOK", 50, "100")
        broker.grant_shares(account, "AAPL", 10, "150")
    withdrawn: list[Decimal] = []

    def trade(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        placed: list[str] = []
        for _ in range(60):
            if n == 0:  # one thread watches the balances while the others trade
                assert_balances_sound(broker, accounts)
                continue
            account = rng.choice(accounts)
            action = rng.random()
            side = rng.choice(["buy", "sell"])
            if action < 0.45:
                price = f"{rng.randint(95, 105)}.{rng.randint(0, 99):02d}"
                tif = rng.choice(["gtc", "gtc", "ioc", "fok"])
                order = broker.place_order(
                    account, "BOOK", side, rng.randint(1, 15), "limit", price, time_in_force=tif
                )
                placed.append(order.order_id)
            elif action < 0.6:
                symbol = rng.choice(["BOOK", "AAPL"])
                broker.place_order(account, symbol, side, rng.randint(1, 10))
            elif action < 0.75 and placed:
                with contextlib.suppress(OrderNotReplaceableError, ValidationError):
                    price = f"{rng.randint(95, 105)}.{rng.randint(0, 99):02d}"
                    broker.replace_order(rng.choice(placed), rng.randint(5, 20), price)
            elif action < 0.95 and placed:
                with contextlib.suppress(OrderNotCancellableError):
                    broker.cancel_order(placed.pop(rng.randrange(len(placed))))
            else:
                try:
                    broker.withdraw(account, "75.25")
                    withdrawn.append(Decimal("75.25"))
                except InsufficientAvailableCashError:
                    pass

    run_together(trade, threads=6)
    cancel_everything_open(broker, accounts)

    report = broker.audit()  # each account reconciled with its ledger, fees included
    fees = assert_each_order_paid_its_fees(broker, accounts)
    assert fees == report.fees > 0
    # AAPL trades at the feed's price: what the accounts paid and received for it there
    aapl = sum(
        (
            t.amount if t.kind == "sell" else -t.amount
            for account in accounts
            for t in broker.transactions(account, kind=["buy", "sell"], symbol="AAPL")
        ),
        Decimal(0),
    )
    assert report.cash == Decimal(3000 * 10) - sum(withdrawn, Decimal(0)) - fees + aapl
    assert report.shares["BOOK"] == 50 * 10
    assert report.reserved_cash == Decimal("0.00")
    assert report.resting_orders == report.open_orders == 0


commands = st.lists(
    st.tuples(
        st.sampled_from(["limit", "market", "bracket", "replace", "cancel", "withdraw", "reset"]),
        st.integers(0, 2),  # account
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 40),  # quantity
        st.integers(-300, 300),  # price offset in cents
    ),
    min_size=1,
    max_size=40,
)
schedules = st.sampled_from(
    [
        SCHEDULE,
        "per_order=5",
        "percent=10,sec_per_million=100000",
        "per_share=1,minimum=100,maximum=100,taf_per_share=1,taf_max=1000",
    ]
)


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, steps=commands, cash=st.integers(0, 20_000))
def test_random_trading_with_fees_and_resets_keeps_cash_plus_fees_conserved(
    schedule: str, steps: list[tuple[str, int, str, int, int]], cash: int
) -> None:
    fees = FeeSchedule.parse_text(schedule)
    with Brokerage(timeout=20, fees=fees) as broker:
        broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        accounts = [
            broker.open_account(f"U{n}", f"user {n}", initial_deposit=str(cash)).account_id
            for n in range(3)
        ]
        for account in accounts:
            broker.grant_shares(account, "BOOK", 30, "100")
        placed: list[str] = []
        withdrawn = Decimal(0)
        for action, who, side, quantity, offset in steps:
            account = accounts[who]
            price = str(Decimal(10_000 + offset).scaleb(-2))
            if action == "limit":
                placed.append(
                    broker.place_order(account, "BOOK", side, quantity, "limit", price).order_id
                )
            elif action == "market":
                broker.place_order(account, "BOOK", side, quantity)
            elif action == "bracket":
                far = Decimal(20) if side == "buy" else Decimal(-20)
                order = broker.place_order(
                    account,
                    "BOOK",
                    side,
                    quantity,
                    "limit",
                    price,
                    order_class="bracket",
                    take_profit={"limit_price": str(Decimal(price) + far)},
                    stop_loss={"stop_price": str(Decimal(price) - far)},
                )
                placed.append(order.order_id)
            elif action == "replace" and placed:
                with contextlib.suppress(OrderNotReplaceableError, ValidationError):
                    broker.replace_order(placed[quantity % len(placed)], quantity + 5, price)
            elif action == "cancel" and placed:
                with contextlib.suppress(OrderNotCancellableError):
                    broker.cancel_order(placed[quantity % len(placed)])
            elif action == "reset":
                broker.reset_account(account, str(quantity * 100))
            elif action == "withdraw":
                amount = Decimal(quantity * 10)
                with contextlib.suppress(InsufficientAvailableCashError):
                    broker.withdraw(account, amount)
                    withdrawn += amount
            report = broker.audit()  # every account's invariants, the fee holds' included
            for balance in map(broker.balance, accounts):
                assert 0 <= balance.reserved <= balance.cash
        while any(broker.orders(a, status=["pending", "partially_filled"]) for a in accounts):
            cancel_everything_open(broker, accounts)  # an entry's legs begin to work as it ends
        report = broker.audit()
        paid = Decimal(0)
        for account in accounts:
            paid += sum((t.amount for t in broker.transactions(account, kind="fee")), Decimal(0))
        assert report.fees == paid
        assert report.cash == report.deposited - report.withdrawn - paid
        removed = sum(
            t.quantity or 0 for a in accounts for t in broker.transactions(a, kind="removal")
        )
        assert report.shares["BOOK"] == 90 - removed
        assert report.reserved_cash == 0


def test_the_schedule_is_journaled_and_a_new_one_applies_from_the_restart(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path}/fees.db"
    with Brokerage(store=store, fees="per_order=1") as broker:
        broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        a = broker.open_account("A", "A", initial_deposit="1000").account_id
        b = broker.open_account("B", "B", initial_deposit="1000").account_id
        broker.grant_shares(a, "BOOK", 10, "100")
        broker.place_order(a, "BOOK", "sell", 10, "limit", "50")
        broker.place_order(b, "BOOK", "buy", 4, "limit", "50")
        before = (broker.balance(a), broker.balance(b), broker.audit())
    with Brokerage(store=store, fees="per_order=1") as broker:
        assert (broker.balance(a), broker.balance(b), broker.audit()) == before
    with Brokerage(store=store, fees="per_order=3") as broker:
        assert (broker.balance(a), broker.balance(b)) == before[:2]  # the rest holds its $1
        broker.place_order(b, "BOOK", "buy", 6, "limit", "50")  # pays $3; the seller its $1
        assert broker.balance(b).cash == Decimal(1000 - 200 - 1 - 300 - 3)
        assert broker.balance(a).cash == Decimal(1000 + 500 - 1)
        report = broker.audit()
        assert report.fees == Decimal(1 + 1 + 3)
    with Brokerage(store=store) as broker:  # none from here on: the journal replays the old
        assert broker.balance(b).cash == Decimal(1000 - 200 - 1 - 300 - 3)
        assert broker.fees is None
        broker.deposit(b, "100")
        assert broker.place_order(b, "BOOK", "buy", 1, "limit", "100").status == "pending"
        assert broker.balance(b).reserved == Decimal(100)


def test_replacing_a_buy_pairs_take_profit_holds_its_fees_at_the_pairs_reserve() -> None:
    """A buy OCO's take-profit holds cash at its stop-loss's dearer price for both legs, and
    its fees at that price too: a replace of its limit checks them so (while the old order's
    fees stay held until the book has replaced it), and nothing is held that the cash does
    not cover."""
    with Brokerage(fees="percent=1") as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        # 10 x $165 held for the pair, 1 % fees on it for each leg: $16.50 + $16.50, and
        # $16.50 more for the new take-profit's fees while the old one's are held
        account = broker.open_account("U", "U", initial_deposit="1699.50").account_id
        oco = broker.place_order(
            account,
            "AAPL",
            "buy",
            10,
            "limit",
            "140",
            order_class="oco",
            take_profit={"limit_price": "140"},
            stop_loss={"stop_price": "160", "limit_price": "165"},
        )
        assert oco.status == "pending"
        assert broker.balance(account).reserved == Decimal("1683.00")
        new = broker.replace_order(oco.order_id, limit_price="145")
        assert new.status == "pending"
        assert broker.balance(account).reserved == Decimal("1683.00")
        broker.audit()
        broker.withdraw(account, "16.50")  # no room left for a replace's fees
        again = broker.replace_order(new.order_id, limit_price="146")
        assert again.reject_reason == "insufficient_funds"
        assert broker.get_order(new.order_id).status == "pending"
        broker.audit()
