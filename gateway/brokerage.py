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

import asyncio
import collections
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

import pykka

from actors.aio import settle
from actors.base import Clock, default_clock, send
from actors.bus import (
    AddSubscription,
    EventBusActor,
    Flush,
    Interest,
    RemoveSubscription,
    Subscription,
)
from actors.futures import LightFuture, new_future, resolve
from actors.gateway import AccountInfo, GatewayActor
from actors.log import make_logger
from actors.metrics import LATENCIES, Metrics, MetricsSnapshot
from actors.notify import (
    KINDS,
    GetUndelivered,
    KnowAccount,
    NotificationActor,
    NotificationSettings,
    Notify,
    Preferences,
    SetPreferences,
    Undelivered,
    check_push_url,
)
from actors.runtimes import LoopRuntime, Runtime, make_runtime
from actors.services import Services
from engine.account import AccountAudit, Balance, Portfolio, Transaction, value_portfolio
from engine.alerts import AlertSnapshot
from engine.audit import AuditReport, MarketAudit, reconcile
from engine.bars import Bar
from engine.commands import (
    AddAlert,
    Audit,
    CancelAlert,
    CancelOrder,
    Deposit,
    EditWatchlist,
    ExpireDayOrders,
    GetAccounts,
    GetAccountState,
    GetAlerts,
    GetBalance,
    GetBars,
    GetChildren,
    GetDepth,
    GetOrder,
    GetOrders,
    GetPriceHistory,
    GetQuote,
    GetStocks,
    GetTrades,
    GetTransactions,
    GetWatchlists,
    GrantShares,
    ListStock,
    OpenAccount,
    PlaceOrder,
    Search,
    UpdatePrice,
    Withdraw,
)
from engine.errors import BrokerStoppedError, ValidationError
from engine.events import Event
from engine.factory import DEFAULT_COLLAR_PERCENT, OrderFactory
from engine.ids import AccountId, Symbol
from engine.matching import Depth, PricePoint, QuoteSnapshot, Trade
from engine.orders import OrderSnapshot
from engine.search import SearchResult
from engine.session import Session, make_session
from engine.universe import DEFAULT_UNIVERSE
from engine.watchlists import Watchlist


@dataclass(frozen=True)
class WatchlistQuotes:
    """A watchlist with the quote of each of its symbols, in the list's order."""

    name: str
    quotes: tuple[QuoteSnapshot, ...]


@dataclass(frozen=True)
class SubscriptionHandle:
    """A live subscription; `unsubscribe()` ends it (the callback is called no more)."""

    subscription_id: int
    _broker: Brokerage

    def unsubscribe(self) -> bool:
        """Stop delivering events to the callback; return False if it was already stopped."""
        return self._broker._unsubscribe(self.subscription_id)


class _OrderFuture(LightFuture):
    """The reply of a placed order, as the caller sees it.

    `get` returns the order's snapshot once the fills it made in other accounts are settled
    too; answering an admitted order gives its in-flight token back.
    """

    def __init__(
        self, tokens: collections.deque[None] | None = None, timeout: float | None = None
    ) -> None:
        super().__init__()  # `map` makes one with no tokens: it then frees nothing
        self._tokens = tokens
        self._timeout = timeout

    def get(self, *, timeout: float | None = None) -> Any:
        """Wait for the order's snapshot (see `Brokerage.place_order`)."""
        result = super().get(timeout=timeout)
        return resolve(result, self._timeout if timeout is None else timeout)

    def set(self, value: Any = None) -> None:
        """Deliver the value and free the in-flight slot."""
        super().set(value)
        if self._tokens is not None:
            self._tokens.append(None)

    def set_exception(self, exc_info: Any = None) -> None:
        """Deliver the error and free the in-flight slot."""
        super().set_exception(exc_info if exc_info is not None else sys.exc_info())
        if self._tokens is not None:
            self._tokens.append(None)


