"""The message protocol: every message an actor sends or handles, and who sends and handles it.

A caller's domain command (`engine.commands`) travels in an envelope with its reply: `Place`
for an order, `Request` for every other command; the gateway actor routes it to the actor that
owns what it names. Queries carry parsed values and a reply. The messages between actors carry
engine values, actor refs and replies. A `reply` is a one-shot channel (a future) that the actor
finishing the request fills with a result or an error. Every message is immutable.

The five messages every order passes through (`Place`, `AcceptOrder`, `SubmitOrder`,
`SettleMatch`, `SettleFill`) are `NamedTuple`s rather than frozen dataclasses: just as
immutable, and about four times cheaper to build (a frozen dataclass sets each field through
`object.__setattr__`), which counts on the matching path. Each message's docstring opens with
its route: sender -> handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import pykka

from engine.commands import AddAlert, Command, PlaceOrder, ReplaceOrder
from engine.events import Event
from engine.history import OrderQuery, TransactionQuery
from engine.ids import AccountId, OrderId, Symbol, UserId
from engine.margin import MarginFigures
from engine.matching import Fill, MatchResult, OrderTicket, Replacement
from engine.orders import CancelReason, Order, OrderSnapshot, Side

ActorRef = pykka.ActorRef[Any]
"""A reference to any of the project's actors."""

C_co = TypeVar("C_co", bound=Command, covariant=True)


class Reply(Protocol):
    """Where the result of a request goes (`actors.futures.LightFuture` fits)."""

    def set(self, value: Any = None) -> None:
        """Deliver the result."""

    def set_exception(self, exc_info: Any = None) -> None:
        """Deliver an error as `(type, value, traceback)`."""


# -- envelopes of domain commands ----------------------------------------------------------------


class Request(NamedTuple, Generic[C_co]):
    """Brokerage -> gateway actor -> the owning account or symbol actor: a domain command other
    than an order. An actor's handler for a command class handles the `Request` carrying it."""

    command: C_co
    reply: Reply


class Place(NamedTuple):
    """Brokerage -> gateway actor: place an order.

    `admitted` is False when the caller found too many orders in flight: the gateway still
    gives it an id, then rejects it with reason BUSY, keeping nothing of it. With
    `keep_refused` False an order the pre-trade check refuses is not kept in the account's
    history either (as on Alpaca, where a refused order is no order). `placed_monotonic_ns`
    is when the caller placed it, for the latency figures.
    """

    command: PlaceOrder
    reply: Reply
    placed_monotonic_ns: int = 0
    admitted: bool = True
    keep_refused: bool = True


# -- an order's path between actors ---------------------------------------------------------------


class AcceptOrder(NamedTuple):
    """Gateway actor -> account actor: make the pre-trade check for a new order (reserve, or
    reject) and send it on to its symbol's actor.

    An order the gateway already rejected (MARKET_CLOSED) is only recorded; its reply was sent.
    The `order` belongs to the receiving account actor from here on; no one else touches it.
    With `keep_refused` False a refused order is forgotten once answered.
    """

    order: Order
    symbol_ref: ActorRef
    reply: Reply | None
    keep_refused: bool = True
    legs: tuple[Order, ...] = ()
    """Its exit legs (an order of a class other than simple), linked to it already."""


class SubmitOrder(NamedTuple):
    """Account actor -> symbol actor: match an accepted order in the book (its account has
    reserved for it)."""

    ticket: OrderTicket
    reply: Reply | None


class SubmitPair(NamedTuple):
    """Account actor -> symbol actor: match the two legs of a one-cancels-other pair as one
    (see `Market.submit_pair`); the reply (if any) is `first`'s."""

    first: OrderTicket
    second: OrderTicket
    reply: Reply | None


class SettleMatch(NamedTuple):
    """Symbol actor -> the order's own account actor: what the submission did at once (at
    `at_ns`), to settle and reply.

    `waits` are the `done` replies of the fills sent to resting orders' accounts, and the
    journal's word that the match is durable: the caller's answer holds once they are done.
    """

    order_id: OrderId
    result: MatchResult
    reply: Reply | None
    waits: tuple[pykka.Future[Any], ...] = ()
    at_ns: int = 0
    answer_for: OrderId | None = None
    """The order whose snapshot answers (None: this one): a pair's first leg, answered once
    its second leg's result is settled too."""


class SettleFill(NamedTuple):
    """Symbol actor -> a resting order's account actor: it traded; `done` (if any) is set once
    settled."""

    order_id: OrderId
    fill: Fill
    done: Reply | None


class SettleTriggered(NamedTuple):
    """Symbol actor -> a stop's account actor: a price move triggered it (at `stop_price`; a
    trailing stop's `mark` set it) at `at_ns`, and `result` is what the order it became did
    then; `done` is set once settled."""

    order_id: OrderId
    stop_price: int
    mark: int | None
    result: MatchResult
    at_ns: int
    done: Reply


