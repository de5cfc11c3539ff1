"""Resetting a paper account: open orders cancelled, holdings out at their cost, cash set,
realized P/L from 0, history kept and marked; journaled, and safe while other threads trade."""

from __future__ import annotations

import contextlib
import random
from decimal import Decimal
from pathlib import Path

import pytest

from engine import AccountBusyError, OrderNotCancellableError
from engine.account import Account
from engine.ids import AccountId, OrderId, Symbol, TradeId, UserId
from engine.orders import CancelReason, Order, OrderType, Side, TimeInForce
from gateway import Brokerage
from tests.durability.test_journal import live_state, replayed
from tests.integration.test_concurrency import cancel_everything_open, run_together


def test_an_account_with_an_open_order_is_not_reset_and_nothing_changes() -> None:
    account = Account(AccountId("A-1"), UserId("U-1"), 0)
    account.deposit(1_000_00, 0)
    account.grant(Symbol("X"), 10, 50_00, 0)
    o = Order(
        OrderId("O-1"),
        AccountId("A-1"),
        Symbol("X"),
        Side.SELL,
        OrderType.LIMIT,
        TimeInForce.GTC,
        4,
        60_00,
        None,
        1,
    )
    assert account.accept(o, 1) is None
    account.settle_fill(o.order_id, TradeId("T-1"), 2, 60_00, 2)  # realizes $20
    with pytest.raises(AccountBusyError, match="1 still open"):
        account.reset(500_00, 3)
    assert (account.cash, account.positions[Symbol("X")].quantity) == (1_120_00, 8)
    account.cancel_rest(o.order_id, CancelReason.REQUESTED, 4)
    made = account.reset(500_00, 5)
    assert [t.kind for t in made] == ["removal", "withdrawal", "reset"]
    assert made[0].amount == Decimal("400.00")  # 8 shares at their cost of $50
    assert (account.cash, account.realized, account.positions) == (500_00, 0, {})
    audit = account.audit()  # the ledger counts the removal and the cleared P/L
    assert audit.removed == {Symbol("X"): 8}


def test_a_reset_cancels_orders_takes_holdings_out_and_keeps_history() -> None:
    with Brokerage(fees="per_order=1") as broker:
        broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        me = broker.open_account("U", "U", initial_deposit="10000").account_id
        other = broker.open_account("O", "O", initial_deposit="10000").account_id
        broker.grant_shares(other, "BOOK", 50, "90")
        broker.place_order(other, "BOOK", "sell", 20, "limit", "100")
        broker.place_order(me, "BOOK", "buy", 20, "limit", "100")  # fills: $2,000 + $1
        resting = broker.place_order(me, "BOOK", "buy", 5, "limit", "95")
        bracket = broker.place_order(
            me,
            "BOOK",
            "buy",
            3,
            "limit",
            "94",
            order_class="bracket",
            take_profit={"limit_price": "120"},
            stop_loss={"stop_price": "80"},
        )
        before = len(broker.transactions(me))

        balance = broker.reset_account(me, "25000")

        assert (balance.cash, balance.reserved) == (Decimal("25000.00"), 0)
        portfolio = broker.portfolio(me)
        assert portfolio.holdings == ()
        assert portfolio.realized_pl == 0
        assert portfolio.net_worth == Decimal("25000.00")
        for order_id in (resting.order_id, bracket.order_id, *bracket.legs):
            assert broker.get_order(order_id).status == "cancelled"
        marks = broker.transactions(me)[before:]
        assert [t.kind for t in marks] == ["removal", "deposit", "reset"]
        assert (marks[0].symbol, marks[0].quantity, marks[0].amount) == (
            "BOOK",
            20,
            Decimal("2001.00"),  # at its cost, the fee included
        )
        assert marks[1].amount == Decimal("25000.00") - (Decimal("10000") - Decimal("2001"))
        assert broker.depth("BOOK").bids == ()  # nothing of it rests
        report = broker.audit()
        assert report.shares["BOOK"] == 30  # 50 granted, 20 taken out with the holding
        # trading goes on from the fresh start
        assert broker.place_order(me, "BOOK", "buy", 1, "limit", "1").status == "pending"


def test_a_reset_is_journaled_and_replays_to_the_same_state(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/reset.db"
    with Brokerage(store=store) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        me = broker.open_account("U", "U", initial_deposit="10000").account_id
        broker.place_order(me, "AAPL", "buy", 10)
        broker.update_price("AAPL", "160.00")
        broker.place_order(me, "AAPL", "sell", 4)
        broker.reset_account(me, "0")
        broker.deposit(me, "10")
        live = live_state(broker).digest()
        seen = (broker.balance(me), broker.portfolio(me), broker.transactions(me))
    assert replayed(store).digest() == live
    with Brokerage(store=store) as again:
        assert (again.balance(me), again.portfolio(me), again.transactions(me)) == seen


@pytest.mark.parametrize("seed", [1, 2])
def test_resets_while_many_threads_trade_keep_everything_conserved(seed: int) -> None:
    with Brokerage(timeout=20) as broker:
        broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        accounts = [
            broker.open_account(f"U{n}", f"user {n}", initial_deposit="3000").account_id
            for n in range(8)
        ]
        for account in accounts:
            broker.grant_shares(account, "BOOK", 40, "100")
        busy: list[str] = []

        def trade(n: int) -> None:
            rng = random.Random(seed * 100 + n)
            for _ in range(60):
                account = rng.choice(accounts)
                if n == 0 and rng.random() < 0.3:  # one thread resets accounts as they trade
                    try:
                        broker.reset_account(account, str(rng.randint(0, 4000)))
                    except AccountBusyError:
                        busy.append(account)
                    continue
                side = rng.choice(["buy", "sell"])
                price = f"{rng.randint(97, 103)}.{rng.randint(0, 99):02d}"
                order = broker.place_order(
                    account, "BOOK", side, rng.randint(1, 10), "limit", price
                )
                if rng.random() < 0.3:
                    with contextlib.suppress(OrderNotCancellableError):
                        broker.cancel_order(order.order_id)

        run_together(trade, threads=5)
        cancel_everything_open(broker, accounts)
        report = broker.audit()  # each account against its ledger, removals included
        removed = sum(
            t.quantity or 0
            for account in accounts
            for t in broker.transactions(account, kind="removal")
        )
        assert report.shares["BOOK"] == 40 * 8 - removed
        assert report.cash == report.deposited - report.withdrawn
        assert report.reserved_cash == 0
        resets = sum(len(broker.transactions(a, kind="reset")) for a in accounts)
        assert resets > 0
