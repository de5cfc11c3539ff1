"""Random command sequences through `Brokerage`, compared after every step with a simple
single-threaded reference model of the same rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine import (
    InsufficientAvailableCashError,
    OrderNotCancellableError,
    OrderNotReplaceableError,
    ValidationError,
)
from gateway import Brokerage

ACCOUNTS = ("A", "B", "C")
SYMBOLS = {"MKT": "market", "BK": "book"}
START_PRICE = 10000  # cents


STOPS = ("stop", "stop_limit", "trailing_stop")


def collar(cents: int) -> int:
    return -(-cents * 105 // 100)


@dataclass
class ModelOrder:
    order_id: str
    account: str
    symbol: str
    side: str
    quantity: int
    limit: int | None
    reserve: int | None
    tif: str
    seq: int
    status: str = "pending"
    filled: int = 0
    order_type: str = "limit"
    stop: int | None = None
    trail: int | None = None
    mark: int | None = None
    triggered: bool = False
    sibling: str | None = None
    """The other leg of its one-cancels-other pair."""
    shadow: bool = False
    """A pair's stop-loss: the take-profit holds for both."""
    order_class: str = "simple"
    legs: tuple[str, ...] = ()
    """An entry's exit legs: held until it ends."""
    arriving: bool = False
    """A leg set working that has not reached its book yet."""

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def final(self) -> bool:
        return self.status in ("executed", "cancelled", "rejected", "replaced")

    @property
    def in_book(self) -> bool:
        """Open and in its symbol's order book or stop book."""
        return not self.final and self.status != "held" and not self.arriving

    @property
    def waiting(self) -> bool:
        return self.order_type in STOPS and not self.triggered and self.in_book

    def stop_now(self) -> int:
        if self.trail is None:
            assert self.stop is not None
            return self.stop
        assert self.mark is not None
        return self.mark - self.trail if self.side == "sell" else self.mark + self.trail

    @property
    def entered(self) -> str:
        """The type it trades as: a stop limit's limit, a stop's market order."""
        if self.order_type in ("limit", "stop_limit"):
            return "limit"
        return "market"


@dataclass
class ModelAccount:
    cash: int = 0
    reserved: int = 0
    shares: dict[str, int] = field(default_factory=dict)
    reserved_shares: dict[str, int] = field(default_factory=dict)


