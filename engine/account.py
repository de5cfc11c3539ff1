"""An account's cash, holdings, reservations, orders and transactions, and its valuation.

Reservations are made when an order is accepted, so settling a fill can never fail: a buy
holds `remaining * reserve_price` cents, a sell holds its remaining shares. Cost basis is the
total cost in whole cents of the shares held: a sale of part of a position takes away its share
of the cost rounded half to even to the cent (`share_of`), so cost taken plus cost kept is
always cost paid, realized plus unrealized P/L stays exact to the cent, and a fill costs the
same however long the account has traded. Average cost is shown from it.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.errors import (
    AccountBusyError,
    DuplicateError,
    InsufficientAvailableCashError,
    OrderNotReplaceableError,
    UnknownOrderError,
    ValidationError,
)
from engine.fees import FeeSchedule
from engine.ids import AccountId, OrderId, Symbol, TradeId, UserId, id_number
from engine.money import (
    BPS,
    cents_to_decimal,
    divide_half_even,
    notional,
    percent,
    share_of,
)
from engine.orders import (
    CancelReason,
    Order,
    OrderClass,
    OrderStatus,
    RejectReason,
    SelfTradePrevention,
    Side,
    ns_to_datetime,
)
from engine.watchlists import Watchlists

if TYPE_CHECKING:
    from engine.margin import MarginFigures, MarginRules

_HELD = OrderStatus.HELD
MAX_MARGIN_OPEN_ORDERS = 1_000
"""Open orders a margin account may have: each of its checks walks them, so this bounds what
one account's order costs the actor runtime (a cash account's check walks none)."""
OPEN_STATUSES = frozenset((OrderStatus.HELD, OrderStatus.PENDING, OrderStatus.PARTIALLY_FILLED))
"""The statuses of an order still working (its reservation held), or held to work later."""


@dataclass(frozen=True, slots=True)
class User:
    """A customer; one user may hold several accounts."""

    user_id: UserId
    name: str
    email: str | None = None
    phone: str | None = None


class TransactionKind(enum.StrEnum):
    """What a transaction recorded."""

    BUY = "buy"
    SELL = "sell"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    GRANT = "grant"
    FEE = "fee"
    REMOVAL = "removal"
    """Shares taken out at their cost (a reset's)."""
    RESET = "reset"
    """The account started afresh here, with `amount` of cash and no holdings."""


class Transaction(NamedTuple):
    """An immutable record of one movement of cash or shares in an account.

    A fill is a BUY or SELL with its trade, order, symbol, side, quantity and price; `amount`
    is always the positive cash value moved (for a GRANT, the stated cost of the shares). A FEE
    is what a fill paid in fees, with the fill's trade, order, symbol and side.
    A `NamedTuple`, like `OrderSnapshot`: one is made for every fill.
    """

    transaction_id: str
    account_id: AccountId
    kind: TransactionKind
    amount: Decimal
    at: datetime
    trade_id: TradeId | None = None
    order_id: OrderId | None = None
    symbol: Symbol | None = None
    side: Side | None = None
    quantity: int | None = None
    price: Decimal | None = None
    leaves: int | None = None
    """A fill's: the shares its order still had to fill after it (0: it filled the order)."""
    filled: int | None = None
    """A fill's: the shares its order had filled with it, this fill included."""


@dataclass(frozen=True, slots=True)
class Balance:
    """Cash of an account: `available = cash - reserved` is what orders and withdrawals may use."""

    account_id: AccountId
    cash: Decimal
    reserved: Decimal
    available: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    """Shares of one symbol held, as the account knows them (no prices).

    Attributes:
        cost: The total cost in cents of the shares held.
    """

    symbol: Symbol
    quantity: int
    reserved: int
    cost: int


@dataclass(frozen=True, slots=True)
class Holding:
    """One line of a portfolio, valued at the current price. Amounts are `Decimal`."""

    symbol: Symbol
    quantity: int
    reserved: int
    average_cost: Decimal
    cost_basis: Decimal
    market_price: Decimal
    market_value: Decimal
    unrealized_pl: Decimal
    unrealized_pl_percent: Decimal | None


@dataclass(frozen=True, slots=True)
class Portfolio:
    """An account's holdings valued at current prices, with profit and loss."""

    account_id: AccountId
    holdings: tuple[Holding, ...]
    cash: Decimal
    market_value: Decimal
    cost_basis: Decimal
    unrealized_pl: Decimal
    unrealized_pl_percent: Decimal | None
    realized_pl: Decimal
    net_worth: Decimal
    fees: Decimal = Decimal("0.00")
    """Fees paid so far (counted in the cost of shares bought and in realized P/L)."""


@dataclass(frozen=True, slots=True)
class AccountState:
    """Everything an account holds, without prices: the input to valuation."""

    account_id: AccountId
    cash: int
    reserved_cash: int
    realized: int
    positions: tuple[Position, ...]
    fees: int = 0
    transactions: int = 0
    """How many transactions the account had made (the number of its latest)."""


@dataclass(slots=True)
class _Position:
    quantity: int = 0
    reserved: int = 0
    cost: int = 0


def filled_past(order: Order, quantity: int) -> ValidationError:
    """The error of a replace whose new total `quantity` is not above what `order` filled."""
    return ValidationError(
        "quantity",
        f"must be above the {order.filled_quantity} shares the order has filled",
        quantity,
    )


def _after_in_number(orders: dict[OrderId, Order], order_id: OrderId) -> None:
    """Put back in id order a dict of orders whose last entry, `order_id`, got its id before
    the entries just before it (a replace's new order, made while others came): those move
    after it. O(k) for the k entries moved."""
    number = id_number(order_id, "O-")
    later: list[OrderId] = []
    for key in reversed(orders):
        if key == order_id:
            continue
        if id_number(key, "O-") < number:
            break
        later.append(key)
    for key in reversed(later):
        orders[key] = orders.pop(key)


class Account:
    """One account's state. Only its account actor touches it, one message at a time."""

    def __init__(
        self,
        account_id: AccountId,
        user_id: UserId,
        opened_ns: int,
        window: int | None = None,
        fees: FeeSchedule | None = None,
        margin: MarginRules | None = None,
    ) -> None:
        self.account_id = account_id
        self.user_id = user_id
        self.opened_ns = opened_ns
        self.window = window
        self.cash = 0
        self.reserved_cash = 0
        self.deposited = 0
        self.withdrawn = 0
        self.realized = 0
        self.fees = fees
        """What its orders pay as they fill (None: nothing)."""
        self.fee_held: dict[OrderId, int] = {}
        """Cash each working order holds for its fees still to pay (`FeeSchedule.bound`)."""
        self.fees_paid = 0
        self.margin = margin
        """A margin account's requirements (`engine.margin`); None for a cash account."""
        self.prices: Mapping[Symbol, int] | None = None
        """The last prices a margin account's checks value it at (its actor's board)."""
        self.cleared = 0
        """Realized P/L that resets set back to 0 (the audit counts it)."""
        self.positions: dict[Symbol, _Position] = {}
        self.orders: dict[OrderId, Order] = {}  # the open ones and the newest finished ones
        self.open: dict[OrderId, Order] = {}  # the pending and partially filled ones, in order
        self.finished: deque[OrderId] = deque()  # the finished orders kept, oldest finish first
        self.client_ids: dict[str, OrderId] = {}  # client order id -> the order that has it
        self.transactions: deque[Transaction] = deque(maxlen=window)  # the newest ones
        self.transaction_count = 0
        self.dropped_ns: int | None = None
        """The latest creation time of a finished order no longer kept (None: none went)."""
        self.dropped_number = 0
        """The highest id number of a finished order no longer kept."""
        self.outbox: list[Order | tuple[Any, ...]] | None = None
        """Where finished orders and new transactions' rows (`engine.history`'s
        `TRANSACTION_COLUMNS`) go for the store (None: nowhere)."""
        self.ledger = Ledger()
        self._watchlists: Watchlists | None = None
        self.self_trade = SelfTradePrevention.CANCEL_NEWEST
        """The self-trade prevention of its orders that name none."""
        self.replacing: dict[OrderId, tuple[Order, int, int]] = {}
        """Replaces on their way to the book: old order id -> (the new order, for its total;
        cash and shares held for it meanwhile)."""
        self.knock_on: list[Order] = []
        """Orders ended in passing since the account actor last took them: a pair's other
        leg, an entry's held legs."""
        self.activated: list[tuple[Order, ...]] = []
        """Exit legs that began to work since the account actor last took them (an entry
        ended with shares filled), each a pair (take-profit first) or a single leg: the
        actor sends them to their book."""

    @property
    def watchlists(self) -> Watchlists:
        """The account's watchlists (made on first use: most accounts have none)."""
        if self._watchlists is None:
            self._watchlists = Watchlists()
        return self._watchlists

    @property
    def available_cash(self) -> int:
        """Cash not held back by pending buy orders, in cents."""
        return self.cash - self.reserved_cash

    @property
    def withdrawable(self) -> int:
        """Cash that may be taken out: the available cash; a margin account's cash less its
        fee holds, at most its excess equity (it borrows for no withdrawal)."""
        if self.margin is None:
            return self.available_cash
        room = min(self.cash - sum(self.fee_held.values()), self.margin_figures().excess)
        return max(0, room)

    def _record(
        self,
        kind: TransactionKind,
        amount: int,
        at_ns: int,
        price_cents: int | None = None,
        symbol: Symbol | None = None,
        quantity: int | None = None,
        fill: tuple[TradeId, OrderId, Side, int, int] | None = None,
    ) -> Transaction:
        """Record a movement; a fill's `fill` is its trade, order, side, and what the order
        had left and had filled after it (positional: this runs at every fill)."""
        self.transaction_count += 1
        number = self.transaction_count
        trade_id = order_id = side = leaves = filled = None
        if fill is not None:
            trade_id, order_id, side, leaves, filled = fill
        record = Transaction(
            f"{self.account_id}-{number}",
            self.account_id,
            kind,
            cents_to_decimal(amount),
            ns_to_datetime(at_ns),
            trade_id,
            order_id,
            symbol,
            side,
            quantity,
            None if price_cents is None else cents_to_decimal(price_cents),
            leaves,
            filled,
        )
        self.transactions.append(record)
        self.ledger.add(kind, amount, symbol, quantity)
        if self.outbox is not None:  # its row for the store, made from the integers at hand
            self.outbox.append(
                (
                    record.transaction_id,
                    number,
                    self.account_id,
                    kind.value,
                    amount,
                    at_ns // 1000 * 1000,  # to the microsecond, as the transaction shows it
                    trade_id,
                    order_id,
                    symbol,
                    None if side is None else side.value,
                    quantity,
                    price_cents,
                    leaves,
                    filled,
                )
            )
        return record

    def _finish(self, order: Order) -> None:
        """Keep a finished order among the newest `window`, and hand it to the store; the
        oldest finished ones go once there are more (their client order ids stay taken). An
        entry's held exit legs begin to work, or end, with it."""
        if self.outbox is not None:
            self.outbox.append(order)
        if self.fee_held:
            self.reserved_cash -= self.fee_held.pop(order.order_id, 0)
        self.finished.append(order.order_id)
        if order.legs and order.order_class is not OrderClass.OCO:
            self._release_legs(order)
        self._make_room()

    def _release_legs(self, entry: Order) -> None:
        """The entry ended: its held legs work for what it filled (refused if the shares or
        cash they need are no longer free), or are cancelled if it filled nothing."""
        at_ns = entry.updated_ns
        legs = [
            leg
            for leg in (self.orders[leg_id] for leg_id in entry.legs)
            if leg.status is OrderStatus.HELD
        ]
        if not legs:
            return
        filled = entry.filled_quantity
        reason: RejectReason | None = None
        if filled:
            holder = legs[0]
            fees = self._fee_need(legs, filled)
            margin = self.margin is not None
            if holder.side is Side.BUY:
                assert holder.reserve_price is not None
                # a margin account's buy exits cover the short its entry sold: they borrow
                # nothing it may not (and a replay decides without prices, as live)
                if (
                    not margin
                    and notional(holder.reserve_price, filled) + fees > self.available_cash
                ):
                    reason = RejectReason.INSUFFICIENT_FUNDS
            else:
                position = self.positions.get(holder.symbol)
                if position is None or position.quantity - position.reserved < filled:
                    reason = RejectReason.INSUFFICIENT_SHARES  # an exit never sells short
                elif not margin and fees > self.available_cash:
                    reason = RejectReason.INSUFFICIENT_FUNDS
        for leg in legs:
            del self.open[leg.order_id]
            if not filled:
                leg.cancel(CancelReason.ENTRY_UNFILLED, at_ns)
            elif reason is not None:
                leg.reject(reason, at_ns)
            else:
                leg.activate(filled, at_ns)
                self.reserve(leg)
                _after_in_number(self.open, leg.order_id)
                continue
            self.knock_on.append(leg)
            self._finish(leg)
        if filled and reason is None:
            self.activated.append(tuple(legs))

    def take_activated(self) -> list[tuple[Order, ...]]:
        """The exit legs that began to work since the last call."""
        found = self.activated
        if found:
            self.activated = []
        return found

    def take_knock_on(self) -> list[Order]:
        """The orders ended in passing since the last call."""
        found = self.knock_on
        if found:
            self.knock_on = []
        return found

    def forget_follow_ups(self) -> None:
        """Drop the legs set working and the orders ended in passing (a replay's: the live
        account actor sent and told them)."""
        self.activated = []
        self.knock_on = []

    def _make_room(self) -> None:
        finished = self.finished
        while self.window is not None and len(finished) > self.window:
            self._drop(finished.popleft())

    def _drop(self, order_id: OrderId) -> None:
        gone = self.orders.pop(order_id)
        if self.dropped_ns is None or gone.created_ns > self.dropped_ns:
            self.dropped_ns = gone.created_ns
        self.dropped_number = max(self.dropped_number, id_number(order_id, "O-"))

    def set_window(self, window: int | None) -> None:
        """Keep `window` finished orders and transactions from now on (None: all)."""
        self.window = window
        self.transactions = deque(self.transactions, maxlen=window)
        self._make_room()

    def take_outbox(self) -> list[Order | tuple[Any, ...]]:
        """What went to the outbox since the last call (nothing without one)."""
        outbox = self.outbox
        if not outbox:
            return []
        self.outbox = []
        return outbox

    # -- cash ----------------------------------------------------------------------------------

    def deposit(self, cents: int, at_ns: int) -> Transaction:
        """Add cash (a positive amount in cents)."""
        self.cash += cents
        self.deposited += cents
        return self._record(TransactionKind.DEPOSIT, cents, at_ns)

    def withdraw(self, cents: int, at_ns: int, *, checked: bool = False) -> Transaction:
        """Take out cash, at most what is `withdrawable` (unless `checked` already: a replay).

        Raises:
            InsufficientAvailableCashError: if `cents` exceeds it; nothing moves.
        """
        if not checked:
            room = self.withdrawable
            if cents > room:
                raise InsufficientAvailableCashError(
                    cents_to_decimal(cents), cents_to_decimal(room)
                )
        self.cash -= cents
        self.withdrawn += cents
        return self._record(TransactionKind.WITHDRAWAL, cents, at_ns)

    def grant(self, symbol: Symbol, quantity: int, price_cents: int, at_ns: int) -> Transaction:
        """Credit `quantity` shares at a stated cost (an allocation or a transfer in)."""
        position = self.positions.setdefault(symbol, _Position())
        position.quantity += quantity
        position.cost += notional(price_cents, quantity)
        return self._record(
            TransactionKind.GRANT,
            notional(price_cents, quantity),
            at_ns,
            price_cents,
            symbol,
            quantity,
        )

    def reset(self, cents: int, at_ns: int) -> list[Transaction]:
        """Start afresh with `cents` of cash and no holdings, keeping the history: each holding
        goes out at its cost (a REMOVAL of its shares), the cash moves to `cents` (a DEPOSIT or
        WITHDRAWAL of the difference), realized P/L starts again from 0, and a RESET marks the
        moment. Return the transactions made.

        Raises:
            AccountBusyError: if an order of the account is open (held legs included);
                nothing changes.
        """
        if self.open or self.replacing:
            raise AccountBusyError(self.account_id, len(self.open))
        made = [
            self._record(TransactionKind.REMOVAL, p.cost, at_ns, None, symbol, p.quantity)
            for symbol, p in sorted(self.positions.items())
            if p.quantity
        ]
        self.positions.clear()
        if cents > self.cash:
            made.append(self.deposit(cents - self.cash, at_ns))
        elif cents < self.cash:
            made.append(self.withdraw(self.cash - cents, at_ns, checked=True))
        self.cleared += self.realized
        self.realized = 0
        made.append(self._record(TransactionKind.RESET, cents, at_ns))
        return made

    # -- orders --------------------------------------------------------------------------------

    def accept(
        self,
        order: Order,
        at_ns: int,
        *,
        keep_refused: bool = True,
        legs: list[Order] | None = None,
    ) -> RejectReason | None:
        """Make the pre-trade check for a new order and reserve what it needs.

        Returns the reason it is refused (the order is then REJECTED and nothing else changes;
        it is kept in the history unless `keep_refused` is False: then it is no order, and its
        client order id stays free), or None when it is accepted and its cash or shares are
        reserved. With fees, the cash it holds for them (and for its working `legs`, given by
        `accept_group`) must be free too.

        Raises:
            DuplicateError: if another order of the account has its `client_order_id`; nothing
                is kept of this one.
        """
        client_id = order.client_order_id
        if client_id is not None and client_id in self.client_ids:
            raise DuplicateError("client_order_id", client_id)
        if order.self_trade is None:
            order.self_trade = self.self_trade
        reason: RejectReason | None = None
        fees = 0
        margin = self.margin
        if self.fees is not None or margin is not None:  # a held leg holds none until it works
            working = [order, *(leg for leg in legs or () if leg.status is not _HELD)]
            fees = self._fee_need(working, order.quantity)
        if margin is not None:
            reason = self._margin_refusal(order, working, fees)
        elif order.side is Side.BUY:
            if order.reserved_cents + fees > self.available_cash:
                reason = RejectReason.INSUFFICIENT_FUNDS
        else:
            position = self.positions.get(order.symbol)
            if position is None or position.quantity - position.reserved < order.quantity:
                reason = RejectReason.INSUFFICIENT_SHARES
            elif fees > self.available_cash:
                reason = RejectReason.INSUFFICIENT_FUNDS
        if reason is not None:
            order.reject(reason, at_ns)
            if keep_refused:
                self.record_refused(order)
            return reason
        self.reserve(order)
        return None

    def reserve(self, order: Order) -> None:
        """Keep an accepted order open and reserve what it needs, without checking (what
        `accept` does once its check passed; a replay of the journal does it as recorded).
        A held leg is kept open and reserves nothing yet."""
        self.orders[order.order_id] = order
        self.open[order.order_id] = order
        if order.client_order_id is not None:
            self.client_ids[order.client_order_id] = order.order_id
        if order.side is Side.BUY:
            self.reserved_cash += order.reserved_cents
        elif not order.shadow and order.status is not _HELD:  # (a new order's quantity)
            self.positions.setdefault(order.symbol, _Position()).reserved += order.quantity
        if self.fees is not None and order.status is not _HELD:
            held = self._fee_need([order], order.remaining)
            if held:
                self.fee_held[order.order_id] = held
                self.reserved_cash += held

    def _fee_need(self, orders: list[Order], quantity: int) -> int:
        """The cash `orders`, working for `quantity` shares each, hold for their fees (a sell's
        limit is the least it sells for)."""
        fees = self.fees
        if fees is None:
            return 0
        return sum(
            fees.bound(
                order.side,
                quantity,
                order.reserve_price if order.side is Side.BUY else order.limit_price,
            )
            for order in orders
        )

    def accept_group(
        self, orders: list[Order], at_ns: int, *, keep_refused: bool = True
    ) -> RejectReason | None:
        """`accept` for an order with exit legs (`orders`: it, then its legs): its check covers
        what it holds (an OCO pair's take-profit holds for both legs; a bracket's held legs
        hold nothing until the entry ends). Refused, the legs are no orders (it has none)."""
        parent, legs = orders[0], orders[1:]
        parent.legs = ()  # none if it is refused
        reason = self.accept(parent, at_ns, keep_refused=keep_refused, legs=legs)
        if reason is not None:
            return reason
        parent.legs = tuple(leg.order_id for leg in legs)
        for leg in legs:
            leg.self_trade = parent.self_trade
            self.reserve(leg)
        return None

    def begin_replace(self, order_id: OrderId, new: Order) -> RejectReason | None:
        """Check that `new` (for its total quantity, fills of the old order included) may
        replace the open order `order_id`, and hold what it may need beyond what the old order
        holds; return the reason it is refused (nothing held), or None.

        The old order's reservation counts at the lower of the two prices per share: if it
        fills meanwhile at its own price, what the new order needs for the rest is still held
        (`finish_replace` never overdraws).

        An exit leg is replaced for new prices only (`_check_leg_replace`); the new leg takes
        the old one's place in its pair. A buy pair's take-profit holds for both legs: a new
        stop-loss may make it hold more per share (held here), a new take-profit holds at the
        dearer of its limit and the stop-loss's reserve.

        Raises:
            OrderNotReplaceableError: if the order is finished or has a replace pending, is
                the entry of a bracket or OTO, held (`replace_held` replaces a held leg), or
                the other leg of a pair being replaced.
            ValidationError: if the new total is not above what the old order filled, or a
                leg's new terms change more than its prices, or cross them.
            DuplicateError: if `new` has a client order id another order has.
        """
        old = self.order(order_id)
        if old.status.is_final or order_id in self.replacing:
            state = "being replaced" if order_id in self.replacing else old.status.value
            raise OrderNotReplaceableError(order_id, state)
        if old.status is _HELD:  # in no book: replace_held replaces it
            raise OrderNotReplaceableError(order_id, "held: in no book yet")
        if old.order_class is not OrderClass.SIMPLE:
            self._check_leg_replace(old, new)
        if new.quantity <= old.filled_quantity:
            raise filled_past(old, new.quantity)
        client_id = new.client_order_id
        if client_id is not None and client_id in self.client_ids:
            raise DuplicateError("client_order_id", client_id)
        still = new.quantity - old.filled_quantity
        cash = shares = 0
        other = self._open_sibling(old)
        if new.side is Side.BUY:
            assert new.reserve_price is not None, f"buy {new.order_id} has no reserve price"
            if other is not None and old.shadow:  # its take-profit holds the pair's cash
                assert other.reserve_price is not None, f"buy {other.order_id} has no reserve"
                raised = self._pair_reserve(other, new) - other.reserve_price
                cash += max(0, notional(raised, other.remaining))
            else:
                if other is not None:  # a take-profit holds for its stop-loss too
                    new.reserve_price = self._pair_reserve(new, other)
                assert old.reserve_price is not None, f"buy {order_id} has no reserve price"
                credit = notional(min(old.reserve_price, new.reserve_price), old.remaining)
                cash += max(0, notional(new.reserve_price, still) - credit)
            fee = self._fee_need([new], still)  # at its reserve price, as `reserve` holds
            cash += fee
            if self.margin is not None:
                if not self._fits([replace(new, quantity=still)], fee, old.order_id):
                    return RejectReason.INSUFFICIENT_FUNDS
            elif cash > self.available_cash:
                return RejectReason.INSUFFICIENT_FUNDS
        else:
            cash = self._fee_need([new], still)  # the old order's fee hold ends with it
            shares = max(0, still - old.remaining)
            position = self.positions.get(new.symbol)
            margin = self.margin
            if (
                shares
                and (margin is None or not margin.can_short(new.symbol))
                and (position is None or position.quantity - position.reserved < shares)
            ):
                return RejectReason.INSUFFICIENT_SHARES
            if margin is not None:
                if not self._fits([replace(new, quantity=still)], cash, old.order_id):
                    return RejectReason.INSUFFICIENT_FUNDS
            elif cash > self.available_cash:
                return RejectReason.INSUFFICIENT_FUNDS
            if shares:
                self.positions.setdefault(new.symbol, _Position()).reserved += shares
        self.reserved_cash += cash
        if client_id is not None:
            self.client_ids[client_id] = new.order_id
        self.replacing[order_id] = (new, cash, shares)
        return None

    def _open_sibling(self, order: Order) -> Order | None:
        """The other leg of `order`'s one-cancels-other pair, if it has one still open."""
        return self.open.get(order.sibling) if order.sibling is not None else None

    @staticmethod
    def _pair_reserve(holder: Order, shadow: Order) -> int:
        """What a buy pair's take-profit `holder` holds per share for both legs: the dearer of
        its own limit and `shadow`'s reserve price."""
        assert holder.limit_price is not None, f"take-profit {holder.order_id} has no limit"
        assert shadow.reserve_price is not None, f"buy {shadow.order_id} has no reserve price"
        return max(holder.limit_price, shadow.reserve_price)

    def _check_leg_replace(self, old: Order, new: Order) -> None:
        """An order of a class may be replaced only as an exit leg, held or working (an OCO's
        take-profit too), for new prices: its quantity follows its entry's and its pair's
        fills, its time in force is its pair's, and its take-profit stays on the far side of
        its stop-loss.

        Raises:
            OrderNotReplaceableError: for an entry with legs, or a leg whose other leg is
                being replaced.
            ValidationError: for a new quantity or time in force, or prices that cross.
        """
        if old.legs and old.sibling is None:
            raise OrderNotReplaceableError(
                old.order_id, f"the entry of a {old.order_class.value} order"
            )
        if old.sibling in self.replacing:
            raise OrderNotReplaceableError(old.order_id, "the other leg is being replaced")
        if new.quantity != old.quantity:
            raise ValidationError(
                "quantity",
                f"must stay {old.quantity}: an exit leg's quantity follows its entry's fills",
                new.quantity,
            )
        if new.time_in_force is not old.time_in_force:
            raise ValidationError(
                "time_in_force",
                f"must stay {old.time_in_force.value!r} for an exit leg",
                new.time_in_force.value,
            )
        other = self._open_sibling(old)
        if other is None:
            return
        profit, loss = (other, new) if old.shadow else (new, other)
        assert profit.limit_price is not None, f"take-profit {profit.order_id} has no limit"
        assert loss.stop_price is not None, f"stop-loss {loss.order_id} has no stop price"
        sell = new.side is Side.SELL
        if not (
            profit.limit_price > loss.stop_price if sell else profit.limit_price < loss.stop_price
        ):
            name, price = (
                ("stop_price", loss.stop_price)
                if old.shadow
                else ("limit_price", profit.limit_price)
            )
            where = "above" if sell else "below"
            raise ValidationError(
                name,
                f"the take-profit's limit price must stay {where} the stop-loss's stop price "
                f"for {new.side.value} exits",
                cents_to_decimal(price),
            )

    def replace_held(self, order_id: OrderId, new: Order, at_ns: int) -> None:
        """Replace the held exit leg `order_id` by `new`, held too (it reserves nothing until
        its entry ends, then works for what the entry filled), in its place in its pair.

        Raises:
            OrderNotReplaceableError: if the order is not a held leg.
            ValidationError: for new terms other than prices, or prices that cross.
            DuplicateError: if `new` has a client order id another order has.
        """
        old = self.order(order_id)
        if old.status is not _HELD:
            raise OrderNotReplaceableError(order_id, old.status.value)
        self._check_leg_replace(old, new)
        if new.client_order_id is not None and new.client_order_id in self.client_ids:
            raise DuplicateError("client_order_id", new.client_order_id)
        other = self._open_sibling(old)
        if other is not None and not old.shadow and new.side is Side.BUY:
            new.reserve_price = self._pair_reserve(new, other)
        self.apply_held_replace(order_id, new, at_ns)

    def apply_held_replace(self, order_id: OrderId, new: Order, at_ns: int) -> None:
        """Mark the held leg `order_id` REPLACED by `new`, held in its place (a replay does
        this as recorded)."""
        new.status = _HELD
        self.apply_replace(order_id, new, self.order(order_id).quantity, at_ns)

    def _release_hold(self, order_id: OrderId) -> Order:
        """Release what `begin_replace` held for the replace of `order_id`; return the new
        order."""
        new, cash, shares = self.replacing.pop(order_id)
        self.reserved_cash -= cash
        if shares:
            self.positions[new.symbol].reserved -= shares
        return new

    def abort_replace(self, order_id: OrderId) -> Order:
        """The book did not replace it (it finished meanwhile): release what was held; return
        the new order that never was."""
        new = self._release_hold(order_id)
        if new.client_order_id is not None:
            self.client_ids.pop(new.client_order_id, None)
        return new

    def finish_replace(self, order_id: OrderId, quantity: int, at_ns: int) -> Order:
        """The book replaced it: the new order (held by `begin_replace`) carries on for
        `quantity` shares; return it."""
        new = self._release_hold(order_id)
        self.apply_replace(order_id, new, quantity, at_ns)
        return new

    def apply_replace(self, order_id: OrderId, new: Order, quantity: int, at_ns: int) -> None:
        """Mark `order_id` REPLACED by `new`, release what it held and reserve for `new`, now
        for `quantity` shares (a replay does this as recorded)."""
        old = self._close(order_id, Order.replaced, new.order_id, at_ns)
        new.quantity = quantity
        new.replaces = order_id
        if old.order_class is not OrderClass.SIMPLE:
            self._relink(old, new)
        self.reserve(new)
        _after_in_number(self.orders, new.order_id)
        _after_in_number(self.open, new.order_id)

    def _relink(self, old: Order, new: Order) -> None:
        """`new` replaces the exit leg `old`: it takes its place in its pair, under its parent
        (and over its legs: an OCO's take-profit). A buy pair's take-profit then holds per
        share the dearer of its limit and the new stop-loss's reserve."""
        new.order_class, new.parent, new.legs = old.order_class, old.parent, old.legs
        new.sibling, new.shadow, new.self_trade = old.sibling, old.shadow, old.self_trade
        for leg_id in old.legs:
            leg = self.orders.get(leg_id)
            if leg is not None:
                leg.parent = new.order_id
        parent = self.orders.get(old.parent) if old.parent is not None else None
        if parent is not None:
            parent.legs = tuple(new.order_id if leg == old.order_id else leg for leg in parent.legs)
        other = self._open_sibling(old)
        if other is None:
            return
        other.sibling = new.order_id
        if new.shadow and new.side is Side.BUY:  # the other holds for both
            before = other.reserved_cents
            other.reserve_price = self._pair_reserve(other, new)
            self.reserved_cash += other.reserved_cents - before

    def record_refused(self, order: Order) -> None:
        """Keep in the history a refused order (by its pre-trade check, or before it)."""
        assert order.status is OrderStatus.REJECTED, f"{order.order_id} was not refused"
        self.orders[order.order_id] = order
        if order.client_order_id is not None:
            self.client_ids.setdefault(order.client_order_id, order.order_id)
        self._finish(order)

    def order(self, order_id: OrderId) -> Order:
        """Return this account's order `order_id`.

        Raises:
            UnknownOrderError: if the account has no such order.
        """
        try:
            return self.orders[order_id]
        except KeyError:
            raise UnknownOrderError(order_id) from None

    def order_by_client_id(self, client_order_id: str) -> Order:
        """Return this account's order with this `client_order_id`.

        Raises:
            UnknownOrderError: if none of the account's orders has it.
        """
        order_id = self.client_ids.get(client_order_id)
        if order_id is None:
            raise UnknownOrderError(client_order_id)
        order = self.orders.get(order_id)
        if order is None:  # finished and no longer kept here: the store has it
            raise UnknownOrderError(client_order_id)
        return order

    def settle_fill(
        self, order_id: OrderId, trade_id: TradeId, quantity: int, price_cents: int, at_ns: int
    ) -> Transaction:
        """Settle one fill of an accepted order: use its reservation, move cash and shares.

        A buy pays `quantity * price` out of the `quantity * reserve_price` it had reserved and
        releases the difference; a sell delivers reserved shares, realizes P/L against the
        average cost and leaves that average unchanged. A fill of a one-cancels-other pair's
        leg takes as many shares off the other leg (which ends when none is left).
        """
        order = self.order(order_id)
        position = self.positions.setdefault(order.symbol, _Position())
        buy = order.side is Side.BUY
        reserve = order.reserve_price or 0
        if buy:
            assert reserve, f"buy {order_id} has no reserve price"
            assert price_cents <= reserve, (
                f"fill price {price_cents} above reserve {reserve} of {order_id}"
            )
        sibling = None
        fees = self.fees
        if fees is not None:
            before = order.filled_quantity, order.filled_cents
        if order.sibling is None:
            order.fill(quantity, price_cents, at_ns)
            if buy:
                self.reserved_cash -= notional(reserve, quantity)
            else:
                position.reserved -= quantity
        else:
            sibling = self._fill_leg(order, position, quantity, price_cents, at_ns)
        amount = notional(price_cents, quantity)
        if buy and position.quantity >= 0:
            self.cash -= amount
            position.quantity += quantity
            position.cost += amount
        elif not buy and position.quantity >= quantity:
            removed = share_of(position.cost, quantity, position.quantity)
            position.quantity -= quantity
            position.cost -= removed
            self.realized += amount - removed
            self.cash += amount
        else:  # a margin account's: a short sale, a buy to cover, or one that turns a position
            self._cross(position, buy, quantity, amount)
        if not position.quantity and not position.reserved:
            del self.positions[order.symbol]
        fill = (trade_id, order_id, order.side, order.remaining, order.filled_quantity)
        record = self._record(
            TransactionKind.BUY if buy else TransactionKind.SELL,
            amount,
            at_ns,
            price_cents,
            order.symbol,
            quantity,
            fill,
        )
        if fees is not None:
            self._charge(order, fees, before, fill, at_ns)
        if order.status.is_final:
            del self.open[order_id]
            self._finish(order)
        if sibling is not None and not sibling.remaining:
            ended = self._close(sibling.order_id, Order.cancel, CancelReason.OCO, at_ns)
            self.knock_on.append(ended)
        return record

    def _charge(
        self,
        order: Order,
        fees: FeeSchedule,
        before: tuple[int, int],
        fill: tuple[TradeId, OrderId, Side, int, int],
        at_ns: int,
    ) -> None:
        """Charge what `order`'s fees grew by with its last fill (it had filled `before`
        shares for cents), out of what it held for them first; a buy's go into the cost of
        the shares it bought, a sell's come off the P/L it realized."""
        side = order.side
        fee = fees.charged(side, order.filled_quantity, order.filled_cents)
        fee -= fees.charged(side, *before)
        if not fee:
            return
        held = self.fee_held.get(order.order_id, 0)
        taken = min(fee, held)
        if taken:
            self.fee_held[order.order_id] = held - taken
            self.reserved_cash -= taken
        self.cash -= fee
        self.fees_paid += fee
        position = self.positions.get(order.symbol)
        if side is Side.BUY and position is not None and position.quantity > 0:
            position.cost += fee
        else:  # a sell's, or a buy's that covered a short
            self.realized -= fee
        self._record(TransactionKind.FEE, fee, at_ns, None, order.symbol, None, fill)

    def _fill_leg(
        self, order: Order, position: _Position, quantity: int, price_cents: int, at_ns: int
    ) -> Order | None:
        """Fill a one-cancels-other pair's leg: take as many shares off the other leg and
        lower the pair's reservation (held by one of them) by what no longer remains; return
        the other leg (None if it ended already)."""
        sibling = self._open_sibling(order)
        pair = (order,) if sibling is None else (order, sibling)
        cash = sum(o.reserved_cents for o in pair)
        shares = sum(o.reserved_shares for o in pair)
        order.fill(quantity, price_cents, at_ns)
        if sibling is not None:
            sibling.shrink(quantity)
        self.reserved_cash -= cash - sum(o.reserved_cents for o in pair)
        position.reserved -= shares - sum(o.reserved_shares for o in pair)
        return sibling

    def cancel_held(self, order_id: OrderId, at_ns: int) -> list[Order]:
        """Cancel a held exit leg (it reached no book) and the held other leg of its pair;
        return them."""
        order = self.order(order_id)
        ended = [order]
        order.cancel(CancelReason.REQUESTED, at_ns)
        sibling = self._open_sibling(order)
        if sibling is not None:
            sibling.cancel(CancelReason.OCO, at_ns)
            ended.append(sibling)
        for leg in ended:
            del self.open[leg.order_id]
            self._finish(leg)
        return ended

    def cancel_rest(self, order_id: OrderId, reason: CancelReason, at_ns: int) -> Order:
        """Cancel what remains of an accepted order and release its reservation; the other
        leg of its one-cancels-other pair goes with it (reason `oco`)."""
        order = self._close(order_id, Order.cancel, reason, at_ns)
        if order.sibling is not None and order.sibling in self.open:
            self.knock_on.append(self._close(order.sibling, Order.cancel, CancelReason.OCO, at_ns))
        return order

    def _close(self, order_id: OrderId, end: Callable[..., None], *how: Any) -> Order:
        """End what remains of an open order (`end(order, *how)` gives it its final status),
        release what it held, and keep it among the finished ones."""
        order = self.order(order_id)
        cash, shares = order.reserved_cents, order.reserved_shares
        end(order, *how)
        del self.open[order_id]
        self.reserved_cash -= cash
        if shares:
            position = self.positions[order.symbol]
            position.reserved -= shares
            if not position.quantity and not position.reserved:
                del self.positions[order.symbol]
        self._finish(order)
        return order

    def _cross(self, position: _Position, buy: bool, quantity: int, amount: int) -> None:
        """Settle a fill that sells past the long shares or buys against a short position
        (a margin account's): the part that closes realizes P/L against its share of the
        position's cost, the rest opens (or adds to) a position the other way. A short's cost
        is what its shares sold for, negative: what covering pays back realizes against it,
        so realized P/L less the cost held always moves with the cash."""
        held = position.quantity
        closing = min(quantity, -held if buy else held) if (held < 0) == buy else 0
        paid = share_of(amount, closing, quantity) if closing else 0
        if closing:
            taken = share_of(position.cost, closing, abs(held))
            position.cost -= taken
            self.realized += -taken - paid if buy else paid - taken
        sign = 1 if buy else -1
        position.quantity += sign * quantity
        position.cost += sign * (amount - paid)
        self.cash -= sign * amount

    # -- margin --------------------------------------------------------------------------------

    def _needs(self, extra: Iterable[Order] = (), without: OrderId | None = None) -> int:
        """What a margin account's working orders (with `extra` ones not yet open, less the
        order `without`) need of its excess equity: per symbol, the initial requirement of
        what they may add to a position (buys past what they cover of a short, at their
        reserve prices; sales past the long shares, short, at the last price), and the cash
        held for their fees; in basis points of a cent. O(open orders)."""
        rules, prices = self._margin_rules()
        buys: dict[Symbol, tuple[int, int]] = {}  # shares, notional
        sells: dict[Symbol, int] = {}
        pending = (new for new, _, _ in self.replacing.values())
        for order in itertools.chain(self.open.values(), pending, extra):
            if order.status is _HELD or order.shadow or order.order_id == without:
                continue
            remaining = order.remaining
            if order.side is Side.BUY:
                shares, cents = buys.get(order.symbol, (0, 0))
                cost = notional(order.reserve_price or 0, remaining)
                buys[order.symbol] = (shares + remaining, cents + cost)
            else:
                sells[order.symbol] = sells.get(order.symbol, 0) + remaining
        needs = sum(self.fee_held.values()) * BPS
        for symbol in buys.keys() | sells.keys():
            position = self.positions.get(symbol)
            held = position.quantity if position is not None else 0
            initial = rules.rates(symbol).initial
            shares, cents = buys.get(symbol, (0, 0))
            opening = shares - min(shares, max(0, -held))
            if opening:  # its share of the buys' notional, rounded up
                needs += -(-initial * cents * opening // shares)
            short = sells.get(symbol, 0) - max(0, held)
            if short > 0:
                needs += initial * notional(prices[symbol], short)
        return needs

    def _margin_rules(self) -> tuple[MarginRules, Mapping[Symbol, int]]:
        rules, prices = self.margin, self.prices
        assert rules is not None, f"{self.account_id} is no margin account"
        assert prices is not None, f"{self.account_id} has no prices"
        return rules, prices

    def margin_figures(self, needs: int | None = None) -> MarginFigures:
        """A margin account's equity, requirements, excess and buying power at the last
        prices (`engine.margin`); `needs`: what its open orders need, if known."""
        rules, prices = self._margin_rules()
        positions = ((symbol, p.quantity) for symbol, p in self.positions.items())
        needs = self._needs() if needs is None else needs
        return rules.figures(self.cash, positions, prices, needs)

    def _fits(self, extra: list[Order], fees: int, without: OrderId | None = None) -> bool:
        """True if `extra` orders (in place of `without`) and `fees` fit a margin account:
        what they add to the requirement of its orders, fees included, is within its excess
        equity. Orders that add nothing (sales of shares held, buys to cover) always fit."""
        before = self._needs()
        grows = self._needs(extra, without) - before
        return grows <= 0 or grows + fees * BPS <= self.margin_figures(before).excess * BPS

    def _margin_refusal(self, order: Order, extra: list[Order], fees: int) -> RejectReason | None:
        """A margin account's pre-trade check of `order` (with its working legs in `extra`):
        a sale past the long shares free sells short, which its symbol must allow; what the
        orders need must fit (`_fits`)."""
        rules = self.margin
        assert rules is not None
        if len(self.open) + len(extra) > MAX_MARGIN_OPEN_ORDERS:
            return RejectReason.TOO_MANY_ORDERS
        if order.side is Side.SELL:
            position = self.positions.get(order.symbol)
            held = position.quantity if position is not None else 0
            free = max(0, held - (position.reserved if position is not None else 0))
            if order.quantity > free and not rules.can_short(order.symbol):
                return RejectReason.INSUFFICIENT_SHARES if held > 0 else RejectReason.NOT_SHORTABLE
        if not self._fits(extra, fees):
            return RejectReason.INSUFFICIENT_FUNDS
        return None

    def liquidation(self, figures: MarginFigures | None = None) -> list[tuple[Symbol, Side, int]]:
        """The market orders that bring a margin account below maintenance back to it: its
        positions closed largest market value first, the last in part (as many shares as the
        deficit needs at its maintenance rate). Empty when it has no deficit. `figures`: its
        figures now, if known."""
        rules, prices = self._margin_rules()
        figures = self.margin_figures() if figures is None else figures
        deficit = figures.deficit * BPS  # in basis points of a cent
        largest = sorted(
            (-notional(prices[symbol], abs(p.quantity)), symbol, p.quantity)
            for symbol, p in self.positions.items()
            if p.quantity
        )
        orders = []
        for _, symbol, held in largest:
            if deficit <= 0:
                break
            rates = rules.rates(symbol)
            freed = prices[symbol] * (rates.long if held > 0 else rates.short)  # per share
            shares = abs(held)
            if freed:
                shares = min(shares, -(-deficit // freed))
            orders.append((symbol, Side.SELL if held > 0 else Side.BUY, shares))
            deficit -= freed * shares
        return orders

    # -- views ---------------------------------------------------------------------------------

    def balance(self) -> Balance:
        """Cash, reserved and available, in `Decimal`."""
        return Balance(
            self.account_id,
            cents_to_decimal(self.cash),
            cents_to_decimal(self.reserved_cash),
            cents_to_decimal(self.available_cash),
        )

    def state(self) -> AccountState:
        """Cash and positions, ready to be valued at prices."""
        positions = tuple(
            Position(symbol, p.quantity, p.reserved, p.cost)
            for symbol, p in sorted(self.positions.items())
        )
        return AccountState(
            self.account_id,
            self.cash,
            self.reserved_cash,
            self.realized,
            positions,
            self.fees_paid,
            self.transaction_count,
        )

    def kept_orders(
        self,
        matches: Callable[[Order], bool],
        *,
        only_open: bool = False,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[Order]:
        """The first `limit` orders the account keeps (open ones, and its window of finished
        ones) that `matches`, oldest (or newest) first.

        Open orders have an index of their own, so asking for `only_open` looks at no finished
        order: O(open orders looked at). Otherwise O(orders looked at), which is O(limit) when
        most orders match.
        """
        source = self.open if only_open else self.orders
        orders = reversed(source.values()) if newest_first else iter(source.values())
        return list(itertools.islice(filter(matches, orders), limit))

    def check(self) -> None:
        """Assert the account's invariants: no negative cash or position, reservations equal to
        what open orders hold, nothing reserved beyond what is there."""
        margin = self.margin is not None  # may borrow cash and sell short
        assert margin or self.cash >= 0, f"{self.account_id} cash negative: {self.cash}"
        open_orders = [o for o in self.orders.values() if not o.status.is_final]
        assert list(self.open.values()) == open_orders, f"{self.account_id} open index mismatch"
        for client_id, order_id in self.client_ids.items():
            kept = self.orders.get(order_id)
            assert kept is None or kept.client_order_id == client_id, (
                f"{self.account_id} client order id {client_id!r} mismatch"
            )
        assert len(self.finished) == len(self.orders) - len(self.open), (
            f"{self.account_id} finished index mismatch"
        )
        held = sum(o.reserved_cents for o in open_orders)
        held += sum(cash for _, cash, _ in self.replacing.values())
        held += sum(self.fee_held.values())
        assert self.fee_held.keys() <= self.open.keys(), f"{self.account_id} fee held by no order"
        assert self.reserved_cash == held, (
            f"{self.account_id} reserved {self.reserved_cash} != {held}"
        )
        assert margin or self.reserved_cash <= self.cash, (
            f"{self.account_id} reserved more than its cash"
        )
        for symbol, position in self.positions.items():
            shares = sum(o.reserved_shares for o in open_orders if o.symbol == symbol)
            shares += sum(n for new, _, n in self.replacing.values() if new.symbol == symbol)
            assert position.reserved == shares, f"{self.account_id} {symbol} reserved mismatch"
            assert position.reserved >= 0, f"{self.account_id} {symbol} reserved below 0"
            assert margin or position.reserved <= position.quantity, (
                f"{self.account_id} {symbol} oversold"
            )
            assert position.cost * position.quantity >= 0, f"{self.account_id} {symbol} cost sign"
            assert position.quantity or not position.cost, f"{self.account_id} {symbol} cost left"
        for o in open_orders:
            if o.side is Side.SELL and o.status is not OrderStatus.HELD and not margin:
                assert o.symbol in self.positions, f"{o.order_id} sells shares not held"

    def audit(self) -> AccountAudit:
        """Check the invariants, reconcile cash and shares with the ledger of every
        transaction, and return the totals. O(h) for h holdings.

        Cash must equal deposits - withdrawals - buys + sells - fees, each holding grants +
        buys - sells - removals, and realized P/L (with what resets cleared) minus the cost
        still held the cash made less the stated cost of grants plus the cost of removals, to
        the cent and to the share.
        """
        self.check()
        ledger = self.ledger
        cash = ledger.cash
        granted, bought, sold = ledger.granted, ledger.bought, ledger.sold
        paid, received, fees = ledger.paid, ledger.received, ledger.fees
        assert cash == self.cash, f"{self.account_id} cash {self.cash} != ledger {cash}"
        assert cash == self.deposited - self.withdrawn - sum(paid.values()) + sum(
            received.values()
        ) - sum(fees.values()), (
            f"{self.account_id} cash does not reconcile with deposits, buys, sells and fees"
        )
        assert sum(fees.values()) == self.fees_paid, f"{self.account_id} fees paid mismatch"
        cost_held = sum(p.cost for p in self.positions.values())
        made = cash - self.deposited + self.withdrawn - ledger.granted_cost + ledger.removed_cost
        assert self.realized + self.cleared - cost_held == made, (
            f"{self.account_id} realized P/L and cost held do not reconcile with cash made"
        )
        held = {s: p.quantity for s, p in self.positions.items() if p.quantity}
        removed = ledger.removed
        for symbol in set(held) | set(granted) | set(bought) | set(sold) | set(removed):
            expected = granted.get(symbol, 0) + bought.get(symbol, 0) - sold.get(symbol, 0)
            expected -= removed.get(symbol, 0)
            assert held.get(symbol, 0) == expected, (
                f"{self.account_id} holds {held.get(symbol, 0)} {symbol}, ledger says {expected}"
            )
        return AccountAudit(
            account_id=self.account_id,
            cash=self.cash,
            reserved_cash=self.reserved_cash,
            deposited=self.deposited,
            withdrawn=self.withdrawn,
            held=held,
            reserved_shares={s: p.reserved for s, p in self.positions.items() if p.reserved},
            granted=dict(granted),
            bought=dict(bought),
            sold=dict(sold),
            paid=dict(paid),
            received=dict(received),
            fees=dict(fees),
            removed=dict(removed),
            open_orders=sum(o.status is not OrderStatus.HELD for o in self.open.values()),
        )


@dataclass(slots=True)
class Ledger:
    """Running totals of every transaction an account ever recorded (cents and shares), kept
    as each is made, so the audit reconciles against all of them with only the newest kept."""

    cash: int = 0
    granted_cost: int = 0
    granted: dict[Symbol, int] = field(default_factory=dict)
    bought: dict[Symbol, int] = field(default_factory=dict)
    sold: dict[Symbol, int] = field(default_factory=dict)
    paid: dict[Symbol, int] = field(default_factory=dict)
    received: dict[Symbol, int] = field(default_factory=dict)
    fees: dict[Symbol, int] = field(default_factory=dict)
    removed: dict[Symbol, int] = field(default_factory=dict)
    removed_cost: int = 0

    def add(
        self, kind: TransactionKind, cents: int, symbol: Symbol | None, quantity: int | None
    ) -> None:
        """Count one transaction of `cents` (and `quantity` shares of `symbol`)."""
        if kind is TransactionKind.DEPOSIT:
            self.cash += cents
        elif kind is TransactionKind.WITHDRAWAL:
            self.cash -= cents
        elif kind is TransactionKind.GRANT:
            _add(self.granted, symbol, quantity or 0)
            self.granted_cost += cents
        elif kind is TransactionKind.BUY:
            self.cash -= cents
            _add(self.bought, symbol, quantity or 0)
            _add(self.paid, symbol, cents)
        elif kind is TransactionKind.FEE:
            self.cash -= cents
            _add(self.fees, symbol, cents)
        elif kind is TransactionKind.REMOVAL:
            _add(self.removed, symbol, quantity or 0)
            self.removed_cost += cents
        elif kind is TransactionKind.RESET:
            pass
        else:
            self.cash += cents
            _add(self.sold, symbol, quantity or 0)
            _add(self.received, symbol, cents)


@dataclass(frozen=True, slots=True)
class AccountAudit:
    """An account's books, reconciled against its own transaction log (cents and shares).

    Attributes:
        held: Shares held per symbol; `reserved_shares` the part open sells hold back.
        granted, bought, sold: Shares per symbol from GRANT, BUY and SELL transactions.
        paid, received: Cash per symbol paid for buys and received for sells.
        fees: Cash per symbol paid in fees.
        removed: Shares per symbol taken out by resets.
    """

    account_id: AccountId
    cash: int
    reserved_cash: int
    deposited: int
    withdrawn: int
    held: dict[Symbol, int]
    reserved_shares: dict[Symbol, int]
    granted: dict[Symbol, int]
    bought: dict[Symbol, int]
    sold: dict[Symbol, int]
    paid: dict[Symbol, int]
    received: dict[Symbol, int]
    fees: dict[Symbol, int]
    removed: dict[Symbol, int]
    open_orders: int
    """Orders working (each rests in its book); held exit legs are not counted."""
    failures: tuple[str, ...] = ()


def _add(totals: dict[Symbol, int], symbol: Symbol | None, amount: int) -> None:
    assert symbol is not None
    totals[symbol] = totals.get(symbol, 0) + amount


def value_portfolio(state: AccountState, prices: Mapping[Symbol, int]) -> Portfolio:
    """Value an account's positions at `prices` (cents) and work out profit and loss.

    Unrealized P/L is market value minus the exact cost of the shares held; the percentage is
    of that cost. O(h) for h holdings.
    """
    holdings = []
    total_value = 0
    total_cost = 0
    invested = 0  # the cost of longs and what shorts sold for
    for position in state.positions:
        if not position.quantity:
            continue
        price = prices[position.symbol]
        value = notional(price, position.quantity)
        pl = value - position.cost
        holdings.append(
            Holding(
                symbol=position.symbol,
                quantity=position.quantity,
                reserved=position.reserved,
                average_cost=cents_to_decimal(divide_half_even(position.cost, position.quantity)),
                cost_basis=cents_to_decimal(position.cost),
                market_price=cents_to_decimal(price),
                market_value=cents_to_decimal(value),
                unrealized_pl=cents_to_decimal(pl),
                unrealized_pl_percent=percent(pl, abs(position.cost)),
            )
        )
        total_value += value
        total_cost += position.cost
        invested += abs(position.cost)
    unrealized = total_value - total_cost
    return Portfolio(
        account_id=state.account_id,
        holdings=tuple(holdings),
        cash=cents_to_decimal(state.cash),
        market_value=cents_to_decimal(total_value),
        cost_basis=cents_to_decimal(total_cost),
        unrealized_pl=cents_to_decimal(unrealized),
        unrealized_pl_percent=percent(unrealized, invested),
        realized_pl=cents_to_decimal(state.realized),
        net_worth=cents_to_decimal(state.cash + total_value),
        fees=cents_to_decimal(state.fees),
    )