def _orders_query(
    account_id: str, status: Any, symbol: Any, filters: dict[str, Any]
) -> Callable[[Any], GetOrders]:
    """The `GetOrders` that `orders` and `aorders` send, with their keyword filters."""
    return lambda r: GetOrders(account_id, status, symbol, r, **filters)


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
        runtime: "mn" (actors multiplexed on a few worker threads, the default), "threads"
            (pykka's `ThreadingActor`, one OS thread per actor) or "asyncio" (the trading
            actors run as callbacks of the asyncio event loop that calls `start()`, for a
            server on that loop: no thread switch between a request and the engine; on that
            loop use only the `a*` coroutines, as a blocking call there raises RuntimeError).
        workers: Worker threads of the "mn" runtime.
        max_in_flight: Orders that may be placed and not yet answered; beyond it a new order
            comes back REJECTED with reason BUSY at once (an accepted order is never dropped).
        session: "always" (the default) or "nyse" (9:30-16:00 America/New_York, Monday to
            Friday); outside it a new order is REJECTED with reason MARKET_CLOSED.
        session_poll: Seconds between looks at the clock for the session's close, when DAY
            orders still resting are cancelled (EXPIRED); None to leave that to
            `expire_day_orders()`.
        notifications: Where email, push and SMS notifications go (SMTP server, SMS gateway,
            retries and backoff); users choose their channels with
            `set_notification_preferences`.
    """

    def __init__(
        self,
        *,
        collar_percent: Any = DEFAULT_COLLAR_PERCENT,
        timeout: float = 30.0,
        clock: Clock = default_clock,
        log_level: str = "warning",
        history_limit: int = 100_000,
        runtime: str = "mn",
        workers: int | None = None,
        max_in_flight: int = 10_000,
        session: str = "always",
        session_poll: float | None = 1.0,
        notifications: NotificationSettings | None = None,
    ) -> None:
        self._notification_settings = notifications or NotificationSettings()
        self._notifier: pykka.ActorRef[Any] | None = None
        self._notifying = False
        self._session = make_session(session)
        self._session_poll = session_poll
        self._watcher: threading.Thread | None = None
        self._closing = threading.Event()
        if runtime not in ("mn", "threads", "asyncio"):
            raise ValidationError("runtime", "must be 'mn', 'threads' or 'asyncio'", runtime)
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValidationError("workers", "must be a positive int", workers)
        self.runtime_name = runtime
        self._workers = workers
        self._runtime: Runtime | None = None
        self._on_loop: Callable[[], bool] | None = None  # the asyncio runtime's loop check
        self._factory = OrderFactory(collar_percent)
        self.timeout = timeout
        self._clock = clock
        self._log = make_logger(log_level)
        self._history_limit = history_limit
        self._prices: dict[Symbol, int] = {}
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValidationError("max_in_flight", "must be a positive int", max_in_flight)
        self.max_in_flight = max_in_flight
        # One token per order that may be in flight; deque pop and append are atomic.
        self._admission: collections.deque[None] = collections.deque([None] * max_in_flight)
        self._metrics = Metrics()
        self._subscription_ids = itertools.count(1)
        self._gateway: pykka.ActorRef[Any] | None = None
        self._bus: pykka.ActorRef[Any] | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Brokerage:
        """Start the bus and the gateway actor; return self."""
        if self._gateway is None:
            self._runtime = runtime = make_runtime(self.runtime_name, self._workers)
            if isinstance(runtime, LoopRuntime):
                self._on_loop = runtime.on_loop_thread
            interest = Interest()
            self._bus = bus = runtime.spawn(EventBusActor, self._log, interest)
            services = Services(bus, interest, self._clock, self._log, self._metrics)
            self._gateway = runtime.spawn(
                GatewayActor,
                runtime,
                services,
                self._prices,
                self._factory,
                self._history_limit,
                self._session,
            )
            self._notifier = runtime.spawn(
                NotificationActor, self._log, self._notification_settings
            )
            self._notifying = False
            if self._session.name != "always" and self._session_poll:
                self._closing.clear()
                self._watcher = threading.Thread(
                    target=self._watch_session, name="session-watch", daemon=True
                )
                self._watcher.start()
        return self

    def _watch_session(self) -> None:
        """Cancel the resting DAY orders each time the session goes from open to closed."""
        was_open = self._session.is_open(self._clock())
        while not self._closing.wait(self._session_poll):
            is_open = self._session.is_open(self._clock())
            if was_open and not is_open:
                try:
                    self.expire_day_orders()
                except BrokerStoppedError:
                    return
            was_open = is_open

    def close(self) -> None:
        """Stop every actor of this brokerage (accounts and symbols first, then the bus)."""
        self._closing.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()
        self._watcher = None
        gateway, bus, runtime = self._gateway, self._bus, self._runtime
        if gateway is None or bus is None or runtime is None:
            return
        children = self._wait(self._send("close", GetChildren))
        self._gateway = self._bus = self._runtime = None
        runtime.stop_all(children, timeout=self.timeout)
        runtime.stop_all([gateway], timeout=self.timeout)
        notifier, self._notifier = self._notifier, None
        runtime.stop_all([bus, *([notifier] if notifier is not None else [])], timeout=self.timeout)
        runtime.shutdown()
        self._on_loop = None

    async def aclose(self) -> None:
        """`close()` from a coroutine (on the "asyncio" runtime's loop too)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Brokerage:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True between `start()` and `close()`."""
        return self._gateway is not None

    def _send(
        self, operation: str, make: Callable[[Any], Any], reply: pykka.Future[Any] | None = None
    ) -> pykka.Future[Any]:
        """Send the command `make(reply)` to the gateway; return the raw reply future."""
        gateway = self._gateway
        if gateway is None:
            raise BrokerStoppedError(operation)
        if reply is None:
            reply = new_future()
        try:
            send(gateway, make(reply))
        except pykka.ActorDeadError:
            raise BrokerStoppedError(operation) from None
        return reply

    def _async(self, reply: pykka.Future[Any]) -> pykka.Future[Any]:
        """A future of the caller's value: the reply, once what it depends on is done."""
        timeout = self.timeout
        return reply.map(lambda result: resolve(result, timeout))

    def _wait(self, reply: pykka.Future[Any]) -> Any:
        """Block until the reply, and what it depends on, is done; return the value."""
        if self._on_loop is not None and self._on_loop():
            raise RuntimeError(
                "a blocking Brokerage call on the event loop the engine runs on would wait for "
                "itself: await the a* coroutine instead, or call from another thread"
            )
        return resolve(reply.get(timeout=self.timeout), self.timeout)

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

    def depth(self, symbol: str, levels: int = 10) -> Depth:
        """The best `levels` price levels of each side of the book: price, shares, orders."""
        return self._wait(self._send("depth", lambda r: GetDepth(symbol, levels, r)))

    def trades(self, symbol: str, limit: int = 50) -> list[Trade]:
        """The last `limit` trades of a symbol (the tape), newest first."""
        return self._wait(self._send("trades", lambda r: GetTrades(symbol, limit, r)))

    def bars(self, symbol: str, interval: str = "1m", limit: int = 100) -> list[Bar]:
        """The last `limit` OHLCV bars of `interval` ("1m", "5m" or "1d"), oldest first,
        built from price updates and trades."""
        return self._wait(self._send("bars", lambda r: GetBars(symbol, interval, limit, r)))

    def search(self, query: str, limit: int = 10) -> list[SearchResult]:
        """Listed stocks matching `query`, best first: exact symbol, symbol prefix, a word of
        the company name starting with it, then the query anywhere (case-insensitive)."""
        return self._wait(self._send("search", lambda r: Search(query, limit, r)))

    def list_universe(self, mode: str = "market") -> list[QuoteSnapshot]:
        """List every stock of the default universe (50 well-known US stocks) not listed yet."""
        listed = {q.symbol for q in self.stocks()}
        futures = [
            self._send("list_stock", partial(ListStock, symbol, name, price, mode))
            for symbol, name, price in DEFAULT_UNIVERSE
            if symbol not in listed
        ]
        return [self._wait(f) for f in futures]

    def price_history(self, symbol: str) -> list[PricePoint]:
        """Every price the symbol has had (up to `history_limit`), oldest first."""
        return self._wait(self._send("price_history", lambda r: GetPriceHistory(symbol, r)))

    def update_price_async(self, symbol: str, price: Any) -> pykka.Future[QuoteSnapshot]:
        """`update_price`, returning a future."""
        return self._async(self._send("update_price", lambda r: UpdatePrice(symbol, price, r)))

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
        new_user: bool = False,
    ) -> AccountInfo:
        """Open an account for a user; the first account of a user needs the user's `name`.

        `account_id` is generated ("A-000001", ...) unless given. With `new_user`, the user id
        must not exist yet (DuplicateError otherwise, saying nothing of that user): how a
        sign-up that proves no identity opens its account.
        """
        opened: AccountInfo = self._wait(
            self._send(
                "open_account",
                lambda r: OpenAccount(
                    user_id, name, email, phone, initial_deposit, account_id, r, new_user
                ),
            )
        )
        self._know(opened.account_id, opened.user.user_id)
        return opened

    def _know(self, account_id: str, user_id: str) -> None:
        if self._notifier is not None:
            send(self._notifier, KnowAccount(account_id, user_id))

    def accounts(self, user_id: str | None = None) -> list[AccountId]:
        """Ids of the accounts of `user_id` (of every user if None), oldest first."""
        return self._wait(self._send("accounts", lambda r: GetAccounts(user_id, r)))

    def deposit_async(self, account_id: str, amount: Any) -> pykka.Future[Balance]:
        """`deposit`, returning a future."""
        return self._async(self._send("deposit", lambda r: Deposit(account_id, amount, r)))

    def deposit(self, account_id: str, amount: Any) -> Balance:
        """Add cash; return the new balance."""
        return self._wait(self.deposit_async(account_id, amount))

    def withdraw_async(self, account_id: str, amount: Any) -> pykka.Future[Balance]:
        """`withdraw`, returning a future."""
        return self._async(self._send("withdraw", lambda r: Withdraw(account_id, amount, r)))

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

    def transactions(
        self, account_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[Transaction]:
        """Every movement of cash or shares in the account, oldest first: all of them, or
        `limit` from the `offset`-th on."""
        return self._wait(
            self._send("transactions", lambda r: GetTransactions(account_id, r, offset, limit))
        )

    # -- alerts --------------------------------------------------------------------------------

    def add_alert(
        self,
        account_id: str,
        symbol: str,
        condition: str,
        threshold: Any,
        *,
        one_shot: bool = True,
    ) -> AlertSnapshot:
        """Alert the account when `symbol`'s price goes at or "above", or at or "below",
        `threshold`: an `AlertTriggered` event. One-shot by default (it fires once and is
        gone); a standing alert (`one_shot=False`) fires each time the price crosses in."""
        return self._wait(
            self._send(
                "add_alert",
                lambda r: AddAlert(account_id, symbol, condition, threshold, one_shot, r),
            )
        )

    def cancel_alert(self, alert_id: str) -> AlertSnapshot:
        """Remove an active alert. Raises `UnknownAlertError` if it fired or never was."""
        return self._wait(self._send("cancel_alert", lambda r: CancelAlert(alert_id, r)))

    def alerts(self, account_id: str) -> list[AlertSnapshot]:
        """An account's active alerts, by symbol then age."""
        per_symbol = self._wait(self._send("alerts", lambda r: GetAlerts(account_id, r)))
        return [alert for alerts in per_symbol for alert in alerts]

    # -- watchlists ----------------------------------------------------------------------------

    def _edit(self, account_id: str, action: str, name: str, value: Any = None) -> Any:
        return self._wait(
            self._send("watchlist", lambda r: EditWatchlist(account_id, action, name, value, r))
        )

    def create_watchlist(
        self, account_id: str, name: str, symbols: Iterable[str] = ()
    ) -> Watchlist:
        """Create a named watchlist of listed symbols (each kept once, in order)."""
        return self._edit(account_id, "create", name, list(symbols))

    def rename_watchlist(self, account_id: str, name: str, new_name: str) -> Watchlist:
        """Rename a watchlist."""
        return self._edit(account_id, "rename", name, new_name)

    def replace_watchlist(
        self,
        account_id: str,
        name: str,
        symbols: Iterable[str] | None = None,
        new_name: str | None = None,
    ) -> Watchlist:
        """Replace a watchlist's symbols (None: keep them) and/or rename it, in one step: a
        refusal (an unknown symbol, a name taken) changes nothing."""
        symbol_list = None if symbols is None else list(symbols)
        return self._edit(account_id, "replace", name, (new_name, symbol_list))

    def delete_watchlist(self, account_id: str, name: str) -> None:
        """Delete a watchlist."""
        self._edit(account_id, "delete", name)

    def add_to_watchlist(self, account_id: str, name: str, symbol: str) -> Watchlist:
        """Add a listed symbol to a watchlist (no change if it is there)."""
        return self._edit(account_id, "add", name, symbol)

    def remove_from_watchlist(self, account_id: str, name: str, symbol: str) -> Watchlist:
        """Remove a symbol from a watchlist."""
        return self._edit(account_id, "remove", name, symbol)

    def watchlists(self, account_id: str) -> list[Watchlist]:
        """An account's watchlists with their symbols."""
        return self._wait(self._send("watchlists", lambda r: GetWatchlists(account_id, None, r)))

    def watchlist(self, account_id: str, name: str) -> WatchlistQuotes:
        """One watchlist with a live quote for each of its symbols."""
        found: Watchlist = self._wait(
            self._send("watchlist", lambda r: GetWatchlists(account_id, name, r))
        )
        futures = [self._send("watchlist", partial(GetQuote, s)) for s in found.symbols]
        return WatchlistQuotes(found.name, tuple(self._wait(f) for f in futures))

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
        return self._place(
            account_id, symbol, side, quantity, order_type, limit_price, time_in_force
        )

    def _place(
        self,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Any,
        order_type: str,
        limit_price: Any,
        time_in_force: str,
        keep_refused: bool = True,
    ) -> pykka.Future[Any]:
        placed = time.perf_counter_ns()
        try:
            self._admission.pop()
            reply = _OrderFuture(self._admission, self.timeout)
            admitted = True
        except IndexError:  # too many in flight: the gateway rejects it as BUSY at once
            reply = _OrderFuture(None, self.timeout)
            admitted = False
        try:
            return self._send(
                "place_order",
                lambda r: PlaceOrder(
                    account_id,
                    symbol,
                    side,
                    quantity,
                    order_type,
                    limit_price,
                    time_in_force,
                    r,
                    placed,
                    admitted,
                    keep_refused,
                ),
                reply,
            )
        except BaseException:
            if admitted:
                self._admission.append(None)
            raise

    def place_order(
        self,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Any,
        order_type: str = "market",
        limit_price: Any = None,
        time_in_force: str = "gtc",
        *,
        keep_refused: bool = True,
    ) -> OrderSnapshot:
        """Place an order; return it once its immediate matching and settlement are done.

        `side` is "buy" or "sell", `order_type` "market" or "limit" (which needs
        `limit_price`), `time_in_force` "gtc", "ioc" or "fok". A marketable order comes back
        EXECUTED or PARTIALLY_FILLED, a resting one PENDING, a refused one REJECTED with its
        `reject_reason`; a market or IOC/FOK order that could not fill comes back CANCELLED
        with its `cancel_reason`. With `keep_refused` False an order the pre-trade check
        refuses is answered but not kept in the account's history (nor streamed). An order
        refused as BUSY is never kept.
        """
        return self._wait(
            self._place(
                account_id,
                symbol,
                side,
                quantity,
                order_type,
                limit_price,
                time_in_force,
                keep_refused,
            )
        )

    def cancel_order_async(self, order_id: str) -> pykka.Future[OrderSnapshot]:
        """`cancel_order`, returning a future."""
        return self._async(self._send("cancel_order", lambda r: CancelOrder(order_id, r)))

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
        *,
        side: str | None = None,
        after: datetime | None = None,
        until: datetime | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[OrderSnapshot]:
        """An account's orders, oldest first (or `newest_first`), optionally only of `status`
        (one or several), `symbol`, `side` ("buy" or "sell"), made after `after` and before
        `until` (exclusive; a naive datetime is UTC); all of them, or a page: `limit` orders
        from the `offset`-th match on. Open orders are indexed: asking only for them looks at
        no finished order."""
        filters = {
            "side": side,
            "after": after,
            "until": until,
            "newest_first": newest_first,
            "offset": offset,
            "limit": limit,
        }
        return self._wait(self._send("orders", _orders_query(account_id, status, symbol, filters)))

    # -- asyncio -------------------------------------------------------------------------------
    # Coroutine twins of the calls a server makes most: each awaits the engine's reply on the
    # running event loop (no thread waits), with the same arguments, value and errors.

    async def _settle(self, reply: pykka.Future[Any]) -> Any:
        return await settle(reply, self.timeout)

    async def aplace_order(
        self,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Any,
        order_type: str = "market",
        limit_price: Any = None,
        time_in_force: str = "gtc",
        *,
        keep_refused: bool = True,
    ) -> OrderSnapshot:
        """`place_order`, awaited."""
        return await self._settle(
            self._place(
                account_id,
                symbol,
                side,
                quantity,
                order_type,
                limit_price,
                time_in_force,
                keep_refused,
            )
        )

    async def acancel_order(self, order_id: str) -> OrderSnapshot:
        """`cancel_order`, awaited."""
        return await self._settle(self._send("cancel_order", lambda r: CancelOrder(order_id, r)))

    async def aget_order(self, order_id: str) -> OrderSnapshot:
        """`get_order`, awaited."""
        return await self._settle(self._send("get_order", lambda r: GetOrder(order_id, r)))

    async def aorders(
        self,
        account_id: str,
        status: str | Iterable[str] | None = None,
        symbol: str | None = None,
        *,
        side: str | None = None,
        after: datetime | None = None,
        until: datetime | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[OrderSnapshot]:
        """`orders`, awaited."""
        filters = {
            "side": side,
            "after": after,
            "until": until,
            "newest_first": newest_first,
            "offset": offset,
            "limit": limit,
        }
        return await self._settle(
            self._send("orders", _orders_query(account_id, status, symbol, filters))
        )

    async def adeposit(self, account_id: str, amount: Any) -> Balance:
        """`deposit`, awaited."""
        return await self._settle(self._send("deposit", lambda r: Deposit(account_id, amount, r)))

    async def awithdraw(self, account_id: str, amount: Any) -> Balance:
        """`withdraw`, awaited."""
        return await self._settle(self._send("withdraw", lambda r: Withdraw(account_id, amount, r)))

    async def abalance(self, account_id: str) -> Balance:
        """`balance`, awaited."""
        return await self._settle(self._send("balance", lambda r: GetBalance(account_id, r)))

    async def aportfolio(self, account_id: str) -> Portfolio:
        """`portfolio`, awaited."""
        state = await self._settle(
            self._send("portfolio", lambda r: GetAccountState(account_id, r))
        )
        return value_portfolio(state, self._prices)

    async def atransactions(
        self, account_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[Transaction]:
        """`transactions`, awaited."""
        return await self._settle(
            self._send("transactions", lambda r: GetTransactions(account_id, r, offset, limit))
        )

    async def aquote(self, symbol: str) -> QuoteSnapshot:
        """`quote`, awaited."""
        return await self._settle(self._send("quote", lambda r: GetQuote(symbol, r)))

    async def astocks(self) -> list[QuoteSnapshot]:
        """`stocks`, awaited."""
        return await self._settle(self._send("stocks", GetStocks))

    async def asearch(self, query: str, limit: int = 10) -> list[SearchResult]:
        """`search`, awaited."""
        return await self._settle(self._send("search", lambda r: Search(query, limit, r)))

    async def adepth(self, symbol: str, levels: int = 10) -> Depth:
        """`depth`, awaited."""
        return await self._settle(self._send("depth", lambda r: GetDepth(symbol, levels, r)))

    async def atrades(self, symbol: str, limit: int = 50) -> list[Trade]:
        """`trades`, awaited."""
        return await self._settle(self._send("trades", lambda r: GetTrades(symbol, limit, r)))

    async def abars(self, symbol: str, interval: str = "1m", limit: int = 100) -> list[Bar]:
        """`bars`, awaited."""
        return await self._settle(self._send("bars", lambda r: GetBars(symbol, interval, limit, r)))

    async def awatchlists(self, account_id: str) -> list[Watchlist]:
        """`watchlists`, awaited."""
        return await self._settle(
            self._send("watchlists", lambda r: GetWatchlists(account_id, None, r))
        )

    # -- notifications -------------------------------------------------------------------------

    def set_notification_preferences(
        self,
        user_id: str,
        *,
        console: bool = False,
        email: str | None = None,
        push: str | None = None,
        sms: str | None = None,
        events: Iterable[str] = ("fill", "cancel", "reject", "alert"),
    ) -> Preferences:
        """Choose where a user's notifications go and which: console (a log event), email
        (an address), push (a webhook URL, sent a JSON POST) and SMS (a phone number, through
        the configured SMS gateway); `events` from "fill", "cancel", "reject", "alert".

        A push URL on a loopback, link-local or private address is refused unless the
        settings allow private addresses."""
        kinds = frozenset(events)
        if not kinds <= set(KINDS):
            raise ValidationError("events", f"must be some of {', '.join(KINDS)}", events)
        if email is not None and (
            not isinstance(email, str)
            or "@" not in email
            or len(email) > 254
            or any(c.isspace() or not c.isprintable() for c in email)
        ):
            raise ValidationError("email", "must be an email address", email)
        if push is not None:
            allowed = self._notification_settings.allow_private_addresses
            push = check_push_url(push, allow_private=allowed)
        if sms is not None and self._notification_settings.sms_gateway_url is None:
            raise ValidationError("sms", "needs an sms_gateway_url in the settings", sms)
        channels: dict[str, str | None] = {}
        if console:
            channels["console"] = None
        for name, address in (("email", email), ("push", push), ("sms", sms)):
            if address is not None:
                channels[name] = address
        for account_id in self.accounts(user_id):  # raises UnknownUserError
            self._know(account_id, user_id)
        notifier = self._notifier
        if notifier is None:
            raise BrokerStoppedError("set_notification_preferences")
        if not self._notifying:  # the first user to ask makes the bus send these events on
            self._notifying = True
            self.subscribe(lambda event: send(notifier, Notify(event)), list(KINDS.values()))
        reply = new_future()
        send(notifier, SetPreferences(user_id, Preferences(channels, kinds), reply))
        return self._wait(reply)

    def undelivered(self) -> list[Undelivered]:
        """Notifications that failed every attempt, oldest first."""
        if self._notifier is None:
            raise BrokerStoppedError("undelivered")
        reply = new_future()
        send(self._notifier, GetUndelivered(reply))
        return self._wait(reply)

    # -- the session ---------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The trading session orders are checked against."""
        return self._session

    def market_open(self) -> bool:
        """Whether the session takes orders now (by the brokerage's clock)."""
        return self._session.is_open(self._clock())

    def expire_day_orders(self) -> int:
        """Cancel every DAY order still resting (reason EXPIRED); return how many. The
        session watcher calls this at each close; a simulation on its own clock may too."""
        counts = self._wait(self._send("expire_day_orders", ExpireDayOrders))
        return sum(counts)

    # -- metrics -------------------------------------------------------------------------------

    def metrics(self) -> MetricsSnapshot:
        """Counters, latency percentiles, orders in flight, the deepest inbox and live actors.

        Finding the deepest inbox reads every actor's inbox length: O(actors).
        """
        runtime = self._runtime
        if runtime is None:
            raise BrokerStoppedError("metrics")
        counters, latencies = self._metrics.read()
        rejected = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("rejected:")}
        names = (
            "orders_accepted",
            "orders_rejected",
            "orders_filled",
            "orders_cancelled",
            "fills",
            "deposits",
            "withdrawals",
            "actors_restarted",
            "symbols_halted",
        )
        return MetricsSnapshot(
            counters={name: counters.get(name, 0) for name in names},
            rejected_by_reason=rejected,
            latency_us=latencies,
            orders_in_flight=self.max_in_flight - len(self._admission),
            deepest_inbox=runtime.deepest_inbox(),
            live_actors=runtime.live_actors,
        )

    def latency_histogram(self, name: str = "place_to_filled") -> list[tuple[int, int]]:
        """A latency's histogram ("place_to_accepted" or "place_to_filled"): pairs of a
        bucket's lowest value in microseconds (buckets are within 1 % wide) and its count."""
        if name not in LATENCIES:
            raise ValidationError("name", f"must be one of {', '.join(LATENCIES)}", name)
        return self._metrics.buckets(name)

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
