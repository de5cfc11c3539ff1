"""Orders, their enumerations and the order status state machine."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from engine.errors import InvalidTransitionError, ValidationError
from engine.ids import AccountId, OrderId, Symbol
from engine.money import average_price, cents_to_decimal, notional


class _Choice(enum.StrEnum):
    """A string enum that parses caller input case-insensitively with a clear error."""

    @classmethod
    def parse(cls, value: Any, field_name: str) -> Any:
        """Return the member named by `value` (a member, or its value in any case)."""
        if isinstance(value, str):  # members are strs too: one dict look-up serves both
            member = cls._value2member_map_.get(value)
            if member is not None:
                return member
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        choices = ", ".join(repr(member.value) for member in cls)
        raise ValidationError(field_name, f"must be one of {choices}", value)


class Side(_Choice):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        """The side this one trades against."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(_Choice):
    """How an order is priced: at the market, or no worse than a limit; a stop order waits for
    the price to reach its stop price (a trailing stop's follows the price) and then enters as a
    market order (stop, trailing stop) or a limit order (stop limit)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"

    @property
    def is_stop(self) -> bool:
        """True for the types that wait for a trigger."""
        return self in STOP_TYPES

    @property
    def triggered(self) -> OrderType:
        """The type it enters the market as once triggered (itself if it is no stop)."""
        return _TRIGGERED.get(self, self)


STOP_TYPES = frozenset({OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})
"""The order types that wait for a trigger (a set: the order path tests membership)."""
_TRIGGERED = {
    OrderType.STOP: OrderType.MARKET,
    OrderType.STOP_LIMIT: OrderType.LIMIT,
    OrderType.TRAILING_STOP: OrderType.MARKET,
}


class TimeInForce(_Choice):
    """How long an order may wait.

    GTC rests until filled or cancelled; DAY rests until filled, cancelled or the session's
    close; IOC fills what it can at once and cancels the rest; FOK fills completely at once or
    not at all.
    """

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    DAY = "day"


class LiquidityMode(_Choice):
    """Where a symbol's liquidity comes from.

    MARKET: the broker fills at the price set by a price feed (the brief's semantics).
    BOOK: orders match each other's resting orders at the resting price (an exchange).
    """

    MARKET = "market"
    BOOK = "book"


class SelfTradePrevention(_Choice):
    """What happens in `book` mode when an order would trade with a resting order of its own
    account (the incoming order's instruction counts): cancel the incoming order's rest
    (`cancel_newest`, the default), cancel the resting order and go on matching
    (`cancel_oldest`), cancel both (`cancel_both`), or let them trade (`allow`). A cancelled
    side carries the reason `self_trade`."""

    CANCEL_NEWEST = "cancel_newest"
    CANCEL_OLDEST = "cancel_oldest"
    CANCEL_BOTH = "cancel_both"
    ALLOW = "allow"


class OrderClass(_Choice):
    """How an order is tied to others.

    SIMPLE: on its own. BRACKET: an entry with two exit legs (a take-profit limit and a
    stop-loss stop or stop limit) held until the entry ends with shares filled, then working
    for the filled quantity as a one-cancels-other pair. OTO: an entry with one such exit leg.
    OCO: two exit legs at once (the order is the take-profit limit, its leg the stop-loss).
    Of a one-cancels-other pair, a fill of either takes as many shares off the other, and when
    either ends the other is cancelled (reason `oco`).
    """

    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"
    OTO = "oto"


class OrderStatus(enum.StrEnum):
    """Where an order is in its life; EXECUTED, CANCELLED, REJECTED and REPLACED (a new order
    carries on in its place) are final. HELD: an exit leg waiting for its entry to end."""

    HELD = "held"
    PENDING = "pending"
    PARTIALLY_FILLED = "partially_filled"
    EXECUTED = "executed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    REPLACED = "replaced"

    @property
    def is_final(self) -> bool:
        """True once the order can change no more."""
        return self in _FINAL


_HELD = OrderStatus.HELD
"""(A module global: the order path reads it without looking in the enum's class.)"""

_FINAL = frozenset(
    {OrderStatus.EXECUTED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.REPLACED}
)

_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.HELD: frozenset(
        {OrderStatus.PENDING, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.REPLACED}
    ),
    OrderStatus.PENDING: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.EXECUTED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.REPLACED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.EXECUTED,
            OrderStatus.CANCELLED,
            OrderStatus.REPLACED,
        }
    ),
    OrderStatus.EXECUTED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.REPLACED: frozenset(),
}


class RejectReason(enum.StrEnum):
    """Why an order was refused before it reached the book; nothing moved."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    INSUFFICIENT_SHARES = "insufficient_shares"
    BUSY = "busy"
    MARKET_CLOSED = "market_closed"
    NOT_SHORTABLE = "not_shortable"
    """A margin account's sale past its free shares, of a symbol that may not be sold short."""
    TOO_MANY_ORDERS = "too_many_orders"
    """A margin account has `MAX_MARGIN_OPEN_ORDERS` open already (its checks walk them)."""


