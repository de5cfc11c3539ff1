"""The gateway actor: validates requests, assigns ids, and routes them to the owning actor.

It holds no account or book state, only the directory of actors (account id, symbol, order id
to the actor that owns it) and the users who hold the accounts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pykka

from actors.account import AccountActor, rejected
from actors.base import BrokerActor, handles, send
from actors.futures import Gathered, new_future
from actors.runtimes import Runtime
from actors.services import Services
from actors.symbol import SymbolActor
from engine.account import Account, Balance, User
from engine.alerts import AlertCondition
from engine.bars import INTERVALS
from engine.commands import (
    AcceptOrder,
    AddAlert,
    Audit,
    CancelAlert,
    CancelOrder,
    CreditShares,
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
    MoveCash,
    OpenAccount,
    PlaceOrder,
    QueryOrders,
    Search,
    SetPrice,
    UpdatePrice,
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
from engine.ids import AccountId, OrderId, Symbol, UserId
from engine.matching import Market
from engine.money import cents_to_decimal, parse_amount, parse_price, parse_quantity
from engine.orders import LiquidityMode, OrderStatus, RejectReason, Side, datetime_to_ns
from engine.search import SearchIndex
from engine.session import Session
from engine.watchlists import MAX_SYMBOLS, parse_watchlist_name

_SYMBOL = re.compile(r"[A-Z][A-Z0-9.\-]{0,9}")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}")


def parse_symbol(value: Any, field: str = "symbol") -> Symbol:
    """Return a symbol in upper case: 1-10 letters, digits, dots or dashes, starting with a
    letter."""
    if not isinstance(value, str) or not _SYMBOL.fullmatch(value.strip().upper()):
        raise ValidationError(
            field, "must be 1-10 letters, digits, '.' or '-', starting with a letter", value
        )
    return Symbol(value.strip().upper())


def parse_identifier(value: Any, field: str) -> str:
    """Return an id: 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or
    digit."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ValidationError(field, "must be 1-64 letters, digits, '_', '.', '@' or '-'", value)
    return value