class Model:
    """The brokerage's rules, written as plainly as possible: lists, sorts and loops."""

    def __init__(self) -> None:
        self.accounts = {a: ModelAccount() for a in ACCOUNTS}
        self.prices = dict.fromkeys(SYMBOLS, START_PRICE)
        self.orders: dict[str, ModelOrder] = {}
        self.seq = 0
        self.arriving: list[list[ModelOrder]] = []
        """Exit legs set working, in the order their entries ended: they reach their book
        after the command that ended their entries (the account sends them there)."""

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def reserve_price(
        self, symbol: str, side: str, limit: int | None, stop: int | None, trail: int | None
    ) -> int | None:
        """What a buy reserves per share (None for a sell): its limit, else the collar of its
        stop price, of the stop its trail sets, or of the price."""
        if side == "sell":
            return None
        if limit is not None:
            return limit
        if stop is not None:
            return collar(stop)
        if trail is not None:
            return collar(self.prices[symbol] + trail)
        return collar(self.prices[symbol])

    def resting(self, symbol: str, side: str) -> list[ModelOrder]:
        mine = [
            o
            for o in self.orders.values()
            if o.symbol == symbol
            and o.side == side
            and o.in_book
            and not o.waiting
            and o.limit is not None
        ]
        sign = -1 if side == "buy" else 1
        return sorted(mine, key=lambda o: (sign * (o.limit or 0), o.seq))

    @staticmethod
    def held_by(order: ModelOrder) -> int:
        """Cash (a buy) or shares (a sell) the open order holds: a pair's shadow and a held
        leg none."""
        if order.final or order.shadow or order.status == "held":
            return 0
        if order.side == "buy":
            assert order.reserve is not None
            return order.remaining * order.reserve
        return order.remaining

    def sibling(self, order: ModelOrder) -> ModelOrder | None:
        """The open other leg of its pair, if any."""
        other = self.orders.get(order.sibling) if order.sibling else None
        return None if other is None or other.final else other

    def fill(self, order: ModelOrder, quantity: int, price: int) -> None:
        """A fill; a pair's other leg loses as many shares, and is cancelled with none left."""
        account = self.accounts[order.account]
        other = self.sibling(order)
        pair = [order] if other is None else [order, other]
        before = sum(self.held_by(o) for o in pair)
        order.filled += quantity
        order.status = "executed" if order.remaining == 0 else "partially_filled"
        if other is not None:
            other.quantity -= quantity
        released = before - sum(self.held_by(o) for o in pair)
        if order.side == "buy":
            account.reserved -= released
            account.cash -= quantity * price
            account.shares[order.symbol] = account.shares.get(order.symbol, 0) + quantity
        else:
            account.reserved_shares[order.symbol] -= released
            account.shares[order.symbol] -= quantity
            account.cash += quantity * price
        if other is not None and other.remaining == 0:
            other.status = "cancelled"
        if order.status == "executed":
            self.release_legs(order)

    def release(self, order: ModelOrder) -> None:
        account = self.accounts[order.account]
        held = self.held_by(order)
        if not held:
            return
        if order.side == "buy":
            account.reserved -= held
        else:
            account.reserved_shares[order.symbol] -= held

    def cancel(self, order: ModelOrder) -> None:
        """Cancel it, and the other leg of its pair; an entry's held legs then work for what
        it filled."""
        other = self.sibling(order)
        for each in [order] if other is None else [order, other]:
            self.release(each)
            each.status = "cancelled"
        self.release_legs(order)

    def release_legs(self, entry: ModelOrder) -> None:
        """The entry ended: its held legs are cancelled if it filled nothing, else reserve for
        what it filled (all refused if that is not free) and go to their book next."""
        legs = [self.orders[leg] for leg in entry.legs if self.orders[leg].status == "held"]
        if not legs:
            return
        if not entry.filled:
            for leg in legs:
                leg.status = "cancelled"
            return
        for leg in legs:
            leg.quantity = entry.filled
        holder = legs[0]
        if not self.reserve(holder):
            for leg in legs:
                leg.status = "rejected"
            return
        for leg in legs:
            leg.status, leg.arriving = "pending", True
        self.arriving.append(legs)

    def settle(self) -> None:
        """The legs set working by the last command reach their book, in turn."""
        while self.arriving:
            legs = self.arriving.pop(0)
            if len(legs) == 2:
                self.enter_pair(*legs)
            else:
                legs[0].arriving = False
                legs[0].seq = self.next_seq()
                self.start(legs[0])

    def free_shares(self, account: str, symbol: str) -> int:
        state = self.accounts[account]
        return state.shares.get(symbol, 0) - state.reserved_shares.get(symbol, 0)

    def reserve(self, order: ModelOrder) -> bool:
        """The pre-trade check: reserve, or refuse (False)."""
        account = self.accounts[order.account]
        if order.side == "buy":
            assert order.reserve is not None
            if order.quantity * order.reserve > account.cash - account.reserved:
                return False
            account.reserved += order.quantity * order.reserve
        else:
            if order.quantity > self.free_shares(order.account, order.symbol):
                return False
            account.reserved_shares[order.symbol] = (
                account.reserved_shares.get(order.symbol, 0) + order.quantity
            )
        return True

    def place(self, order: ModelOrder) -> None:
        self.orders[order.order_id] = order
        if not self.reserve(order):
            order.status = "rejected"
            return
        self.start(order)

    def place_pair(self, profit: ModelOrder, loss: ModelOrder) -> None:
        """An OCO pair: the take-profit holds for both (a buy at the dearer reserve); it comes
        first, the stop-loss then for what it left, unless it ended."""
        self.link(profit, loss)
        self.orders[profit.order_id] = profit
        if not self.reserve(profit):
            profit.status = "rejected"
            return
        self.orders[loss.order_id] = loss
        loss.arriving = True
        self.enter_pair(profit, loss)

    def enter_pair(self, profit: ModelOrder, loss: ModelOrder) -> None:
        """A pair reaches its book: the take-profit first, then the stop-loss for what the
        take-profit's fills left of it (its fills take as many off), unless it ended."""
        profit.arriving = False
        profit.seq = self.next_seq()
        self.start(profit)
        loss.arriving = False
        if profit.final:  # filled out, or ended: the stop-loss ended with it
            assert loss.final, (profit, loss)
            return
        loss.seq = self.next_seq()
        self.start(loss)

    def place_group(self, entry: ModelOrder, legs: list[ModelOrder]) -> None:
        """An entry with exit legs (held: reserving nothing until it ends)."""
        self.orders[entry.order_id] = entry
        if not self.reserve(entry):
            entry.status = "rejected"
            return
        entry.legs = tuple(leg.order_id for leg in legs)
        for leg in legs:
            leg.status = "held"
            self.orders[leg.order_id] = leg
        if len(legs) == 2:
            self.link(*legs)
        self.start(entry)

    @staticmethod
    def link(profit: ModelOrder, loss: ModelOrder) -> None:
        """Make two legs a one-cancels-other pair: the take-profit holds for both (a buy at
        the dearer reserve)."""
        loss.shadow = True
        profit.sibling, loss.sibling = loss.order_id, profit.order_id
        if profit.side == "buy":
            assert profit.reserve is not None
            assert loss.reserve is not None
            profit.reserve = max(profit.reserve, loss.reserve)

    def start(self, order: ModelOrder) -> None:
        """A reserved order goes to its book: a stop waits (or triggers at once)."""
        if order.order_type in STOPS:
            if order.trail is not None:
                order.mark = self.prices[order.symbol]
            price = self.prices[order.symbol]
            if order.trail is None and self.holds(order, price):
                order.triggered = True
                self.enter(order)
            return
        self.enter(order)

    def enter(self, order: ModelOrder) -> None:
        """Execute an order as the market or limit order it is (or became); in book mode its
        trades may trigger stops."""
        traded = self.execute(order)
        if traded and SYMBOLS[order.symbol] == "book":
            self.run_stops(order.symbol)

    @staticmethod
    def holds(order: ModelOrder, price: int) -> bool:
        stop = order.stop_now()
        return price <= stop if order.side == "sell" else price >= stop

    def execute(self, order: ModelOrder) -> bool:
        """Match `order`; return whether it traded."""
        bound = order.limit if order.limit is not None or order.side == "sell" else order.reserve

        def within(price: int) -> bool:
            if bound is None:
                return True
            return price <= bound if order.side == "buy" else price >= bound

        resting_limit = order.entered == "limit" and order.tif == "gtc"
        if SYMBOLS[order.symbol] == "market":
            price = self.prices[order.symbol]
            if within(price):
                self.fill(order, order.remaining, price)
            elif not resting_limit:
                self.cancel(order)
            return False
        other = "sell" if order.side == "buy" else "buy"
        makers = [o for o in self.resting(order.symbol, other) if o.order_id != order.order_id]
        if order.tif == "fok":
            available = 0
            for maker in makers:  # up to its own account's first order (cancel_newest)
                if not within(maker.limit or 0) or maker.account == order.account:
                    break
                available += maker.remaining
            if available < order.remaining:
                self.cancel(order)
                return False
        traded = False
        for maker in makers:
            if maker.final:  # a pair's leg whose other leg filled it out meanwhile
                continue
            if order.remaining == 0 or not within(maker.limit or 0):
                break
            if maker.account == order.account:  # self-trade prevention: cancel the newest
                self.cancel(order)
                return traded
            quantity = min(order.remaining, maker.remaining)
            assert maker.limit is not None
            self.fill(maker, quantity, maker.limit)
            self.fill(order, quantity, maker.limit)
            self.prices[order.symbol] = maker.limit
            traded = True
        if order.remaining and not resting_limit:
            self.cancel(order)
        return traded

    def run_stops(self, symbol: str) -> None:
        """Trigger the stops the price reaches (trailing marks following it first), sells then
        buys, each side the first crossed first; repeat while their trades move the price."""
        while True:
            price = self.prices[symbol]
            waiting = [o for o in self.orders.values() if o.symbol == symbol and o.waiting]
            for order in waiting:
                if order.trail is not None:
                    assert order.mark is not None
                    order.mark = (
                        max(order.mark, price) if order.side == "sell" else min(order.mark, price)
                    )
            found = [o for o in waiting if self.holds(o, price)]
            if not found:
                return
            sells = sorted(
                (o for o in found if o.side == "sell"), key=lambda o: (-o.stop_now(), o.seq)
            )
            buys = sorted(
                (o for o in found if o.side == "buy"), key=lambda o: (o.stop_now(), o.seq)
            )
            for order in sells + buys:
                if order.final:  # a pair's leg whose other leg ended it meanwhile
                    continue
                order.triggered = True
                order.seq = self.next_seq()  # time priority from the trigger
                self.execute(order)

    def update_price(self, symbol: str, price: int) -> None:
        self.prices[symbol] = price
        if SYMBOLS[symbol] != "market":
            return
        for order in self.resting(symbol, "buy"):
            if order.limit is not None and order.limit >= price and not order.final:
                self.fill(order, order.remaining, price)
        for order in self.resting(symbol, "sell"):
            if order.limit is not None and order.limit <= price and not order.final:
                self.fill(order, order.remaining, price)
        if any(o.symbol == symbol and o.waiting for o in self.orders.values()):
            self.run_stops(symbol)

    def replace(self, order: ModelOrder, new_id: str, total: int, limit: int) -> str:
        """Replace a resting limit order; return what the brokerage must answer: "replaced",
        "rejected", "not_replaceable" or "invalid"."""
        if order.final:
            return "not_replaceable"
        if total <= order.filled:
            return "invalid"
        still = total - order.filled
        account = self.accounts[order.account]
        new_reserve = limit if order.side == "buy" else None
        if order.side == "buy":
            assert order.reserve is not None
            assert new_reserve is not None
            credit = order.remaining * min(order.reserve, new_reserve)
            if max(0, new_reserve * still - credit) > account.cash - account.reserved:
                return "rejected"
        elif max(0, still - order.remaining) > self.free_shares(order.account, order.symbol):
            return "rejected"
        keep = limit == order.limit and still <= order.remaining
        self.release(order)
        order.status = "replaced"
        seq = order.seq if keep else self.next_seq()
        new = ModelOrder(
            new_id,
            order.account,
            order.symbol,
            order.side,
            still,
            limit,
            new_reserve,
            order.tif,
            seq,
        )
        self.orders[new_id] = new
        assert self.reserve(new)
        if not keep:
            self.enter(new)
        return "replaced"

    def replace_leg(self, order: ModelOrder, new_id: str, price: int) -> str:
        """Replace an exit leg's price (a take-profit's limit, a stop-loss's stop): the new
        leg is for what the old one had left and takes its place in its pair and under its
        entry (held if it was); answer as `replace` does."""
        if order.final or (order.legs and order.sibling is None):
            return "not_replaceable"
        was_held = order.status == "held"
        other = self.sibling(order)
        limit = price if order.order_type == "limit" else order.limit
        stop = price if order.order_type != "limit" else None
        if other is not None:
            profit, loss = (other.limit, stop) if order.shadow else (limit, other.stop)
            assert profit is not None
            assert loss is not None
            if not (profit > loss if order.side == "sell" else profit < loss):
                return "invalid"
        account = self.accounts[order.account]
        reserve = self.reserve_price(order.symbol, order.side, limit, stop, None)
        if reserve is not None and was_held and other is not None and not order.shadow:
            assert other.reserve is not None
            reserve = max(reserve, other.reserve)  # held: it holds nothing yet
        elif reserve is not None and not was_held:  # a working buy
            available = account.cash - account.reserved
            if other is not None and order.shadow:
                assert other.reserve is not None
                assert other.limit is not None
                need = other.remaining * (max(other.limit, reserve) - other.reserve)
            else:
                if other is not None:
                    assert other.reserve is not None
                    reserve = max(reserve, other.reserve)
                assert order.reserve is not None
                credit = order.remaining * min(order.reserve, reserve)
                need = reserve * order.remaining - credit
            if need > available:
                return "rejected"
        kept = not was_held and order.order_type == "limit" and limit == order.limit
        self.release(order)
        order.status = "replaced"
        new = ModelOrder(
            new_id,
            order.account,
            order.symbol,
            order.side,
            order.remaining,
            limit,
            reserve,
            order.tif,
            order.seq if kept else self.next_seq(),
            order_type=order.order_type,
            stop=stop,
            sibling=order.sibling,
            shadow=order.shadow,
            order_class=order.order_class,
            legs=order.legs,
        )
        self.orders[new_id] = new
        if was_held:
            new.status = "held"
        for entry in self.orders.values():
            if order.order_id in entry.legs:
                entry.legs = tuple(new_id if leg == order.order_id else leg for leg in entry.legs)
        if other is not None:
            other.sibling = new_id
            if new.shadow and reserve is not None:  # its take-profit holds at the dearer
                before = self.held_by(other)
                assert other.limit is not None
                other.reserve = max(other.limit, reserve)
                account.reserved += self.held_by(other) - before
        held = self.held_by(new)
        if new.side == "buy":
            account.reserved += held
        else:
            account.reserved_shares[new.symbol] = account.reserved_shares.get(new.symbol, 0) + held
        if not kept and not was_held:
            self.start(new)
        return "replaced"


