from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.futures import new_future
from actors.messages import Request
from engine import (
    BrokerStoppedError,
    CancelReason,
    DuplicateError,
    InsufficientAvailableCashError,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderNotCancellableError,
    OrderRejected,
    OrderStatus,
    PriceChanged,
    RejectReason,
    UnknownAccountError,
    UnknownOrderError,
    UnknownSymbolError,
    UnknownUserError,
    ValidationError,
)
from gateway import Brokerage
from tests.durability.test_journal import replayed


def funded(broker: Brokerage, cash: str = "10000", user: str = "U1") -> str:
    return broker.open_account(user, user.lower(), initial_deposit=cash).account_id


# -- accounts ------------------------------------------------------------------------------------


def test_a_user_opens_several_accounts_with_an_initial_deposit(broker: Brokerage) -> None:
    first = broker.open_account(
        "U001", "Alice", "alice@email.com", "555-0001", initial_deposit="10000"
    )
    second = broker.open_account("U001", account_id="alice-ira")

    assert first.balance.cash == Decimal("10000.00")
    assert first.user.email == "alice@email.com"
    assert second.account_id == "alice-ira"
    assert broker.accounts("U001") == [first.account_id, "alice-ira"]
    assert broker.balance("alice-ira").cash == Decimal("0.00")


def test_opening_accounts_refuses_conflicts(broker: Brokerage) -> None:
    broker.open_account("U001", "Alice", account_id="acct")

    with pytest.raises(DuplicateError, match="acct"):
        broker.open_account("U001", account_id="acct")
    with pytest.raises(ValidationError, match="name differs"):
        broker.open_account("U001", "Bob")
    with pytest.raises(ValidationError, match="name"):
        broker.open_account("U002")
    with pytest.raises(UnknownUserError):
        broker.accounts("nobody")


def test_deposit_withdraw_and_balance(broker: Brokerage) -> None:
    account = funded(broker, "100.00")

    broker.deposit(account, "50.25")
    balance = broker.withdraw(account, Decimal("20.00"))

    assert balance.cash == Decimal("130.25")
    assert broker.balance(account).available == Decimal("130.25")


def test_withdrawal_is_limited_to_cash_not_reserved_by_pending_buys(broker: Brokerage) -> None:
    account = funded(broker, "10000")
    broker.place_order(account, "AAPL", "buy", 10, "limit", "140")  # reserves 1,400

    with pytest.raises(InsufficientAvailableCashError, match=r"8600\.00"):
        broker.withdraw(account, "9000")

    balance = broker.balance(account)
    assert (balance.cash, balance.reserved, balance.available) == (
        Decimal("10000.00"),
        Decimal("1400.00"),
        Decimal("8600.00"),
    )


def test_net_worth_is_cash_plus_holdings_at_current_prices(broker: Brokerage) -> None:
    account = funded(broker, "10000")
    broker.place_order(account, "AAPL", "buy", 10)

    broker.update_price("AAPL", "170")

    assert broker.net_worth(account) == Decimal("8500.00") + Decimal("1700.00")


# -- stocks --------------------------------------------------------------------------------------


def test_listing_quotes_and_price_history(broker: Brokerage) -> None:
    broker.update_price("AAPL", "151.00")
    broker.update_price("AAPL", "149.50")

    quote = broker.quote("aapl")

    assert (quote.last_price, quote.open, quote.high, quote.low) == (
        Decimal("149.50"),
        Decimal("150.00"),
        Decimal("151.00"),
        Decimal("149.50"),
    )
    assert [p.price for p in broker.price_history("AAPL")] == [
        Decimal("150.00"),
        Decimal("151.00"),
        Decimal("149.50"),
    ]
    assert [q.symbol for q in broker.stocks()] == ["AAPL", "BOOK"]
    with pytest.raises(DuplicateError):
        broker.list_stock("AAPL", "Again", "1")


def test_grant_shares_credits_an_allocation_at_a_stated_cost(broker: Brokerage) -> None:
    account = funded(broker, "0")

    record = broker.grant_shares(account, "BOOK", 100, "95.50")

    assert (record.kind.value, record.quantity, record.amount) == ("grant", 100, Decimal("9550.00"))
    holding = broker.portfolio(account).holdings[0]
    assert (holding.quantity, holding.average_cost) == (100, Decimal("95.50"))


# -- orders in market mode -----------------------------------------------------------------------


