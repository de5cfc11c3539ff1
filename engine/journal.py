"""The journal's facts, and the state they rebuild.

A fact is what happened, written by the actor that made it happen, in the order the journal
made it durable: an account opened, cash moved, an order accepted with its reservation (or
refused), an order matched in its book at a moment, a price set, an order taken out of its
book, ... Replaying facts never decides anything again: an accepted order is reserved for even
if the cash at that point of the replay would say otherwise, so replay gives the same state
whatever the actors' interleaving was.

A match is one fact: replaying it re-runs the (deterministic) matching at its recorded moment,
which makes the account effects (each fill to settle, a rest to cancel) pending; each account
says with `Applied` when it applied one, and the replay applies it there, so each account's
fills settle in the order they did live (average cost depends on it). Effects still pending at
the end of the journal (the accounts had not said so when the process died) are applied then,
in order: a trade is after recovery either in the book and both accounts, or nowhere.

`State.apply(fact)` applies one fact to plain engine objects (no actors); `State.digest()`
summarises everything a user can see, so a recovered engine can be compared with the live one.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import typing
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from engine.account import Account, User
from engine.alerts import Alert, AlertBook, AlertCondition
from engine.codec import Codec
from engine.commands import (
    AddToWatchlist,
    CreateWatchlist,
    DeleteWatchlist,
    RemoveFromWatchlist,
    RenameWatchlist,
    ReplaceWatchlist,
    WatchlistEdit,
)
from engine.commands import decode as decode_command
from engine.fees import FeeSchedule
from engine.ids import AccountId, OrderId, Routes, Symbol, UserId, id_number
from engine.margin import MarginRules
from engine.matching import Fill, Market, MatchResult, OrderTicket, TradeIdSequence
from engine.orders import (
    CancelReason,
    LiquidityMode,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from engine.slippage import Slippage

# -- the facts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """A stock was listed (gateway actor)."""

    symbol: Symbol
    name: str
    price: int
    mode: LiquidityMode
    at_ns: int


@dataclass(frozen=True, slots=True)
class Opened:
    """An account was opened for a user, registered then if new (gateway actor)."""

    account_id: AccountId
    user_id: UserId
    name: str
    email: str | None
    phone: str | None
    initial_deposit: int
    at_ns: int
    agent: bool = False
    """The account of a trader agent (left out of listings of the users' accounts)."""
    margin: bool = False
    """A margin account (it may borrow and sell short); else a cash account."""


@dataclass(frozen=True, slots=True)
class CashMoved:
    """Cash deposited (`cents` > 0) or withdrawn (< 0) (account actor)."""

    account_id: AccountId
    cents: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class SelfTradeSet:
    """An account's self-trade prevention was set (account actor)."""

    account_id: AccountId
    mode: SelfTradePrevention


@dataclass(frozen=True, slots=True)
class SlippageSet:
    """The brokerage's slippage model for `market`-mode fills was set (at its start):
    `Slippage.text()`, "" for none. Orders filling on arrival from here on slip under it."""

    model: str


@dataclass(frozen=True, slots=True)
class AccountReset:
    """An account started afresh with `cash` cents and no holdings (account actor)."""

    account_id: AccountId
    cash: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class FeesSet:
    """The brokerage's fee schedule was set (at its start): `FeeSchedule.text()`, "" for
    none. Orders accepted from here on hold for fees, and every fill from here on pays them."""

    schedule: str


@dataclass(frozen=True, slots=True)
class Granted:
    """Shares credited at a stated cost (account actor)."""

    account_id: AccountId
    symbol: Symbol
    quantity: int
    price: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class Accepted:
    """An order passed its pre-trade check and its cash or shares were reserved, or, an exit
    leg, was held for its entry (account actor). The last fields tie it to the orders of its
    class (see `Order`)."""

    order_id: OrderId
    account_id: AccountId
    symbol: Symbol
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: int
    limit_price: int | None
    reserve_price: int | None
    client_order_id: str | None
    created_ns: int
    stop_price: int | None = None
    trail_price: int | None = None
    trail_bps: int | None = None
    hwm: int | None = None
    self_trade: SelfTradePrevention | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    legs: tuple[OrderId, ...] = ()
    parent: OrderId | None = None
    sibling: OrderId | None = None
    shadow: bool = False
    held: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """An order was refused and kept in its account's history (`kept`), or refused and kept
    nowhere (its id is spent all the same) (account or gateway actor)."""

    order_id: OrderId
    account_id: AccountId
    symbol: Symbol
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: int
    limit_price: int | None
    reserve_price: int | None
    client_order_id: str | None
    created_ns: int
    reason: RejectReason
    kept: bool
    stop_price: int | None = None
    trail_price: int | None = None
    trail_bps: int | None = None
    hwm: int | None = None
    self_trade: SelfTradePrevention | None = None


@dataclass(frozen=True, slots=True)
class Matched:
    """An accepted order went through its symbol's book at `at_ns` (symbol actor)."""

    symbol: Symbol
    order_id: OrderId
    at_ns: int


@dataclass(frozen=True, slots=True)
class Replaced:
    """An open order was replaced in its book by a new one (symbol actor): `replaced` is the
    old order, `quantity` the new order's total (what the old one filled included), the
    other fields the new order's terms, as `Accepted` has them."""

    symbol: Symbol
    replaced: OrderId
    at_ns: int
    order_id: OrderId
    account_id: AccountId
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: int
    limit_price: int | None
    reserve_price: int | None
    client_order_id: str | None
    created_ns: int
    stop_price: int | None = None
    trail_price: int | None = None
    trail_bps: int | None = None
    hwm: int | None = None
    self_trade: SelfTradePrevention | None = None


@dataclass(frozen=True, slots=True)
class PriceSet:
    """The feed moved a symbol's price (symbol actor)."""

    symbol: Symbol
    price: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class Removed:
    """A resting order was taken out of its book on its account's request (symbol actor)."""

    symbol: Symbol
    order_id: OrderId
    at_ns: int


@dataclass(frozen=True, slots=True)
class Expired:
    """The session closed: the symbol's resting DAY orders were taken out (symbol actor)."""

    symbol: Symbol
    at_ns: int


@dataclass(frozen=True, slots=True)
class Halted:
    """A failure left the symbol's book untrustworthy: its resting orders were cancelled and
    it trades no more (symbol actor)."""

    symbol: Symbol
    at_ns: int


@dataclass(frozen=True, slots=True)
class Applied:
    """An account applied an effect of its symbol's facts: "match:ORDER" (an order's own fills
    and the cancel of its rest), "fill:TRADE:ORDER" (a resting order's fill),
    "removed:ORDER", "expired:ORDER" (a cancel out of the book) (account actor)."""

    account_id: AccountId
    key: str


@dataclass(frozen=True, slots=True)
class Note:
    """A record the tiers above the engine keep with its journal (an API key of the server,
    say); `kind` says whose, `data` is theirs (the engine reads neither)."""

    kind: str
    data: str


@dataclass(frozen=True, slots=True)
class Interrupted:
    """An order accepted before a crash never reached its book; recovery cancelled it."""

    order_id: OrderId
    at_ns: int


@dataclass(frozen=True, slots=True)
class HeldCancelled:
    """Its owner cancelled a held exit leg (and so the held other leg of its pair) (account
    actor)."""

    account_id: AccountId
    order_id: OrderId
    at_ns: int


@dataclass(frozen=True, slots=True)
class HeldReplaced(Replaced):
    """Its owner replaced a held exit leg by a new held leg (account actor): the fields as a
    `Replaced` fact has them, `symbol` the leg's."""


@dataclass(frozen=True, slots=True)
class WatchlistChanged:
    """A watchlist edit succeeded (account actor); `command` is the encoded command."""

    account_id: AccountId
    command: str


@dataclass(frozen=True, slots=True)
class AlertAdded:
    """A price alert was set (symbol actor)."""

    alert_id: str
    account_id: AccountId
    symbol: Symbol
    condition: AlertCondition
    threshold: int
    one_shot: bool
    created_ns: int


@dataclass(frozen=True, slots=True)
class AlertRemoved:
    """An active alert was cancelled (symbol actor)."""

    symbol: Symbol
    alert_id: str


Fact = (
    Listed
    | Opened
    | CashMoved
    | Granted
    | Accepted
    | Refused
    | Matched
    | PriceSet
    | Removed
    | Expired
    | Halted
    | Applied
    | Note
    | Interrupted
    | WatchlistChanged
    | AlertAdded
    | AlertRemoved
    | SelfTradeSet
    | Replaced
    | HeldCancelled
    | HeldReplaced
    | FeesSet
    | AccountReset
    | SlippageSet
)
"""Every fact the journal holds."""

FACTS: dict[str, type[Fact]] = {kind.__name__: kind for kind in typing.get_args(Fact)}
_CODEC = Codec(FACTS, "fact")


def encode(fact: Fact) -> list[Any]:
    """`fact` as a compact JSON array: its kind, then its fields in order."""
    return _CODEC.encode_row(fact)


def decode(row: Any) -> Fact:
    """The fact `encode` wrote; `ValidationError` if `row` is not one."""
    found: Fact = _CODEC.decode_row(row)
    return found


def accepted(order: Order) -> Accepted:
    """The fact of an order accepted (or held)."""
    if not order.legs and order.parent is None:  # a simple order
        return Accepted(**_terms(order))
    return Accepted(
        **_terms(order),
        order_class=order.order_class,
        legs=order.legs,
        parent=order.parent,
        sibling=order.sibling,
        shadow=order.shadow,
        held=order.status is OrderStatus.HELD,
    )


def replaced(symbol: Symbol, order_id: OrderId, new: Order, at_ns: int) -> Replaced:
    """The fact of `order_id` replaced by `new` (for its total quantity); of a held leg
    replaced by a held one if `new` is held."""
    terms = _terms(new)
    del terms["symbol"]
    kind = HeldReplaced if new.status is OrderStatus.HELD else Replaced
    return kind(symbol, order_id, at_ns, **terms)


def refused(order: Order, *, kept: bool) -> Refused:
    """The fact of an order refused (its `reject_reason` set)."""
    assert order.reject_reason is not None
    return Refused(**_terms(order), reason=order.reject_reason, kept=kept)


def _terms(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "account_id": order.account_id,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "time_in_force": order.time_in_force,
        "quantity": order.quantity,
        "limit_price": order.limit_price,
        "reserve_price": order.reserve_price,
        "client_order_id": order.client_order_id,
        "created_ns": order.created_ns,
        "stop_price": order.stop_price,
        "trail_price": order.trail_price,
        "trail_bps": order.trail_bps,
        "hwm": order.hwm,
        "self_trade": order.self_trade,
    }


def _order(fact: Accepted | Refused | Replaced) -> Order:
    return Order(
        order_id=fact.order_id,
        account_id=fact.account_id,
        symbol=fact.symbol,  # a Replaced fact's symbol is the book's: the same
        side=fact.side,
        order_type=fact.order_type,
        time_in_force=fact.time_in_force,
        quantity=fact.quantity,
        limit_price=fact.limit_price,
        reserve_price=fact.reserve_price,
        created_ns=fact.created_ns,
        client_order_id=fact.client_order_id,
        stop_price=fact.stop_price,
        trail_price=fact.trail_price,
        trail_bps=fact.trail_bps,
        hwm=fact.hwm,
        self_trade=fact.self_trade,
    )


# -- the state they rebuild --------------------------------------------------------------------

SNAPSHOT_FORMAT = b"brokerage-state/5\n"
"""What a snapshot starts with; a snapshot whose objects have another shape (an earlier
release's: no stop book, fewer order fields) has another tag, or none, and is not used."""


@dataclass
class State:
    """Everything the facts rebuild: users, accounts, markets with their books, alerts and
    trade id sequences, where each order and alert lives, and the id counters."""

    history_limit: int = 100_000
    history_window: int | None = None
    """How many finished orders and transactions each account keeps (None: all)."""
    users: dict[UserId, User] = field(default_factory=dict)
    owners: dict[AccountId, UserId] = field(default_factory=dict)
    accounts: dict[AccountId, Account] = field(default_factory=dict)
    markets: dict[Symbol, Market] = field(default_factory=dict)
    trade_ids: dict[Symbol, TradeIdSequence] = field(default_factory=dict)
    alerts: dict[Symbol, AlertBook] = field(default_factory=dict)
    routes: Routes = field(default_factory=Routes)
    alert_routes: dict[str, Symbol] = field(default_factory=dict)
    alert_symbols: dict[AccountId, set[Symbol]] = field(default_factory=dict)
    agents: set[AccountId] = field(default_factory=set)
    """The accounts of trader agents."""
    fees: FeeSchedule | None = None
    """What orders pay as they fill (None: nothing)."""
    slippage: Slippage | None = None
    """What `market`-mode orders filling on arrival pay past the last price (None: nothing)."""
    margin: MarginRules = field(default_factory=MarginRules)
    """The requirements of margin accounts (the brokerage's, set at each start)."""
    next_account: int = 0
    next_order: int = 0
    next_alert: int = 0
    facts: int = 0
    notes: dict[str, list[str]] = field(default_factory=dict)
    """The `Note` facts' data by kind, oldest first."""
    pending: dict[str, Callable[[], object]] = field(default_factory=dict)
    """Account effects of the book's facts not yet applied, by key, oldest first."""

    def set_margin(self, rules: MarginRules) -> None:
        """Value margin accounts by `rules` from now on (they are the brokerage's, not
        journaled: no recorded fact depends on them)."""
        self.margin = rules
        for account in self.accounts.values():
            if account.margin is not None:
                account.margin = rules

    def apply(self, fact: Fact) -> None:
        """Apply one fact (in journal order)."""
        self.facts += 1
        handler = _APPLY[type(fact)]
        handler(self, fact)

    # -- per fact ------------------------------------------------------------------------------

    def _listed(self, fact: Listed) -> None:
        self.markets[fact.symbol] = Market(
            fact.symbol,
            fact.name,
            fact.price,
            fact.mode,
            fact.at_ns,
            history_limit=self.history_limit,
        )
        self.markets[fact.symbol].set_slippage(self.slippage)
        self.trade_ids[fact.symbol] = TradeIdSequence(fact.symbol)
        self.alerts[fact.symbol] = AlertBook()

    def _opened(self, fact: Opened) -> None:
        if fact.user_id not in self.users:
            self.users[fact.user_id] = User(fact.user_id, fact.name, fact.email, fact.phone)
        account = Account(
            fact.account_id,
            fact.user_id,
            fact.at_ns,
            self.history_window,
            self.fees,
            self.margin if fact.margin else None,
        )
        if fact.initial_deposit:
            account.deposit(fact.initial_deposit, fact.at_ns)
        self.accounts[fact.account_id] = account
        self.owners[fact.account_id] = fact.user_id
        if fact.agent:
            self.agents.add(fact.account_id)
        self.next_account = max(self.next_account, id_number(fact.account_id, "A-"))

    def _cash(self, fact: CashMoved) -> None:
        account = self.accounts[fact.account_id]
        if fact.cents > 0:
            account.deposit(fact.cents, fact.at_ns)
        else:
            account.withdraw(-fact.cents, fact.at_ns, checked=True)

    def _fees_set(self, fact: FeesSet) -> None:
        schedule = FeeSchedule.parse_text(fact.schedule)
        self.fees = None if schedule.free else schedule
        for account in self.accounts.values():
            account.fees = self.fees

    def _slippage_set(self, fact: SlippageSet) -> None:
        self.slippage = Slippage.parse_text(fact.model)
        for market in self.markets.values():
            market.set_slippage(self.slippage)

    def _reset(self, fact: AccountReset) -> None:
        self.accounts[fact.account_id].reset(fact.cash, fact.at_ns)

    def _self_trade(self, fact: SelfTradeSet) -> None:
        self.accounts[fact.account_id].self_trade = fact.mode

    def _granted(self, fact: Granted) -> None:
        self.accounts[fact.account_id].grant(fact.symbol, fact.quantity, fact.price, fact.at_ns)

    def _accepted(self, fact: Accepted) -> None:
        order = _order(fact)
        if fact.order_class is not OrderClass.SIMPLE:
            order.order_class, order.legs, order.parent = fact.order_class, fact.legs, fact.parent
            order.sibling, order.shadow = fact.sibling, fact.shadow
            if fact.held:
                order.status = OrderStatus.HELD
        self.next_order = max(self.next_order, id_number(fact.order_id, "O-"))
        account = self.accounts[fact.account_id]
        account.reserve(order)
        self.routes[fact.order_id] = fact.account_id

    def _refused(self, fact: Refused) -> None:
        self.next_order = max(self.next_order, id_number(fact.order_id, "O-"))
        if not fact.kept:
            return
        order = _order(fact)
        order.reject(fact.reason, fact.created_ns)
        self.accounts[fact.account_id].record_refused(order)
        self.routes[fact.order_id] = fact.account_id

    def _matched(self, fact: Matched) -> None:
        market = self.markets[fact.symbol]
        account = self.accounts[self.routes[fact.order_id]]
        order_id, at_ns = fact.order_id, fact.at_ns
        if market.halted:
            self.pending[f"match:{order_id}"] = partial(
                account.cancel_rest, order_id, CancelReason.HALTED, at_ns
            )
            return
        order = account.orders[order_id]
        old = market.price
        ids = self.trade_ids[fact.symbol]
        if order.sibling is None:
            results = [(order_id, market.submit(OrderTicket.of(order), at_ns, ids))]
        else:  # a one-cancels-other pair enters as one
            other = account.orders[order.sibling]
            pair = market.submit_pair(OrderTicket.of(order), OrderTicket.of(other), at_ns, ids)
            results = [(order_id, pair[0]), (other.order_id, pair[1])]
        for _, result in results:
            self._pend_makers(result, at_ns)
        for leg_id, result in results:
            self.pending[f"match:{leg_id}"] = partial(
                self._settle_match, account, leg_id, result, at_ns
            )
        self._pend_triggered(market)
        self._alerts_moved(fact.symbol, old, market.price)

    def _pend_makers(self, result: MatchResult, at_ns: int) -> None:
        """Pend what an order's matching did to resting orders: their fills, and the cancels
        of those its self-trade prevention took out."""
        for fill in result.fills:
            maker = fill.order_id_for(fill.taker_side.opposite)
            if maker is not None:
                self._pend_fill(maker, fill)
        for entry in result.cancelled:
            self._pend_cancel("expired", entry.order_id, CancelReason.SELF_TRADE, at_ns)

    def _pend_triggered(self, market: Market) -> None:
        """Pend the account effects of the stops the last fact triggered (as the symbol's
        actor sends them: each stop's makers' fills, then the stop's own effects)."""
        for found in market.take_triggered():
            self._pend_makers(found.result, found.at_ns)
            account = self.accounts[found.account_id]
            trigger = (found.stop_price, found.mark)
            self.pending[f"triggered:{found.order_id}"] = partial(
                self._settle_match, account, found.order_id, found.result, found.at_ns, trigger
            )

    @staticmethod
    def _settle_match(
        account: Account,
        order_id: OrderId,
        result: MatchResult,
        at_ns: int,
        trigger: tuple[int, int | None] | None = None,
    ) -> None:
        """Apply to its account what the book did with an order: the trigger of a stop, its
        fills, the cancel of its rest (as the account actor does live)."""
        trigger = trigger or result.triggered
        if trigger is not None:
            account.order(order_id).trigger(at_ns, *trigger)
        for fill in result.fills:
            account.settle_fill(order_id, fill.trade_id, fill.quantity, fill.price, fill.at_ns)
        if result.cancel_reason is not None:
            account.cancel_rest(order_id, result.cancel_reason, at_ns)

    def _alerts_moved(self, symbol: Symbol, old: int, new: int) -> None:
        book = self.alerts[symbol]
        if new != old and book:  # as the symbol's actor: only a move with alerts to look at
            book.move(old, new)

    def _pend_fill(self, order_id: OrderId, fill: Fill) -> None:
        account = self.accounts[self.routes[order_id]]
        self.pending[f"fill:{fill.trade_id}:{order_id}"] = partial(
            account.settle_fill, order_id, fill.trade_id, fill.quantity, fill.price, fill.at_ns
        )

    def _pend_cancel(self, key: str, order_id: OrderId, reason: CancelReason, at_ns: int) -> None:
        account = self.accounts[self.routes[order_id]]
        self.pending[f"{key}:{order_id}"] = partial(account.cancel_rest, order_id, reason, at_ns)

    def _price(self, fact: PriceSet) -> None:
        market = self.markets[fact.symbol]
        old = market.price
        for fill in market.update_price(fact.price, fact.at_ns, self.trade_ids[fact.symbol]):
            maker = fill.order_id_for(fill.taker_side.opposite)
            assert maker is not None
            self._pend_fill(maker, fill)
        self._pend_triggered(market)
        self._alerts_moved(fact.symbol, old, market.price)

    def _replaced(self, fact: Replaced) -> None:
        market = self.markets[fact.symbol]
        account = self.accounts[self.routes[fact.replaced]]
        old = account.orders[fact.replaced]
        new = _order(fact)
        self.next_order = max(self.next_order, id_number(fact.order_id, "O-"))
        self.routes[fact.order_id] = fact.account_id
        ticket = OrderTicket.of(new)
        found = market.replace(
            old.order_id, old.quantity, ticket, fact.at_ns, self.trade_ids[fact.symbol]
        )
        assert found is not None, f"{fact.replaced} was not replaceable in the replay"
        self._pend_makers(found.result, fact.at_ns)
        self.pending[f"replaced:{fact.replaced}"] = partial(
            self._settle_replace,
            account,
            fact.replaced,
            new,
            found.quantity,
            found.result,
            fact.at_ns,
        )
        self._pend_triggered(market)

    @classmethod
    def _settle_replace(
        cls,
        account: Account,
        order_id: OrderId,
        new: Order,
        quantity: int,
        result: MatchResult,
        at_ns: int,
    ) -> None:
        account.apply_replace(order_id, new, quantity, at_ns)
        cls._settle_match(account, new.order_id, result, at_ns)

    def _removed(self, fact: Removed) -> None:
        self.markets[fact.symbol].cancel(fact.order_id)
        self._pend_cancel("removed", fact.order_id, CancelReason.REQUESTED, fact.at_ns)

    def _expired(self, fact: Expired) -> None:
        for entry in self.markets[fact.symbol].expire_day_orders():
            self._pend_cancel("expired", entry.order_id, CancelReason.EXPIRED, fact.at_ns)

    def _halted(self, fact: Halted) -> None:
        for entry in self.markets[fact.symbol].halt():
            self._pend_cancel("expired", entry.order_id, CancelReason.HALTED, fact.at_ns)

    def _applied(self, fact: Applied) -> None:
        effect = self.pending.pop(fact.key, None)
        if effect is not None:
            effect()
            self.accounts[fact.account_id].forget_follow_ups()  # the live actor's to do

    def _note(self, fact: Note) -> None:
        self.notes.setdefault(fact.kind, []).append(fact.data)

    def finish(self) -> None:
        """Apply the account effects still pending (the journal ended before their accounts
        said so), oldest first. Call after the last fact."""
        effects = list(self.pending.values())
        self.pending.clear()
        for effect in effects:
            effect()
        for account in self.accounts.values():  # what the replay set working was sent live
            account.forget_follow_ups()

    def _held_cancelled(self, fact: HeldCancelled) -> None:
        self.accounts[fact.account_id].cancel_held(fact.order_id, fact.at_ns)

    def _held_replaced(self, fact: HeldReplaced) -> None:
        self.next_order = max(self.next_order, id_number(fact.order_id, "O-"))
        self.routes[fact.order_id] = fact.account_id
        self.accounts[fact.account_id].apply_held_replace(fact.replaced, _order(fact), fact.at_ns)

    def _interrupted(self, fact: Interrupted) -> None:
        account = self.accounts[self.routes[fact.order_id]]
        account.cancel_rest(fact.order_id, CancelReason.INTERRUPTED, fact.at_ns)
        account.forget_follow_ups()  # a pair's other leg: ended with it, told by no one

    def _watchlist(self, fact: WatchlistChanged) -> None:
        command = decode_command(json.loads(fact.command))
        apply_watchlist_edit(self.accounts[fact.account_id], command)  # type: ignore[arg-type]

    def _alert_added(self, fact: AlertAdded) -> None:
        alert = Alert(
            fact.alert_id,
            fact.account_id,
            fact.symbol,
            fact.condition,
            fact.threshold,
            fact.one_shot,
            fact.created_ns,
        )
        self.alerts[fact.symbol].add(alert)
        self.alert_routes[fact.alert_id] = fact.symbol
        self.alert_symbols.setdefault(fact.account_id, set()).add(fact.symbol)
        self.next_alert = max(self.next_alert, id_number(fact.alert_id, "AL-"))

    def _alert_removed(self, fact: AlertRemoved) -> None:
        self.alerts[fact.symbol].remove(fact.alert_id)

    # -- after the replay ----------------------------------------------------------------------

    def to_snapshot(self) -> bytes:
        """The state as bytes: the actors' addresses the books and tapes hold are dropped (a
        restart sets them again). Account effects still pending go with it (a replay that
        follows the journal is snapshotted at any position), to be applied by the facts after
        it or by `finish()`."""
        for account in self.accounts.values():
            account.outbox = None
            account.forget_follow_ups()
        for market in self.markets.values():
            for entry in market.book.entries():
                entry.owner = None
            for stop in market.stops.entries():
                stop.owner = None
            market.tape = deque(
                (fill._replace(maker_owner=None) for fill in market.tape), maxlen=market.tape.maxlen
            )
        return SNAPSHOT_FORMAT + pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_snapshot(data: bytes) -> State | None:
        """The state `to_snapshot` wrote (the store is the brokerage's own: trusted), or None
        for a snapshot of another format (an earlier release's objects): then the journal,
        kept whole, is replayed from its start."""
        if not data.startswith(SNAPSHOT_FORMAT):
            return None
        state = pickle.loads(data[len(SNAPSHOT_FORMAT) :])
        assert isinstance(state, State)
        return state

    def set_window(self, window: int | None) -> None:
        """Keep `window` finished orders and transactions per account from now on."""
        self.history_window = window
        for account in self.accounts.values():
            account.set_window(window)

    def take_outboxes(self) -> list[Order | tuple[Any, ...]]:
        """What every account's outbox holds (finished orders, new transactions), emptied."""
        return [item for account in self.accounts.values() for item in account.take_outbox()]

    def unsubmitted(self) -> list[Order]:
        """Open orders that rest in no book: accepted, and the crash came before their match
        (not a held leg, which waits for its entry; nor a pair's shadow, which ends with the
        other leg)."""
        resting = {entry.order_id for m in self.markets.values() for entry in m.book.entries()}
        resting.update(stop.order_id for m in self.markets.values() for stop in m.stops.entries())
        return [
            order
            for account in self.accounts.values()
            for order in account.open.values()
            if order.order_id not in resting
            and order.status is not OrderStatus.HELD
            and not order.shadow
        ]

    def interrupt_unsubmitted(self, at_ns: int | None = None) -> list[Interrupted]:
        """Cancel (INTERRUPTED) every open order that rests in no book, at `at_ns` (None: each
        order's own creation time), as a recovery does; return the facts, for the journal.
        They are not counted among the facts replayed."""
        made = [
            Interrupted(order.order_id, order.created_ns if at_ns is None else at_ns)
            for order in self.unsubmitted()
        ]
        for fact in made:
            self._interrupted(fact)
        return made

    def digest(self) -> str:
        """A hash of what users can see: every account's cash, reservations (for fees too),
        positions with their cost, realized P/L, fees paid, orders and transactions; every
        book's resting orders, price and volume; every alert."""
        return hashlib.sha256("\n".join(self.parts()).encode()).hexdigest()

    def parts(self) -> list[str]:
        """What `digest` hashes, one text per account and per symbol."""
        parts: list[str] = []
        for account_id in sorted(self.accounts):
            account = self.accounts[account_id]
            positions = sorted(
                (s, p.quantity, p.reserved, p.cost) for s, p in account.positions.items()
            )
            parts.append(
                repr(
                    (
                        account_id,
                        account.cash,
                        account.reserved_cash,
                        account.realized,
                        account.fees_paid,
                        sorted(account.fee_held.items()),
                        positions,
                        [o.snapshot() for o in account.orders.values()],
                        list(account.transactions),
                        account.watchlists.all(),
                    )
                )
            )
        for symbol in sorted(self.markets):
            market = self.markets[symbol]
            entries = [
                (e.order_id, e.side, e.price, e.remaining, e.sequence)
                for e in market.book.entries()
            ]
            alerts = sorted(a.alert_id for a in self.alerts[symbol].all())
            stops = [
                (e.order_id, e.side, e.sequence, market.stops.current(e.order_id))
                for e in market.stops.entries()
            ]
            parts.append(repr((symbol, market.price, market.volume, entries, alerts, stops)))
        return parts


def apply_watchlist_edit(account: Account, command: WatchlistEdit) -> object:
    """Apply a watchlist edit to an account; return what it answers."""
    lists = account.watchlists
    if isinstance(command, CreateWatchlist):
        return lists.create(command.name, command.symbols)
    if isinstance(command, RenameWatchlist):
        return lists.rename(command.name, command.new_name)
    if isinstance(command, ReplaceWatchlist):
        return lists.replace(command.name, command.symbols, command.new_name)
    if isinstance(command, DeleteWatchlist):
        lists.delete(command.name)
        return None
    if isinstance(command, AddToWatchlist):
        return lists.add(command.name, command.symbol)
    assert isinstance(command, RemoveFromWatchlist)
    return lists.remove(command.name, command.symbol)


_APPLY: dict[type, Any] = {
    Listed: State._listed,
    Opened: State._opened,
    CashMoved: State._cash,
    Granted: State._granted,
    Accepted: State._accepted,
    Refused: State._refused,
    Matched: State._matched,
    PriceSet: State._price,
    Removed: State._removed,
    Expired: State._expired,
    Halted: State._halted,
    Applied: State._applied,
    Note: State._note,
    Interrupted: State._interrupted,
    HeldCancelled: State._held_cancelled,
    HeldReplaced: State._held_replaced,
    WatchlistChanged: State._watchlist,
    AlertAdded: State._alert_added,
    AlertRemoved: State._alert_removed,
    SelfTradeSet: State._self_trade,
    Replaced: State._replaced,
    FeesSet: State._fees_set,
    AccountReset: State._reset,
    SlippageSet: State._slippage_set,
}
