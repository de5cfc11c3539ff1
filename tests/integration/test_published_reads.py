"""Quotes and searches answered from what the actors publish (`actors.board`), without a
message: a read still shows every change a call returned from before it, on both runtimes and
from many threads at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from actors.board import Board, Generations
from engine import OrderStatus
from gateway import Brokerage
from gateway.server.encode import Encoded, dumps
from tests.integration.test_supervision import Crash, symbol_actor

WRITERS = 4
READERS = 4
ROUNDS = 30


def published(broker: Brokerage, symbol: str) -> Any:
    engine: Any = broker._engine
    return engine.board.quotes.get(symbol)


def test_a_quote_read_after_each_change_shows_it(broker: Brokerage) -> None:
    buyer = broker.open_account("B", "Buyer", initial_deposit="100000").account_id
    seller = broker.open_account("S", "Seller", initial_deposit="100000").account_id
    broker.grant_shares(seller, "BOOK", 100, "100")
    first = broker.quote("BOOK")
    assert published(broker, "BOOK") is first  # kept until the next change
    assert broker.quote("BOOK") is first

    bid = broker.place_order(buyer, "BOOK", "buy", 5, "limit", "99")
    assert published(broker, "BOOK") is None
    assert (broker.quote("BOOK").bid, broker.quote("BOOK").bid_size) == (Decimal("99.00"), 5)
    moved = broker.replace_order(bid.order_id, quantity=7, limit_price="98")
    assert (broker.quote("BOOK").bid, broker.quote("BOOK").bid_size) == (Decimal("98.00"), 7)
    broker.place_order(seller, "BOOK", "sell", 3, "limit", "98")
    traded = broker.quote("BOOK")
    assert (traded.last_price, traded.volume, traded.bid_size) == (Decimal("98.00"), 3, 4)
    broker.cancel_order(moved.order_id)
    assert broker.quote("BOOK").bid is None

    broker.quote("AAPL")
    assert broker.update_price("AAPL", "151.25").last_price == Decimal("151.25")
    assert broker.quote("AAPL").last_price == Decimal("151.25")
    broker.place_order(buyer, "AAPL", "buy", 2)
    assert broker.quote("AAPL").volume == 2
    day = broker.place_order(buyer, "BOOK", "buy", 1, "limit", "90", "day")
    assert broker.quote("BOOK").bid == Decimal("90.00")
    broker.expire_day_orders()
    assert broker.get_order(day.order_id).status is OrderStatus.CANCELLED
    assert broker.quote("BOOK").bid is None


def test_a_halt_shows_in_the_quote_published_before_it() -> None:
    with Brokerage(timeout=20) as broker:
        broker.list_stock("BOOK", "Book Traded Co.", "100.00", mode="book")
        account = broker.open_account("U", "User", initial_deposit="10000").account_id
        assert not broker.quote("BOOK").halted
        actor = symbol_actor(broker, "BOOK")

        def failing_submit(*_: Any) -> Any:
            raise Crash("the matcher broke")

        actor.market.submit = failing_submit  # type: ignore[method-assign,assignment]
        broker.place_order(account, "BOOK", "buy", 1, "limit", "99")
        assert broker.quote("BOOK").halted


def test_quotes_read_from_many_threads_show_every_change_the_caller_made(
    broker: Brokerage,
) -> None:
    """Each writer owns a book-mode symbol: after each of its calls returns, its own quote
    shows it, while readers read every symbol's quote and see each one's trades only grow."""
    symbols = [f"W{n}" for n in range(WRITERS)]
    for symbol in symbols:
        broker.list_stock(symbol, f"Writer {symbol} Co.", "100.00", mode="book")
    sellers: list[str] = []
    buyers: list[str] = []
    for n in range(WRITERS):
        opened = broker.open_account(f"S{n}", f"Seller {n}", initial_deposit="1000000")
        broker.grant_shares(opened.account_id, symbols[n], 10_000, "100")
        sellers.append(opened.account_id)
        opened = broker.open_account(f"B{n}", f"Buyer {n}", initial_deposit="1000000")
        buyers.append(opened.account_id)
    done = threading.Event()

    def write(n: int) -> None:
        symbol, account, buyer = symbols[n], sellers[n], buyers[n]
        for round_ in range(ROUNDS):
            price = Decimal(100 + round_ % 7)
            assert broker.update_price(symbol, price).last_price == price
            assert broker.quote(symbol).last_price == price
            order = broker.place_order(buyer, symbol, "buy", 1, "limit", price - 1)
            assert broker.quote(symbol).bid == price - 1
            broker.cancel_order(order.order_id)
            assert broker.quote(symbol).bid is None
            broker.place_order(account, symbol, "sell", 1, "limit", price + 1)
            broker.place_order(buyer, symbol, "buy", 1, "limit", price + 1)
            seen = broker.quote(symbol)
            assert (seen.last_price, seen.trades) == (price + 1, round_ + 1)

    def read(_: int) -> int:
        last = dict.fromkeys(symbols, 0)
        reads = 0
        while not done.is_set() or reads == 0:
            for symbol in symbols:
                trades = broker.quote(symbol).trades
                assert trades >= last[symbol], f"{symbol} went back from {last[symbol]}"
                last[symbol] = trades
                reads += 1
            time.sleep(0.0005)  # let the writers run
        return reads

    with ThreadPoolExecutor(WRITERS + READERS) as pool:
        readers = [pool.submit(read, n) for n in range(READERS)]
        writers = [pool.submit(write, n) for n in range(WRITERS)]
        try:
            for future in writers:
                future.result()
        finally:
            done.set()
        assert all(future.result() > 0 for future in readers)
    for symbol in symbols:
        assert broker.quote(symbol).trades == ROUNDS
    report = broker.audit()
    assert report.reserved_cash == 0
    assert sum(report.reserved_shares.values()) == 0
    for seller, buyer in zip(sellers, buyers, strict=True):  # what one paid, the other got
        cash = broker.balance(seller).cash + broker.balance(buyer).cash
        assert cash == Decimal("2000000.00")
        shares = [p.quantity for a in (seller, buyer) for p in broker.portfolio(a).holdings]
        assert sum(shares) == 10_000
        assert all(quantity >= 0 for quantity in shares)


@pytest.mark.parametrize("runtime", ["mn", "threads"])
def test_a_stock_listed_is_found_by_searches_kept_before_it(runtime: str) -> None:
    with Brokerage(timeout=20, runtime=runtime) as broker:
        broker.list_stock("ZZA", "Zeta Alpha Co.", "10.00")
        assert [r.symbol for r in broker.search("zeta")] == ["ZZA"]
        kept = broker.search_shared("zeta")
        assert broker.search_shared("zeta") is kept  # kept while the listing stands
        assert broker.search("zeta") == list(kept)
        broker.list_stock("ZZB", "Zeta Beta Co.", "10.00")
        assert [r.symbol for r in broker.search("zeta")] == ["ZZA", "ZZB"]
        assert [r.symbol for r in broker.search("zeta", limit=1)] == ["ZZA"]


@pytest.mark.parametrize("runtime", ["mn", "threads"])
def test_searches_from_many_threads_find_each_stock_once_its_listing_returned(
    runtime: str,
) -> None:
    listed = 40
    with Brokerage(timeout=20, runtime=runtime) as broker:
        done = threading.Event()

        def list_all() -> None:
            for n in range(listed):
                broker.list_stock(f"Q{n:02d}", f"Quux {n} Co.", "10.00")
                found = {str(r.symbol) for r in broker.search("quux", limit=100)}
                assert f"Q{n:02d}" in found
                assert len(found) == n + 1

        def search(_: int) -> int:
            most = 0
            while not done.is_set():
                found = len(broker.search("quux", limit=100))
                assert found >= most, f"searches went back from {most} to {found}"
                most = found
                time.sleep(0.0005)
            return most

        with ThreadPoolExecutor(1 + READERS) as pool:
            readers = [pool.submit(search, n) for n in range(READERS)]
            try:
                pool.submit(list_all).result()
            finally:
                done.set()
            assert all(0 <= future.result() <= listed for future in readers)
        assert len(broker.search("quux", limit=100)) == listed


def test_kept_answers_hold_while_the_count_stands_and_stay_bounded() -> None:
    board = Board()
    kept: Generations[str, int] = Generations(board, size=3)
    mark = kept.mark()
    board.listings += 1  # a listing came in while the question was out
    kept.keep("late", mark, 1)
    assert kept.get("late") is None  # never kept: it may lack that listing
    mark = kept.mark()
    kept.keep("a", mark, 1)
    assert kept.get("a") == 1
    board.listings += 1
    assert kept.get("a") is None  # the listing moved on
    mark = kept.mark()
    for n, key in enumerate("bcde"):
        kept.keep(key, mark, n)
    assert [kept.get(key) for key in "abcde"] == [None, None, 1, 2, 3]  # the oldest dropped


def test_encoded_answers_are_written_once_per_object_and_stay_bounded() -> None:
    encoded = Encoded(size=2)
    first = ("A", Decimal("1.50"))
    content = encoded.dumps("k", first)
    assert content == dumps(first)
    assert encoded.dumps("k", first) is content  # the same object: the same bytes
    assert encoded.dumps("k", ("A", Decimal("2"))) == b'["A","2"]'  # another: written again
    encoded.dumps("x", 1)
    encoded.dumps("y", 2)
    assert len(encoded._kept) == 2
