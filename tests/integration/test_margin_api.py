"""Margin accounts through the brokerage: borrowing, short selling in both modes, margin calls
with their events, liquidation, many threads trading long and short at once, and a restart."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from engine import OrderNotCancellableError
from engine.errors import InsufficientAvailableCashError
from engine.events import Event, MarginCall
from gateway import Brokerage
from tests.integration.test_concurrency import cancel_everything_open, run_together

RULES = "initial=50,long=25,short=30,shortable=AAPL BOOK"


@pytest.fixture(params=["mn", "threads"])
def broker(request: pytest.FixtureRequest) -> Iterator[Brokerage]:
    with Brokerage(
        timeout=20,
        runtime=request.param,
        margin=RULES,
        margin_check_seconds=None,
        fees="per_share=0.005,minimum=1,sec_per_million=27.80",
    ) as b:
        b.list_stock("AAPL", "Apple Inc.", "100.00")
        b.list_stock("BOOK", "Book Traded Co.", "50.00", mode="book")
        b.list_stock("HARD", "Hard To Borrow Inc.", "20.00")
        yield b
        b.audit()


def test_two_accounts_cross_a_short_sale_in_book_mode(broker: Brokerage) -> None:
    short = broker.open_account("S", "Shorter", initial_deposit="10000", margin=True).account_id
    buyer = broker.open_account("B", "Buyer", initial_deposit="10000").account_id
    resting = broker.place_order(short, "BOOK", "sell", 100, "limit", "50")
    assert resting.status == "pending"
    filled = broker.place_order(buyer, "BOOK", "buy", 100, "limit", "50")
    assert filled.status == "executed"

    [holding] = broker.portfolio(short).holdings
    assert holding.quantity == -100
    assert holding.cost_basis == Decimal("-5000.00")
    figures = broker.margin(short)
    assert figures is not None
    assert figures.short_value == 5_000_00
    assert figures.maintenance == 1_500_00
    assert broker.margin(buyer) is None
    report = broker.audit()  # shares sold short are shares someone bought
    assert report.shares["BOOK"] == 0


def test_who_may_sell_short_is_told_in_words(broker: Brokerage) -> None:
    cash = broker.open_account("C", "Cash", initial_deposit="10000").account_id
    margin = broker.open_account("M", "Margin", initial_deposit="10000", margin=True).account_id
    refused = broker.place_order(cash, "AAPL", "sell", 1)
    assert (refused.status, refused.reject_reason) == ("rejected", "insufficient_shares")
    refused = broker.place_order(margin, "HARD", "sell", 1)
    assert (refused.status, refused.reject_reason) == ("rejected", "not_shortable")
    refused = broker.place_order(margin, "AAPL", "sell", 301)  # $30,100 short: $15,050 > $10k
    assert (refused.status, refused.reject_reason) == ("rejected", "insufficient_funds")
    # a market buy holds at its 5 % collar: 191 * $105 = $20,055 is past 2 * $10,000
    assert broker.place_order(margin, "AAPL", "buy", 191).reject_reason == "insufficient_funds"
    assert broker.place_order(margin, "AAPL", "buy", 190).status == "executed"


def test_a_price_move_calls_the_account_once_and_liquidation_restores_maintenance(
    broker: Brokerage,
) -> None:
    account = broker.open_account("M", "Margin", initial_deposit="10000", margin=True).account_id
    calls: list[Event] = []
    told = threading.Event()

    def heard(event: Event) -> None:
        calls.append(event)
        told.set()

    broker.subscribe(heard, [MarginCall], account_id=account)
    broker.update_price("AAPL", "50.00")
    assert broker.place_order(account, "AAPL", "sell", 100).status == "executed"
    assert broker.margin_calls() == []
    broker.update_price("AAPL", "120.00")
    [call] = broker.margin_calls()
    assert call.account_id == account
    assert call.figures.deficit > 0
    assert broker.margin_calls() != []  # still below: reported, but told once
    assert told.wait(10)
    [event] = calls
    assert isinstance(event, MarginCall)
    assert event.deficit == Decimal(call.figures.deficit) / 100

    placed = broker.liquidate(account)
    assert [(o.symbol, o.side, o.status) for o in placed] == [("AAPL", "buy", "executed")]
    figures = broker.margin(account)
    assert figures is not None
    assert figures.deficit == 0
    assert broker.margin_calls() == []
    assert broker.liquidate(account) == []


def test_the_brokerage_checks_by_itself_and_liquidates_when_told_to() -> None:
    with Brokerage(margin_check_seconds=0.05, auto_liquidate=True) as broker:
        broker.list_stock("AAPL", "Apple Inc.", "100.00")
        account = broker.open_account("M", "M", initial_deposit="10000", margin=True).account_id
        bought = broker.place_order(account, "AAPL", "buy", 199, "limit", "100")
        assert bought.status == "executed"  # $19,900 and $1 of fees on $10,000
        broker.update_price("AAPL", "60.00")  # equity $2,039 against $2,985
        for _ in range(200):
            figures = broker.margin(account)
            assert figures is not None
            if not figures.deficit and broker.portfolio(account).holdings[0].quantity < 199:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the brokerage never liquidated the account")
        sold = broker.orders(account, side="sell")
        assert any(o.order_type == "market" and o.filled_quantity > 1 for o in sold)
        broker.audit()


def test_a_margin_account_withdraws_its_excess_equity_and_no_more(broker: Brokerage) -> None:
    account = broker.open_account("M", "Margin", initial_deposit="10000", margin=True).account_id
    broker.place_order(account, "AAPL", "buy", 100)  # $10,000 and $1 fee: cash $-1
    with pytest.raises(InsufficientAvailableCashError):
        broker.withdraw(account, "1")
    broker.deposit(account, "500")
    broker.withdraw(account, "499")


def test_many_threads_trading_long_and_short_conserve_cash_and_shares(broker: Brokerage) -> None:
    accounts = [
        broker.open_account(f"U{n}", f"user {n}", initial_deposit="5000", margin=n % 3 != 0)
        for n in range(9)
    ]
    ids = [a.account_id for a in accounts]
    for account in ids[:3]:
        broker.grant_shares(account, "BOOK", 40, "50")
    withdrawn: list[Decimal] = []
    lock = threading.Lock()

    def trade(n: int) -> None:
        rng = random.Random(n)
        placed: list[str] = []
        for _ in range(60):
            if n == 0:  # the price feed, and the margin desk liquidating what falls short
                broker.update_price("AAPL", f"{rng.randint(60, 140)}.{rng.randint(0, 99):02d}")
                for call in broker.margin_calls():
                    with contextlib.suppress(OrderNotCancellableError):
                        broker.liquidate(call.account_id)
                continue
            account = rng.choice(ids)
            side = rng.choice(["buy", "sell"])
            action = rng.random()
            if action < 0.5:
                price = f"{rng.randint(45, 55)}.{rng.randint(0, 99):02d}"
                order = broker.place_order(
                    account, "BOOK", side, rng.randint(1, 30), "limit", price
                )
                placed.append(order.order_id)
            elif action < 0.75:
                broker.place_order(account, "AAPL", side, rng.randint(1, 20))
            elif action < 0.95 and placed:
                with contextlib.suppress(OrderNotCancellableError):
                    broker.cancel_order(placed.pop(rng.randrange(len(placed))))
            else:
                try:
                    broker.withdraw(account, "100")
                    with lock:
                        withdrawn.append(Decimal(100))
                except InsufficientAvailableCashError:
                    pass

    run_together(trade, threads=6)
    cancel_everything_open(broker, ids)

    report = broker.audit()
    assert report.shares["BOOK"] == 40 * 3  # what was granted, longs less shorts
    assert report.reserved_cash == 0
    assert report.open_orders == 0
    aapl = sum(
        (
            t.amount if t.kind == "sell" else -t.amount
            for account in ids
            for t in broker.transactions(account, kind=["buy", "sell"], symbol="AAPL")
        ),
        Decimal(0),
    )
    assert report.cash == Decimal(5000 * 9) - sum(withdrawn, Decimal(0)) - report.fees + aapl
    shorts = [h for a in ids for h in broker.portfolio(a).holdings if h.quantity < 0]
    assert shorts, "no account sold short"
    for cash_account in ids[::3]:  # never below zero, never short
        assert broker.balance(cash_account).cash >= 0
        assert all(h.quantity > 0 for h in broker.portfolio(cash_account).holdings)


def test_margin_accounts_and_their_shorts_come_back_after_a_restart(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/margin.db"
    with Brokerage(store=store, margin=RULES, margin_check_seconds=None) as broker:
        broker.list_stock("BOOK", "Book Traded Co.", "50.00", mode="book")
        short = broker.open_account("S", "S", initial_deposit="10000", margin=True).account_id
        buyer = broker.open_account("B", "B", initial_deposit="10000").account_id
        broker.place_order(short, "BOOK", "sell", 100, "limit", "50")
        broker.place_order(buyer, "BOOK", "buy", 60, "limit", "50")
        broker.withdraw(short, "1000")
        before = (broker.portfolio(short), broker.margin(short), broker.audit())
    with Brokerage(store=store, margin=RULES, margin_check_seconds=None) as broker:
        assert (broker.portfolio(short), broker.margin(short), broker.audit()) == before
        broker.place_order(buyer, "BOOK", "buy", 40, "limit", "50")
        assert broker.portfolio(short).holdings[0].quantity == -100
        assert broker.place_order(short, "BOOK", "buy", 100, "limit", "50").status == "pending"
