"""One symbol's market: its book, its price, and how orders execute against it.

Two liquidity modes (see `LiquidityMode`) and one execution strategy per order type (market,
limit) that says how far an order may go and whether its rest may wait in the book. Everything
here is pure: times and trade ids come in as arguments, results go out as values.

`OrderTicket`, `Fill` and `MatchResult` travel in every order's messages, so they are
`NamedTuple`s: immutable, and cheaper to build than frozen dataclasses.
"""

from __future__ import annotations

import itertools
import random
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from engine.audit import MarketAudit
from engine.bars import INTERVALS, BarSeries
from engine.book import OrderBook, RestingOrder
from engine.ids import AccountId, OrderId, Symbol, TradeId
from engine.money import cents_to_decimal, percent
from engine.orders import (
    STOP_TYPES,
    CancelReason,
    LiquidityMode,
    Order,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    ns_to_datetime,
)
from engine.slippage import Slippage
from engine.stops import StopBook, StopEntry


class OrderTicket(NamedTuple):
    """An accepted order's terms as the matching sees them (its reservation is already made).

    Attributes:
        bound: For a buy, the highest price it may fill at (its limit, or the collar price of a
            market buy); for a sell, its limit, or None for a market sell.
        owner: Routing data for the order's account, carried into the book for later fills.
    """

    order_id: OrderId
    account_id: AccountId
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: int
    limit_price: int | None
    bound: int | None
    owner: Any = None
    stop_price: int | None = None
    trail_price: int | None = None
    trail_bps: int | None = None
    self_trade: SelfTradePrevention | None = None

    @classmethod
    def of(cls, order: Order, owner: Any = None) -> OrderTicket:
        """The ticket of an accepted order: a buy is bound by its limit, or else by its reserve
        price (the collar), a sell by its limit (none for a market sell)."""
        bound = order.limit_price
        if bound is None and order.side is Side.BUY:
            bound = order.reserve_price
        return cls(
            order.order_id,
            order.account_id,
            order.side,
            order.order_type,
            order.time_in_force,
            order.quantity,
            order.limit_price,
            bound,
            owner,
            order.stop_price if order.order_type is not OrderType.TRAILING_STOP else None,
            order.trail_price,
            order.trail_bps,
            order.self_trade,
        )


class Fill(NamedTuple):
    """One trade: `quantity` shares of `symbol` at `price` (cents) between two orders.

    In `market` mode the broker's market is the other side: its order and account ids are None.
    """

    trade_id: TradeId
    symbol: Symbol
    price: int
    quantity: int
    buy_order_id: OrderId | None
    buy_account_id: AccountId | None
    sell_order_id: OrderId | None
    sell_account_id: AccountId | None
    taker_side: Side
    at_ns: int
    maker_owner: Any = None

    def order_id_for(self, side: Side) -> OrderId | None:
        """The order on `side` of this trade."""
        return self.buy_order_id if side is Side.BUY else self.sell_order_id


class MatchResult(NamedTuple):
    """What happened to a submitted order at once.

    Attributes:
        fills: The trades, in the order they happened.
        rested: True if its unfilled rest now waits in the book.
        cancel_reason: Why its unfilled rest was cancelled, if it was.
    """

    fills: tuple[Fill, ...]
    rested: bool
    cancel_reason: CancelReason | None
    triggered: tuple[int, int | None] | None = None
    """For a stop that triggered at once (its condition held when it came): its stop price
    and mark (None), in cents."""
    cancelled: tuple[RestingOrder, ...] = ()
    """Resting orders of the order's own account that self-trade prevention took out of the
    book (to be cancelled, reason SELF_TRADE)."""


class Replacement(NamedTuple):
    """What a replace did in the book: the replaced order had `filled` shares filled, the new
    order is for the `quantity` still to fill (its total less those), and `result` is what it
    did when it came (`kept_priority`: it took the old order's place)."""

    filled: int
    quantity: int
    result: MatchResult
    kept_priority: bool


