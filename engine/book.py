"""A price-time priority order book.

Per side, a `SortedDict` maps price (integer cents) to a `Level`: a FIFO of resting orders kept
in an insertion-ordered dict, so that the oldest order is first and any order can leave in O(1).
An index maps order id to its entry, so a cancel finds its order without a scan. `check()`
asserts every invariant; the tests call it after each operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedDict

from engine.ids import AccountId, OrderId
from engine.orders import Side


@dataclass(slots=True)
class RestingOrder:
    """An order's entry in the book: what the matching needs, nothing else.

    Attributes:
        price: The limit price in cents (the level it rests at).
        bound: For a buy, the highest price it may fill at (limit or collar); for a sell, the
            lowest. Equal to `price` for a limit order.
        owner: Opaque routing data for the order's account (the account actor's address).
    """

    order_id: OrderId
    account_id: AccountId
    side: Side
    price: int
    remaining: int
    sequence: int
    owner: Any = field(default=None, compare=False)
    day: bool = False


@dataclass(slots=True)
class Level:
    """All resting orders at one price on one side, oldest first."""

    price: int
    orders: dict[OrderId, RestingOrder] = field(default_factory=dict)
    volume: int = 0

    def first(self) -> RestingOrder:
        """The order with time priority at this level. O(1)."""
        return next(iter(self.orders.values()))


class OrderBook:
    """Resting limit orders of one symbol, both sides, in price-time priority."""

    def __init__(self) -> None:
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._index: dict[OrderId, RestingOrder] = {}
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def _side(self, side: Side) -> SortedDict:
        return self._bids if side is Side.BUY else self._asks

    def get(self, order_id: OrderId) -> RestingOrder | None:
        """Return the resting entry of `order_id`, or None. O(1)."""
        return self._index.get(order_id)

    def add(
        self,
        order_id: OrderId,
        account_id: AccountId,
        side: Side,
        price: int,
        quantity: int,
        owner: Any = None,
        day: bool = False,
    ) -> RestingOrder:
        """Rest an order at the back of its price level.

        O(log L) when it opens a new level (L levels on that side), else O(1).
        """
        if order_id in self._index:
            raise ValueError(f"order already rests in the book, was {order_id!r}")
        if quantity <= 0 or price <= 0:
            raise ValueError(
                f"a resting order needs a positive price and quantity, was {order_id!r}"
            )
        self._sequence += 1
        entry = RestingOrder(
            order_id, account_id, side, price, quantity, self._sequence, owner, day
        )
        levels = self._side(side)
        level = levels.get(price)
        if level is None:
            level = Level(price)
            levels[price] = level
        level.orders[order_id] = entry
        level.volume += quantity
        self._index[order_id] = entry
        return entry

    def remove(self, order_id: OrderId) -> RestingOrder | None:
        """Take an order out of the book; return its entry, or None if it does not rest here.

        O(1), plus O(log L) when its level empties.
        """
        entry = self._index.pop(order_id, None)
        if entry is None:
            return None
        levels = self._side(entry.side)
        level: Level = levels[entry.price]
        del level.orders[order_id]
        level.volume -= entry.remaining
        if not level.orders:
            del levels[entry.price]
        return entry

    def reduce(self, order_id: OrderId, quantity: int) -> RestingOrder:
        """Take `quantity` off a resting order (a fill); remove it when nothing is left.

        O(1), plus O(log L) when its level empties. Keeps the order's time priority.
        """
        entry = self._index[order_id]
        if not 0 < quantity <= entry.remaining:
            raise ValueError(f"cannot reduce {order_id} by more than it has, was {quantity}")
        if quantity == entry.remaining:
            self.remove(order_id)
            entry.remaining = 0
            return entry
        entry.remaining -= quantity
        self._side(entry.side)[entry.price].volume -= quantity
        return entry

    def relabel(
        self, order_id: OrderId, new_id: OrderId, quantity: int, owner: Any, day: bool
    ) -> RestingOrder:
        """Let `new_id` take over `order_id`'s place in the book with `quantity` shares (at most
        what it had): a replace that keeps its time priority. O(k) for the k orders at its
        level."""
        entry = self._index.pop(order_id)
        if not 0 < quantity <= entry.remaining or new_id in self._index:
            self._index[order_id] = entry
            raise ValueError(f"cannot relabel {order_id} as {new_id} with {quantity} shares")
        level: Level = self._side(entry.side)[entry.price]
        level.orders = {(new_id if k == order_id else k): v for k, v in level.orders.items()}
        level.volume -= entry.remaining - quantity
        entry.order_id, entry.remaining, entry.owner, entry.day = new_id, quantity, owner, day
        self._index[new_id] = entry
        return entry

    def entries(self) -> list[RestingOrder]:
        """Every resting order, in the order they came to rest. O(n)."""
        return sorted(self._index.values(), key=lambda entry: entry.sequence)

    def remove_day_orders(self) -> list[RestingOrder]:
        """Take every DAY order out of the book (the session closed). O(n)."""
        day = [entry for entry in self._index.values() if entry.day]
        for entry in day:
            self.remove(entry.order_id)
        return day

    def clear(self) -> list[RestingOrder]:
        """Take every order out of the book, whatever state it is in; return them. O(n)."""
        entries = list(self._index.values())
        self._bids = SortedDict()
        self._asks = SortedDict()
        self._index = {}
        return entries

    def best(self, side: Side) -> Level | None:
        """The best level of `side` (highest bid, lowest ask), or None. O(1)."""
        levels = self._side(side)
        if not levels:
            return None
        index = -1 if side is Side.BUY else 0
        level: Level = levels.peekitem(index)[1]
        return level

    def levels(self, side: Side) -> Iterator[Level]:
        """The levels of `side`, best first. O(1) per level."""
        levels = self._side(side)
        values = levels.values()
        return iter(reversed(values) if side is Side.BUY else values)

    def orders(self, side: Side) -> Iterator[RestingOrder]:
        """Every resting order of `side` in price-time priority."""
        for level in self.levels(side):
            yield from level.orders.values()

    def volume_within(self, side: Side, bound: int | None, needed: int) -> int:
        """Return the volume on `side` at prices no worse than `bound` (None: any price),
        counting only until `needed` is reached. O(k) for the k levels it reads."""
        total = 0
        for level in self.levels(side):
            if bound is not None and (
                level.price > bound if side is Side.SELL else level.price < bound
            ):
                break
            total += level.volume
            if total >= needed:
                break
        return total

    def depth(self, side: Side, count: int) -> list[tuple[int, int, int]]:
        """The best `count` levels of `side` as (price, volume, orders). O(count)."""
        result: list[tuple[int, int, int]] = []
        for level in self.levels(side):
            if len(result) == count:
                break
            result.append((level.price, level.volume, len(level.orders)))
        return result

    def check(self, *, allow_crossed: bool = False) -> None:
        """Assert every invariant of the book; raise AssertionError naming the broken one.

        O(n) in resting orders. Invariants: every level is non-empty and keyed by its own price;
        its volume is the sum of its orders' remaining quantities, all positive; every order sits
        on its own side at its own price and in the index; the index holds nothing else;
        sequences increase within a level (time priority); unless `allow_crossed`, the best bid
        is below the best ask.
        """
        seen = 0
        for side, levels in ((Side.BUY, self._bids), (Side.SELL, self._asks)):
            for price, level in levels.items():
                assert level.orders, f"empty level left at {price}"
                assert level.price == price, f"level keyed {price} holds price {level.price}"
                total = 0
                last_sequence = 0
                for order_id, entry in level.orders.items():
                    assert entry.order_id == order_id, f"level key {order_id} names another order"
                    assert entry.side is side, f"{order_id} rests on the wrong side"
                    assert entry.price == price, f"{order_id} rests at the wrong price"
                    assert entry.remaining > 0, f"{order_id} rests with nothing remaining"
                    assert entry.sequence > last_sequence, f"time priority broken at {order_id}"
                    last_sequence = entry.sequence
                    total += entry.remaining
                    seen += 1
                    assert self._index.get(order_id) is entry, f"{order_id} missing from index"
                assert total == level.volume, f"level {price} volume {level.volume} != {total}"
        assert seen == len(self._index), f"index holds {len(self._index)} orders, levels {seen}"
        if not allow_crossed and self._bids and self._asks:
            bid, ask = self._bids.peekitem(-1)[0], self._asks.peekitem(0)[0]
            assert bid < ask, f"book crossed: bid {bid} >= ask {ask}"
