"""The trigger book of stop orders, against a naive scan of every stop at every move."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest

from engine.ids import OrderId
from engine.orders import Side
from engine.stops import StopBook, trailing_stop

BUY, SELL = Side.BUY, Side.SELL


class Ticket(NamedTuple):
    order_id: OrderId
    side: Side


@dataclass
class Naive:
    """One stop as the naive model keeps it: its mark follows every move."""

    order_id: OrderId
    side: Side
    sequence: int
    stop: int | None
    trail_price: int | None
    trail_bps: int | None
    mark: int | None

    def stop_now(self) -> int:
        if self.stop is not None:
            return self.stop
        assert self.mark is not None
        return trailing_stop(self.side, self.mark, self.trail_price, self.trail_bps)

    def follow(self, price: int) -> None:
        if self.mark is not None:
            self.mark = max(self.mark, price) if self.side is SELL else min(self.mark, price)

    def triggered_at(self, price: int) -> bool:
        return price <= self.stop_now() if self.side is SELL else price >= self.stop_now()


class NaiveStops:
    def __init__(self) -> None:
        self.waiting: dict[OrderId, Naive] = {}
        self.sequence = 0

    def add(self, order_id: OrderId, side: Side, price: int, **terms: int | None) -> None:
        self.sequence += 1
        trailing = terms.get("stop_price") is None
        self.waiting[order_id] = Naive(
            order_id,
            side,
            self.sequence,
            terms.get("stop_price"),
            terms.get("trail_price"),
            terms.get("trail_bps"),
            price if trailing else None,
        )

    def move(self, price: int) -> list[tuple[OrderId, int, int | None]]:
        for stop in self.waiting.values():
            stop.follow(price)
        found = [s for s in self.waiting.values() if s.triggered_at(price)]
        sells = sorted(
            (s for s in found if s.side is SELL), key=lambda s: (-s.stop_now(), s.sequence)
        )
        buys = sorted((s for s in found if s.side is BUY), key=lambda s: (s.stop_now(), s.sequence))
        for stop in found:
            del self.waiting[stop.order_id]
        return [(s.order_id, s.stop_now(), s.mark) for s in sells + buys]


def _terms(rng: random.Random, price: int) -> dict[str, Any]:
    kind = rng.randrange(3)
    if kind == 0:
        return {"stop_price": max(1, price + rng.randint(-30, 30))}
    if kind == 1:
        return {"trail_price": rng.randint(1, 25)}
    return {"trail_bps": rng.choice([1, 50, 100, 250, 500, 1000, 2500])}


@pytest.mark.parametrize("seed", range(12))
def test_the_stop_book_triggers_what_a_naive_scan_triggers(seed: int) -> None:
    rng = random.Random(seed)
    book, naive = StopBook(), NaiveStops()
    price = 1_000
    book.move(price)
    number = 0
    for _ in range(600):
        action = rng.random()
        if action < 0.45:
            number += 1
            order_id = OrderId(f"O-{number:06d}")
            side = rng.choice((BUY, SELL))
            terms = _terms(rng, price)
            book.add(Ticket(order_id, side), price, **terms)
            naive.add(order_id, side, price, **terms)
        elif action < 0.55 and naive.waiting:
            order_id = rng.choice(sorted(naive.waiting))
            removed = book.remove(order_id)
            assert removed is not None
            assert removed.order_id == order_id
            del naive.waiting[order_id]
        else:
            price = max(1, price + rng.randint(-12, 12))
            got = [(t.entry.order_id, t.stop_price, t.mark) for t in book.move(price)]
            assert got == naive.move(price)
        book.check()
        assert len(book) == len(naive.waiting)
        for order_id, stop in naive.waiting.items():
            assert book.current(order_id) == (stop.stop_now(), stop.mark)


def test_a_sell_stop_triggers_at_or_below_its_stop_and_a_buy_stop_at_or_above() -> None:
    book = StopBook()
    book.add(Ticket(OrderId("O-1"), SELL), 100, stop_price=95)
    book.add(Ticket(OrderId("O-2"), BUY), 100, stop_price=105)
    assert book.move(96) == []
    assert [t.entry.order_id for t in book.move(95)] == ["O-1"]
    assert book.move(104) == []
    assert [(t.entry.order_id, t.stop_price) for t in book.move(110)] == [("O-2", 105)]
    assert len(book) == 0


def test_a_trailing_sell_follows_the_high_and_never_moves_back() -> None:
    book = StopBook()
    book.add(Ticket(OrderId("O-1"), SELL), 10_000, trail_price=200)
    book.move(10_500)  # the high-water mark rises to 105.00, the stop to 103.00
    assert book.current(OrderId("O-1")) == (10_300, 10_500)
    book.move(10_400)  # a fall moves neither
    assert book.current(OrderId("O-1")) == (10_300, 10_500)
    [triggered] = book.move(10_300)
    assert (triggered.stop_price, triggered.mark) == (10_300, 10_500)


def test_a_trailing_percent_stop_rounds_away_from_the_price() -> None:
    assert trailing_stop(SELL, 1_001, None, 1_000) == 900  # 90 % of 10.01 is 9.009: 9.00
    assert trailing_stop(BUY, 1_001, None, 1_000) == 1_102  # 110 % of 10.01 is 11.011: 11.02


def test_a_rise_merges_the_groups_below_it_and_a_fall_visits_only_triggered_groups() -> None:
    book = StopBook()
    for number, price in enumerate((1_000, 990, 980, 970), start=1):
        book.move(price)
        book.add(Ticket(OrderId(f"O-{number}"), SELL), price, trail_price=100)
    sells = book._sides[SELL]
    assert list(sells.groups) == [970, 980, 990, 1_000]
    book.move(995)  # the three groups below 995 become one
    assert list(sells.groups) == [995, 1_000]
    book.check()
    assert [t.entry.order_id for t in book.move(896)] == ["O-1"]  # 900 is crossed, 895 not
    assert list(sells.groups) == [995]
    book.check()
    assert [t.entry.order_id for t in book.move(895)] == ["O-2", "O-3", "O-4"]
    assert not sells.groups
    book.check()


def test_day_stops_leave_at_the_close_and_clear_empties_the_book() -> None:
    book = StopBook()
    book.add(Ticket(OrderId("O-1"), SELL), 100, stop_price=90, day=True)
    book.add(Ticket(OrderId("O-2"), BUY), 100, trail_bps=100)
    assert [e.order_id for e in book.remove_day_orders()] == ["O-1"]
    assert [e.order_id for e in book.clear()] == ["O-2"]
    assert len(book) == 0
    book.check()


def test_a_stop_needs_exactly_one_of_a_stop_price_or_a_trail() -> None:
    book = StopBook()
    with pytest.raises(ValueError, match="stop price or a trail"):
        book.add(Ticket(OrderId("O-1"), SELL), 100)
    with pytest.raises(ValueError, match="stop price or a trail"):
        book.add(Ticket(OrderId("O-1"), SELL), 100, stop_price=90, trail_price=5)
    book.add(Ticket(OrderId("O-1"), SELL), 100, stop_price=90)
    with pytest.raises(ValueError, match="already waits"):
        book.add(Ticket(OrderId("O-1"), SELL), 100, stop_price=90)