class StopTriggered(NamedTuple):
    """A waiting stop a price move triggered (its stop price and, for a trailing stop, its
    mark, in cents), and what then happened to it as the market or limit order it became: its
    fills (the makers' sides of them too), its rest waiting in the book or cancelled."""

    order_id: OrderId
    account_id: AccountId
    owner: Any
    stop_price: int
    mark: int | None
    result: MatchResult
    at_ns: int


class ExecutionStrategy(Protocol):
    """How one order type executes."""

    def may_rest(self, ticket: OrderTicket) -> bool:
        """Whether the unfilled rest of `ticket` waits in the book."""

    def unfilled_reason(self, ticket: OrderTicket, blocked_by_bound: bool) -> CancelReason:
        """Why the unfilled rest of a ticket that may not rest is cancelled."""


class MarketOrderStrategy:
    """A market order fills now at the market, never above its collar; its rest is cancelled."""

    def may_rest(self, ticket: OrderTicket) -> bool:
        """A market order never rests."""
        return False

    def unfilled_reason(self, ticket: OrderTicket, blocked_by_bound: bool) -> CancelReason:
        """The collar stopped it, or there was nothing to trade with."""
        if ticket.time_in_force is TimeInForce.FOK:
            return CancelReason.FILL_OR_KILL
        return CancelReason.PRICE_COLLAR if blocked_by_bound else CancelReason.NO_LIQUIDITY


class LimitOrderStrategy:
    """A limit order fills at its limit or better; a GTC rest waits in the book."""

    def may_rest(self, ticket: OrderTicket) -> bool:
        """Good-till-cancelled and DAY limit orders rest."""
        return ticket.time_in_force in (TimeInForce.GTC, TimeInForce.DAY)

    def unfilled_reason(self, ticket: OrderTicket, blocked_by_bound: bool) -> CancelReason:
        """IOC cancels its rest, FOK kills the whole order."""
        if ticket.time_in_force is TimeInForce.FOK:
            return CancelReason.FILL_OR_KILL
        return CancelReason.IMMEDIATE_OR_CANCEL


STRATEGIES: dict[OrderType, ExecutionStrategy] = {
    OrderType.MARKET: MarketOrderStrategy(),
    OrderType.LIMIT: LimitOrderStrategy(),
}


def _within(side: Side, price: int, bound: int | None) -> bool:
    if bound is None:
        return True
    return price <= bound if side is Side.BUY else price >= bound


BAR_LIMIT = 1_440
"""Bars each interval keeps: a day of minutes, five days of 5 minutes, about four years of
days."""


@dataclass(frozen=True, slots=True)
class QuoteSnapshot:
    """A symbol's market data at one moment. Prices are `Decimal`; sizes are shares."""

    symbol: Symbol
    name: str
    mode: LiquidityMode
    last_price: Decimal
    bid: Decimal | None
    bid_size: int
    ask: Decimal | None
    ask_size: int
    open: Decimal
    high: Decimal
    low: Decimal
    volume: int
    trades: int
    updated_at: datetime
    change: Decimal
    change_percent: Decimal | None
    halted: bool = False


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One price level of a book side: total shares and how many orders."""

    price: Decimal
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class Depth:
    """The best levels of each side of a symbol's book, best first."""

    symbol: Symbol
    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade on a symbol's tape (`taker_side` is the side that crossed)."""

    trade_id: TradeId
    symbol: Symbol
    price: Decimal
    quantity: int
    taker_side: Side
    at: datetime


@dataclass(frozen=True, slots=True)
class PricePoint:
    """The price of a symbol from `at` on."""

    at: datetime
    price: Decimal


