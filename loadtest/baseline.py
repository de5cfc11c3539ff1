"""The brief's own design, as a benchmark baseline: one exchange object guarded by one lock.

Every call takes the same `threading.Lock` and runs the same `engine` code the actors run
(order factory, account reservations, matching, settlement), so the difference between this
and the actor runtimes is the cost and benefit of the actors alone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pykka

from actors.futures import LightFuture
from engine.account import Account
from engine.audit import AuditReport, reconcile
from engine.commands import PlaceOrder
from engine.errors import OrderNotCancellableError, UnknownOrderError
from engine.factory import OrderFactory
from engine.ids import AccountId, OrderId, Symbol, UserId
from engine.matching import Fill, Market, OrderTicket, TradeIdSequence
from engine.money import parse_amount, parse_price, parse_quantity
from engine.orders import CancelReason, LiquidityMode, OrderSnapshot, Side
from engine.search import SearchIndex, SearchResult


@dataclass(frozen=True)
class Opened:
    """What `open_account` returns (the part the benchmarks use)."""

    account_id: AccountId


class LockedExchange:
    """A singleton-style exchange: all state in one object, every call under one lock."""

    runtime_name = "lock"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._factory = OrderFactory()
        self._accounts: dict[AccountId, Account] = {}
        self._markets: dict[Symbol, Market] = {}
        self._trade_ids: dict[Symbol, TradeIdSequence] = {}
        self._routes: dict[OrderId, AccountId] = {}
        self._next_order = 0
        self._index = SearchIndex()

    def __enter__(self) -> LockedExchange:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to stop: there are no threads."""

    def list_stock(self, symbol: str, name: str, price: Any, mode: str = "market") -> None:
        """List a stock."""
        with self._lock:
            key = Symbol(symbol)
            self._markets[key] = Market(
                key, name, parse_price(price), LiquidityMode(mode), time.time_ns()
            )
            self._trade_ids[key] = TradeIdSequence(key)
            self._index.add(key, name)

    def open_account(self, user_id: str, name: str, *, initial_deposit: Any = None) -> Opened:
        """Open an account with an optional deposit."""
        with self._lock:
            account_id = AccountId(f"A-{len(self._accounts) + 1:06d}")
            account = Account(account_id, UserId(user_id), time.time_ns())
            if initial_deposit is not None:
                account.deposit(parse_amount(initial_deposit), time.time_ns())
            self._accounts[account_id] = account
            return Opened(account_id)

    def grant_shares(self, account_id: str, symbol: str, quantity: Any, price: Any) -> None:
        """Credit shares at a stated cost."""
        with self._lock:
            self._accounts[AccountId(account_id)].grant(
                Symbol(symbol), parse_quantity(quantity), parse_price(price), time.time_ns()
            )

    def _settle(self, fill: Fill, side: Side, now: int) -> None:
        order_id = fill.order_id_for(side)
        account_id = fill.buy_account_id if side is Side.BUY else fill.sell_account_id
        if order_id is None or account_id is None:
            return  # the market itself, in market mode
        self._accounts[account_id].settle_fill(
            order_id, fill.trade_id, fill.quantity, fill.price, now
        )

    def place_order(
        self,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Any,
        order_type: str = "market",
        limit_price: Any = None,
        time_in_force: str = "gtc",
    ) -> OrderSnapshot:
        """Parse the order (as `Brokerage.place_order` does, in the caller's thread), then check,
        reserve, match and settle it, all under the lock."""
        command = PlaceOrder.parse(
            account_id, symbol, side, quantity, order_type, limit_price, time_in_force
        )
        with self._lock:
            now = time.time_ns()
            account = self._accounts[command.account_id]
            market = self._markets[command.symbol]
            self._next_order += 1
            order = self._factory.create(
                OrderId(f"O-{self._next_order:06d}"), command, now, market.price
            )
            self._routes[order.order_id] = account.account_id
            if account.accept(order, now) is not None:
                return order.snapshot()
            result = market.submit(OrderTicket.of(order), now, self._trade_ids[market.symbol])
            for fill in result.fills:
                self._settle(fill, Side.BUY, now)
                self._settle(fill, Side.SELL, now)
            if result.cancel_reason is not None:
                account.cancel_rest(order.order_id, result.cancel_reason, now)
            return order.snapshot()

    def place_order_async(self, *args: Any, **kwargs: Any) -> pykka.Future[OrderSnapshot]:
        """`place_order`, done at once, behind an already answered future."""
        future: LightFuture[OrderSnapshot] = LightFuture()
        future.set(self.place_order(*args, **kwargs))
        return future

    def cancel_order(self, order_id: str) -> OrderSnapshot:
        """Cancel what remains of a resting order."""
        with self._lock:
            account_id = self._routes.get(OrderId(order_id))
            if account_id is None:
                raise UnknownOrderError(order_id)
            account = self._accounts[account_id]
            order = account.order(OrderId(order_id))
            if order.status.is_final or not self._markets[order.symbol].cancel(order.order_id):
                raise OrderNotCancellableError(order.order_id, order.status.value)
            account.cancel_rest(order.order_id, CancelReason.REQUESTED, time.time_ns())
            return order.snapshot()

    def update_price(self, symbol: str, price: Any) -> None:
        """Move a price and settle the resting orders it triggers."""
        with self._lock:
            now = time.time_ns()
            market = self._markets[Symbol(symbol)]
            for fill in market.update_price(
                parse_price(price), now, self._trade_ids[market.symbol]
            ):
                self._settle(fill, Side.BUY, now)
                self._settle(fill, Side.SELL, now)

    def search(self, query: str, limit: int = 10) -> list[SearchResult]:
        """The same search as `Brokerage.search`."""
        with self._lock:
            return self._index.search(query, limit)

    def audit(self) -> AuditReport:
        """The same checks as `Brokerage.audit()`."""
        with self._lock:
            return reconcile(
                [a.audit() for a in self._accounts.values()],
                [m.audit() for m in self._markets.values()],
            )
