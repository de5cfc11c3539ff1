"""Stop orders waiting for their trigger, kept so that a price move finds the ones it triggers
in O(log n + k) for n waiting and k triggered, without looking at the others (like the alerts).

A sell stop triggers when the price falls to its stop price or below, a buy stop when the price
rises to it or above. A trailing stop's stop price follows the price at a distance (an amount,
`trail_price`, or a percentage, `trail_bps` in hundredths of a percent): a sell's stop trails the
highest price seen since it was placed (its high-water mark), a buy's the lowest (its low-water
mark), and never moves back.

Both sides are kept in *oriented* prices, so one piece of code serves both: a sell's oriented
price is the price, a buy's is minus the price. Then every stop triggers when the oriented price
is at or below its oriented stop, and a trailing stop's mark is the highest oriented price seen.

Fixed stops sit in a sorted list by oriented stop, highest first: a move triggers a prefix.
Trailing stops sit in groups of one mark each (a `SortedDict` mark -> group). A move to x
raises every group whose mark is below x to x: those groups are the lowest ones, and they merge
into one (the smaller groups' stops move into the largest, so a stop moves O(log n) times in
all). Within a group the stops are sorted by trail, so the triggered ones are a prefix; the
groups are ranked by their best stop, so a move visits only groups with a stop to trigger.
Amortized, a move costs O(log n) per group it merges or triggers in, plus O(log n) per stop it
triggers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sortedcontainers import SortedDict, SortedList

from engine.ids import OrderId
from engine.orders import Side

BPS = 10_000
"""Hundredths of a percent in a whole: a `trail_bps` of 150 is 1.5 %."""


@dataclass(slots=True)
class StopEntry:
    """One waiting stop.

    Attributes:
        ticket: The order's terms (an `OrderTicket`, without its owner: see `owner`).
        owner: Routing data for the order's account.
        stop: The oriented stop of a fixed stop; unused for a trailing one (its group's mark
            and its trail say it).
        group: The trailing stop's group (None for a fixed stop).
    """

    order_id: OrderId
    side: Side
    ticket: Any
    sequence: int
    owner: Any = field(default=None, compare=False)
    day: bool = False
    stop: int = 0
    trail_price: int | None = None
    trail_bps: int | None = None
    group: _Group | None = field(default=None, compare=False, repr=False)


class Triggered(NamedTuple):
    """A stop a move triggered: its entry, its stop price and (trailing) mark, in cents."""

    entry: StopEntry
    stop_price: int
    mark: int | None


def trailing_stop(side: Side, mark: int, trail_price: int | None, trail_bps: int | None) -> int:
    """The stop price in cents of a trailing stop of `side` whose mark (high-water for a sell,
    low-water for a buy) is `mark` cents. A percentage rounds away from the price (down for a
    sell, up for a buy), so the stop never triggers before the trail is covered."""
    sign = 1 if side is Side.SELL else -1
    return sign * _oriented_stop(sign * mark, sign, trail_price, trail_bps)


def _oriented_stop(mark: int, sign: int, trail_price: int | None, trail_bps: int | None) -> int:
    if trail_price is not None:
        return mark - trail_price
    assert trail_bps is not None
    return mark * (BPS - sign * trail_bps) // BPS


class _Group:
    """The trailing stops of one side that share a mark, sorted by trail (smallest first)."""

    __slots__ = ("by_bps", "by_price", "mark", "number", "rank")

    def __init__(self, mark: int, number: int) -> None:
        self.mark = mark
        self.number = number  # unique within its side: the ranking's tie-break and key
        self.by_price: SortedList = SortedList()  # (trail_price, sequence)
        self.by_bps: SortedList = SortedList()  # (trail_bps, sequence)
        self.rank: tuple[int, int] | None = None  # its key in the side's ranking, if ranked

    def __len__(self) -> int:
        return len(self.by_price) + len(self.by_bps)


class _Side:
    """The waiting stops of one side, in oriented prices (see the module's docstring)."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = 1 if side is Side.SELL else -1
        self.fixed: SortedList = SortedList()  # (-stop, sequence)
        self.groups: SortedDict = SortedDict()  # mark -> _Group
        self.ranked: SortedList = SortedList()  # (-best stop, number) of non-empty groups
        self.by_rank: dict[int, _Group] = {}  # number -> group, for the ranked ones
        self.numbered = 0  # the last group number given
        self.entries: dict[int, StopEntry] = {}  # sequence -> entry

    def stop_of(self, group: _Group) -> int:
        """The highest oriented stop in `group`. O(1)."""
        best: int | None = None
        sign = self.sign
        if group.by_price:
            best = group.mark - int(group.by_price[0][0])
        if group.by_bps:
            stop = _oriented_stop(group.mark, sign, None, group.by_bps[0][0])
            best = stop if best is None else max(best, stop)
        assert best is not None
        return best

    def _unrank(self, group: _Group) -> None:
        if group.rank is not None:
            self.ranked.remove(group.rank)
            del self.by_rank[group.number]
            group.rank = None

    def _rank(self, group: _Group) -> None:
        self._unrank(group)
        if group:
            group.rank = (-self.stop_of(group), group.number)
            self.ranked.add(group.rank)
            self.by_rank[group.number] = group
        elif self.groups.get(group.mark) is group:
            del self.groups[group.mark]

    def add(self, entry: StopEntry, oriented: int) -> None:
        """Wait `entry`; a trailing one's mark starts at the oriented price `oriented`."""
        self.entries[entry.sequence] = entry
        if entry.trail_price is None and entry.trail_bps is None:
            self.fixed.add((-entry.stop, entry.sequence))
            return
        group = self.groups.get(oriented)
        if group is None:
            self.numbered += 1
            group = self.groups[oriented] = _Group(oriented, self.numbered)
        self._put(group, entry)
        self._rank(group)

    @staticmethod
    def _put(group: _Group, entry: StopEntry) -> None:
        if entry.trail_price is not None:
            group.by_price.add((entry.trail_price, entry.sequence))
        else:
            group.by_bps.add((entry.trail_bps, entry.sequence))
        entry.group = group

    def remove(self, entry: StopEntry) -> None:
        """Stop waiting `entry`. O(log n)."""
        del self.entries[entry.sequence]
        group = entry.group
        if group is None:
            self.fixed.remove((-entry.stop, entry.sequence))
            return
        if entry.trail_price is not None:
            group.by_price.remove((entry.trail_price, entry.sequence))
        else:
            group.by_bps.remove((entry.trail_bps, entry.sequence))
        entry.group = None
        self._rank(group)

    def rise(self, oriented: int) -> None:
        """Raise every mark below `oriented` to it, merging those groups into one."""
        groups = self.groups
        if not groups or groups.peekitem(0)[0] >= oriented:
            return
        lower: list[_Group] = []
        while groups and groups.peekitem(0)[0] < oriented:
            lower.append(groups.popitem(0)[1])
        into = groups.get(oriented)
        if into is not None:
            lower.append(into)
        base = max(lower, key=len)
        for group in lower:
            self._unrank(group)
            if group is base:
                continue
            for _, sequence in itertools.chain(group.by_price, group.by_bps):
                self._put(base, self.entries[sequence])
        base.mark = oriented
        groups[oriented] = base
        self._rank(base)

    def move(self, oriented: int) -> list[Triggered]:
        """Move to the oriented price `oriented`: raise the marks below it, then take out and
        return every stop at or above it, the first crossed first (ties: oldest first)."""
        self.rise(oriented)
        found: list[tuple[int, int, int | None]] = []  # (oriented stop, sequence, mark)
        fixed = self.fixed
        while fixed and -fixed[0][0] >= oriented:
            key = fixed.pop(0)
            found.append((-key[0], key[1], None))
        ranked = self.ranked
        while ranked and -ranked[0][0] >= oriented:
            group = self.by_rank[ranked[0][1]]
            mark = group.mark
            while group.by_price and mark - group.by_price[0][0] >= oriented:
                trail, sequence = group.by_price.pop(0)
                found.append((mark - trail, sequence, mark))
            while group.by_bps:
                stop = _oriented_stop(mark, self.sign, None, group.by_bps[0][0])
                if stop < oriented:
                    break
                found.append((stop, group.by_bps.pop(0)[1], mark))
            self._rank(group)
        found.sort(key=lambda item: (-item[0], item[1]))
        sign = self.sign
        triggered = []
        for stop, sequence, marked in found:
            entry = self.entries.pop(sequence)
            entry.group = None
            shown = None if marked is None else sign * marked
            triggered.append(Triggered(entry, sign * stop, shown))
        return triggered

    def current(self, entry: StopEntry) -> tuple[int, int | None]:
        """The stop price and mark (None for a fixed stop) of a waiting entry, in cents."""
        group = entry.group
        if group is None:
            return self.sign * entry.stop, None
        stop = _oriented_stop(group.mark, self.sign, entry.trail_price, entry.trail_bps)
        return self.sign * stop, self.sign * group.mark

    def check(self) -> None:
        """Assert this side's invariants (see `StopBook.check`)."""
        seen = set()
        for negative, sequence in self.fixed:
            entry = self.entries[sequence]
            assert entry.group is None, f"{entry.order_id} is fixed and in a group"
            assert entry.stop == -negative, f"{entry.order_id} filed at another stop"
            seen.add(sequence)
        assert len(self.by_rank) == len(self.ranked), "ranking and its index differ"
        group: _Group
        for mark, group in self.groups.items():
            assert group.mark == mark, f"group keyed {mark} has mark {group.mark}"
            assert group, f"empty group left at {mark}"
            assert group.rank == (-self.stop_of(group), group.number), f"group {mark} misranked"
            assert self.by_rank.get(group.number) is group, f"group {mark} not ranked"
            for _, sequence in itertools.chain(group.by_price, group.by_bps):
                entry = self.entries[sequence]
                assert entry.group is group, f"{entry.order_id} points at another group"
                assert sequence not in seen, f"{entry.order_id} filed twice"
                seen.add(sequence)
        assert len(self.ranked) == len(self.groups), "a ranked group is not kept"
        assert seen == set(self.entries), "entries and their files differ"


class StopBook:
    """One symbol's waiting stops, both sides."""

    def __init__(self) -> None:
        self._sides = {Side.BUY: _Side(Side.BUY), Side.SELL: _Side(Side.SELL)}
        self._index: dict[OrderId, StopEntry] = {}
        self.waiting = self._index
        """The waiting stops by order id (read-only: a cheap test of whether any waits)."""
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def add(
        self,
        ticket: Any,
        price: int,
        *,
        stop_price: int | None = None,
        trail_price: int | None = None,
        trail_bps: int | None = None,
        owner: Any = None,
        day: bool = False,
    ) -> StopEntry:
        """Wait a stop (a fixed `stop_price`, or a trail) with the price now at `price` cents
        (a trailing stop's mark starts there). O(log n)."""
        order_id: OrderId = ticket.order_id
        if order_id in self._index:
            raise ValueError(f"stop already waits, was {order_id!r}")
        if (stop_price is None) == (trail_price is None and trail_bps is None):
            raise ValueError(f"a stop needs a stop price or a trail, was {order_id!r}")
        side: Side = ticket.side
        book = self._sides[side]
        self._sequence += 1
        entry = StopEntry(
            order_id,
            side,
            ticket,
            self._sequence,
            owner,
            day,
            0 if stop_price is None else book.sign * stop_price,
            trail_price,
            trail_bps,
        )
        book.add(entry, book.sign * price)
        self._index[order_id] = entry
        return entry

    def remove(self, order_id: OrderId) -> StopEntry | None:
        """Take a waiting stop out; None if it does not wait here. O(log n)."""
        entry = self._index.pop(order_id, None)
        if entry is not None:
            self._sides[entry.side].remove(entry)
        return entry

    def get(self, order_id: OrderId) -> StopEntry | None:
        """The waiting entry of `order_id`, or None. O(1)."""
        return self._index.get(order_id)

    def current(self, order_id: OrderId) -> tuple[int, int | None] | None:
        """The stop price and mark (None for a fixed stop) of a waiting stop, in cents, or None
        if it does not wait here. O(1)."""
        entry = self._index.get(order_id)
        return None if entry is None else self._sides[entry.side].current(entry)

    def move(self, price: int) -> list[Triggered]:
        """The price moved to `price` cents: follow it with the trailing stops' marks, take out
        the stops it triggers and return them, sells first, each side's first crossed first.
        Amortized O(log n) per group merged or visited plus O(log n) per stop triggered."""
        triggered = []
        for side in (Side.SELL, Side.BUY):
            book = self._sides[side]
            for found in book.move(book.sign * price):
                del self._index[found.entry.order_id]
                triggered.append(found)
        return triggered

    def entries(self) -> list[StopEntry]:
        """Every waiting stop, oldest first. O(n log n)."""
        return sorted(self._index.values(), key=lambda entry: entry.sequence)

    def remove_day_orders(self) -> list[StopEntry]:
        """Take out every DAY stop (the session closed). O(n log n)."""
        day = [entry for entry in self.entries() if entry.day]
        for entry in day:
            self.remove(entry.order_id)
        return day

    def clear(self) -> list[StopEntry]:
        """Take out every stop; return them. O(n)."""
        entries = self.entries()
        self._sides = {Side.BUY: _Side(Side.BUY), Side.SELL: _Side(Side.SELL)}
        self._index.clear()
        return entries

    def __iter__(self) -> Iterator[StopEntry]:
        return iter(self.entries())

    def check(self) -> None:
        """Assert every invariant: each stop filed once, where its side and kind say; each
        trailing group non-empty, keyed by its mark and ranked by its best stop; the index
        holds exactly the filed stops."""
        for book in self._sides.values():
            book.check()
        filed = {e.order_id for book in self._sides.values() for e in book.entries.values()}
        assert filed == set(self._index), "index and filed stops differ"