class Market:
    """One symbol's book, price, bars, trade tape and price history.

    Args:
        history_limit: How many price points `history()` keeps, newest last.
        tape_limit: How many trades the tape keeps.
        bar_limit: How many bars each interval keeps.
    """

    def __init__(
        self,
        symbol: Symbol,
        name: str,
        price: int,
        mode: LiquidityMode,
        at_ns: int,
        *,
        history_limit: int = 100_000,
        tape_limit: int = 1_000,
        bar_limit: int = BAR_LIMIT,
    ) -> None:
        self.symbol = symbol
        self.name = name
        self.mode = mode
        self.book = OrderBook()
        self.halted = False
        self.price = price
        self.bars = {interval: BarSeries(interval, bar_limit) for interval in INTERVALS}
        self._series = tuple(self.bars.values())
        for series in self._series:
            series.price(price, at_ns)
        self.volume = 0
        self.trade_count = 0
        self.updated_ns = at_ns
        self._history = PriceHistory(history_limit)
        self._history.append(at_ns, price)
        self.tape: deque[Fill] = deque(maxlen=tape_limit)
        self.stops = StopBook()
        self._stops_waiting = self.stops.waiting
        self.triggered: list[StopTriggered] = []
        """The stops triggered since `take_triggered` was last called, in order."""
        self.pairs: dict[OrderId, OrderId] = {}
        """The legs of one-cancels-other pairs working here, each to the other."""
        self._taken: dict[OrderId, int] = {}
        """Shares taken off a pair's leg while it rests nowhere (being entered or triggered
        in this same step); `_ENDED` once its other leg ended."""
        self.slippage: Slippage | None = None
        """What an order filling on arrival pays past the last price (`market` mode)."""
        self._draws: random.Random | None = None

    def set_slippage(self, model: Slippage | None) -> None:
        """Fill `market`-mode orders on arrival under `model` from now on (None: at the last
        price); its random draws start again from its seed."""
        self.slippage = model
        self._draws = None if model is None else model.generator(self.symbol)

    def take_triggered(self) -> list[StopTriggered]:
        """The stops triggered since the last call (by price moves or trades), oldest first."""
        found = self.triggered
        if found:
            self.triggered = []
        return found

    # -- prices ------------------------------------------------------------------------------

    def _set_price(self, price: int, at_ns: int) -> bool:
        changed = price != self.price
        self.price = price
        for series in self._series:
            series.price(price, at_ns)
        self.updated_ns = at_ns
        if changed:
            self._history.append(at_ns, price)
        return changed

    def update_price(self, price: int, at_ns: int, next_trade_id: _TradeIds) -> list[Fill]:
        """Move the price (the feed's entry point) and return the fills it triggers.

        In `market` mode every resting buy limited at or above the new price and every resting
        sell limited at or below it fills in full at the new price, in price-time priority;
        then the stops the price reaches trigger (see `take_triggered`). In `book` mode the
        price is a reference only (for collars and valuation); nothing trades or triggers.
        O(log L + k) for k triggered orders, plus the stop book's move (amortized O(log n) per
        stop it triggers).
        """
        self._set_price(price, at_ns)
        if self.mode is LiquidityMode.BOOK:
            return []
        fills: list[Fill] = []
        for side in (Side.BUY, Side.SELL):
            while True:
                level = self.book.best(side)
                if level is None or not _within(side, price, level.price):
                    break
                entry = level.first()
                self.book.remove(entry.order_id)
                fills.append(
                    self._fill(
                        next_trade_id(),
                        price,
                        entry.remaining,
                        side,
                        entry.order_id,
                        entry.account_id,
                        None,
                        None,
                        at_ns,
                        entry.owner,
                    )
                )
        if self._stops_waiting:
            self._run_stops(at_ns, next_trade_id)
        return fills

    # -- orders ------------------------------------------------------------------------------

    def submit(self, ticket: OrderTicket, at_ns: int, next_trade_id: _TradeIds) -> MatchResult:
        """Execute an accepted order now and rest or cancel what is left.

        `market` mode: if the current price is within the order's bound it fills in full at that
        price, else a GTC limit rests. `book` mode: it takes resting orders of the other side in
        price-time priority at their prices while they are within its bound (a FOK first checks
        that enough is there); the price its trades reach triggers the stops it reaches (see
        `take_triggered`). A stop waits for its trigger (`rested`), or, if the price is already
        at its stop, triggers at once and executes as the order it becomes. O(log L + k) for k
        resting orders touched, plus the stops triggered.
        """
        if ticket.order_type in STOP_TYPES:
            result = self._wait(ticket, at_ns, next_trade_id)
        else:
            result = self._execute(ticket, at_ns, next_trade_id)
        if self.pairs and result.cancel_reason is not None:
            self._end_pair(ticket.order_id)
        if self._stops_waiting and result.fills and self.mode is LiquidityMode.BOOK:
            self._run_stops(at_ns, next_trade_id)
        return result

    def submit_pair(
        self, first: OrderTicket, second: OrderTicket, at_ns: int, next_trade_id: _TradeIds
    ) -> tuple[MatchResult, MatchResult]:
        """Submit the two legs of a one-cancels-other pair (same side, same quantity), `first`
        first: from now on a fill of either takes as many shares off the other, and when
        either ends the other goes. `second` comes for what `first` left of it; when that is
        nothing, or `first` ended, it does not come at all (its result is empty: its account
        ends it with `first`)."""
        a, b = first.order_id, second.order_id
        self.pairs[a], self.pairs[b] = b, a
        result = self.submit(first, at_ns, next_trade_id)
        left = second.quantity - self._taken.pop(b, 0)
        if left <= 0 or b not in self.pairs:
            self._unlink(b)
            return result, MatchResult((), rested=False, cancel_reason=None)
        return result, self.submit(second._replace(quantity=left), at_ns, next_trade_id)

    def _take_off(self, order_id: OrderId, quantity: int) -> None:
        """Its pair's other leg filled `quantity` shares: take as many off `order_id`."""
        entry = self.book.get(order_id)
        if entry is not None:
            self.book.reduce(order_id, quantity)
            if not entry.remaining:
                self._unlink(order_id)
            return
        stop = self.stops.get(order_id)
        if stop is None:  # on its way in: taken off when it comes
            self._taken[order_id] = self._taken.get(order_id, 0) + quantity
            return
        left = stop.ticket.quantity - quantity
        if left > 0:
            stop.ticket = stop.ticket._replace(quantity=left)
        else:
            self.stops.remove(order_id)
            self._unlink(order_id)

    def _end_pair(self, order_id: OrderId) -> None:
        """A pair's leg ended: take the other leg out too (its account cancels it)."""
        other = self._unlink(order_id)
        if other is None:
            return
        if self.book.remove(other) is None and self.stops.remove(other) is None:
            self._taken[other] = _ENDED

    def _unlink(self, order_id: OrderId) -> OrderId | None:
        """Forget the pair of `order_id`; return the other leg (None if unpaired)."""
        other = self.pairs.pop(order_id, None)
        if other is not None:
            del self.pairs[other]
        return other

    def _one_per_pair(self, entries: list[Any]) -> list[Any]:
        """`entries` taken out of the book, with one leg of each pair among them (its account
        ends the other with it), the pairs forgotten."""
        if not self.pairs:
            return entries
        kept, gone = [], set()
        for entry in entries:
            if entry.order_id in gone:
                continue
            other = self._unlink(entry.order_id)
            if other is not None:
                gone.add(other)
            kept.append(entry)
        return kept

    def _wait(self, ticket: OrderTicket, at_ns: int, next_trade_id: _TradeIds) -> MatchResult:
        """Put a stop in the stop book, or execute it at once if its stop is reached."""
        stop = ticket.stop_price
        if stop is not None and (
            self.price <= stop if ticket.side is Side.SELL else self.price >= stop
        ):
            result = self._execute(_entered(ticket), at_ns, next_trade_id)
            return result._replace(triggered=(stop, None))
        self.stops.add(
            ticket._replace(owner=None),
            self.price,
            stop_price=stop,
            trail_price=ticket.trail_price,
            trail_bps=ticket.trail_bps,
            owner=ticket.owner,
            day=ticket.time_in_force is TimeInForce.DAY,
        )
        return MatchResult((), rested=True, cancel_reason=None)

    def _run_stops(self, at_ns: int, next_trade_id: _TradeIds) -> None:
        """Trigger the stops the current price reaches and execute each as the order it
        becomes, until the price their trades reach triggers no more (book mode: a cascade)."""
        while True:
            found = self.stops.move(self.price)
            if not found:
                return
            for trigger in found:
                entry = trigger.entry
                ticket = _entered(entry.ticket._replace(owner=entry.owner))
                if self._taken:  # a pair's leg, which the other's fills took off meanwhile
                    left = ticket.quantity - self._taken.pop(ticket.order_id, 0)
                    if left <= 0:
                        self._unlink(ticket.order_id)
                        continue
                    ticket = ticket._replace(quantity=left)
                result = self._execute(ticket, at_ns, next_trade_id)
                if self.pairs and result.cancel_reason is not None:
                    self._end_pair(ticket.order_id)
                self.triggered.append(
                    StopTriggered(
                        entry.order_id,
                        ticket.account_id,
                        entry.owner,
                        trigger.stop_price,
                        trigger.mark,
                        result,
                        at_ns,
                    )
                )

    def _execute(self, ticket: OrderTicket, at_ns: int, next_trade_id: _TradeIds) -> MatchResult:
        strategy = STRATEGIES[ticket.order_type]
        if self.mode is LiquidityMode.MARKET:
            if _within(ticket.side, self.price, ticket.bound):
                price = self.price
                if self.slippage is not None:
                    assert self._draws is not None
                    price = self.slippage.fill_price(
                        ticket.side, price, ticket.quantity, ticket.bound, self._draws
                    )
                fill = self._fill(
                    next_trade_id(),
                    price,
                    ticket.quantity,
                    ticket.side.opposite,
                    None,
                    None,
                    ticket.order_id,
                    ticket.account_id,
                    at_ns,
                    None,
                )
                return MatchResult((fill,), rested=False, cancel_reason=None)
            return self._rest_or_cancel(ticket, ticket.quantity, strategy, (), True)
        return self._match_book(ticket, at_ns, next_trade_id, strategy)

    def _match_book(
        self,
        ticket: OrderTicket,
        at_ns: int,
        next_trade_id: _TradeIds,
        strategy: ExecutionStrategy,
    ) -> MatchResult:
        opposite = ticket.side.opposite
        remaining = ticket.quantity
        guard = ticket.self_trade
        if guard is SelfTradePrevention.ALLOW:
            guard = None
        own = ticket.account_id
        if ticket.time_in_force is TimeInForce.FOK:
            if guard is None:
                available = self.book.volume_within(opposite, ticket.bound, remaining)
            else:
                available = self._volume_for(ticket, guard, remaining)
            if available < remaining:
                return MatchResult((), rested=False, cancel_reason=CancelReason.FILL_OR_KILL)
        fills: list[Fill] = []
        cancelled: list[RestingOrder] = []
        blocked_by_bound = False
        self_trade = False
        while remaining:
            level = self.book.best(opposite)
            if level is None:
                break
            if not _within(ticket.side, level.price, ticket.bound):
                blocked_by_bound = True
                break
            maker = level.first()
            if guard is not None and maker.account_id == own:
                if guard is not SelfTradePrevention.CANCEL_NEWEST:
                    self.book.remove(maker.order_id)
                    cancelled.append(maker)
                    if self.pairs:
                        self._end_pair(maker.order_id)
                if guard is not SelfTradePrevention.CANCEL_OLDEST:
                    self_trade = True
                    break
                continue
            quantity = min(remaining, maker.remaining)
            self.book.reduce(maker.order_id, quantity)
            remaining -= quantity
            fills.append(
                self._fill(
                    next_trade_id(),
                    level.price,
                    quantity,
                    opposite,
                    maker.order_id,
                    maker.account_id,
                    ticket.order_id,
                    ticket.account_id,
                    at_ns,
                    maker.owner,
                )
            )
        if fills:
            self._set_price(fills[-1].price, at_ns)
        if self_trade:
            result = MatchResult(tuple(fills), rested=False, cancel_reason=CancelReason.SELF_TRADE)
        elif not remaining:
            result = MatchResult(tuple(fills), rested=False, cancel_reason=None)
        else:
            result = self._rest_or_cancel(ticket, remaining, strategy, fills, blocked_by_bound)
        return result._replace(cancelled=tuple(cancelled)) if cancelled else result

    def _volume_for(self, ticket: OrderTicket, guard: SelfTradePrevention, needed: int) -> int:
        """What a FOK `ticket` could fill under self-trade prevention `guard`: the volume
        within its bound of the other accounts' orders, up to the first of its own account's
        (`cancel_newest`, `cancel_both`: matching stops there) or past them (`cancel_oldest`:
        they leave the book). O(k) for the k resting orders it reads."""
        total = 0
        for maker in self.book.orders(ticket.side.opposite):
            if not _within(ticket.side, maker.price, ticket.bound):
                break
            if maker.account_id == ticket.account_id:
                if guard is SelfTradePrevention.CANCEL_OLDEST:
                    continue
                break
            total += maker.remaining
            if total >= needed:
                break
        return total

    def _rest_or_cancel(
        self,
        ticket: OrderTicket,
        remaining: int,
        strategy: ExecutionStrategy,
        fills: tuple[Fill, ...] | list[Fill],
        blocked_by_bound: bool,
    ) -> MatchResult:
        if strategy.may_rest(ticket):
            assert ticket.limit_price is not None
            self.book.add(
                ticket.order_id,
                ticket.account_id,
                ticket.side,
                ticket.limit_price,
                remaining,
                ticket.owner,
                day=ticket.time_in_force is TimeInForce.DAY,
            )
            return MatchResult(tuple(fills), rested=True, cancel_reason=None)
        reason = strategy.unfilled_reason(ticket, blocked_by_bound)
        return MatchResult(tuple(fills), rested=False, cancel_reason=reason)

    def halt(self) -> list[RestingOrder | StopEntry | StopTriggered]:
        """Stop trading: take every resting order and waiting stop out and return them (and
        the stops triggered but not yet taken), so that their accounts can cancel them. Used
        when a failure left the book in a state that cannot be trusted; quotes, bars and the
        tape stay readable. O(n)."""
        self.halted = True
        self._taken.clear()
        return self._one_per_pair([*self.book.clear(), *self.stops.clear(), *self.take_triggered()])

    def expire_day_orders(self) -> list[RestingOrder | StopEntry]:
        """Take the DAY orders and DAY stops out at the session's close (one leg of a pair:
        its account ends the other with it). O(n log n)."""
        return self._one_per_pair([*self.book.remove_day_orders(), *self.stops.remove_day_orders()])

    def cancel(self, order_id: OrderId) -> int:
        """Take a resting order or a waiting stop out; return the shares it still had (0 if it
        was neither: already filled or never rested). O(1), plus O(log L) if its level empties
        (O(log n) for a stop)."""
        entry = self.book.remove(order_id)
        if self.pairs:
            self._end_pair(order_id)
        if entry is not None:
            return entry.remaining
        stop = self.stops.remove(order_id)
        return 0 if stop is None else int(stop.ticket.quantity)

    def replace(
        self,
        order_id: OrderId,
        quantity: int,
        ticket: OrderTicket,
        at_ns: int,
        next_trade_id: _TradeIds,
    ) -> Replacement | None:
        """Replace the resting order or waiting stop `order_id` (placed for `quantity` shares)
        by `ticket`, whose quantity is the new total: the new order is for that total less what
        the old one filled. It keeps the old order's place in the book when it is a limit at
        the same price for no more than the old order still had; else it comes as a new order
        (and may trade at once). A one-cancels-other pair's leg is replaced for new prices
        only: the new leg is for what the old one had left, and takes its place in the pair.
        None, changing nothing, when the old order rests nowhere (it finished meanwhile) or
        already filled the new total. O(log L + k) as `submit`, or O(k) for the k orders at
        its level when it keeps its place."""
        entry = self.book.get(order_id)
        if entry is not None:
            left = entry.remaining
        else:
            stop = self.stops.get(order_id)
            if stop is None:
                return None
            left = int(stop.ticket.quantity)
        other = self.pairs.get(order_id) if self.pairs else None
        if other is None:
            filled = 0 if entry is None else quantity - left  # a waiting stop: none
            open_quantity = ticket.quantity - filled
        else:  # a pair's leg, new prices only: for what its own and its pair's fills left
            filled, open_quantity = quantity - left, left
        if open_quantity <= 0:
            return None
        new = ticket._replace(quantity=open_quantity)
        if other is not None:
            del self.pairs[order_id]
            self.pairs[new.order_id], self.pairs[other] = other, new.order_id
        day = new.time_in_force is TimeInForce.DAY
        if (
            entry is not None
            and new.order_type is OrderType.LIMIT
            and new.limit_price == entry.price
            and open_quantity <= entry.remaining
            and new.time_in_force in (TimeInForce.GTC, TimeInForce.DAY)
        ):
            self.book.relabel(order_id, new.order_id, open_quantity, new.owner, day)
            kept = MatchResult((), rested=True, cancel_reason=None)
            return Replacement(filled, open_quantity, kept, kept_priority=True)
        if entry is not None:
            self.book.remove(order_id)
        else:
            self.stops.remove(order_id)
        result = self.submit(new, at_ns, next_trade_id)
        return Replacement(filled, open_quantity, result, kept_priority=False)

    def waiting(self, order_id: OrderId) -> tuple[int, int | None] | None:
        """A waiting stop's stop price and mark (None for a fixed stop) in cents now, or None
        if it does not wait here. O(1)."""
        return self.stops.current(order_id)

    def _fill(
        self,
        trade_id: TradeId,
        price: int,
        quantity: int,
        maker_side: Side,
        maker_order: OrderId | None,
        maker_account: AccountId | None,
        taker_order: OrderId | None,
        taker_account: AccountId | None,
        at_ns: int,
        maker_owner: Any,
    ) -> Fill:
        if maker_side is Side.BUY:
            buy = (maker_order, maker_account)
            sell = (taker_order, taker_account)
        else:
            buy = (taker_order, taker_account)
            sell = (maker_order, maker_account)
        fill = Fill(
            trade_id,
            self.symbol,
            price,
            quantity,
            buy[0],
            buy[1],
            sell[0],
            sell[1],
            maker_side.opposite,
            at_ns,
            maker_owner,
        )
        self.volume += quantity
        self.trade_count += 1
        for series in self._series:
            series.trade(price, quantity, at_ns)
        self.tape.append(fill)
        if self.pairs:
            for order_id in (maker_order, taker_order):
                other = self.pairs.get(order_id)  # type: ignore[arg-type]
                if other is not None:
                    self._take_off(other, quantity)
        return fill

    # -- market data -------------------------------------------------------------------------

    def quote(self) -> QuoteSnapshot:
        """The current quote: last price, best bid and ask with sizes, and the day's open, high,
        low, volume and change (from the previous day's close, or else from today's open).
        O(1)."""
        bid = self.book.best(Side.BUY)
        ask = self.book.best(Side.SELL)
        days = self.bars["1d"]
        today = days.last
        assert today is not None  # listing records the first price
        before = days.previous
        reference = before.close if before is not None else today.open
        change = self.price - reference
        return QuoteSnapshot(
            symbol=self.symbol,
            name=self.name,
            mode=self.mode,
            last_price=cents_to_decimal(self.price),
            bid=None if bid is None else cents_to_decimal(bid.price),
            bid_size=0 if bid is None else bid.volume,
            ask=None if ask is None else cents_to_decimal(ask.price),
            ask_size=0 if ask is None else ask.volume,
            open=cents_to_decimal(today.open),
            high=cents_to_decimal(today.high),
            low=cents_to_decimal(today.low),
            volume=today.volume,
            trades=self.trade_count,
            updated_at=ns_to_datetime(self.updated_ns),
            change=cents_to_decimal(change),
            change_percent=percent(change, reference),
            halted=self.halted,
        )

    def depth(self, levels: int) -> Depth:
        """The best `levels` price levels of each side. O(levels)."""

        def side(which: Side) -> tuple[DepthLevel, ...]:
            return tuple(
                DepthLevel(cents_to_decimal(p), q, n) for p, q, n in self.book.depth(which, levels)
            )

        return Depth(self.symbol, side(Side.BUY), side(Side.SELL))

    def trades(self, limit: int) -> list[Trade]:
        """The last `limit` trades, newest first. O(limit)."""
        newest = list(itertools.islice(reversed(self.tape), limit))
        return [
            Trade(
                f.trade_id,
                f.symbol,
                cents_to_decimal(f.price),
                f.quantity,
                f.taker_side,
                ns_to_datetime(f.at_ns),
            )
            for f in newest
        ]

    def audit(self) -> MarketAudit:
        """Check the book's invariants and return what rests in it. O(n)."""
        self.book.check()
        self.stops.check()
        assert not self._taken, f"{self.symbol}: shares taken off legs never entered"
        for leg, other in self.pairs.items():
            assert self.pairs.get(other) == leg, f"{self.symbol}: pair {leg} is one-sided"
            assert self._open_quantity(leg) == self._open_quantity(other), (
                f"{self.symbol}: the legs {leg} and {other} differ in what remains"
            )
        return MarketAudit(self.symbol, self.mode, len(self.book) + len(self.stops), self.volume)

    def _open_quantity(self, order_id: OrderId) -> int | None:
        entry = self.book.get(order_id)
        if entry is not None:
            return entry.remaining
        stop = self.stops.get(order_id)
        return None if stop is None else int(stop.ticket.quantity)

    def history(self) -> list[PricePoint]:
        """Every kept price point, oldest first. O(n)."""
        return [PricePoint(ns_to_datetime(at), cents_to_decimal(p)) for at, p in self._history]