prices = st.sampled_from([9_970, 9_980, 9_990, 10_000, 10_010, 10_020, 10_030])
"""A few prices near the start, so that orders meet at the same price (time priority counts)
and stops trigger."""


class BrokerageMatchesModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.broker = Brokerage(timeout=20).start()
        self.model = Model()
        for symbol, mode in SYMBOLS.items():
            self.broker.list_stock(symbol, symbol, "100.00", mode=mode)
        for account in ACCOUNTS:  # each starts able to trade: cash, and shares of each
            self.broker.open_account(account, account, account_id=account)
            self.broker.deposit(account, "20000.00")
            self.model.accounts[account].cash = 2_000_000
            for symbol in SYMBOLS:
                self.broker.grant_shares(account, symbol, 40, "100")
                self.model.accounts[account].shares[symbol] = 40

    def teardown(self) -> None:
        self.broker.close()

    @rule(account=st.sampled_from(ACCOUNTS), cents=st.integers(1, 300_000))
    def deposit(self, account: str, cents: int) -> None:
        self.broker.deposit(account, Decimal(cents) / 100)
        self.model.accounts[account].cash += cents

    @rule(account=st.sampled_from(ACCOUNTS), cents=st.integers(1, 500_000))
    def withdraw(self, account: str, cents: int) -> None:
        state = self.model.accounts[account]
        try:
            self.broker.withdraw(account, Decimal(cents) / 100)
            refused = False
        except InsufficientAvailableCashError:
            refused = True
        assert refused == (cents > state.cash - state.reserved)
        if not refused:
            state.cash -= cents

    @rule(account=st.sampled_from(ACCOUNTS), keep=st.integers(0, 300_000))
    def withdraw_all_but(self, account: str, keep: int) -> None:
        """Leave `keep` cents available (if as much is), so that orders and legs meet the end
        of the money."""
        state = self.model.accounts[account]
        cents = state.cash - state.reserved - keep
        if cents > 0:
            self.broker.withdraw(account, Decimal(cents) / 100)
            state.cash -= cents

    @rule(
        account=st.sampled_from(ACCOUNTS),
        symbol=st.sampled_from(list(SYMBOLS)),
        quantity=st.integers(1, 30),
    )
    def grant(self, account: str, symbol: str, quantity: int) -> None:
        self.broker.grant_shares(account, symbol, quantity, "100")
        shares = self.model.accounts[account].shares
        shares[symbol] = shares.get(symbol, 0) + quantity

    @rule(
        account=st.sampled_from(ACCOUNTS),
        symbol=st.sampled_from(list(SYMBOLS)),
        side=st.sampled_from(["buy", "sell"]),
        quantity=st.integers(1, 20),
        order_type=st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"]),
        limit=prices,
        stop=prices,
        trail=st.sampled_from([5, 10, 20, 30]),
        tif=st.sampled_from(["gtc", "ioc", "fok"]),
    )
    def place(
        self,
        account: str,
        symbol: str,
        side: str,
        quantity: int,
        order_type: str,
        limit: int,
        stop: int,
        trail: int,
        tif: str,
    ) -> None:
        if order_type in STOPS:
            tif = "gtc"
        limited = order_type in ("limit", "stop_limit")
        terms: dict[str, Any] = {}
        own_stop = own_trail = None
        if order_type in ("stop", "stop_limit"):
            own_stop = stop
            terms["stop_price"] = Decimal(stop) / 100
        elif order_type == "trailing_stop":
            own_trail = trail
            terms["trail_price"] = Decimal(trail) / 100
        snapshot = self.broker.place_order(
            account,
            symbol,
            side,
            quantity,
            order_type,
            Decimal(limit) / 100 if limited else None,
            tif,
            **terms,
        )
        own_limit = limit if limited else None
        order = ModelOrder(
            snapshot.order_id,
            account,
            symbol,
            side,
            quantity,
            own_limit,
            self.model.reserve_price(symbol, side, own_limit, own_stop, own_trail),
            tif,
            self.model.next_seq(),
            order_type=order_type,
            stop=own_stop,
            trail=own_trail,
        )
        self.model.place(order)
        self.model.settle()

    @rule(
        account=st.sampled_from(ACCOUNTS),
        side=st.sampled_from(["buy", "sell"]),
        quantity=st.integers(1, 20),
        order_type=st.sampled_from(["market", "limit", "stop", "stop_limit"]),
        limit=prices,
        stop=prices,
        kind=st.sampled_from(["bracket", "take_profit", "stop_loss"]),
        profit=prices,
        loss=prices,
        loss_limit=st.one_of(st.none(), prices),
    )
    def place_bracket(
        self,
        account: str,
        side: str,
        quantity: int,
        order_type: str,
        limit: int,
        stop: int,
        kind: str,
        profit: int,
        loss: int,
        loss_limit: int | None,
    ) -> None:
        """An entry with exit legs on the other side: a bracket (take-profit and stop-loss) or
        an OTO (one of them). In market mode only: there an account's legs that two entries
        set working in one step trade alike whichever reaches the book first (in book mode
        they may trade with each other, and which comes first is the threads' choice)."""
        symbol = "MKT"
        exits = "sell" if side == "buy" else "buy"
        terms: dict[str, Any] = {"order_class": "bracket" if kind == "bracket" else "oto"}
        if kind != "stop_loss":
            terms["take_profit"] = {"limit_price": Decimal(profit) / 100}
        if kind != "take_profit":
            terms["stop_loss"] = {"stop_price": Decimal(loss) / 100}
            if loss_limit is not None:
                terms["stop_loss"]["limit_price"] = Decimal(loss_limit) / 100
        limited = order_type in ("limit", "stop_limit")
        own_limit = limit if limited else None
        own_stop = stop if order_type in STOPS else None
        if own_stop is not None:
            terms["stop_price"] = Decimal(stop) / 100
        place = (account, symbol, side, quantity, order_type, own_limit and Decimal(limit) / 100)
        if kind == "bracket" and (profit <= loss if exits == "sell" else profit >= loss):
            with pytest.raises(ValidationError):
                self.broker.place_order(*place, **terms)
            return
        snapshot = self.broker.place_order(*place, **terms)
        entry = ModelOrder(
            snapshot.order_id,
            account,
            symbol,
            side,
            quantity,
            own_limit,
            self.model.reserve_price(symbol, side, own_limit, own_stop, None),
            "gtc",
            self.model.next_seq(),
            order_type=order_type,
            stop=own_stop,
            order_class=terms["order_class"],
        )
        legs = []
        if kind != "stop_loss":
            legs.append(
                ModelOrder(
                    "",
                    account,
                    symbol,
                    exits,
                    quantity,
                    profit,
                    profit if exits == "buy" else None,
                    "gtc",
                    0,
                    order_class=entry.order_class,
                )
            )
        if kind != "take_profit":
            legs.append(
                ModelOrder(
                    "",
                    account,
                    symbol,
                    exits,
                    quantity,
                    loss_limit,
                    self.model.reserve_price(symbol, exits, loss_limit, loss, None),
                    "gtc",
                    0,
                    order_type="stop" if loss_limit is None else "stop_limit",
                    stop=loss,
                    order_class=entry.order_class,
                )
            )
        assert len(snapshot.legs) == (0 if snapshot.status.value == "rejected" else len(legs))
        for leg, leg_id in zip(legs, snapshot.legs, strict=False):
            leg.order_id = leg_id
        self.model.place_group(entry, legs)
        self.model.settle()

    @rule(
        account=st.sampled_from(ACCOUNTS),
        symbol=st.sampled_from(list(SYMBOLS)),
        side=st.sampled_from(["buy", "sell"]),
        quantity=st.integers(1, 20),
        profit=prices,
        loss=prices,
    )
    def place_oco(
        self, account: str, symbol: str, side: str, quantity: int, profit: int, loss: int
    ) -> None:
        """An OCO pair: a take-profit limit above (a sell) or below (a buy) a stop-loss stop."""
        terms: dict[str, Any] = {
            "order_class": "oco",
            "take_profit": {"limit_price": Decimal(profit) / 100},
            "stop_loss": {"stop_price": Decimal(loss) / 100},
        }
        if profit <= loss if side == "sell" else profit >= loss:
            with pytest.raises(ValidationError):
                self.broker.place_order(account, symbol, side, quantity, "limit", **terms)
            return
        snapshot = self.broker.place_order(account, symbol, side, quantity, "limit", **terms)
        buy = side == "buy"
        legs = (
            ModelOrder(
                snapshot.order_id,
                account,
                symbol,
                side,
                quantity,
                profit,
                profit if buy else None,
                "gtc",
                self.model.next_seq(),
                order_class="oco",
            ),
            ModelOrder(
                snapshot.legs[0] if snapshot.legs else "",
                account,
                symbol,
                side,
                quantity,
                None,
                collar(loss) if buy else None,
                "gtc",
                0,
                order_type="stop",
                stop=loss,
                order_class="oco",
            ),
        )
        self.model.place_pair(*legs)
        self.model.settle()
        assert snapshot.status.value == legs[0].status, (snapshot, legs)

    @precondition(
        lambda self: any(
            o.order_type == "limit" and not o.final and o.order_class == "simple"
            for o in self.model.orders.values()
        )
    )
    @rule(data=st.data(), total=st.integers(1, 25))
    def replace(self, data: st.DataObject, total: int) -> None:
        candidates = sorted(
            o.order_id
            for o in self.model.orders.values()
            if o.order_type == "limit" and o.order_class == "simple"
        )
        order = self.model.orders[data.draw(st.sampled_from(candidates))]
        limit = data.draw(st.one_of(st.just(order.limit or START_PRICE), prices))
        try:
            new = self.broker.replace_order(order.order_id, total, Decimal(limit) / 100)
            answer = "rejected" if new.status.value == "rejected" else "replaced"
        except OrderNotReplaceableError:
            answer, new = "not_replaceable", None
        except ValidationError:
            answer, new = "invalid", None
        expected = self.model.replace(order, new.order_id if new else "", total, limit)
        self.model.settle()
        assert answer == expected, (order, total, limit, new)

    @precondition(lambda self: any(o.order_class != "simple" for o in self.model.orders.values()))
    @rule(data=st.data(), price=prices)
    def replace_leg(self, data: st.DataObject, price: int) -> None:
        """Move an open exit leg's price, held or working (or try to: an entry is not
        replaced, nor are prices that cross)."""
        candidates = sorted(
            o.order_id
            for o in self.model.orders.values()
            if o.order_class != "simple" and not o.triggered and not o.final
        )
        if not candidates:
            return
        order = self.model.orders[data.draw(st.sampled_from(candidates))]
        value = Decimal(price) / 100
        try:
            if order.order_type == "limit":
                new = self.broker.replace_order(order.order_id, None, value)
            else:
                new = self.broker.replace_order(order.order_id, None, stop_price=value)
            answer = "rejected" if new.status.value == "rejected" else "replaced"
        except OrderNotReplaceableError:
            answer, new = "not_replaceable", None
        except ValidationError:
            answer, new = "invalid", None
        expected = self.model.replace_leg(order, new.order_id if new else "", price)
        self.model.settle()
        assert answer == expected, (order, price, new)

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order = self.model.orders[data.draw(st.sampled_from(sorted(self.model.orders)))]
        try:
            self.broker.cancel_order(order.order_id)
            refused = False
        except OrderNotCancellableError:
            refused = True
        assert refused == order.final
        if not refused:
            self.model.cancel(order)
            self.model.settle()

    @rule(symbol=st.sampled_from(list(SYMBOLS)), price=prices)
    def update_price(self, symbol: str, price: int) -> None:
        self.broker.update_price(symbol, Decimal(price) / 100)
        self.model.update_price(symbol, price)
        self.model.settle()

    @invariant()
    def everything_matches_the_model(self) -> None:
        for account, state in self.model.accounts.items():
            balance = self.broker.balance(account)
            assert (balance.cash, balance.reserved) == (
                Decimal(state.cash) / 100,
                Decimal(state.reserved) / 100,
            ), account
            held = {
                h.symbol: (h.quantity, h.reserved) for h in self.broker.portfolio(account).holdings
            }
            expected = {
                s: (q, state.reserved_shares.get(s, 0)) for s, q in state.shares.items() if q
            }
            assert held == expected, account
            for order in self.broker.orders(account):
                mine = self.model.orders[order.order_id]
                assert (order.status.value, order.filled_quantity) == (mine.status, mine.filled)
        for symbol, price in self.model.prices.items():
            assert self.broker.quote(symbol).last_price == Decimal(price) / 100
        self.broker.audit()


BrokerageMatchesModel.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_brokerage_matches_the_reference_model = BrokerageMatchesModel.TestCase


def test_a_take_profit_that_trades_as_it_comes_takes_its_shares_off_the_stop_loss() -> None:
    """A case the machine found in the model: an OCO's take-profit that trades on arrival
    takes as many shares off its stop-loss, which is then still on its way in."""
    machine = BrokerageMatchesModel()
    try:
        machine.place_oco(account="A", side="buy", quantity=1, symbol="BK", profit=9980, loss=10010)
        machine.place_oco(account="B", side="sell", quantity=2, symbol="BK", profit=9980, loss=9970)
        machine.place_oco(account="A", side="buy", quantity=1, symbol="BK", profit=9970, loss=9980)
        machine.everything_matches_the_model()
    finally:
        machine.teardown()
