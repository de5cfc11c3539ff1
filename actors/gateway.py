"""The gateway actor: assigns ids, checks what commands name exists, and routes each command and
query to the actor that owns it.

It holds no account or book state, only the directory of actors (account id, symbol, order id
to the actor that owns it) and the users who hold the accounts. Commands arrive parsed (the
public API parses them, `engine.commands`); what needs the directory is checked here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

from actors.account import AccountActor, rejected
from actors.base import BrokerActor, handles, send
from actors.futures import Gathered, new_future
from actors.messages import (
    AcceptOrder,
    ActorRef,
    Audit,
    CheckMargin,
    GetAccounts,
    GetAccountState,
    GetAlerts,
    GetBalance,
    GetBars,
    GetChildren,
    GetDepth,
    GetOrder,
    GetOrderByClientId,
    GetOrders,
    GetPriceHistory,
    GetQuote,
    GetState,
    GetStocks,
    GetTrades,
    GetTransactions,
    GetWatchlists,
    Place,
    ReplaceAt,
    Request,
    Search,
    SetAlert,
)
from actors.runtimes import Runtime
from actors.services import Services
from actors.symbol import SymbolActor
from engine.account import Account, Balance, User
from engine.alerts import AlertBook
from engine.commands import (
    WATCHLIST_EDITS,
    AddAlert,
    AddToWatchlist,
    CancelAlert,
    CancelOrder,
    CreateWatchlist,
    Deposit,
    ExpireDayOrders,
    GrantShares,
    ListStock,
    OpenAccount,
    PlaceWithExits,
    RemoveFromWatchlist,
    ReplaceOrder,
    ReplaceWatchlist,
    ResetAccount,
    SetSelfTradePrevention,
    UpdatePrice,
    WatchlistEdit,
    Withdraw,
)
from engine.errors import (
    DuplicateError,
    UnknownAccountError,
    UnknownAlertError,
    UnknownOrderError,
    UnknownSymbolError,
    UnknownUserError,
    ValidationError,
)
from engine.events import OrderRejected
from engine.factory import OrderFactory
from engine.ids import AccountId, OrderId, Routes, Symbol, UserId
from engine.journal import Listed, Opened, State, refused
from engine.matching import Market, TradeIdSequence
from engine.money import cents_to_decimal
from engine.orders import Order, RejectReason
from engine.search import SearchIndex
from engine.session import Session


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account just opened: its id, its user, and its balance."""

    account_id: AccountId
    user: User
    balance: Balance