class CancelReason(enum.StrEnum):
    """Why an accepted order (or its unfilled rest) was cancelled."""

    REQUESTED = "requested"
    IMMEDIATE_OR_CANCEL = "immediate_or_cancel"
    FILL_OR_KILL = "fill_or_kill"
    NO_LIQUIDITY = "no_liquidity"
    PRICE_COLLAR = "price_collar"
    EXPIRED = "expired"
    HALTED = "halted"
    SELF_TRADE = "self_trade"
    """It would have traded with an order of its own account (self-trade prevention)."""
    INTERRUPTED = "interrupted"
    """Accepted just before the engine stopped short, it never reached its book; recovery
    cancelled it (its caller had no answer)."""
    OCO = "oco"
    """Its other leg of a one-cancels-other pair filled it out, or ended."""
    ENTRY_UNFILLED = "entry_unfilled"
    """An exit leg held for an entry that ended with nothing filled."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns_to_datetime(ns: int) -> datetime:
    """Convert integer nanoseconds since the epoch to an aware UTC datetime, to the
    microsecond (integer arithmetic only)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def datetime_to_ns(moment: datetime) -> int:
    """Convert an aware datetime to integer nanoseconds since the epoch (a naive one is taken as
    UTC; integer arithmetic only)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


class OrderSnapshot(NamedTuple):
    """An order as it stood when the snapshot was taken. Prices and amounts are `Decimal`.

    A `NamedTuple` (immutable, like every snapshot here) because one is built for every order
    answered, and it is about four times cheaper to build than a frozen dataclass.
    """

    order_id: OrderId
    account_id: AccountId
    symbol: Symbol
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: int
    limit_price: Decimal | None
    status: OrderStatus
    filled_quantity: int
    remaining_quantity: int
    average_fill_price: Decimal | None
    filled_amount: Decimal
    reject_reason: RejectReason | None
    cancel_reason: CancelReason | None
    created_at: datetime
    updated_at: datetime
    client_order_id: str | None = None
    stop_price: Decimal | None = None
    """A stop's stop price: a trailing stop's as it stood when triggered, or when placed."""
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    """A trailing stop's mark (highest price since placed for a sell, lowest for a buy) when
    triggered, or when placed."""
    triggered_at: datetime | None = None
    self_trade_prevention: SelfTradePrevention | None = None
    replaces: OrderId | None = None
    """The order this one replaced (its fills stay with it)."""
    replaced_by: OrderId | None = None
    """The order that replaced this one (status REPLACED)."""
    order_class: OrderClass = OrderClass.SIMPLE
    legs: tuple[OrderId, ...] = ()
    """Its exit legs (a bracket's take-profit then stop-loss; an OCO's stop-loss)."""
    parent: OrderId | None = None
    """The order whose leg it is."""


@dataclass(slots=True)
class Order:
    """One order as its account sees it: terms, status, fills so far and reservation.

    Only the owning account actor touches an `Order`; other actors see snapshots.

    Attributes:
        placed_monotonic_ns: When the caller placed it, on a monotonic clock (for latency).
        reserve_price: For a buy, the highest price it may fill at, in cents: its limit, or the
            collar price for a market buy. Cash reserved for it is always
            `remaining * reserve_price`. None for a sell, which reserves shares.
        client_order_id: The caller's own id for it, unique among its account's orders.
        stop_price: A stop's or stop limit's stop price in cents; a trailing stop's is set from
            its mark when placed and when triggered.
        trail_price: A trailing stop's distance from its mark, in cents.
        trail_bps: A trailing stop's distance from its mark in hundredths of a percent.
        hwm: A trailing stop's mark in cents (when placed, then when triggered).
        triggered_ns: When a stop was triggered (None until then).
        self_trade: Its self-trade prevention; the account sets its default when it accepts
            the order (None: an order from before there was any, which trades with its own).
        order_class: How it is tied to others; `legs` are its exit legs, `parent` the order
            it is a leg of, `sibling` the other leg of its one-cancels-other pair.
        shadow: A pair's stop-loss: it holds nothing itself, its sibling (the take-profit)
            holds the pair's cash or shares once for both (their remaining quantities are
            always equal).
    """

    order_id: OrderId
    account_id: AccountId
    symbol: Symbol
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: int
    limit_price: int | None
    reserve_price: int | None
    created_ns: int
    placed_monotonic_ns: int = 0
    client_order_id: str | None = None
    status: OrderStatus = OrderStatus.PENDING
    filled_quantity: int = 0
    filled_cents: int = 0
    reject_reason: RejectReason | None = None
    cancel_reason: CancelReason | None = None
    updated_ns: int = field(default=0)
    stop_price: int | None = None
    trail_price: int | None = None
    trail_bps: int | None = None
    hwm: int | None = None
    triggered_ns: int | None = None
    self_trade: SelfTradePrevention | None = None
    replaces: OrderId | None = None
    replaced_by: OrderId | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    legs: tuple[OrderId, ...] = ()
    parent: OrderId | None = None
    sibling: OrderId | None = None
    shadow: bool = False

    def __post_init__(self) -> None:
        if not self.updated_ns:
            self.updated_ns = self.created_ns

    @property
    def remaining(self) -> int:
        """Shares still to fill; zero once the order is final."""
        if self.status.is_final:
            return 0
        return self.quantity - self.filled_quantity

    @property
    def reserved_cents(self) -> int:
        """Cash this order holds back from its account now (zero for a sell, a held leg and
        a pair's shadow)."""
        if self.side is Side.SELL or self.reserve_price is None or self.shadow:
            return 0
        if self.status is _HELD:
            return 0
        return notional(self.reserve_price, self.remaining)

    @property
    def reserved_shares(self) -> int:
        """Shares this order holds back from its account now (zero for a buy, a held leg and
        a pair's shadow)."""
        if self.side is Side.BUY or self.shadow or self.status is _HELD:
            return 0
        return self.remaining

    def activate(self, quantity: int, at_ns: int) -> None:
        """Let a held exit leg work, for `quantity` shares (what its entry filled)."""
        self._move(OrderStatus.PENDING, at_ns)
        self.quantity = quantity

    def shrink(self, quantity: int) -> None:
        """Take `quantity` shares off what remains (its pair's other leg filled them)."""
        if not 0 < quantity <= self.remaining:
            raise InvalidTransitionError(
                self.order_id, self.status.value, f"taking {quantity} shares off"
            )
        self.quantity -= quantity

    def _move(self, new: OrderStatus, at_ns: int) -> None:
        if new not in _TRANSITIONS[self.status]:
            raise InvalidTransitionError(self.order_id, self.status.value, new.value)
        self.status = new
        self.updated_ns = at_ns

    def reject(self, reason: RejectReason, at_ns: int) -> None:
        """Refuse the order before it reached the book."""
        self._move(OrderStatus.REJECTED, at_ns)
        self.reject_reason = reason

    def fill(self, quantity: int, price_cents: int, at_ns: int) -> None:
        """Record a fill of `quantity` shares at `price_cents`.

        Raises:
            InvalidTransitionError: if the order is final or the fill exceeds what remains.
        """
        if quantity <= 0 or quantity > self.remaining:
            raise InvalidTransitionError(
                self.order_id, self.status.value, f"a fill of {quantity} shares"
            )
        done = self.filled_quantity + quantity == self.quantity
        self._move(OrderStatus.EXECUTED if done else OrderStatus.PARTIALLY_FILLED, at_ns)
        self.filled_quantity += quantity
        self.filled_cents += notional(price_cents, quantity)

    def trigger(self, at_ns: int, stop_price: int, hwm: int | None) -> None:
        """Record that the stop was triggered at `at_ns`, at `stop_price` (a trailing stop's
        as its mark `hwm` set it)."""
        self.triggered_ns = at_ns
        self.stop_price = stop_price
        if hwm is not None:
            self.hwm = hwm
        self.updated_ns = at_ns

    def replaced(self, by: OrderId, at_ns: int) -> None:
        """Record that `by` replaced what remains of the order."""
        self._move(OrderStatus.REPLACED, at_ns)
        self.replaced_by = by

    def cancel(self, reason: CancelReason, at_ns: int) -> None:
        """Cancel what remains of the order."""
        self._move(OrderStatus.CANCELLED, at_ns)
        self.cancel_reason = reason

    def snapshot(self) -> OrderSnapshot:
        """Return an immutable public view of the order (built positionally: one is built for
        every order answered)."""
        average = None
        if self.filled_quantity:
            average = average_price(self.filled_cents, self.filled_quantity)
        limit = self.limit_price
        stop = trail = trail_percent = hwm = triggered = None
        if self.order_type in STOP_TYPES:
            stop, trail, hwm = _price(self.stop_price), _price(self.trail_price), _price(self.hwm)
            if self.trail_bps is not None:
                trail_percent = Decimal(self.trail_bps).scaleb(-2)
            if self.triggered_ns is not None:
                triggered = ns_to_datetime(self.triggered_ns)
        return OrderSnapshot(
            self.order_id,
            self.account_id,
            self.symbol,
            self.side,
            self.order_type,
            self.time_in_force,
            self.quantity,
            None if limit is None else cents_to_decimal(limit),
            self.status,
            self.filled_quantity,
            self.remaining,
            average,
            cents_to_decimal(self.filled_cents),
            self.reject_reason,
            self.cancel_reason,
            ns_to_datetime(self.created_ns),
            ns_to_datetime(self.updated_ns),
            self.client_order_id,
            stop,
            trail,
            trail_percent,
            hwm,
            triggered,
            self.self_trade,
            self.replaces,
            self.replaced_by,
            self.order_class,
            self.legs,
            self.parent,
        )


def _price(cents: int | None) -> Decimal | None:
    return None if cents is None else cents_to_decimal(cents)
