from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.account import Account, value_portfolio
from engine.errors import InsufficientAvailableCashError
from engine.ids import AccountId, OrderId, Symbol, TradeId, UserId
from engine.money import share_of
from engine.orders import (
    CancelReason,
    Order,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)

S = Symbol("AAPL")


def new_account(cash: int = 1_000_000) -> Account:
    account = Account(AccountId("A-1"), UserId("U-1"), 0)
    account.deposit(cash, 0)
    return account


def order(n: int, side: Side, quantity: int, limit: int) -> Order:
    return Order(
        OrderId(f"O-{n}"),
        AccountId("A-1"),
        S,
        side,
        OrderType.LIMIT,
        TimeInForce.GTC,
        quantity,
        limit,
        limit if side is Side.BUY else None,
        1,
    )


def buy(account: Account, n: int, quantity: int, price: int) -> None:
    o = order(n, Side.BUY, quantity, price)
    assert account.accept(o, 1) is None
    account.settle_fill(o.order_id, TradeId(f"T-{n}"), quantity, price, 2)


def test_buy_reserves_cash_and_withdrawal_is_limited_to_available() -> None:
    account = new_account(10_000_00)
    assert account.accept(order(1, Side.BUY, 10, 500_00), 1) is None

    assert account.available_cash == 5_000_00
    with pytest.raises(InsufficientAvailableCashError, match=r"5000\.00"):
        account.withdraw(5_000_01, 2)
    account.withdraw(5_000_00, 2)

    assert account.cash == 5_000_00
    account.check()


def test_buy_beyond_available_cash_is_rejected_and_changes_nothing() -> None:
    account = new_account(1_000_00)
    o = order(1, Side.BUY, 10, 100_01)

    reason = account.accept(o, 1)

    assert reason is RejectReason.INSUFFICIENT_FUNDS
    assert o.status is OrderStatus.REJECTED
    assert (account.cash, account.reserved_cash) == (1_000_00, 0)
    account.check()


def test_sell_without_shares_is_rejected_no_short_selling() -> None:
    account = new_account()

    assert account.accept(order(1, Side.SELL, 1, 100), 1) is RejectReason.INSUFFICIENT_SHARES
    account.check()


def test_fill_below_the_limit_releases_the_difference() -> None:
    account = new_account(10_000_00)
    o = order(1, Side.BUY, 10, 100_00)
    account.accept(o, 1)

    account.settle_fill(o.order_id, TradeId("T-1"), 10, 90_00, 2)

    assert account.cash == 9_100_00
    assert account.reserved_cash == 0
    account.check()


def test_a_partial_sell_takes_its_share_of_the_cost_to_the_cent_half_even() -> None:
    account = new_account()
    buy(account, 1, 1, 10_00)
    buy(account, 2, 2, 10_01)  # 3 shares cost 30.02: average 10.0066...
    sell = order(3, Side.SELL, 1, 1)
    account.accept(sell, 3)

    account.settle_fill(sell.order_id, TradeId("T-3"), 1, 12_00, 4)

    position = account.positions[S]
    assert position.cost == 20_01  # 30.02 / 3 = 10.0066... takes 10.01; 20.01 stays
    assert account.realized == 12_00 - 10_01
    assert position.cost + 10_01 == 30_02
    portfolio = value_portfolio(account.state(), {S: 10_00})
    assert portfolio.holdings[0].average_cost == Decimal("10.00")  # 20.01 / 2, shown half-even
    assert portfolio.realized_pl == Decimal("1.99")
    account.audit()


def test_share_of_rounds_half_to_even_and_never_loses_a_cent() -> None:
    assert share_of(30_02, 1, 3) == 10_01
    assert share_of(5, 1, 2) == 2  # 2.5 -> 2
    assert share_of(7, 1, 2) == 4  # 3.5 -> 4
    assert share_of(10, 3, 3) == 10
    assert share_of(10, 0, 3) == 0


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(1, 50), st.integers(1, 100_000)),
        min_size=1,
        max_size=60,
    )
)
def test_cost_and_pl_stay_exact_to_the_cent_over_any_buys_and_partial_sells(
    trades: list[tuple[bool, int, int]],
) -> None:
    """Whatever the buys and partial sells: realized P/L minus the cost still held equals the
    cash made (cash minus net deposits), to the cent; cost taken plus cost kept is cost paid;
    and the cost of each fill is an int of bounded size."""
    account = new_account(10**12)
    paid = 0
    for n, (is_buy, quantity, price) in enumerate(trades):
        held = account.positions[S].quantity if S in account.positions else 0
        if is_buy or not held:
            buy(account, n, quantity, price)
            paid += quantity * price
            continue
        sold = min(quantity, held)
        sell = order(n, Side.SELL, sold, 1)
        assert account.accept(sell, 1) is None
        before = account.positions[S].cost
        account.settle_fill(sell.order_id, TradeId(f"T-{n}"), sold, price, 2)
        after = account.positions[S].cost if S in account.positions else 0
        assert 0 <= after <= before
        assert isinstance(after, int)
    cost = account.positions[S].cost if S in account.positions else 0
    assert account.realized - cost == account.cash - 10**12
    assert isinstance(account.realized, int)
    portfolio = value_portfolio(account.state(), {S: 1_00})
    made = portfolio.realized_pl + portfolio.unrealized_pl
    assert made == Decimal(account.cash - 10**12 + (portfolio.market_value * 100)).scaleb(-2)
    account.audit()


