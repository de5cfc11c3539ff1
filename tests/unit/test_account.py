from __future__ import annotations

from decimal import Decimal

import pytest

from engine.account import Account, value_portfolio
from engine.errors import InsufficientAvailableCashError
from engine.ids import AccountId, OrderId, Symbol, TradeId, UserId
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


def test_average_cost_is_exact_and_unchanged_by_sells() -> None:
    account = new_account()
    buy(account, 1, 1, 10_00)
    buy(account, 2, 2, 10_01)  # 3 shares cost 30.02: average 10.00666...
    sell = order(3, Side.SELL, 1, 1)
    account.accept(sell, 3)

    account.settle_fill(sell.order_id, TradeId("T-3"), 1, 12_00, 4)

    position = account.positions[S]
    assert position.cost / position.quantity == pytest.approx(30_02 / 3)
    assert position.cost * 3 == 30_02 * 2  # exactly two thirds of the cost remain
    assert float(account.realized) == pytest.approx(12_00 - 30_02 / 3)
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
