from __future__ import annotations

import random

import pytest

from engine.book import OrderBook
from engine.ids import AccountId, OrderId
from engine.orders import Side

A = AccountId("A")


def oid(n: int) -> OrderId:
    return OrderId(f"O-{n}")


def test_best_levels_are_highest_bid_and_lowest_ask() -> None:
    book = OrderBook()
    book.add(oid(1), A, Side.BUY, 100, 5)
    book.add(oid(2), A, Side.BUY, 102, 3)
    book.add(oid(3), A, Side.SELL, 105, 7)
    book.add(oid(4), A, Side.SELL, 104, 1)

    bid, ask = book.best(Side.BUY), book.best(Side.SELL)

    assert bid is not None
    assert bid.price == 102
    assert ask is not None
    assert ask.price == 104
    book.check()


def test_orders_at_one_price_keep_time_priority_and_cancel_keeps_the_rest_in_order() -> None:
    book = OrderBook()
    for n in range(1, 5):
        book.add(oid(n), A, Side.SELL, 100, n)

    book.remove(oid(2))

    assert [o.order_id for o in book.orders(Side.SELL)] == [oid(1), oid(3), oid(4)]
    assert book.depth(Side.SELL, 5) == [(100, 1 + 3 + 4, 3)]
    book.check()


def test_reduce_keeps_priority_and_removes_a_filled_order() -> None:
    book = OrderBook()
    book.add(oid(1), A, Side.BUY, 100, 5)
    book.add(oid(2), A, Side.BUY, 100, 5)

    book.reduce(oid(1), 2)
    assert book.best(Side.BUY).first().order_id == oid(1)  # type: ignore[union-attr]
    book.reduce(oid(1), 3)

    assert oid(1) not in book
    assert book.best(Side.BUY).first().order_id == oid(2)  # type: ignore[union-attr]
    book.check()


def test_volume_within_a_bound_stops_at_the_bound() -> None:
    book = OrderBook()
    book.add(oid(1), A, Side.SELL, 100, 5)
    book.add(oid(2), A, Side.SELL, 101, 5)
    book.add(oid(3), A, Side.SELL, 103, 5)

    assert book.volume_within(Side.SELL, 101, 100) == 10
    assert book.volume_within(Side.SELL, None, 100) == 15
    assert book.volume_within(Side.SELL, 99, 100) == 0


def test_check_catches_a_corrupted_level_volume() -> None:
    book = OrderBook()
    book.add(oid(1), A, Side.BUY, 100, 5)
    book.best(Side.BUY).volume = 4  # type: ignore[union-attr]

    with pytest.raises(AssertionError, match="volume"):
        book.check()


def test_check_catches_a_crossed_book() -> None:
    book = OrderBook()
    book.add(oid(1), A, Side.BUY, 101, 5)
    book.add(oid(2), A, Side.SELL, 100, 5)

    with pytest.raises(AssertionError, match="crossed"):
        book.check()
    book.check(allow_crossed=True)


def test_adding_an_order_twice_is_refused() -> None:
    book = OrderBook()
    book.add(oid(1), A, Side.BUY, 100, 5)

    with pytest.raises(ValueError, match="already rests"):
        book.add(oid(1), A, Side.BUY, 100, 5)


class NaiveBook:
    """The reference: a plain list, sorted on every read."""

    def __init__(self) -> None:
        self.orders: list[tuple[OrderId, Side, int, int, int]] = []  # id, side, price, qty, seq
        self.seq = 0

    def add(self, order_id: OrderId, side: Side, price: int, quantity: int) -> None:
        self.seq += 1
        self.orders.append((order_id, side, price, quantity, self.seq))

    def remove(self, order_id: OrderId) -> None:
        self.orders = [o for o in self.orders if o[0] != order_id]

    def reduce(self, order_id: OrderId, quantity: int) -> None:
        for i, o in enumerate(self.orders):
            if o[0] == order_id:
                left = o[3] - quantity
                self.orders[i] = (o[0], o[1], o[2], left, o[4])
                if not left:
                    del self.orders[i]
                return

    def in_priority(self, side: Side) -> list[tuple[OrderId, int, int]]:
        mine = [o for o in self.orders if o[1] is side]
        key = (lambda o: (-o[2], o[4])) if side is Side.BUY else (lambda o: (o[2], o[4]))
        return [(o[0], o[2], o[3]) for o in sorted(mine, key=key)]


@pytest.mark.parametrize("seed", range(5))
def test_seeded_random_operations_match_the_naive_reference_book(seed: int) -> None:
    rng = random.Random(seed)
    book, naive = OrderBook(), NaiveBook()
    live: list[OrderId] = []

    for n in range(3000):
        action = rng.random()
        if action < 0.5 or not live:
            side = rng.choice([Side.BUY, Side.SELL])
            # bids below 100, asks from 100: a book that never crosses
            price = rng.randint(80, 99) if side is Side.BUY else rng.randint(100, 120)
            quantity = rng.randint(1, 50)
            book.add(oid(n), A, side, price, quantity)
            naive.add(oid(n), side, price, quantity)
            live.append(oid(n))
        elif action < 0.75:
            victim = live.pop(rng.randrange(len(live)))
            assert book.remove(victim) is not None
            naive.remove(victim)
        else:
            target = rng.choice(live)
            entry = book.get(target)
            assert entry is not None
            quantity = rng.randint(1, entry.remaining)
            book.reduce(target, quantity)
            naive.reduce(target, quantity)
            if target not in book:
                live.remove(target)

        book.check()
        for side in (Side.BUY, Side.SELL):
            assert [(o.order_id, o.price, o.remaining) for o in book.orders(side)] == (
                naive.in_priority(side)
            )
    assert len(book) == len(naive.orders)
