"""History out of memory: accounts keep their open orders and a small window of finished
orders and transactions; the rest is searched in the store, and every answer equals the one a
brokerage keeping everything would give (the journal replayed with no window)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from engine.account import Transaction
from engine.errors import UnknownOrderError, ValidationError
from engine.journal import State
from engine.orders import OrderSnapshot
from gateway import Brokerage
from tests.durability.test_journal import replayed, trade_a_while

WINDOW = 3


def everything(store: str) -> State:
    """The journal replayed keeping every order and transaction in memory."""
    return replayed(store, window=None)


def every_page(fetch: Callable[..., list[Any]], last: Callable[[Any], str]) -> list[Any]:
    """Every item, page after page, each page `fetch(cursor=...)` after the last one's id."""
    items: list[Any] = []
    cursor = None
    while page := fetch(cursor=cursor):
        items += page
        cursor = last(page[-1])
    return items


def check_orders(broker: Brokerage, truth: State, accounts: list[str]) -> None:
    rng = random.Random(7)
    for account_id in accounts:
        account = truth.accounts[account_id]  # type: ignore[index]
        every: list[OrderSnapshot] = [as_now(truth, o.snapshot()) for o in account.orders.values()]
        assert len(every) > WINDOW
        assert broker.orders(account_id) == every
        assert broker.orders(account_id, newest_first=True) == every[::-1]
        for _ in range(12):
            offset, limit = rng.randint(0, len(every)), rng.randint(1, 7)
            newest = rng.random() < 0.5
            status = rng.choice([None, "executed", "cancelled", ["executed", "rejected"]])
            symbol = rng.choice([None, "MKT", "BK"])
            side = rng.choice([None, "buy", "sell"])
            middle = every[len(every) // 2].created_at
            after = rng.choice([None, middle - timedelta(microseconds=1), middle])
            wanted = [
                o
                for o in (every[::-1] if newest else every)
                if (
                    status is None
                    or o.status.value in ([status] if isinstance(status, str) else status)
                )
                and (symbol is None or o.symbol == symbol)
                and (side is None or o.side.value == side)
                and (after is None or o.created_at > after)
            ]
            found = broker.orders(
                account_id,
                status,
                symbol,
                side=side,
                after=after,
                newest_first=newest,
                offset=offset,
                limit=limit,
            )
            assert found == wanted[offset : offset + limit], (status, symbol, side, after)
        for newest in (False, True):  # page by page, each after the last one's id
            pages = every_page(
                partial(broker.orders, account_id, newest_first=newest, limit=4),
                lambda order: order.order_id,
            )
            assert pages == (every[::-1] if newest else every)
        for order in every:
            assert broker.get_order(order.order_id) == order
        for order in every:
            if order.client_order_id is not None:
                by_client = broker.order_by_client_id(account_id, order.client_order_id)
                assert by_client == order


def as_now(truth: State, order: OrderSnapshot) -> OrderSnapshot:
    """`order` as a reading shows it: a waiting trailing stop with the stop price and mark it
    has now in its symbol's stop book."""
    now = truth.markets[order.symbol].waiting(order.order_id)
    if now is None or order.order_type != "trailing_stop":
        return order
    stop, mark = now
    assert mark is not None
    return order._replace(stop_price=Decimal(stop).scaleb(-2), hwm=Decimal(mark).scaleb(-2))


def check_transactions(broker: Brokerage, truth: State, accounts: list[str]) -> None:
    rng = random.Random(8)
    for account_id in accounts:
        every: list[Transaction] = list(truth.accounts[account_id].transactions)  # type: ignore[index]
        assert len(every) > WINDOW
        assert broker.transactions(account_id) == every
        assert broker.transactions(account_id, newest_first=True, limit=2) == every[::-1][:2]
        for newest in (False, True):
            pages: list[Transaction] = []
            cursor = None
            while True:
                page = broker.transactions(account_id, newest_first=newest, limit=3, cursor=cursor)
                if not page:
                    break
                pages += page
                cursor = page[-1].transaction_id
            assert pages == (every[::-1] if newest else every)
        for _ in range(12):
            offset, limit = rng.randint(0, len(every)), rng.randint(1, 7)
            newest = rng.random() < 0.5
            kind = rng.choice([None, "buy", "sell", ["deposit", "grant"]])
            symbol = rng.choice([None, "MKT", "BK"])
            wanted = [
                t
                for t in (every[::-1] if newest else every)
                if (kind is None or t.kind.value in ([kind] if isinstance(kind, str) else kind))
                and (symbol is None or t.symbol == symbol)
            ]
            found = broker.transactions(
                account_id, kind, symbol, newest_first=newest, offset=offset, limit=limit
            )
            assert found == wanted[offset : offset + limit], (kind, symbol)


def test_history_past_the_window_comes_from_the_store(store: str) -> None:
    """Six threads trade with a window of 3: every listing, page, filter and look-up answers
    as if everything were kept, before and after a restart."""
    with Brokerage(store=store, history_window=WINDOW) as broker:
        accounts = trade_a_while(broker)
        for n, account_id in enumerate(accounts):  # orders with client ids, soon dropped
            for k in range(WINDOW + 2):
                broker.place_order(account_id, "MKT", "buy", 1, client_order_id=f"c-{n}-{k}")
        broker.audit()  # the ledger reconciles with only the window kept
        truth = everything(store)
        check_orders(broker, truth, accounts)
        check_transactions(broker, truth, accounts)
        with pytest.raises(UnknownOrderError):
            broker.get_order("O-999999")
        with pytest.raises(ValidationError, match="cursor"):
            broker.orders(accounts[0], cursor="A-000001-1")
        with pytest.raises(ValidationError, match="cursor"):
            broker.transactions(accounts[0], cursor="O-000001")
    with Brokerage(store=store, history_window=WINDOW) as broker:
        check_orders(broker, truth, accounts)
        check_transactions(broker, truth, accounts)
        with pytest.raises(Exception, match="client_order_id"):
            broker.place_order(accounts[0], "MKT", "buy", 1, client_order_id="c-0-0")


def test_without_a_store_an_account_keeps_only_its_window() -> None:
    """In memory the window bounds what is kept: the newest finished orders, every open one."""
    with Brokerage(history_window=WINDOW) as broker:
        broker.list_stock("MKT", "Market Co", "100")
        account = broker.open_account("U1", "Ann", initial_deposit="10000").account_id
        filled = [broker.place_order(account, "MKT", "buy", 1).order_id for _ in range(6)]
        resting = broker.place_order(account, "MKT", "buy", 1, "limit", "50").order_id
        kept = [o.order_id for o in broker.orders(account)]
        assert kept == [*filled[-WINDOW:], resting]
        assert len(broker.transactions(account)) == WINDOW
        with pytest.raises(UnknownOrderError):
            broker.get_order(filled[0])
        broker.audit()


def test_a_store_made_before_the_stop_columns_gets_them_and_keeps_its_rows(store: str) -> None:
    """An orders table of the first release (without the stop orders' columns) is given them
    when the store opens, and its rows read back with them empty; a transactions table without
    the fills' `leaves` too."""
    from engine.history import ADDED_ORDER_COLUMNS, ADDED_TRANSACTION_COLUMNS
    from gateway.stores import open_journal

    with Brokerage(store=store, history_window=1) as broker:
        broker.list_stock("MKT", "Market Co", "100")
        account = broker.open_account("U1", "Ann", initial_deposit="1000").account_id
        order = broker.place_order(account, "MKT", "buy", 1, "market")
        broker.place_order(account, "MKT", "buy", 1, "market")  # the first leaves memory
    journal = open_journal(store, "os")
    db: Any = journal._db
    table = "orders" if store.startswith("sqlite") else "brokerage_orders"
    for name in ADDED_ORDER_COLUMNS:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
    for name in ADDED_TRANSACTION_COLUMNS:
        db.execute(f"ALTER TABLE {table.replace('orders', 'transactions')} DROP COLUMN {name}")
    journal.close()

    with Brokerage(store=store, history_window=1) as again:
        found = again.get_order(order.order_id)
        assert found.status.value == "executed"
        assert found.stop_price is None
        stop = again.place_order(account, "MKT", "buy", 1, "stop", stop_price="101")
        again.cancel_order(stop.order_id)
        again.place_order(account, "MKT", "buy", 1, "market")  # the stop leaves memory
        assert again.get_order(stop.order_id).stop_price == Decimal("101.00")
        fills = again.transactions(account, "buy")  # the first two from the store
        # (their rows had no room for them)
        assert [(t.leaves, t.filled) for t in fills] == [(None, None), (None, None), (0, 1)]