def _parse_text(value: Any, field: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(field, "must be a non-empty string of at most 200 characters", value)
    return value.strip()


def parse_count(value: Any, field: str, maximum: int = 1_000) -> int:
    """Return a whole number from 1 to `maximum` (how many levels, trades, bars, results)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(field, f"must be a whole number from 1 to {maximum}", value)
    return value


def parse_page(offset: Any, limit: Any) -> tuple[int, int | None]:
    """Return a page: an `offset` from 0 to 1e9 and a `limit` from 1 to 1e9 (None: all)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 10**9:
        raise ValidationError("offset", "must be a whole number from 0 to 1000000000", offset)
    if limit is not None:
        limit = parse_count(limit, "limit", maximum=10**9)
    return offset, limit


def _parse_moment(value: Any, field: str) -> int | None:
    """A `datetime` (naive: UTC) as nanoseconds since the epoch, or None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(field, "must be a datetime", value)
    return datetime_to_ns(value)


def parse_statuses(value: Any) -> frozenset[OrderStatus] | None:
    """Return the set of statuses an order filter asks for (None: every status)."""
    if value is None:
        return None
    items: Iterable[Any] = [value] if isinstance(value, str | OrderStatus) else value
    try:
        return frozenset(OrderStatus(str(item).strip().lower()) for item in items)
    except (TypeError, ValueError):
        choices = ", ".join(repr(s.value) for s in OrderStatus)
        raise ValidationError("status", f"must be one or more of {choices}", value) from None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account just opened: its id, its user, and its balance."""

    account_id: AccountId
    user: User
    balance: Balance


class GatewayActor(BrokerActor):
    """Validates, assigns ids, routes. The only actor that creates other actors."""

    supervised = True  # a stop request outside close restarts it from its state

    def __init__(
        self,
        runtime: Runtime,
        services: Services,
        prices: MutableMapping[Symbol, int],
        factory: OrderFactory,
        history_limit: int,
        session: Session,
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
        self.users: dict[UserId, User] = {}
        self.owners: dict[AccountId, UserId] = {}
        self.accounts: dict[AccountId, pykka.ActorRef[Any]] = {}
        self.symbols: dict[Symbol, pykka.ActorRef[Any]] = {}
        self.routes: dict[OrderId, AccountId] = {}
        self.index = SearchIndex()
        self.alert_routes: dict[str, Symbol] = {}
        self.alert_symbols: dict[AccountId, set[Symbol]] = {}
        self.next_alert = 0
        self.next_account = 0
        self.next_order = 0

    @handles(GetChildren)
    def _children(self, message: GetChildren) -> None:
        message.reply.set([*self.accounts.values(), *self.symbols.values()])

    # -- lookups -------------------------------------------------------------------------------

    def _account(self, value: Any) -> tuple[AccountId, pykka.ActorRef[Any]]:
        ref = self.accounts.get(AccountId(value)) if isinstance(value, str) else None
        if ref is None:
            raise UnknownAccountError(value)
        return AccountId(value), ref

    def _symbol(self, value: Any) -> tuple[Symbol, pykka.ActorRef[Any]]:
        symbol = value.strip().upper() if isinstance(value, str) else value
        ref = self.symbols.get(Symbol(symbol)) if isinstance(symbol, str) else None
        if ref is None:
            raise UnknownSymbolError(value)
        return Symbol(symbol), ref

    def _order_account(self, order_id: Any) -> pykka.ActorRef[Any]:
        account_id = self.routes.get(OrderId(order_id)) if isinstance(order_id, str) else None
        if account_id is None:
            raise UnknownOrderError(order_id)
        return self.accounts[account_id]

    # -- listing and opening -------------------------------------------------------------------

    @handles(ListStock)
    def _list_stock(self, message: ListStock) -> None:
        symbol = parse_symbol(message.symbol)
        name = _parse_text(message.name, "name", required=True)
        assert name is not None
        price = parse_price(message.price)
        mode: LiquidityMode = LiquidityMode.parse(message.mode, "mode")
        if symbol in self.symbols:
            raise DuplicateError("symbol", symbol)
        market = Market(symbol, name, price, mode, self.clock(), history_limit=self.history_limit)
        self.index.add(symbol, name)
        self.symbols[symbol] = self.runtime.spawn(SymbolActor, market, self.prices, self.services)
        self.log.info(
            "stock.listed", symbol=symbol, price=str(cents_to_decimal(price)), mode=mode.value
        )
        message.reply.set(market.quote())

    @handles(OpenAccount)
    def _open_account(self, message: OpenAccount) -> None:
        user_id = UserId(parse_identifier(message.user_id, "user_id"))
        user = self.users.get(user_id)
        if user is not None and message.new_user:
            raise DuplicateError("user", user_id)
        name = _parse_text(message.name, "name", required=user is None)
        email = _parse_text(message.email, "email", required=False)
        if email is not None and "@" not in email:
            raise ValidationError("email", "must be an email address", message.email)
        phone = _parse_text(message.phone, "phone", required=False)
        if user is None:
            assert name is not None
            user = User(user_id, name, email, phone)
        else:
            for field, given in (("name", name), ("email", email), ("phone", phone)):
                if given is not None and given != getattr(user, field):
                    raise ValidationError(
                        field, f"differs from user {user_id}'s {getattr(user, field)!r}", given
                    )
        deposit = 0
        if message.initial_deposit is not None:
            deposit = parse_amount(message.initial_deposit, "initial_deposit", allow_zero=True)
        if message.account_id is None:
            self.next_account += 1
            account_id = AccountId(f"A-{self.next_account:06d}")
            while account_id in self.accounts:
                self.next_account += 1
                account_id = AccountId(f"A-{self.next_account:06d}")
        else:
            account_id = AccountId(parse_identifier(message.account_id, "account_id"))
            if account_id in self.accounts:
                raise DuplicateError("account", account_id)
        now = self.clock()
        account = Account(account_id, user_id, now)
        if deposit:
            account.deposit(deposit, now)
        balance = account.balance()
        self.users[user_id] = user
        self.owners[account_id] = user_id
        self.accounts[account_id] = self.runtime.spawn(AccountActor, account, self.services)
        self.log.info("account.opened", account_id=account_id, user_id=user_id)
        message.reply.set(AccountInfo(account_id, user, balance))

    @handles(GetAccounts)
    def _accounts(self, message: GetAccounts) -> None:
        if message.user_id is None:
            message.reply.set(list(self.accounts))
            return
        if message.user_id not in self.users:
            raise UnknownUserError(message.user_id)
        message.reply.set([a for a, u in self.owners.items() if u == message.user_id])

    @staticmethod
    def _gather(refs: Iterable[pykka.ActorRef[Any]], make: Any) -> Gathered:
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
    def _expire(self, message: ExpireDayOrders) -> None:
        message.reply.set(self._gather(self.symbols.values(), ExpireDayOrders))

    @handles(Audit)
    def _audit(self, message: Audit) -> None:
        refs = [*self.accounts.values(), *self.symbols.values()]
        message.reply.set(self._gather(refs, Audit))

    # -- cash and shares -----------------------------------------------------------------------

    @handles(Deposit)
    def _deposit(self, message: Deposit) -> None:
        _, ref = self._account(message.account_id)
        ref.tell(MoveCash(parse_amount(message.amount), message.reply))

    @handles(Withdraw)
    def _withdraw(self, message: Withdraw) -> None:
        _, ref = self._account(message.account_id)
        ref.tell(MoveCash(-parse_amount(message.amount), message.reply))

    @handles(GrantShares)
    def _grant(self, message: GrantShares) -> None:
        _, ref = self._account(message.account_id)
        symbol, _ = self._symbol(message.symbol)
        quantity = parse_quantity(message.quantity)
        price = parse_price(message.price)
        ref.tell(CreditShares(symbol, quantity, price, message.reply))

    # -- orders --------------------------------------------------------------------------------

    @handles(PlaceOrder)
    def _place(self, message: PlaceOrder) -> None:
        account_id, account_ref = self._account(message.account_id)
        symbol, symbol_ref = self._symbol(message.symbol)
        order_id = OrderId(f"O-{self.next_order + 1:06d}")
        now = self.clock()
        order = self.factory.create(
            order_id,
            account_id,
            symbol,
            message.side,
            message.quantity,
            message.order_type,
            message.limit_price,
            message.time_in_force,
            now,
            self.prices[symbol],
            message.placed_monotonic_ns,
        )
        self.next_order += 1
        self.routes[order_id] = account_id
        if self.verbose:
            self.log.info("order.received", order_id=order_id, account_id=account_id, symbol=symbol)
        if not message.admitted:  # refused at the door: answered, published, kept nowhere
            del self.routes[order_id]
            order.reject(RejectReason.BUSY, now)
            rejected(self.services, order, RejectReason.BUSY, self.log)
            self.services.publish(
                OrderRejected, lambda: OrderRejected(order.snapshot(), RejectReason.BUSY)
            )
            message.reply.set(order.snapshot())
        elif not self.session.is_open(now):
            order.reject(RejectReason.MARKET_CLOSED, now)
            message.reply.set(order.snapshot())
            send(account_ref, AcceptOrder(order, symbol_ref, None))  # recorded in its history
        else:
            send(
                account_ref,
                AcceptOrder(order, symbol_ref, message.reply, message.keep_refused),
            )

    @handles(CancelOrder, GetOrder)
    def _to_order_account(self, message: CancelOrder | GetOrder) -> None:
        self._order_account(message.order_id).tell(message)

    @handles(GetOrders)
    def _orders(self, message: GetOrders) -> None:
        _, ref = self._account(message.account_id)
        symbol = None if message.symbol is None else parse_symbol(message.symbol)
        offset, limit = parse_page(message.offset, message.limit)
        if not isinstance(message.newest_first, bool):
            raise ValidationError("newest_first", "must be True or False", message.newest_first)
        query = QueryOrders(
            parse_statuses(message.status),
            symbol,
            message.reply,
            offset,
            limit,
            None if message.side is None else Side.parse(message.side, "side"),
            _parse_moment(message.after, "after"),
            _parse_moment(message.until, "until"),
            message.newest_first,
        )
        send(ref, query)

    @handles(GetTransactions)
    def _transactions(self, message: GetTransactions) -> None:
        _, ref = self._account(message.account_id)
        offset, limit = parse_page(message.offset, message.limit)
        send(ref, GetTransactions(message.account_id, message.reply, offset, limit))

    # -- reads routed as they are --------------------------------------------------------------

    @handles(GetBalance, GetAccountState)
    def _to_account(self, message: GetBalance | GetAccountState) -> None:
        self._account(message.account_id)[1].tell(message)

    @handles(GetQuote, GetPriceHistory)
    def _to_symbol(self, message: GetQuote | GetPriceHistory) -> None:
        self._symbol(message.symbol)[1].tell(message)

    @handles(GetDepth)
    def _depth(self, message: GetDepth) -> None:
        symbol, ref = self._symbol(message.symbol)
        send(ref, GetDepth(symbol, parse_count(message.levels, "levels"), message.reply))

    @handles(GetTrades)
    def _trades(self, message: GetTrades) -> None:
        symbol, ref = self._symbol(message.symbol)
        send(ref, GetTrades(symbol, parse_count(message.limit, "limit"), message.reply))

    @handles(GetBars)
    def _bars(self, message: GetBars) -> None:
        symbol, ref = self._symbol(message.symbol)
        if message.interval not in INTERVALS:
            raise ValidationError(
                "interval", f"must be one of {', '.join(INTERVALS)}", message.interval
            )
        limit = parse_count(message.limit, "limit", maximum=100_000)
        send(ref, GetBars(symbol, message.interval, limit, message.reply))

    @handles(Search)
    def _search(self, message: Search) -> None:
        if not isinstance(message.query, str):
            raise ValidationError("query", "must be a string", message.query)
        limit = parse_count(message.limit, "limit")
        message.reply.set(self.index.search(message.query, limit))

    # -- alerts --------------------------------------------------------------------------------

    @handles(AddAlert)
    def _add_alert(self, message: AddAlert) -> None:
        account_id, _ = self._account(message.account_id)
        symbol, ref = self._symbol(message.symbol)
        condition: AlertCondition = AlertCondition.parse(message.condition, "condition")
        threshold = parse_price(message.threshold, "threshold")
        if not isinstance(message.one_shot, bool):
            raise ValidationError("one_shot", "must be True or False", message.one_shot)
        self.next_alert += 1
        alert_id = f"AL-{self.next_alert:06d}"
        self.alert_routes[alert_id] = symbol
        self.alert_symbols.setdefault(account_id, set()).add(symbol)
        send(
            ref,
            AddAlert(
                account_id,
                symbol,
                condition,
                threshold,
                message.one_shot,
                message.reply,
                alert_id,
                self.clock(),
            ),
        )

    @handles(CancelAlert)
    def _cancel_alert(self, message: CancelAlert) -> None:
        symbol = (
            self.alert_routes.get(message.alert_id) if isinstance(message.alert_id, str) else None
        )
        if symbol is None:
            raise UnknownAlertError(message.alert_id)
        send(self.symbols[symbol], message)

    @handles(GetAlerts)
    def _alerts(self, message: GetAlerts) -> None:
        account_id, _ = self._account(message.account_id)
        refs = [self.symbols[s] for s in sorted(self.alert_symbols.get(account_id, ()))]
        message.reply.set(self._gather(refs, lambda f: GetAlerts(account_id, f)))

    # -- watchlists ----------------------------------------------------------------------------

    @handles(EditWatchlist)
    def _edit_watchlist(self, message: EditWatchlist) -> None:
        account_id, ref = self._account(message.account_id)
        name = parse_watchlist_name(message.name)
        value: Any = None
        if message.action == "create":
            given = message.value
            if isinstance(given, str) or not isinstance(given, Iterable):
                raise ValidationError("symbols", "must be a list of symbols", given)
            value = tuple(self._symbol(symbol)[0] for symbol in given)
        elif message.action == "rename":
            value = parse_watchlist_name(message.value, "new_name")
        elif message.action == "replace":
            new_name, symbols = message.value
            if symbols is not None and (
                isinstance(symbols, str)
                or not isinstance(symbols, list | tuple)
                or len(symbols) > MAX_SYMBOLS
            ):
                raise ValidationError(
                    "symbols", f"must be a list of at most {MAX_SYMBOLS} symbols", symbols
                )
            value = (
                None if new_name is None else parse_watchlist_name(new_name, "new_name"),
                None if symbols is None else tuple(self._symbol(s)[0] for s in symbols),
            )
        elif message.action in ("add", "remove"):
            value = self._symbol(message.value)[0]
        elif message.action != "delete":
            raise ValidationError(
                "action", "must be create, rename, replace, delete, add or remove", message.action
            )
        send(ref, EditWatchlist(account_id, message.action, name, value, message.reply))

    @handles(GetWatchlists)
    def _watchlists(self, message: GetWatchlists) -> None:
        account_id, ref = self._account(message.account_id)
        name = None if message.name is None else parse_watchlist_name(message.name)
        send(ref, GetWatchlists(account_id, name, message.reply))

    @handles(UpdatePrice)
    def _update_price(self, message: UpdatePrice) -> None:
        _, ref = self._symbol(message.symbol)
        ref.tell(SetPrice(parse_price(message.price), message.reply))