def test_portfolio_values_holdings_at_current_prices_with_profit_and_loss() -> None:
    account = new_account(10_000_00)
    buy(account, 1, 10, 150_00)

    portfolio = value_portfolio(account.state(), {S: 165_00})

    holding = portfolio.holdings[0]
    assert (holding.quantity, holding.average_cost, holding.market_value) == (
        10,
        Decimal("150.00"),
        Decimal("1650.00"),
    )
    assert holding.unrealized_pl == Decimal("150.00")
    assert holding.unrealized_pl_percent == Decimal("10.00")
    assert portfolio.net_worth == Decimal("10150.00")


def test_cancel_releases_the_reservation_of_what_remains() -> None:
    account = new_account(10_000_00)
    account.grant(S, 10, 100_00, 0)
    sell = order(1, Side.SELL, 10, 120_00)
    account.accept(sell, 1)
    account.settle_fill(sell.order_id, TradeId("T-1"), 4, 120_00, 2)

    account.cancel_rest(sell.order_id, CancelReason.REQUESTED, 3)

    assert account.positions[S].reserved == 0
    assert account.positions[S].quantity == 6
    assert account.audit().sold == {S: 4}


def test_audit_catches_cash_that_does_not_match_the_ledger() -> None:
    account = new_account(100)
    account.cash += 1

    with pytest.raises(AssertionError, match="ledger"):
        account.audit()


def test_transactions_record_every_movement_in_order() -> None:
    account = new_account(10_000_00)
    buy(account, 1, 2, 100_00)
    account.withdraw(50_00, 3)

    kinds = [t.kind.value for t in account.transactions]

    assert kinds == ["deposit", "buy", "withdrawal"]
    assert account.transactions[1].amount == Decimal("200.00")
    assert account.transactions[1].trade_id == "T-1"


def test_a_window_keeps_open_orders_and_the_newest_finished_ones() -> None:
    """With a window of 2 the account keeps every open order, the two newest finished ones and
    the two newest transactions; the outbox has every finished order and every transaction
    once, and the audit still reconciles (against running totals)."""
    account = Account(AccountId("A-1"), UserId("U-1"), 0, window=2)
    account.outbox = []
    account.deposit(1_000_000, 0)
    resting = order(1, Side.BUY, 5, 1000)
    assert account.accept(resting, 1) is None
    for n in range(2, 7):
        placed = order(n, Side.BUY, 1, 1000)
        assert account.accept(placed, n) is None
        account.settle_fill(placed.order_id, TradeId(f"T-{n}"), 1, 990, n)
    assert list(account.orders) == ["O-1", "O-5", "O-6"]
    assert [t.transaction_id for t in account.transactions] == ["A-1-5", "A-1-6"]
    assert account.transaction_count == 6
    assert account.dropped_ns == placed.created_ns  # every order here is made at one moment
    outbox = account.take_outbox()
    assert [getattr(item, "order_id", None) for item in outbox if isinstance(item, Order)] == [
        "O-2",
        "O-3",
        "O-4",
        "O-5",
        "O-6",
    ]
    assert len([item for item in outbox if not isinstance(item, Order)]) == 6
    assert account.take_outbox() == []
    report = account.audit()
    assert report.bought == {S: 5}
    assert report.cash == 1_000_000 - 5 * 990
    account.set_window(1)
    assert list(account.orders) == ["O-1", "O-6"]


def test_history_rows_round_trip() -> None:
    from engine.history import order_from_row, order_row, transaction_from_row

    account = Account(AccountId("A-1"), UserId("U-1"), 0)
    account.outbox = []
    deposit = account.deposit(1_000_000, 0)
    placed = order(7, Side.BUY, 3, 1000)
    placed.client_order_id = "mine"
    account.accept(placed, 5)
    record = account.settle_fill(placed.order_id, TradeId("T-1"), 2, 999, 123_456_789)
    account.cancel_rest(placed.order_id, CancelReason.REQUESTED, 200_000_000)
    assert order_from_row(order_row(placed)) == placed.snapshot()
    rows = [item for item in account.take_outbox() if not isinstance(item, Order)]
    assert [transaction_from_row(row) for row in rows] == [deposit, record]  # the account's


def test_a_refusal_forgotten_takes_no_finished_order_out_of_the_window() -> None:
    account = Account(AccountId("A-1"), UserId("U-1"), 0, window=2)
    account.deposit(10_000, 0)
    for n in (1, 2):
        placed = order(n, Side.BUY, 1, 1000)
        assert account.accept(placed, n) is None
        account.settle_fill(placed.order_id, TradeId(f"T-{n}"), 1, 1000, n)
    refused = order(3, Side.BUY, 1_000, 1000)
    assert account.accept(refused, 3, keep_refused=False) is RejectReason.INSUFFICIENT_FUNDS
    assert list(account.orders) == ["O-1", "O-2"]
    account.check()


def test_refusals_kept_are_dropped_like_any_finished_order() -> None:
    account = Account(AccountId("A-1"), UserId("U-1"), 0, window=2)
    for n in range(1, 6):
        assert account.accept(order(n, Side.BUY, 1, 1000), n) is RejectReason.INSUFFICIENT_FUNDS
    assert list(account.orders) == ["O-4", "O-5"]
    account.check()
