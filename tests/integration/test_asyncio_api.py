"""The asyncio twins of the hot calls: same values and errors, many awaited at once."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pykka
import pytest

from actors.aio import settle
from actors.futures import LightFuture
from engine.errors import UnknownSymbolError
from engine.orders import OrderStatus
from gateway import Brokerage


def test_done_callback_runs_once_whoever_comes_second() -> None:
    calls: list[object] = []
    early: LightFuture[int] = LightFuture()
    early.add_done_callback(calls.append)
    early.set(1)
    late: LightFuture[int] = LightFuture()
    late.set(2)
    late.add_done_callback(calls.append)
    assert calls == [early, late]
    with pytest.raises(RuntimeError):
        late.add_done_callback(calls.append)


def test_done_callback_races_with_the_setter() -> None:
    for _ in range(2000):
        calls: list[object] = []
        future: LightFuture[None] = LightFuture()
        setter = threading.Thread(target=future.set, args=(None,))
        setter.start()
        future.add_done_callback(calls.append)
        setter.join()
        assert calls == [future]


def test_an_awaited_reply_times_out_or_arrives_from_another_thread() -> None:
    """`settle` raises pykka.Timeout when no reply comes in time, and wakes when one is set
    from another thread; a late reply after a timeout harms nothing."""

    async def main() -> None:
        never: LightFuture[int] = LightFuture()
        with pytest.raises(pykka.Timeout):
            await settle(never, 0.05)
        never.set(1)  # too late: the waiter is gone
        later: LightFuture[int] = LightFuture()
        threading.Timer(0.05, later.set, args=(7,)).start()
        assert await settle(later, 5) == 7
        now: LightFuture[int] = LightFuture()
        now.set(3)
        assert await settle(now, None) == 3

    asyncio.run(main())


def test_async_twins_answer_like_the_blocking_calls(broker: Brokerage) -> None:
    alice = broker.open_account("U1", "Alice", initial_deposit="10000").account_id

    async def scenario() -> None:
        assert (await broker.aquote("AAPL")) == broker.quote("AAPL")
        assert (await broker.asearch("apple"))[0].symbol == "AAPL"
        order = await broker.aplace_order(alice, "AAPL", "buy", 10)
        assert order.status is OrderStatus.EXECUTED
        resting = await broker.aplace_order(alice, "AAPL", "buy", 1, "limit", "100")
        assert (await broker.aget_order(resting.order_id)).status is OrderStatus.PENDING
        assert [o.order_id for o in await broker.aorders(alice, "pending")] == [resting.order_id]
        assert (await broker.acancel_order(resting.order_id)).status is OrderStatus.CANCELLED
        assert (await broker.adeposit(alice, "5")).cash == Decimal("8505.00")
        assert (await broker.awithdraw(alice, "5")).cash == Decimal("8500.00")
        assert (await broker.abalance(alice)).available == Decimal("8500.00")
        assert (await broker.aportfolio(alice)).net_worth == Decimal("10000.00")
        assert len(await broker.atransactions(alice)) == 4
        assert len(await broker.astocks()) == 2
        assert (await broker.adepth("BOOK")).symbol == "BOOK"
        assert await broker.atrades("BOOK") == []
        assert isinstance(await broker.abars("AAPL"), list)
        assert await broker.awatchlists(alice) == []
        with pytest.raises(UnknownSymbolError):
            await broker.aquote("NOPE")

    asyncio.run(scenario())


def test_many_coroutines_trade_at_once_and_conserve(broker: Brokerage) -> None:
    """400 orders from 40 accounts, all awaited on one loop at once, in a book symbol."""
    accounts = [
        broker.open_account(f"U{i}", f"User {i}", initial_deposit="100000").account_id
        for i in range(40)
    ]
    for account_id in accounts[::2]:
        broker.grant_shares(account_id, "BOOK", 500, "100")
    before = broker.audit()

    async def trade(index: int) -> OrderStatus:
        account_id = accounts[index % 40]
        side = "sell" if index % 40 % 2 == 0 else "buy"
        price = str(98 + index % 5)
        order = await broker.aplace_order(account_id, "BOOK", side, 1 + index % 3, "limit", price)
        return order.status

    async def crowd() -> list[OrderStatus]:
        return await asyncio.gather(*(trade(i) for i in range(400)))

    statuses = asyncio.run(crowd())
    assert OrderStatus.REJECTED not in statuses
    assert OrderStatus.EXECUTED in statuses
    for account_id in accounts:
        for order in broker.orders(account_id, ["pending", "partially_filled"]):
            broker.cancel_order(order.order_id)
    after = broker.audit()
    assert after.cash == before.cash
    assert after.shares["BOOK"] == before.shares["BOOK"]
    assert after.reserved_cash == 0


def test_asyncio_runtime_runs_the_actors_on_the_loop() -> None:
    """On the "asyncio" runtime the trading actors are callbacks of the calling loop: the
    coroutines work, blocking calls from the loop are refused (they would wait for
    themselves), blocking calls from other threads work, and books and accounts reconcile."""

    async def scenario() -> None:
        broker = Brokerage(runtime="asyncio").start()
        try:
            await asyncio.to_thread(broker.list_stock, "BOOK", "Book Co.", "100", "book")
            with pytest.raises(RuntimeError, match="wait for itself"):
                broker.quote("BOOK")
            seller = await asyncio.to_thread(broker.open_account, "S", "Seller")
            buyer = await asyncio.to_thread(
                broker.open_account, "B", "Buyer", initial_deposit="10000"
            )
            await asyncio.to_thread(broker.grant_shares, seller.account_id, "BOOK", 50, "90")
            asks = [
                broker.aplace_order(seller.account_id, "BOOK", "sell", 1, "limit", "100")
                for _ in range(50)
            ]
            bids = [broker.aplace_order(buyer.account_id, "BOOK", "buy", 1) for _ in range(50)]
            placed = await asyncio.gather(*asks)
            filled = await asyncio.gather(*bids)
            assert all(o.status is OrderStatus.PENDING for o in placed)
            assert all(o.status is OrderStatus.EXECUTED for o in filled)
            portfolio = await broker.aportfolio(buyer.account_id)
            assert portfolio.holdings[0].quantity == 50
            assert portfolio.cash == Decimal("5000.00")
            report = await asyncio.to_thread(broker.audit)
            assert report.shares["BOOK"] == 50
        finally:
            await broker.aclose()
        assert not broker.running

    asyncio.run(scenario())