def test_market_buy_comes_back_executed_at_the_current_price(broker: Brokerage) -> None:
    account = funded(broker)

    order = broker.place_order(account, "AAPL", "buy", 10)

    assert order.status is OrderStatus.EXECUTED
    assert order.average_fill_price == Decimal("150.00")
    assert broker.balance(account).cash == Decimal("8500.00")


def test_buy_without_enough_cash_is_rejected_and_nothing_moves(broker: Brokerage) -> None:
    account = funded(broker, "1000")

    order = broker.place_order(account, "AAPL", "buy", 7)  # 7 x 157.50 collar > 1000

    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason is RejectReason.INSUFFICIENT_FUNDS
    assert broker.balance(account).cash == Decimal("1000.00")
    assert broker.transactions(account)[-1].kind.value == "deposit"


def test_a_buy_that_fits_in_cash_but_not_in_available_cash_is_rejected(
    broker: Brokerage,
) -> None:
    account = funded(broker, "2000")
    broker.place_order(account, "AAPL", "buy", 10, "limit", "140")  # reserves 1,400

    order = broker.place_order(account, "AAPL", "buy", 5, "limit", "140")  # needs 700 of 600

    assert order.reject_reason is RejectReason.INSUFFICIENT_FUNDS
    assert broker.balance(account).reserved == Decimal("1400.00")


def test_a_sell_of_shares_already_reserved_is_rejected(broker: Brokerage) -> None:
    account = funded(broker)
    broker.grant_shares(account, "AAPL", 10, "100")
    broker.place_order(account, "AAPL", "sell", 8, "limit", "200")

    order = broker.place_order(account, "AAPL", "sell", 3)

    assert order.reject_reason is RejectReason.INSUFFICIENT_SHARES


def test_sell_without_shares_is_rejected(broker: Brokerage) -> None:
    account = funded(broker)

    order = broker.place_order(account, "AAPL", "sell", 1)

    assert order.reject_reason is RejectReason.INSUFFICIENT_SHARES


def test_limit_sell_fills_when_the_price_moves_to_it_before_update_returns(
    broker: Brokerage,
) -> None:
    account = funded(broker)
    broker.place_order(account, "AAPL", "buy", 10)
    sell = broker.place_order(account, "AAPL", "sell", 5, "limit", "160")
    assert sell.status is OrderStatus.PENDING

    broker.update_price("AAPL", "165")

    assert broker.get_order(sell.order_id).status is OrderStatus.EXECUTED
    assert broker.balance(account).cash == Decimal("8500.00") + Decimal("825.00")


def test_resting_limits_trigger_in_price_time_priority_across_accounts(
    broker: Brokerage,
) -> None:
    accounts = [funded(broker, "1000", f"U{n}") for n in range(3)]
    orders = [broker.place_order(a, "AAPL", "buy", 1, "limit", "140") for a in accounts]
    better = broker.place_order(accounts[2], "AAPL", "buy", 1, "limit", "145")

    broker.update_price("AAPL", "140")

    fills = [t for a in accounts for t in broker.transactions(a) if t.kind.value == "buy"]
    by_trade = sorted(fills, key=lambda t: int(str(t.trade_id).rsplit("-", 1)[1]))
    assert [t.order_id for t in by_trade] == [
        better.order_id,
        orders[0].order_id,
        orders[1].order_id,
        orders[2].order_id,
    ]


# -- orders in book mode -------------------------------------------------------------------------


def test_book_orders_trade_between_accounts_at_the_resting_price(broker: Brokerage) -> None:
    seller = funded(broker, "0", "S")
    buyer = funded(broker, "10000", "B")
    broker.grant_shares(seller, "BOOK", 50, "90")
    resting = broker.place_order(seller, "BOOK", "sell", 30, "limit", "101")

    taker = broker.place_order(buyer, "BOOK", "buy", 40, "limit", "102")

    assert taker.status is OrderStatus.PARTIALLY_FILLED
    assert (taker.filled_quantity, taker.average_fill_price) == (30, Decimal("101.00"))
    assert broker.get_order(resting.order_id).status is OrderStatus.EXECUTED
    assert broker.balance(seller).cash == Decimal("3030.00")  # maker settled before return
    assert broker.balance(buyer).reserved == Decimal("1020.00")  # 10 left at 102
    assert broker.quote("BOOK").last_price == Decimal("101.00")
    assert broker.portfolio(seller).realized_pl == Decimal("330.00")