@dataclass(frozen=True, slots=True)
class ReplaceAt:
    """Gateway actor -> account actor: replace an order as `command` asks, the new order
    under `order_id` made at `created_ns` (by `factory`, from the `prices` board)."""

    command: ReplaceOrder
    order_id: OrderId
    created_ns: int
    factory: Any
    prices: Any
    placed_monotonic_ns: int
    reply: Reply
    market_open: bool = True


@dataclass(frozen=True, slots=True)
class ReplaceInBook:
    """Account actor -> symbol actor: replace the resting order `order_id` (placed for
    `quantity`) by `new` (for its total quantity)."""

    order_id: OrderId
    quantity: int
    new: Order
    account_ref: ActorRef
    reply: Reply


@dataclass(frozen=True, slots=True)
class BookReplaced:
    """Symbol actor -> account actor: the answer to `ReplaceInBook` (`found` None: the order
    rests no more, or already filled the new total; nothing changed)."""

    order_id: OrderId
    found: Replacement | None
    reply: Reply
    waits: tuple[Any, ...] = ()
    at_ns: int = 0


@dataclass(frozen=True, slots=True)
class RemoveFromBook:
    """Account actor -> symbol actor: take a resting order out of the book (a cancel)."""

    order_id: OrderId
    account_ref: ActorRef
    reply: Reply


@dataclass(frozen=True, slots=True)
class RemovedFromBook:
    """Symbol actor -> account actor: the answer to `RemoveFromBook`, whether the order was
    still resting (taken out at `at_ns`; `durable` set once the journal holds it)."""

    order_id: OrderId
    removed: bool
    reply: Reply
    at_ns: int = 0
    durable: pykka.Future[Any] | None = None


@dataclass(frozen=True, slots=True)
class OrderExpired:
    """Symbol actor -> account actor: an order was taken out of the book (a DAY order at the
    close: EXPIRED; every resting order of a halted symbol: HALTED); `done` is set once the
    account cancelled it."""

    order_id: OrderId
    done: Reply
    reason: CancelReason = CancelReason.EXPIRED
    at_ns: int = 0


@dataclass(frozen=True, slots=True)
class SetAlert:
    """Gateway actor -> symbol actor: add the alert `command` asks for, under the id and time
    the gateway gave it."""

    command: AddAlert
    alert_id: str
    created_ns: int
    reply: Reply


# -- queries (they change nothing) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetOrder:
    """Brokerage -> gateway actor -> account actor: one order."""

    order_id: OrderId
    reply: Reply


@dataclass(frozen=True, slots=True)
class DescribeStop:
    """Account actor -> symbol actor: answer `snapshot` (a waiting trailing stop) with the
    stop price and mark it has now."""

    snapshot: OrderSnapshot
    reply: Reply


@dataclass(frozen=True, slots=True)
class DescribeStops:
    """Account actor -> symbol actor -> ...: complete the waiting trailing stops of `kept` (at
    the indices each hop names, for its own symbol) with the stop price and mark they have now,
    hop after hop; the last hop answers `kept`."""

    kept: Kept
    hops: tuple[tuple[ActorRef, tuple[int, ...]], ...]
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetOrderByClientId:
    """Brokerage -> gateway actor -> account actor: the account's order with this
    `client_order_id`."""

    account_id: AccountId
    client_order_id: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetOrders:
    """Brokerage -> gateway actor -> account actor: the orders the account keeps that match
    `query`, the first `query.end` in its order, as a `Kept` with the latest creation time of
    a finished order it no longer keeps."""

    query: OrderQuery
    reply: Reply

    @property
    def account_id(self) -> AccountId:
        """The account asked."""
        return self.query.account_id


@dataclass(frozen=True, slots=True)
class Kept:
    """What an account keeps of its history for a query: `items` (the first matches, in the
    query's order), `dropped_ns` and `dropped_number` (orders: the latest creation time and
    the highest id number of one no longer kept) or
    `dropped` (transactions: how many of the oldest are no longer kept) and `oldest` (the
    time of the oldest transaction kept)."""

    items: list[Any]
    dropped_ns: int | None = None
    dropped_number: int = 0
    dropped: int = 0
    oldest: datetime | None = None


@dataclass(frozen=True, slots=True)
class GetBalance:
    """Brokerage -> gateway actor -> account actor: cash, reserved and available."""

    account_id: AccountId
    reply: Reply


@dataclass(frozen=True, slots=True)
class MarginCheck:
    """A margin account's answer to `CheckMargin`."""

    account_id: AccountId
    figures: MarginFigures
    liquidation: tuple[tuple[Symbol, Side, int], ...]
    """Market orders (symbol, side, shares) that bring it back to maintenance: its largest
    positions first (empty: no deficit)."""


@dataclass(frozen=True, slots=True)
class CheckMargin:
    """Brokerage -> gateway actor -> account actor: a margin account's figures at the last
    prices and, below maintenance, the orders that would liquidate it (a `MarginCheck`;
    None for a cash account). With `tell`, its `MarginCall` event goes out as it falls below
    (a sweep's check); without, it is only read."""

    account_id: AccountId
    reply: Reply
    tell: bool = True