_ENDED = 1 << 62
"""What `_taken` records for a leg whose other leg ended: more than it could ever have."""


def _entered(ticket: OrderTicket) -> OrderTicket:
    """The market or limit order a triggered stop becomes."""
    return ticket._replace(
        order_type=ticket.order_type.triggered, stop_price=None, trail_price=None, trail_bps=None
    )


class PriceHistory:
    """The newest `limit` price points (moment, cents), 16 bytes each in two arrays of
    64-bit integers (a deque of tuples costs some 120 bytes a point). Appending is amortized
    O(1): the oldest points go in blocks, once the arrays hold twice the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._moments = array("q")
        self._prices = array("q")

    def append(self, at_ns: int, price: int) -> None:
        """Add the newest point."""
        self._moments.append(at_ns)
        self._prices.append(price)
        if len(self._moments) >= 2 * self.limit:
            del self._moments[: -self.limit]
            del self._prices[: -self.limit]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start = max(0, len(self._moments) - self.limit)
        return zip(self._moments[start:], self._prices[start:], strict=True)


class _TradeIds(Protocol):
    def __call__(self) -> TradeId: ...


class TradeIdSequence:
    """Trade ids of one symbol: `T-AAPL-1`, `T-AAPL-2`, ..."""

    def __init__(self, symbol: Symbol) -> None:
        self._prefix = f"T-{symbol}-"
        self._next = 0

    def __call__(self) -> TradeId:
        self._next += 1
        return TradeId(f"{self._prefix}{self._next}")