def test_book_market_order_rest_is_cancelled_and_released(broker: Brokerage) -> None:
    seller = funded(broker, "0", "S")
    buyer = funded(broker, "10000", "B")
    broker.grant_shares(seller, "BOOK", 5, "90")
    broker.place_order(seller, "BOOK", "sell", 5, "limit", "100")

    order = broker.place_order(buyer, "BOOK", "buy", 8)

    assert (order.status, order.filled_quantity) == (OrderStatus.CANCELLED, 5)
    assert order.cancel_reason is CancelReason.NO_LIQUIDITY
    assert broker.balance(buyer).reserved == Decimal("0.00")


@pytest.mark.parametrize(
    ("tif", "status", "filled"),
    [
        ("ioc", OrderStatus.CANCELLED, 5),
        ("fok", OrderStatus.CANCELLED, 0),
        ("gtc", OrderStatus.PARTIALLY_FILLED, 5),
    ],
)
def test_time_in_force_decides_what_happens_to_the_unfilled_rest(
    broker: Brokerage, tif: str, status: OrderStatus, filled: int
) -> None:
    seller = funded(broker, "0", "S")
    buyer = funded(broker, "10000", "B")
    broker.grant_shares(seller, "BOOK", 5, "90")
    broker.place_order(seller, "BOOK", "sell", 5, "limit", "100")

    order = broker.place_order(buyer, "BOOK", "buy", 8, "limit", "100", time_in_force=tif)

    assert (order.status, order.filled_quantity) == (status, filled)


# -- cancel and history --------------------------------------------------------------------------


def test_cancel_a_pending_order_releases_its_reservation(broker: Brokerage) -> None:
    account = funded(broker)
    order = broker.place_order(account, "AAPL", "buy", 10, "limit", "100")

    cancelled = broker.cancel_order(order.order_id)

    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancel_reason is CancelReason.REQUESTED
    assert broker.balance(account).reserved == Decimal("0.00")


def test_cancel_a_partially_filled_order_keeps_its_fills(broker: Brokerage) -> None:
    seller = funded(broker, "0", "S")
    buyer = funded(broker, "10000", "B")
    broker.grant_shares(seller, "BOOK", 10, "90")
    order = broker.place_order(seller, "BOOK", "sell", 10, "limit", "100")
    broker.place_order(buyer, "BOOK", "buy", 4, "limit", "100")

    cancelled = broker.cancel_order(order.order_id)

    assert (cancelled.status, cancelled.filled_quantity) == (OrderStatus.CANCELLED, 4)
    assert broker.portfolio(seller).holdings[0].reserved == 0


def test_cancelling_a_finished_or_unknown_order_is_a_clear_error(broker: Brokerage) -> None:
    account = funded(broker)
    done = broker.place_order(account, "AAPL", "buy", 1)

    with pytest.raises(OrderNotCancellableError, match="executed"):
        broker.cancel_order(done.order_id)
    with pytest.raises(UnknownOrderError, match="O-999"):
        broker.cancel_order("O-999")


def test_a_client_order_id_names_one_order_of_its_account(broker: Brokerage) -> None:
    account = funded(broker)
    other = funded(broker, user="U2")
    first = broker.place_order(account, "AAPL", "buy", 1, client_order_id="mine-1")
    assert first.client_order_id == "mine-1"
    assert broker.order_by_client_id(account, "mine-1") == broker.get_order(first.order_id)

    with pytest.raises(DuplicateError, match="mine-1"):
        broker.place_order(account, "AAPL", "buy", 1, client_order_id="mine-1")
    assert [o.order_id for o in broker.orders(account)] == [first.order_id]
    assert broker.balance(account).reserved == 0
    # another account has its own ids
    assert broker.place_order(other, "AAPL", "buy", 1, client_order_id="mine-1").client_order_id
    with pytest.raises(UnknownOrderError):
        broker.order_by_client_id(account, "never")
    with pytest.raises(ValidationError, match="client_order_id"):
        broker.place_order(account, "AAPL", "buy", 1, client_order_id="x" * 129)


def test_a_refused_order_not_kept_frees_its_client_order_id(broker: Brokerage) -> None:
    account = funded(broker, "100")
    refused = broker.place_order(
        account, "AAPL", "buy", 10, client_order_id="retry", keep_refused=False
    )
    assert refused.status is OrderStatus.REJECTED
    with pytest.raises(UnknownOrderError):
        broker.order_by_client_id(account, "retry")
    kept = broker.place_order(account, "AAPL", "buy", 10, client_order_id="kept")
    assert kept.status is OrderStatus.REJECTED  # refused but kept: the id stays taken
    with pytest.raises(DuplicateError):
        broker.place_order(account, "AAPL", "buy", 1, client_order_id="kept")
    again = broker.place_order(account, "AAPL", "buy", 0 + 1, client_order_id="retry")
    assert broker.order_by_client_id(account, "retry").order_id == again.order_id


