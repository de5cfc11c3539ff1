"""`Brokerage`: the public, embedded API of the engine.

    with Brokerage() as broker:
        broker.list_stock("AAPL", "Apple Inc.", "150.00")
        alice = broker.open_account("U001", "Alice", initial_deposit="10000")
        order = broker.place_order(alice.account_id, "AAPL", "buy", 10)

Every method sends one message to the gateway actor and waits for the answer; its `_async`
twin returns the future instead, so a caller can keep many requests in flight. Money goes in as
`str`, `int` or `Decimal` and comes back as `Decimal`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import pykka

from actors.bus import AddSubscription, EventBusActor, Flush, RemoveSubscription, Subscription
from actors.log import make_logger
from actors.runtime import Clock, default_clock, new_future, resolve
from engine.account import AccountAudit, Balance, Portfolio, Transaction, value_portfolio
from engine.audit import AuditReport, MarketAudit, reconcile
from engine.commands import (
    Audit,
    CancelOrder,
    Deposit,
    GetAccounts,
    GetAccountState,
    GetBalance,
    GetOrder,
    GetOrders,
    GetPriceHistory,
    GetQuote,
    GetStocks,
    GetTransactions,
    GrantShares,
    ListStock,
    OpenAccount,
    PlaceOrder,
    UpdatePrice,
    Withdraw,
)
from engine.errors import BrokerStoppedError, ValidationError
from engine.events import Event
from engine.factory import DEFAULT_COLLAR_PERCENT, OrderFactory
from engine.ids import AccountId, Symbol
from engine.matching import PricePoint, QuoteSnapshot
from engine.orders import OrderSnapshot
from gateway.actor import AccountInfo, GatewayActor

T = TypeVar("T")


@dataclass(frozen=True)
class SubscriptionHandle:
    """A live subscription; `unsubscribe()` ends it (the callback is called no more)."""

    subscription_id: int
    _broker: Brokerage

    def unsubscribe(self) -> bool:
        """Stop delivering events to the callback; return False if it was already stopped."""
        return self._broker._unsubscribe(self.subscription_id)


class Brokerage:
    """An embedded brokerage: a gateway actor, an event bus, and an actor per account and
    per symbol, all started by `start()` (or `with`) and stopped by `close()`.

    Args:
        collar_percent: How far above the current price a market buy may fill, and so how much
            cash per share it reserves (5 % by default).
        timeout: Seconds a blocking call waits for its answer before `pykka.Timeout`.
        clock: Returns integer nanoseconds since the epoch; injectable for simulations.
        log_level: Level of the structured lifecycle logs on stderr ("warning": quiet).
        history_limit: Price points kept per symbol.
    """

    def __init__(
        self,
        *,
        collar_percent: Any = DEFAULT_COLLAR_PERCENT,
        timeout: float = 30.0,
        clock: Clock = default_clock,
        log_level: str = "warning",
        history_limit: int = 100_000,
    ) -> None:
        self._factory = OrderFactory(collar_percent)
        self.timeout = timeout
        self._clock = clock
        self._log = make_logger(log_level)
        self._history_limit = history_limit
        self._prices: dict[Symbol, int] = {}
        self._subscription_ids = itertools.count(1)
        self._gateway: pykka.ActorRef[Any] | None = None
        self._bus: pykka.ActorRef[Any] | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Brokerage:
        """Start the bus and the gateway actor; return self."""
        if self._gateway is None:
            self._bus = EventBusActor.start(self._log)
            self._gateway = GatewayActor.start(
                self._bus,
                self._prices,
                self._factory,
                self._clock,
                self._log,
                self._history_limit,
            )
        return self

    def close(self) -> None:
        """Stop every actor of this brokerage (accounts and symbols first, then the bus)."""
        gateway, bus = self._gateway, self._bus
        self._gateway = self._bus = None
        if gateway is not None:
            gateway.stop(timeout=self.timeout)
        if bus is not None:
            bus.stop(timeout=self.timeout)

    def __enter__(self) -> Brokerage:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True between `start()` and `close()`."""
        return self._gateway is not None

    def _send(self, operation: str, make: Callable[[Any], Any]) -> pykka.Future[Any]:
        gateway = self._gateway
        if gateway is None:
            raise BrokerStoppedError(operation)
        reply = new_future()
        try:
            gateway.tell(make(reply))
        except pykka.ActorDeadError:
            raise BrokerStoppedError(operation) from None
        timeout = self.timeout
        return reply.map(lambda result: resolve(result, timeout))

    def _wait(self, future: pykka.Future[T]) -> T:
        return future.get(timeout=self.timeout)

    # -- stocks --------------------------------------------------------------------------------

    def list_stock(self, symbol: str, name: str, price: Any, mode: str = "market") -> QuoteSnapshot:
        """List a stock at an initial price; `mode` is "market" (fills at the feed's price) or
        "book" (orders match each other). Raises `DuplicateError` if already listed."""
        return self._wait(
            self._send("list_stock", lambda r: ListStock(symbol, name, price, mode, r))
        )

    def stocks(self) -> list[QuoteSnapshot]:
        """Quotes of every listed stock, in listing order."""
        return self._wait(self._send("stocks", GetStocks))

    def quote(self, symbol: str) -> QuoteSnapshot:
        """Last price, best bid and ask with sizes, day open/high/low, volume."""
        return self._wait(self._send("quote", lambda r: GetQuote(symbol, r)))

    def price_history(self, symbol: str) -> list[PricePoint]:
        """Every price the symbol has had (up to `history_limit`), oldest first."""
        return self._wait(self._send("price_history", lambda r: GetPriceHistory(symbol, r)))

    def update_price_async(self, symbol: str, price: Any) -> pykka.Future[QuoteSnapshot]:
        """`update_price`, returning a future."""
        return self._send("update_price", lambda r: UpdatePrice(symbol, price, r))

    def update_price(self, symbol: str, price: Any) -> QuoteSnapshot:
        """Move a stock's price (the price feed's entry point) and return its new quote.

        In `market` mode the move fills the resting limit orders it reaches, in price-time
        priority; this returns once those fills are settled in every account.
        """
        return self._wait(self.update_price_async(symbol, price))

    # -- accounts ------------------------------------------------------------------------------

    def open_account(
        self,
        user_id: str,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        *,
        initial_deposit: Any = None,
        account_id: str | None = None,
    ) -> AccountInfo:
        """Open an account for a user; the first account of a user needs the user's `name`.

        `account_id` is generated ("A-000001", ...) unless given.
        """
        return self._wait(
            self._send(
                "open_account",
                lambda r: OpenAccount(user_id, name, email, phone, initial_deposit, account_id, r),
            )
        )

    def accounts(self, user_id: str | None = None) -> list[AccountId]:
        """Ids of the accounts of `user_id` (of every user if None), oldest first."""
        return self._wait(self._send("accounts", lambda r: GetAccounts(user_id, r)))

    def deposit_async(self, account_id: str, amount: Any) -> pykka.Future[Balance]:
        """`deposit`, returning a future."""
        return self._send("deposit", lambda r: Deposit(account_id, amount, r))

    def deposit(self, account_id: str, amount: Any) -> Balance:
        """Add cash; return the new balance."""
        return self._wait(self.deposit_async(account_id, amount))

    def withdraw_async(self, account_id: str, amount: Any) -> pykka.Future[Balance]:
        """`withdraw`, returning a future."""
        return self._send("withdraw", lambda r: Withdraw(account_id, amount, r))

    def withdraw(self, account_id: str, amount: Any) -> Balance:
        """Take out cash, at most the available cash (cash minus what pending buys reserve).

        Raises `InsufficientAvailableCashError` beyond that; nothing moves.
        """
        return self._wait(self.withdraw_async(account_id, amount))

    def balance(self, account_id: str) -> Balance:
        """Cash, reserved and available."""
        return self._wait(self._send("balance", lambda r: GetBalance(account_id, r)))

    def grant_shares(self, account_id: str, symbol: str, quantity: Any, price: Any) -> Transaction:
        """Credit shares at a stated cost per share (an allocation or a transfer in)."""
        return self._wait(
            self._send(
                "grant_shares", lambda r: GrantShares(account_id, symbol, quantity, price, r)
            )
        )

    def portfolio(self, account_id: str) -> Portfolio:
        """Holdings valued at current prices, with unrealized and realized profit and loss."""
        state = self._wait(self._send("portfolio", lambda r: GetAccountState(account_id, r)))
        return value_portfolio(state, self._prices)

    def net_worth(self, account_id: str) -> Decimal:
        """Cash plus holdings at current prices."""
        return self.portfolio(account_id).net_worth

    def transactions(self, account_id: str) -> list[Transaction]:
        """Every movement of cash or shares in the account, oldest first."""
        return self._wait(self._send("transactions", lambda r: GetTransactions(account_id, r)))

    # -- orders --------------------------------------------------------------------------------

    def place_order_async(
        self,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Any,
        order_type: str = "market",
        limit_price: Any = None,
        time_in_force: str = "gtc",
    ) -> pykka.Future[OrderSnapshot]:
        """`place_order`, returning a future of the same snapshot."""
        return self._send(
            "place_order",
            lambda r: PlaceOrder(
                account_id, symbol, side, quantity, order_type, limit_price, time_in_force, r
            ),
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
        """Place an order; return it once its immediate matching and settlement are done.

        `side` is "buy" or "sell", `order_type` "market" or "limit" (which needs
        `limit_price`), `time_in_force` "gtc", "ioc" or "fok". A marketable order comes back
        EXECUTED or PARTIALLY_FILLED, a resting one PENDING, a refused one REJECTED with its
        `reject_reason`; a market or IOC/FOK order that could not fill comes back CANCELLED
        with its `cancel_reason`.
        """
        return self._wait(
            self.place_order_async(
                account_id, symbol, side, quantity, order_type, limit_price, time_in_force
            )
        )

    def cancel_order_async(self, order_id: str) -> pykka.Future[OrderSnapshot]:
        """`cancel_order`, returning a future."""
        return self._send("cancel_order", lambda r: CancelOrder(order_id, r))

    def cancel_order(self, order_id: str) -> OrderSnapshot:
        """Cancel what remains of a pending or partially filled order and release its
        reservation. Raises `OrderNotCancellableError` if the order is already finished."""
        return self._wait(self.cancel_order_async(order_id))

    def get_order(self, order_id: str) -> OrderSnapshot:
        """One order as it stands now."""
        return self._wait(self._send("get_order", lambda r: GetOrder(order_id, r)))

    def orders(
        self,
        account_id: str,
        status: str | Iterable[str] | None = None,
        symbol: str | None = None,
    ) -> list[OrderSnapshot]:
        """An account's orders, oldest first, optionally only of `status` (one or several)
        and of `symbol`."""
        return self._wait(self._send("orders", lambda r: GetOrders(account_id, status, symbol, r)))

    # -- invariants ----------------------------------------------------------------------------

    def audit(self) -> AuditReport:
        """Check every invariant of every account and book and return the totals.

        Each account reconciles its cash and holdings with its own transaction log, and each
        book runs its `check()`. Across accounts it checks that shares and cash traded in
        `book` symbols are conserved and that every open order rests in a book; those
        cross-account rules hold once no request is in flight, so call it when the threads
        that trade are done. Raises AssertionError naming the first broken rule.
        """
        results = self._wait(self._send("audit", Audit))
        accounts = [r for r in results if isinstance(r, AccountAudit)]
        markets = [r for r in results if isinstance(r, MarketAudit)]
        return reconcile(accounts, markets)

    # -- events --------------------------------------------------------------------------------

    def subscribe(
        self,
        callback: Callable[[Event], Any],
        events: Iterable[type] | None = None,
        *,
        account_id: str | None = None,
        symbol: str | None = None,
    ) -> SubscriptionHandle:
        """Call `callback(event)` for each published event of the classes in `events` (all if
        None), optionally only for one account or one symbol.

        Callbacks run one at a time in the event bus's own thread, never on the matching
        path; one that raises is logged and the others go on.
        """
        if not callable(callback):
            raise ValidationError("callback", "must be callable", callback)
        kinds = tuple(events or ())
        if not all(isinstance(kind, type) for kind in kinds):
            raise ValidationError("events", "must be event classes", events)
        if self._bus is None:
            raise BrokerStoppedError("subscribe")
        symbol_filter = None if symbol is None else symbol.upper()
        subscription = Subscription(
            next(self._subscription_ids), callback, kinds, account_id, symbol_filter
        )
        reply = new_future()
        self._bus.tell(AddSubscription(subscription, reply))
        return SubscriptionHandle(self._wait(reply), self)

    def _unsubscribe(self, subscription_id: int) -> bool:
        if self._bus is None:
            return False
        reply = new_future()
        self._bus.tell(RemoveSubscription(subscription_id, reply))
        result: bool = self._wait(reply)
        return result

    def flush_events(self) -> None:
        """Wait until every event published before this call has been delivered.

        Events are published before the call that caused them returns, so after
        `flush_events()` every callback for those calls has run.
        """
        if self._bus is not None:
            reply = new_future()
            self._bus.tell(Flush(reply))
            self._wait(reply)