class GatewayActor(BrokerActor):
    """Checks what commands name, assigns ids, routes. The only actor that creates others."""

    supervised = True  # a stop request outside close restarts it from its state

    def __init__(
        self,
        runtime: Runtime,
        services: Services,
        prices: MutableMapping[Symbol, int],
        factory: OrderFactory,
        history_limit: int,
        session: Session,
        recovered: State | None = None,
    ) -> None:
        super().__init__(services.log, actor="gateway")
        self.runtime = runtime
        self.services = services
        self.verbose = services.verbose
        self.prices = prices
        self.factory = factory
        self.session = session
        self.clock = services.clock
        self.history_limit = history_limit
        # the engine's objects, shared with the actors that own them, and the directory: what a
        # snapshot at a clean stop holds (`GetState`)
        self.state = state = recovered or State(history_limit=history_limit)
        self.users: dict[UserId, User] = state.users
        self.owners: dict[AccountId, UserId] = state.owners
        self.accounts: dict[AccountId, ActorRef] = {}
        self.symbols: dict[Symbol, ActorRef] = {}
        self.routes: Routes = state.routes
        self.index = SearchIndex()
        self.alert_routes: dict[str, Symbol] = state.alert_routes
        self.alert_symbols: dict[AccountId, set[Symbol]] = state.alert_symbols
        self.next_alert = 0
        self.next_account = 0
        self.next_order = 0
        if recovered is not None:
            self._adopt(recovered)

    def _adopt(self, state: State) -> None:
        """Start an actor for each account and symbol a journal's replay rebuilt, and take
        over its directory and id counters."""
        for symbol, market in state.markets.items():
            self.index.add(symbol, market.name)
            self.symbols[symbol] = self.runtime.spawn(
                SymbolActor,
                market,
                self.prices,
                self.services,
                state.trade_ids[symbol],
                state.alerts[symbol],
            )
        for account_id, account in state.accounts.items():
            if account.margin is not None:
                account.prices = self.prices
            books = {order_id: self.symbols[o.symbol] for order_id, o in account.open.items()}
            self.accounts[account_id] = self.runtime.spawn(
                AccountActor, account, self.services, books
            )
        for market in state.markets.values():  # the replay knew no actors: address them now
            for entry in market.book.entries():
                entry.owner = self.accounts[entry.account_id]
            for stop in market.stops.entries():
                stop.owner = self.accounts[stop.ticket.account_id]
        self.next_account = state.next_account
        self.next_order = state.next_order
        self.next_alert = state.next_alert

    @handles(GetChildren)
    def _children(self, message: GetChildren) -> None:
        message.reply.set([*self.accounts.values(), *self.symbols.values()])

    @handles(GetState)
    def _get_state(self, message: GetState) -> None:
        state = self.state
        state.next_account = self.next_account
        state.next_order = self.next_order
        state.next_alert = self.next_alert
        message.reply.set(state)

    # -- lookups -------------------------------------------------------------------------------

    def _account(self, account_id: AccountId) -> ActorRef:
        ref = self.accounts.get(account_id)
        if ref is None:
            raise UnknownAccountError(account_id)
        return ref

    def _symbol(self, symbol: Symbol) -> ActorRef:
        ref = self.symbols.get(symbol)
        if ref is None:
            raise UnknownSymbolError(symbol)
        return ref

    def _order_account(self, order_id: OrderId) -> ActorRef:
        account_id = self.routes.get(order_id)
        if account_id is None:
            raise UnknownOrderError(order_id)
        return self.accounts[account_id]

    # -- listing and opening -------------------------------------------------------------------

    @handles(ListStock)
    def _list_stock(self, message: Request[ListStock]) -> None:
        command = message.command
        symbol = command.symbol
        if symbol in self.symbols:
            raise DuplicateError("symbol", symbol)
        now = self.clock()
        market = Market(
            symbol, command.name, command.price, command.mode, now, history_limit=self.history_limit
        )
        state = self.state
        market.set_slippage(state.slippage)
        self.index.add(symbol, command.name)
        self.services.board.listings += 1  # before the answer: see `actors.board`
        state.markets[symbol] = market
        trade_ids = state.trade_ids[symbol] = TradeIdSequence(symbol)
        alerts = state.alerts[symbol] = AlertBook()
        self.symbols[symbol] = self.runtime.spawn(
            SymbolActor, market, self.prices, self.services, trade_ids, alerts
        )
        self.log.info(
            "stock.listed",
            symbol=symbol,
            price=str(cents_to_decimal(command.price)),
            mode=command.mode.value,
        )
        fact = Listed(symbol, command.name, command.price, command.mode, now)
        self.services.answer(message.reply, market.quote(), fact)

    @handles(OpenAccount)
    def _open_account(self, message: Request[OpenAccount]) -> None:
        command = message.command
        user_id = command.user_id
        user = self.users.get(user_id)
        if user is not None and command.new_user:
            raise DuplicateError("user", user_id)
        if user is None:
            if command.name is None:
                raise ValidationError(
                    "name", "must be a non-empty string of at most 200 characters", None
                )
            user = User(user_id, command.name, command.email, command.phone)
        else:
            for field in ("name", "email", "phone"):
                given = getattr(command, field)
                if given is not None and given != getattr(user, field):
                    raise ValidationError(
                        field, f"differs from user {user_id}'s {getattr(user, field)!r}", given
                    )
        if command.account_id is None:
            self.next_account += 1
            account_id = AccountId(f"A-{self.next_account:06d}")
            while account_id in self.accounts:
                self.next_account += 1
                account_id = AccountId(f"A-{self.next_account:06d}")
        else:
            account_id = command.account_id
            if account_id in self.accounts:
                raise DuplicateError("account", account_id)
        now = self.clock()
        account = Account(
            account_id,
            user_id,
            now,
            self.state.history_window,
            self.state.fees,
            self.state.margin if command.margin else None,
        )
        if command.margin:
            account.prices = self.prices
        if self.services.journal is not None:
            account.outbox = []  # the first deposit's transaction goes with the fact
        if command.initial_deposit:
            account.deposit(command.initial_deposit, now)
        balance = account.balance()
        self.users[user_id] = user
        self.owners[account_id] = user_id
        self.state.accounts[account_id] = account
        if command.agent:
            self.state.agents.add(account_id)
        self.accounts[account_id] = self.runtime.spawn(AccountActor, account, self.services)
        self.log.info("account.opened", account_id=account_id, user_id=user_id)
        fact = Opened(
            account_id,
            user_id,
            user.name,
            user.email,
            user.phone,
            command.initial_deposit,
            now,
            command.agent,
            command.margin,
        )
        info = AccountInfo(account_id, user, balance)
        self.services.answer(message.reply, info, fact, account.take_outbox())

    @handles(GetAccounts)
    def _accounts(self, message: GetAccounts) -> None:
        agents = self.state.agents
        if message.user_id is None:
            found = list(self.accounts)
        elif message.user_id not in self.users:
            raise UnknownUserError(message.user_id)
        else:
            found = [a for a, u in self.owners.items() if u == message.user_id]
        if not message.agents and agents:
            found = [a for a in found if a not in agents]
        if message.margin_only:  # (set when opened, or by a start: read, never written here)
            found = [a for a in found if self.state.accounts[a].margin is not None]
        message.reply.set(found)

    @staticmethod
    def _gather(refs: Iterable[ActorRef], make: Callable[[Any], object]) -> Gathered:
        futures = []
        for ref in refs:
            future = new_future()
            ref.tell(make(future))
            futures.append(future)
        return Gathered(tuple(futures))

    @handles(GetStocks)
    def _stocks(self, message: GetStocks) -> None:
        message.reply.set(self._gather(self.symbols.values(), lambda f: GetQuote(None, f)))

    @handles(ExpireDayOrders)
    def _expire(self, message: Request[ExpireDayOrders]) -> None:
        command = message.command
        message.reply.set(self._gather(self.symbols.values(), lambda f: Request(command, f)))

    @handles(Audit)
    def _audit(self, message: Audit) -> None:
        refs = [*self.accounts.values(), *self.symbols.values()]
        message.reply.set(self._gather(refs, Audit))

    # -- cash and shares -----------------------------------------------------------------------

    @handles(Deposit, Withdraw, SetSelfTradePrevention, ResetAccount)
    def _move_cash(
        self, message: Request[Deposit | Withdraw | SetSelfTradePrevention | ResetAccount]
    ) -> None:
        send(self._account(message.command.account_id), message)

    @handles(GrantShares)
    def _grant(self, message: Request[GrantShares]) -> None:
        ref = self._account(message.command.account_id)
        self._symbol(message.command.symbol)
        send(ref, message)

    # -- orders --------------------------------------------------------------------------------

    def _new_order_id(self) -> OrderId:
        """The next order id (spent whatever becomes of the order)."""
        self.next_order += 1
        return OrderId(f"O-{self.next_order:06d}")

    @handles(Place)
    def _place(self, message: Place) -> None:
        command = message.command
        account_ref = self._account(command.account_id)
        symbol_ref = self._symbol(command.symbol)
        account_id = command.account_id
        self.next_order += 1  # (what _new_order_id does, inline: the order path)
        order_id = OrderId(f"O-{self.next_order:06d}")
        now = self.clock()
        price = self.prices[command.symbol]
        order = self.factory.create(order_id, command, now, price, message.placed_monotonic_ns)
        self.routes[order_id] = account_id
        legs: tuple[Order, ...] = ()
        if command.has_exits and message.admitted:  # its legs come with it
            made = self.factory.create_legs(
                order,
                cast(PlaceWithExits, command),
                self._new_order_id,
                now,
                price,
                message.placed_monotonic_ns,
            )
            legs = tuple(made)
            for leg in legs:
                self.routes[leg.order_id] = account_id
        if self.verbose:
            self.log.info(
                "order.received", order_id=order_id, account_id=account_id, symbol=command.symbol
            )
        if not message.admitted:  # refused at the door: answered, published, kept nowhere
            del self.routes[order_id]
            order.reject(RejectReason.BUSY, now)
            rejected(self.services, order, RejectReason.BUSY, self.log)
            self.services.publish(
                OrderRejected, lambda: OrderRejected(order.snapshot(), RejectReason.BUSY)
            )
            self.services.answer(message.reply, order.snapshot(), refused(order, kept=False))
        elif not self.session.is_open(now):
            for leg in legs:  # never orders: the refused one has none
                del self.routes[leg.order_id]
            order.legs = ()
            order.reject(RejectReason.MARKET_CLOSED, now)
            self.services.answer(message.reply, order.snapshot(), refused(order, kept=True))
            send(account_ref, AcceptOrder(order, symbol_ref, None))  # recorded in its history
        else:
            accept = AcceptOrder(order, symbol_ref, message.reply, message.keep_refused, legs)
            send(account_ref, accept)

    @handles(CancelOrder)
    def _cancel_order(self, message: Request[CancelOrder]) -> None:
        send(self._order_account(message.command.order_id), message)

    @handles(ReplaceOrder)
    def _replace_order(self, message: Request[ReplaceOrder]) -> None:
        account_ref = self._order_account(message.command.order_id)
        order_id = self._new_order_id()
        self.routes[order_id] = self.routes[message.command.order_id]
        now = self.clock()
        replace = ReplaceAt(
            message.command,
            order_id,
            now,
            self.factory,
            self.prices,
            self.services.monotonic(),
            message.reply,
            self.session.is_open(now),
        )
        send(account_ref, replace)

    @handles(GetOrder)
    def _get_order(self, message: GetOrder) -> None:
        send(self._order_account(message.order_id), message)

    @handles(
        GetOrders, GetOrderByClientId, GetTransactions, GetBalance, GetAccountState, CheckMargin
    )
    def _to_account(
        self,
        message: GetOrders
        | GetOrderByClientId
        | GetTransactions
        | GetBalance
        | GetAccountState
        | CheckMargin,
    ) -> None:
        send(self._account(message.account_id), message)

    # -- reads of a symbol ---------------------------------------------------------------------

    @handles(GetQuote, GetPriceHistory, GetDepth, GetTrades, GetBars)
    def _to_symbol(
        self, message: GetQuote | GetPriceHistory | GetDepth | GetTrades | GetBars
    ) -> None:
        symbol = message.symbol
        if symbol is None:
            raise UnknownSymbolError(symbol)
        send(self._symbol(symbol), message)

    @handles(Search)
    def _search(self, message: Search) -> None:
        message.reply.set(self.index.search(message.query, message.limit))

    @handles(UpdatePrice)
    def _update_price(self, message: Request[UpdatePrice]) -> None:
        send(self._symbol(message.command.symbol), message)

    # -- alerts --------------------------------------------------------------------------------

    @handles(AddAlert)
    def _add_alert(self, message: Request[AddAlert]) -> None:
        command = message.command
        self._account(command.account_id)
        ref = self._symbol(command.symbol)
        self.next_alert += 1
        alert_id = f"AL-{self.next_alert:06d}"
        self.alert_routes[alert_id] = command.symbol
        self.alert_symbols.setdefault(command.account_id, set()).add(command.symbol)
        send(ref, SetAlert(command, alert_id, self.clock(), message.reply))

    @handles(CancelAlert)
    def _cancel_alert(self, message: Request[CancelAlert]) -> None:
        symbol = self.alert_routes.get(message.command.alert_id)
        if symbol is None:
            raise UnknownAlertError(message.command.alert_id)
        send(self.symbols[symbol], message)

    @handles(GetAlerts)
    def _alerts(self, message: GetAlerts) -> None:
        account_id = message.account_id
        self._account(account_id)
        refs = [self.symbols[s] for s in sorted(self.alert_symbols.get(account_id, ()))]
        fired = message.fired
        message.reply.set(self._gather(refs, lambda f: GetAlerts(account_id, f, fired)))

    # -- watchlists ----------------------------------------------------------------------------

    @handles(*WATCHLIST_EDITS)
    def _edit_watchlist(self, message: Request[WatchlistEdit]) -> None:
        command = message.command
        ref = self._account(command.account_id)
        if isinstance(command, CreateWatchlist | ReplaceWatchlist):
            for symbol in command.symbols or ():
                self._symbol(symbol)
        elif isinstance(command, AddToWatchlist | RemoveFromWatchlist):
            self._symbol(command.symbol)
        send(ref, message)

    @handles(GetWatchlists)
    def _watchlists(self, message: GetWatchlists) -> None:
        send(self._account(message.account_id), message)