@dataclass(frozen=True, slots=True)
class GetAccountState:
    """Brokerage -> gateway actor -> account actor: cash and positions, for valuation."""

    account_id: AccountId
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetTransactions:
    """Brokerage -> gateway actor -> account actor: the transactions the account keeps that
    match `query`, the first `query.end` in its order, as a `Kept`."""

    query: TransactionQuery
    reply: Reply

    @property
    def account_id(self) -> AccountId:
        """The account asked."""
        return self.query.account_id


@dataclass(frozen=True, slots=True)
class GetWatchlists:
    """Brokerage -> gateway actor -> account actor: the watchlists (all, or the one named)."""

    account_id: AccountId
    name: str | None
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetAccounts:
    """Brokerage -> gateway actor: the account ids of a user (of every user if None); without
    `agents`, not the trader agents' accounts."""

    user_id: UserId | None
    reply: Reply
    agents: bool = True
    margin_only: bool = False


@dataclass(frozen=True, slots=True)
class GetQuote:
    """Brokerage -> gateway actor -> symbol actor: the quote (`symbol` None: the gateway's own
    ask of every symbol)."""

    symbol: Symbol | None
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetPriceHistory:
    """Brokerage -> gateway actor -> symbol actor: the price history."""

    symbol: Symbol
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetDepth:
    """Brokerage -> gateway actor -> symbol actor: the best `levels` levels of each side."""

    symbol: Symbol
    levels: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetTrades:
    """Brokerage -> gateway actor -> symbol actor: the last `limit` trades."""

    symbol: Symbol
    limit: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetBars:
    """Brokerage -> gateway actor -> symbol actor: the last `limit` OHLCV bars of one interval
    ("1m", "5m" or "1d")."""

    symbol: Symbol
    interval: str
    limit: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetAlerts:
    """Brokerage -> gateway actor -> each symbol actor the account has alerts on: the
    account's active alerts (with `fired`: its latest firings)."""

    account_id: AccountId
    reply: Reply
    fired: bool = False


@dataclass(frozen=True, slots=True)
class Search:
    """Brokerage -> gateway actor: listed stocks by symbol or company name."""

    query: str
    limit: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetStocks:
    """Brokerage -> gateway actor: every listed stock's quote."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Audit:
    """Brokerage -> gateway actor -> every account and symbol actor: check the invariants and
    report the totals (an account's `AccountAudit`, a symbol's `MarketAudit`)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class GetState:
    """Brokerage -> gateway actor, at a clean stop once every account and symbol actor has
    stopped: the engine's objects and directory (`engine.journal.State`), for a snapshot."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class GetChildren:
    """Brokerage -> gateway actor: the refs of every account and symbol actor (to stop them)."""

    reply: Reply


# -- the event bus ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    """Who wants which events: `kinds` (event classes; empty for all), an account, a symbol."""

    subscription_id: int
    callback: Callable[[Event], Any]
    kinds: tuple[type, ...]
    account_id: str | None
    symbol: str | None

    def wants(self, event: Event) -> bool:
        """Whether `event` passes this subscription's filters."""
        if self.kinds and not isinstance(event, self.kinds):
            return False
        if self.account_id is not None and event.account_id != self.account_id:
            return False
        return self.symbol is None or event.symbol == self.symbol


@dataclass(frozen=True, slots=True)
class Publish:
    """Account and symbol actors -> event bus: deliver `event` to every subscriber that wants
    it."""

    event: Event


@dataclass(frozen=True, slots=True)
class AddSubscription:
    """Brokerage -> event bus: start delivering to `subscription`."""

    subscription: Subscription
    reply: Reply


@dataclass(frozen=True, slots=True)
class RemoveSubscription:
    """Brokerage -> event bus: stop delivering to the subscription with this id; reply whether
    it existed."""

    subscription_id: int
    reply: Reply


@dataclass(frozen=True, slots=True)
class Flush:
    """Brokerage -> event bus: reply once every event published before it has been
    delivered."""

    reply: Reply


# -- notifications ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preferences:
    """One user's channels (name -> address: an email, a webhook URL, a phone number; console
    takes none) and the kinds of event wanted ("fill", "cancel", "reject", "alert")."""

    channels: dict[str, str | None]
    kinds: frozenset[str]


@dataclass(frozen=True, slots=True)
class SetPreferences:
    """Brokerage -> notification actor: set a user's notification preferences."""

    user_id: str
    preferences: Preferences
    reply: Reply


@dataclass(frozen=True, slots=True)
class KnowAccount:
    """Brokerage -> notification actor: which user holds an account."""

    account_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Notify:
    """Event bus (a subscription of the brokerage's) -> notification actor: an event to
    notify about."""

    event: Event


@dataclass(frozen=True, slots=True)
class GetUndelivered:
    """Brokerage -> notification actor: the notifications that could not be delivered."""

    reply: Reply


def message_name(message: object) -> str:
    """A message's class name, or for an envelope the name of the command it carries."""
    if isinstance(message, Request | Place):
        return type(message.command).__name__
    return type(message).__name__