def test_order_history_filters_by_status_and_symbol(broker: Brokerage) -> None:
    account = funded(broker)
    broker.grant_shares(account, "BOOK", 5, "90")
    executed = broker.place_order(account, "AAPL", "buy", 1)
    pending = broker.place_order(account, "AAPL", "buy", 1, "limit", "100")
    book = broker.place_order(account, "BOOK", "sell", 1, "limit", "120")

    assert [o.order_id for o in broker.orders(account)] == [
        executed.order_id,
        pending.order_id,
        book.order_id,
    ]
    assert [o.order_id for o in broker.orders(account, status="pending", symbol="AAPL")] == [
        pending.order_id
    ]
    assert len(broker.orders(account, status=["executed", "pending"])) == 3
    with pytest.raises(ValidationError, match="status"):
        broker.orders(account, status="open")


def test_portfolio_and_transactions_after_a_round_trip(broker: Brokerage) -> None:
    account = funded(broker)
    broker.place_order(account, "AAPL", "buy", 10)
    broker.update_price("AAPL", "160")
    broker.place_order(account, "AAPL", "sell", 4)

    portfolio = broker.portfolio(account)
    kinds = [(t.kind.value, t.quantity, t.price) for t in broker.transactions(account)]

    assert portfolio.realized_pl == Decimal("40.00")
    assert portfolio.unrealized_pl == Decimal("60.00")
    assert portfolio.holdings[0].average_cost == Decimal("150.00")
    assert kinds == [
        ("deposit", None, None),
        ("buy", 10, Decimal("150.00")),
        ("sell", 4, Decimal("160.00")),
    ]


# -- events --------------------------------------------------------------------------------------


def test_subscribers_get_order_and_price_events_and_a_failing_one_breaks_nothing(
    broker: Brokerage,
) -> None:
    seen: list[Any] = []

    def explode(event: Any) -> None:
        raise RuntimeError("subscriber bug")

    broker.subscribe(explode)
    broker.subscribe(seen.append)
    account = funded(broker)
    buy = broker.place_order(account, "AAPL", "buy", 1)
    broker.place_order(account, "AAPL", "sell", 5)
    broker.update_price("AAPL", "151")
    broker.flush_events()

    assert [type(e) for e in seen] == [OrderAccepted, OrderFilled, OrderRejected, PriceChanged]
    assert seen[1].order.order_id == buy.order_id
    assert seen[1].transaction.price == Decimal("150.00")
    assert seen[3].new_price == Decimal("151.00")


def test_subscriptions_filter_by_kind_account_and_symbol_and_can_end(broker: Brokerage) -> None:
    seen: list[Any] = []
    mine = funded(broker, user="U1")
    other = funded(broker, user="U2")
    handle = broker.subscribe(seen.append, [OrderFilled, OrderCancelled], account_id=mine)

    broker.place_order(other, "AAPL", "buy", 1)
    broker.place_order(mine, "AAPL", "buy", 1)
    broker.flush_events()
    assert [e.account_id for e in seen] == [mine]
    assert handle.unsubscribe() is True
    broker.place_order(mine, "AAPL", "buy", 1)
    broker.flush_events()

    assert len(seen) == 1
    assert handle.unsubscribe() is False


def test_a_callback_runs_off_the_matching_path(broker: Brokerage) -> None:
    release = threading.Event()
    broker.subscribe(lambda event: release.wait(5), [OrderFilled])
    account = funded(broker)

    order = broker.place_order(account, "AAPL", "buy", 1)  # the callback is still blocked

    assert order.status is OrderStatus.EXECUTED
    release.set()


# -- asynchronous use ----------------------------------------------------------------------------


def test_many_orders_in_flight_at_once_through_futures(broker: Brokerage) -> None:
    account = funded(broker, "100000")

    futures = [broker.place_order_async(account, "AAPL", "buy", 1) for _ in range(200)]
    orders = pykka.get_all(futures, timeout=20)

    assert {o.status for o in orders} == {OrderStatus.EXECUTED}
    assert len({o.order_id for o in orders}) == 200
    assert broker.balance(account).cash == Decimal("100000") - 200 * Decimal("150.00")


async def _await_order(broker: Brokerage, account: str) -> Any:
    return await broker.place_order_async(account, "AAPL", "buy", 2)


def test_an_order_future_can_be_awaited(broker: Brokerage) -> None:
    import asyncio

    account = funded(broker)

    order = asyncio.run(_await_order(broker, account))

    assert order.filled_quantity == 2


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda b, a: b.place_order("nope", "AAPL", "buy", 1), UnknownAccountError, "nope"),
        (lambda b, a: b.place_order(a, "ZZZZ", "buy", 1), UnknownSymbolError, "ZZZZ"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", 0), ValidationError, "quantity"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", -5), ValidationError, "-5"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", 1.5), ValidationError, "1.5"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", "ten"), ValidationError, "ten"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", 1, "limit"), ValidationError, "limit_price"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", 1, "limit", "0"), ValidationError, "'0'"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", 1, "limit", "-1"), ValidationError, "-1"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", 1, "limit", "NaN"), ValidationError, "NaN"),
        (lambda b, a: b.place_order(a, "AAPL", "buy", 1, "limit", "inf"), ValidationError, "inf"),
        (
            lambda b, a: b.place_order(a, "AAPL", "buy", 1, "limit", "1.001"),
            ValidationError,
            "cents",
        ),
        (lambda b, a: b.place_order(a, "AAPL", "short", 1), ValidationError, "side"),
        (lambda b, a: b.deposit(a, "0"), ValidationError, "amount"),
        (lambda b, a: b.deposit(a, "-10"), ValidationError, "-10"),
        (lambda b, a: b.withdraw(a, "100000"), InsufficientAvailableCashError, "100000"),
        (lambda b, a: b.update_price("AAPL", 0), ValidationError, "price"),
        (lambda b, a: b.get_order(42), UnknownOrderError, "42"),
        (lambda b, a: b.grant_shares(a, "AAPL", 0, "1"), ValidationError, "quantity"),
        (lambda b, a: b.list_stock("bad symbol", "x", "1"), ValidationError, "symbol"),
        (lambda b, a: b.list_stock("NEW", "New", "1", mode="dark"), ValidationError, "mode"),
    ],
)
def test_bad_input_raises_a_typed_error_naming_the_value_and_changes_nothing(
    broker: Brokerage, call: Any, error: type[Exception], words: str
) -> None:
    account = funded(broker, "1000")

    with pytest.raises(error, match=words):
        call(broker, account)

    assert broker.balance(account).cash == Decimal("1000.00")
    assert broker.orders(account) == []
    assert broker.quote("AAPL").last_price == Decimal("150.00")
    assert [q.symbol for q in broker.stocks()] == ["AAPL", "BOOK"]


def test_no_actor_dies_from_a_bad_message(broker: Brokerage) -> None:
    account = funded(broker)
    assert broker._gateway is not None
    broker._gateway.tell("not a command")
    broker._gateway.tell(object())
    reply = new_future()
    broker._gateway.tell(Request(object(), reply))
    with pytest.raises(TypeError, match="no handler"):
        reply.get(timeout=5)

    order = broker.place_order(account, "AAPL", "buy", 1)

    assert order.status is OrderStatus.EXECUTED


def test_a_stopped_brokerage_says_so() -> None:
    broker = Brokerage().start()
    broker.close()

    with pytest.raises(BrokerStoppedError, match="place_order"):
        broker.place_order("A", "AAPL", "buy", 1)
    assert not broker.running


def test_orders_and_transactions_come_a_page_at_a_time(broker: Brokerage) -> None:
    account = broker.open_account("U1", "One", initial_deposit="1000").account_id
    placed = [broker.place_order(account, "AAPL", "buy", 1).order_id for _ in range(5)]

    page = broker.orders(account, offset=1, limit=2)
    executed = broker.orders(account, status="executed", offset=3)
    records = broker.transactions(account, offset=4, limit=10)

    assert [o.order_id for o in page] == placed[1:3]
    assert [o.order_id for o in executed] == placed[3:]
    assert [t.kind for t in records] == ["buy", "buy"]
    with pytest.raises(ValidationError, match="offset"):
        broker.orders(account, offset=-1)
    with pytest.raises(ValidationError, match="limit"):
        broker.transactions(account, limit=0)


def test_agents_accounts_are_marked_and_the_mark_is_kept(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/agents.db"
    with Brokerage(store=store) as broker:
        person = broker.open_account("person", "Person").account_id
        robot = broker.open_account("robot", "Robot", agent=True).account_id
        assert broker.accounts() == [person, robot]
        assert broker.accounts(agents=False) == [person]
        assert broker.accounts("robot", agents=False) == []
    with Brokerage(store=store) as again:
        assert again.accounts(agents=False) == [person]
        assert replayed(store).agents == {robot}
