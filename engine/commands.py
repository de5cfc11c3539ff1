"""Domain commands: what a caller asks the brokerage to change, one frozen value per operation.

A command holds parsed values only (integer cents, whole shares, enums, ids) and nothing of how
it travels: no reply, no actor, no clock. `X.parse(...)` turns a caller's raw values into one
or raises `ValidationError` (or the `NotFoundError` of a reference that is no text) and changes
nothing; whether what it names exists, and whether the account can afford it, is the actors'
business. `encode` and `decode` turn any command into plain JSON values and back, exactly, so a
command can be written down and read again.

The actors receive commands inside the envelopes of `actors.messages`; queries (which change
nothing) are messages there too.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.alerts import AlertCondition
from engine.codec import Codec
from engine.errors import ValidationError
from engine.fields import (
    account_key,
    alert_key,
    order_key,
    parse_client_order_id,
    parse_email,
    parse_flag,
    parse_identifier,
    parse_symbol,
    parse_text,
    parse_user_id,
    symbol_key,
)
from engine.ids import AccountId, OrderId, Symbol, UserId
from engine.money import (
    cents_to_decimal,
    parse_amount,
    parse_price,
    parse_quantity,
    parse_trail_percent,
)
from engine.orders import (
    STOP_TYPES,
    LiquidityMode,
    OrderClass,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from engine.watchlists import MAX_SYMBOLS, parse_watchlist_name

# -- stocks ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListStock:
    """List a new stock at an initial price (cents) in a liquidity mode."""

    symbol: Symbol
    name: str
    price: int
    mode: LiquidityMode

    @classmethod
    def parse(cls, symbol: Any, name: Any, price: Any, mode: Any = "market") -> ListStock:
        """The command from a caller's values."""
        listed = parse_symbol(symbol)
        title = parse_text(name, "name")
        if title is None:
            raise ValidationError(
                "name", "must be a non-empty string of at most 200 characters", name
            )
        return cls(listed, title, parse_price(price), LiquidityMode.parse(mode, "mode"))


@dataclass(frozen=True, slots=True)
class UpdatePrice:
    """Move a symbol's price to `price` cents (the price feed's entry point)."""

    symbol: Symbol
    price: int

    @classmethod
    def parse(cls, symbol: Any, price: Any) -> UpdatePrice:
        """The command from a caller's values."""
        return cls(symbol_key(symbol), parse_price(price))


# -- accounts, cash and shares -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAccount:
    """Open an account for a user, registering the user on first sight (then `name` is
    needed). With `new_user`, only a user not seen before: an existing user id is refused, and
    nothing about that user is told. `account_id` None: the brokerage numbers it. `agent`
    marks the account of a trader agent (a simulation's, a venue's): listings of the users'
    accounts leave it out. `margin` opens a margin account (it may borrow and sell short)."""

    user_id: UserId
    name: str | None
    email: str | None
    phone: str | None
    initial_deposit: int
    account_id: AccountId | None
    new_user: bool = False
    agent: bool = False
    margin: bool = False

    @classmethod
    def parse(
        cls,
        user_id: Any,
        name: Any = None,
        email: Any = None,
        phone: Any = None,
        initial_deposit: Any = None,
        account_id: Any = None,
        new_user: Any = False,
        agent: Any = False,
        margin: Any = False,
    ) -> OpenAccount:
        """The command from a caller's values."""
        return cls(
            parse_user_id(user_id),
            parse_text(name, "name"),
            parse_email(email),
            parse_text(phone, "phone"),
            0
            if initial_deposit is None
            else parse_amount(initial_deposit, "initial_deposit", allow_zero=True),
            None if account_id is None else AccountId(parse_identifier(account_id, "account_id")),
            parse_flag(new_user, "new_user"),
            parse_flag(agent, "agent"),
            parse_flag(margin, "margin"),
        )


@dataclass(frozen=True, slots=True)
class Deposit:
    """Add `amount` cents to an account."""

    account_id: AccountId
    amount: int

    @classmethod
    def parse(cls, account_id: Any, amount: Any) -> Deposit:
        """The command from a caller's values."""
        return cls(account_key(account_id), parse_amount(amount))


@dataclass(frozen=True, slots=True)
class SetSelfTradePrevention:
    """Set an account's self-trade prevention: what its orders that name none do in `book`
    mode when they would trade with a resting order of the same account."""

    account_id: AccountId
    mode: SelfTradePrevention

    @classmethod
    def parse(cls, account_id: Any, mode: Any) -> SetSelfTradePrevention:
        """The command from a caller's values."""
        return cls(
            account_key(account_id), SelfTradePrevention.parse(mode, "self_trade_prevention")
        )


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Take `amount` cents out of an account, at most its available cash."""

    account_id: AccountId
    amount: int

    @classmethod
    def parse(cls, account_id: Any, amount: Any) -> Withdraw:
        """The command from a caller's values."""
        return cls(account_key(account_id), parse_amount(amount))


@dataclass(frozen=True, slots=True)
class GrantShares:
    """Credit `quantity` shares of a listed symbol at `price` cents each."""

    account_id: AccountId
    symbol: Symbol
    quantity: int
    price: int

    @classmethod
    def parse(cls, account_id: Any, symbol: Any, quantity: Any, price: Any) -> GrantShares:
        """The command from a caller's values."""
        return cls(
            account_key(account_id),
            symbol_key(symbol),
            parse_quantity(quantity),
            parse_price(price),
        )


@dataclass(frozen=True, slots=True)
class ResetAccount:
    """Start an account afresh with `cash` cents and no holdings, its history kept and marked
    (it must have no open order)."""

    account_id: AccountId
    cash: int

    @classmethod
    def parse(cls, account_id: Any, cash: Any) -> ResetAccount:
        """The command from a caller's values."""
        return cls(account_key(account_id), parse_amount(cash, "cash", allow_zero=True))


# -- orders --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place an order; `client_order_id` is the caller's own id for it, unique among the
    account's orders (the account refuses a second order with the same one). A stop or stop
    limit has a `stop_price`; a trailing stop has a `trail_price` (cents) or a `trail_bps`
    (hundredths of a percent)."""

    account_id: AccountId
    symbol: Symbol
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: int | None
    time_in_force: TimeInForce
    client_order_id: str | None = None
    stop_price: int | None = None
    trail_price: int | None = None
    trail_bps: int | None = None
    self_trade: SelfTradePrevention | None = None
    has_exits: ClassVar[bool] = False
    """Whether it is a `PlaceWithExits` (a class attribute: no call to ask on the order path)."""

    @classmethod
    def parse(
        cls,
        account_id: Any,
        symbol: Any,
        side: Any,
        quantity: Any,
        order_type: Any = "market",
        limit_price: Any = None,
        time_in_force: Any = "gtc",
        client_order_id: Any = None,
        stop_price: Any = None,
        trail_price: Any = None,
        trail_percent: Any = None,
        self_trade_prevention: Any = None,
        order_class: Any = None,
        take_profit: Any = None,
        stop_loss: Any = None,
    ) -> PlaceOrder:
        """The command from a caller's values: a limit or stop limit order needs
        `limit_price`, a stop or stop limit `stop_price`, a trailing stop one of `trail_price`
        and `trail_percent`; none may have a price its type does not use. A stop waits in the
        book, so its time in force is "gtc" or "day". `self_trade_prevention` (None: the
        account's default) is one of `SelfTradePrevention`'s values.

        `order_class` (None: "simple") ties exit legs to it (see `OrderClass`): a bracket needs
        `take_profit` and `stop_loss`, an OTO one of them, an OCO both (and is a limit order at
        the take-profit's price). `take_profit` is `{"limit_price": p}` (or the price itself),
        `stop_loss` is `{"stop_price": p}` with an optional `"limit_price"` (or the stop price
        itself); such an order is a `PlaceWithExits`."""
        if order_class is not None or take_profit is not None or stop_loss is not None:
            group = (
                OrderClass.SIMPLE
                if order_class is None
                else OrderClass.parse(order_class, "order_class")
            )
            if group is not OrderClass.SIMPLE or take_profit is not None or stop_loss is not None:
                return cls._parse_group(
                    group,
                    take_profit,
                    stop_loss,
                    account_id,
                    symbol,
                    side,
                    quantity,
                    order_type,
                    limit_price,
                    time_in_force,
                    client_order_id,
                    stop_price,
                    trail_price,
                    trail_percent,
                    self_trade_prevention,
                )
        kind: OrderType = OrderType.parse(order_type, "order_type")
        side_: Side = Side.parse(side, "side")
        tif: TimeInForce = TimeInForce.parse(time_in_force, "time_in_force")
        parsed_quantity = parse_quantity(quantity)
        limit: int | None = None
        if kind is OrderType.LIMIT and limit_price is not None:  # the common cases, at once
            limit = parse_price(limit_price, "limit_price")
        elif kind is not OrderType.MARKET or limit_price is not None:
            limit = _price_for(kind, "limit_price", limit_price, _LIMITED)
        stop: int | None = None
        trail: int | None = None
        bps: int | None = None
        if stop_price is not None or kind in _STOPPED:
            stop = _price_for(kind, "stop_price", stop_price, _STOPPED)
        if kind is OrderType.TRAILING_STOP:
            if (trail_price is None) == (trail_percent is None):
                raise ValidationError(
                    "trail_price",
                    "a trailing stop needs exactly one of trail_price and trail_percent",
                    trail_price,
                )
            if trail_price is not None:
                trail = parse_price(trail_price, "trail_price")
            else:
                bps = parse_trail_percent(trail_percent)
        elif trail_price is not None or trail_percent is not None:
            name, value = (
                ("trail_price", trail_price)
                if trail_price is not None
                else ("trail_percent", trail_percent)
            )
            raise ValidationError(name, f"must be None for a {kind.value} order", value)
        _check_stop_time_in_force(kind, tif, time_in_force)
        return cls(
            account_key(account_id),
            symbol_key(symbol),
            side_,
            parsed_quantity,
            kind,
            limit,
            tif,
            parse_client_order_id(client_order_id),
            stop,
            trail,
            bps,
            None
            if self_trade_prevention is None
            else SelfTradePrevention.parse(self_trade_prevention, "self_trade_prevention"),
        )

    @classmethod
    def _parse_group(
        cls,
        group: OrderClass,
        take_profit: Any,
        stop_loss: Any,
        account_id: Any,
        symbol: Any,
        side: Any,
        quantity: Any,
        order_type: Any,
        limit_price: Any,
        time_in_force: Any,
        *rest: Any,
    ) -> PlaceWithExits:
        """`parse` for an order with exit legs (`group` not simple, or legs given): the order
        parsed as a simple one (an OCO's limit price taken from its take-profit if not given),
        then its legs, checked."""
        profit, loss, loss_limit = _legs(group, take_profit, stop_loss)
        if group is OrderClass.OCO:
            if OrderType.parse(order_type, "order_type") is not OrderType.LIMIT:
                raise ValidationError("order_type", "must be 'limit' for an oco order", order_type)
            if limit_price is None and profit is not None:
                limit_price = cents_to_decimal(profit)
        simple = cls.parse(
            account_id, symbol, side, quantity, order_type, limit_price, time_in_force, *rest
        )
        return simple._with_legs(group, profit, loss, loss_limit, time_in_force)

    def _with_legs(
        self,
        group: OrderClass,
        profit: int | None,
        loss: int | None,
        loss_limit: int | None,
        given_tif: Any,
    ) -> PlaceWithExits:
        """This order as the parent of `group`'s legs, checked."""
        if self.time_in_force not in (TimeInForce.GTC, TimeInForce.DAY):
            raise ValidationError(
                "time_in_force", f"must be 'gtc' or 'day' for a {group.value} order", given_tif
            )
        if group is OrderClass.OCO:
            if self.limit_price != profit:
                raise ValidationError(
                    "limit_price",
                    "must be the take_profit's limit price for an oco order",
                    None if self.limit_price is None else cents_to_decimal(self.limit_price),
                )
        elif self.order_type is OrderType.TRAILING_STOP:
            raise ValidationError(
                "order_type",
                f"must be 'market', 'limit', 'stop' or 'stop_limit' for a {group.value} order",
                self.order_type.value,
            )
        exits = self.side if group is OrderClass.OCO else self.side.opposite
        if profit is not None and loss is not None:
            above = profit > loss if exits is Side.SELL else profit < loss
            if not above:
                where = "above" if exits is Side.SELL else "below"
                raise ValidationError(
                    "take_profit",
                    f"its limit price must be {where} the stop_loss's stop price "
                    f"for {exits.value} exits",
                    cents_to_decimal(profit),
                )
        plain = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return PlaceWithExits(
            **plain,
            order_class=group,
            take_profit=profit,
            stop_loss=loss,
            stop_loss_limit=loss_limit,
        )


@dataclass(frozen=True, slots=True)
class PlaceWithExits(PlaceOrder):
    """Place an order with exit legs (`order_class` bracket, OTO or OCO; see `OrderClass`).
    A class of its own, so that a simple order's command carries none of these fields (the
    order path builds one per order)."""

    has_exits: ClassVar[bool] = True
    order_class: OrderClass = OrderClass.BRACKET
    take_profit: int | None = None
    """The take-profit leg's limit price."""
    stop_loss: int | None = None
    """The stop-loss leg's stop price."""
    stop_loss_limit: int | None = None
    """The stop-loss leg's limit price: it is a stop limit (None: a stop)."""

    def leg_commands(self) -> list[PlaceOrder]:
        """The commands of its exit legs, take-profit first: the other side of an entry (the
        same side for an OCO), for its quantity, in force as long as it."""
        exits = self.side if self.order_class is OrderClass.OCO else self.side.opposite
        legs = []
        if self.take_profit is not None and self.order_class is not OrderClass.OCO:
            legs.append(self._leg(exits, OrderType.LIMIT, self.take_profit, None))
        if self.stop_loss is not None:
            kind = OrderType.STOP if self.stop_loss_limit is None else OrderType.STOP_LIMIT
            legs.append(self._leg(exits, kind, self.stop_loss_limit, self.stop_loss))
        return legs

    def _leg(self, side: Side, kind: OrderType, limit: int | None, stop: int | None) -> PlaceOrder:
        return PlaceOrder(
            self.account_id,
            self.symbol,
            side,
            self.quantity,
            kind,
            limit,
            self.time_in_force,
            None,
            stop,
            self_trade=self.self_trade,
        )


def _legs(
    group: OrderClass, take_profit: Any, stop_loss: Any
) -> tuple[int | None, int | None, int | None]:
    """The legs' prices `group` asks for: the take-profit's limit, the stop-loss's stop and
    limit (None where there is none)."""
    if group is OrderClass.SIMPLE:
        name, value = (
            ("take_profit", take_profit) if take_profit is not None else ("stop_loss", stop_loss)
        )
        raise ValidationError(name, "must be None for a simple order", value)
    if group is OrderClass.OTO:
        if (take_profit is None) == (stop_loss is None):
            raise ValidationError(
                "take_profit", "an oto order needs exactly one of take_profit and stop_loss", None
            )
    else:
        for name, value in (("take_profit", take_profit), ("stop_loss", stop_loss)):
            if value is None:
                raise ValidationError(name, f"is required for a {group.value} order", value)
    profit = loss = loss_limit = None
    if take_profit is not None:
        terms = _leg_terms("take_profit", take_profit, "limit_price", ())
        profit = parse_price(terms["limit_price"], "take_profit.limit_price")
    if stop_loss is not None:
        terms = _leg_terms("stop_loss", stop_loss, "stop_price", ("limit_price",))
        loss = parse_price(terms["stop_price"], "stop_loss.stop_price")
        if terms.get("limit_price") is not None:
            loss_limit = parse_price(terms["limit_price"], "stop_loss.limit_price")
    return profit, loss, loss_limit


def _leg_terms(name: str, value: Any, needed: str, optional: tuple[str, ...]) -> dict[str, Any]:
    """A leg's terms: a mapping with `needed` (and perhaps `optional`) keys, or the value of
    `needed` itself."""
    if not isinstance(value, Mapping):
        return {needed: value}
    unknown = sorted(str(key) for key in value if key not in (needed, *optional))
    if unknown:
        raise ValidationError(name, f"has no term {unknown[0]!r}", unknown[0])
    if value.get(needed) is None:
        raise ValidationError(f"{name}.{needed}", "is required", None)
    return dict(value)


_LIMITED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_STOPPED = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})


def _check_stop_time_in_force(kind: OrderType, tif: TimeInForce, given: Any) -> None:
    """A stop waits in the book: its time in force is GTC or DAY (`given`: the caller's
    value, for the error)."""
    if kind in STOP_TYPES and tif not in (TimeInForce.GTC, TimeInForce.DAY):
        raise ValidationError(
            "time_in_force", f"must be 'gtc' or 'day' for a {kind.value} order", given
        )


def _price_for(
    kind: OrderType, name: str, value: Any, needed_by: frozenset[OrderType]
) -> int | None:
    """The price `name` of an order of type `kind`: required by the types `needed_by`, refused
    by the others."""
    if kind in needed_by:
        if value is None:
            raise ValidationError(name, f"is required for a {kind.value} order", value)
        return parse_price(value, name)
    if value is not None:
        raise ValidationError(name, f"must be None for a {kind.value} order", value)
    return None


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """Replace an open order: None keeps a term as it is. `quantity` is the new total,
    counting what the order has filled; the new order is for the rest."""

    order_id: OrderId
    quantity: int | None = None
    limit_price: int | None = None
    stop_price: int | None = None
    trail_price: int | None = None
    trail_bps: int | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str | None = None

    @classmethod
    def parse(
        cls,
        order_id: Any,
        quantity: Any = None,
        limit_price: Any = None,
        stop_price: Any = None,
        trail_price: Any = None,
        trail_percent: Any = None,
        time_in_force: Any = None,
        client_order_id: Any = None,
    ) -> ReplaceOrder:
        """The command from a caller's values: at least one term to change, and at most one
        of `trail_price` and `trail_percent`."""
        if trail_price is not None and trail_percent is not None:
            raise ValidationError(
                "trail_price", "give trail_price or trail_percent, not both", trail_price
            )
        command = cls(
            order_key(order_id),
            None if quantity is None else parse_quantity(quantity),
            None if limit_price is None else parse_price(limit_price, "limit_price"),
            None if stop_price is None else parse_price(stop_price, "stop_price"),
            None if trail_price is None else parse_price(trail_price, "trail_price"),
            None if trail_percent is None else parse_trail_percent(trail_percent),
            None if time_in_force is None else TimeInForce.parse(time_in_force, "time_in_force"),
            parse_client_order_id(client_order_id),
        )
        if command == cls(command.order_id, client_order_id=command.client_order_id):
            raise ValidationError("quantity", "a replace must change a term", quantity)
        return command

    def terms(self, old: Any) -> PlaceOrder:
        """The new order's terms: `old`'s (an `Order`) with this replace's changes.

        Raises:
            ValidationError: for a term the order's type does not use (a limit price on a
                stop, say), or a time in force a stop may not have.
        """
        kind: OrderType = old.order_type
        if old.triggered_ns is not None:  # a triggered stop limit rests as the limit it became
            kind = kind.triggered
        for name, value, used in (
            ("limit_price", self.limit_price, _LIMITED),
            ("stop_price", self.stop_price, _STOPPED),
            ("trail_price", self.trail_price, {OrderType.TRAILING_STOP}),
            ("trail_percent", self.trail_bps, {OrderType.TRAILING_STOP}),
        ):
            if value is not None and kind not in used:
                raise ValidationError(name, f"must be None for a {kind.value} order", value)
        trail, bps = old.trail_price, old.trail_bps
        if self.trail_price is not None or self.trail_bps is not None:
            trail, bps = self.trail_price, self.trail_bps
        tif = old.time_in_force if self.time_in_force is None else self.time_in_force
        _check_stop_time_in_force(kind, tif, tif.value)
        stop = old.stop_price if kind in _STOPPED else None
        return PlaceOrder(
            old.account_id,
            old.symbol,
            old.side,
            old.quantity if self.quantity is None else self.quantity,
            kind,
            old.limit_price if self.limit_price is None else self.limit_price,
            tif,
            self.client_order_id,
            stop if self.stop_price is None else self.stop_price,
            trail,
            bps,
            old.self_trade,
        )


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel what remains of a pending or partially filled order."""

    order_id: OrderId

    @classmethod
    def parse(cls, order_id: Any) -> CancelOrder:
        """The command from a caller's values."""
        return cls(order_key(order_id))


@dataclass(frozen=True, slots=True)
class ExpireDayOrders:
    """The session closed: cancel every DAY order still resting (reason EXPIRED)."""


# -- watchlists ----------------------------------------------------------------------------------


def _symbols(value: Any) -> tuple[Symbol, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError("symbols", "must be a list of symbols", value)
    listed: list[Symbol] = []
    for item in value:
        if len(listed) == MAX_SYMBOLS:
            raise ValidationError(
                "symbols",
                f"must be a list of at most {MAX_SYMBOLS} symbols",
                f"a list of more than {MAX_SYMBOLS}",
            )
        listed.append(symbol_key(item))
    return tuple(listed)


@dataclass(frozen=True, slots=True)
class CreateWatchlist:
    """Create a named watchlist of listed symbols (each kept once, in order)."""

    account_id: AccountId
    name: str
    symbols: tuple[Symbol, ...]

    @classmethod
    def parse(cls, account_id: Any, name: Any, symbols: Any = ()) -> CreateWatchlist:
        """The command from a caller's values."""
        return cls(account_key(account_id), parse_watchlist_name(name), _symbols(symbols))


@dataclass(frozen=True, slots=True)
class RenameWatchlist:
    """Rename a watchlist, keeping its symbols."""

    account_id: AccountId
    name: str
    new_name: str

    @classmethod
    def parse(cls, account_id: Any, name: Any, new_name: Any) -> RenameWatchlist:
        """The command from a caller's values."""
        return cls(
            account_key(account_id),
            parse_watchlist_name(name),
            parse_watchlist_name(new_name, "new_name"),
        )


@dataclass(frozen=True, slots=True)
class ReplaceWatchlist:
    """Replace a watchlist's symbols (None: keep them) and/or rename it, in one step."""

    account_id: AccountId
    name: str
    symbols: tuple[Symbol, ...] | None
    new_name: str | None

    @classmethod
    def parse(
        cls, account_id: Any, name: Any, symbols: Any = None, new_name: Any = None
    ) -> ReplaceWatchlist:
        """The command from a caller's values."""
        if symbols is not None and (
            isinstance(symbols, str)
            or not isinstance(symbols, list | tuple)
            or len(symbols) > MAX_SYMBOLS
        ):
            raise ValidationError(
                "symbols", f"must be a list of at most {MAX_SYMBOLS} symbols", symbols
            )
        return cls(
            account_key(account_id),
            parse_watchlist_name(name),
            None if symbols is None else _symbols(symbols),
            None if new_name is None else parse_watchlist_name(new_name, "new_name"),
        )


@dataclass(frozen=True, slots=True)
class DeleteWatchlist:
    """Delete a watchlist."""

    account_id: AccountId
    name: str

    @classmethod
    def parse(cls, account_id: Any, name: Any) -> DeleteWatchlist:
        """The command from a caller's values."""
        return cls(account_key(account_id), parse_watchlist_name(name))


@dataclass(frozen=True, slots=True)
class AddToWatchlist:
    """Add a listed symbol to a watchlist (no change if it is there)."""

    account_id: AccountId
    name: str
    symbol: Symbol

    @classmethod
    def parse(cls, account_id: Any, name: Any, symbol: Any) -> AddToWatchlist:
        """The command from a caller's values."""
        return cls(account_key(account_id), parse_watchlist_name(name), symbol_key(symbol))


@dataclass(frozen=True, slots=True)
class RemoveFromWatchlist:
    """Remove a symbol from a watchlist."""

    account_id: AccountId
    name: str
    symbol: Symbol

    @classmethod
    def parse(cls, account_id: Any, name: Any, symbol: Any) -> RemoveFromWatchlist:
        """The command from a caller's values."""
        return cls(account_key(account_id), parse_watchlist_name(name), symbol_key(symbol))


WatchlistEdit = (
    CreateWatchlist
    | RenameWatchlist
    | ReplaceWatchlist
    | DeleteWatchlist
    | AddToWatchlist
    | RemoveFromWatchlist
)
"""The commands that change an account's watchlists."""

WATCHLIST_EDITS: tuple[type[WatchlistEdit], ...] = typing.get_args(WatchlistEdit)


# -- alerts --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddAlert:
    """Alert an account when a symbol's price goes at or above, or at or below, `threshold`
    cents; once (`one_shot`) or each time the price crosses in."""

    account_id: AccountId
    symbol: Symbol
    condition: AlertCondition
    threshold: int
    one_shot: bool = True

    @classmethod
    def parse(
        cls, account_id: Any, symbol: Any, condition: Any, threshold: Any, one_shot: Any = True
    ) -> AddAlert:
        """The command from a caller's values."""
        return cls(
            account_key(account_id),
            symbol_key(symbol),
            AlertCondition.parse(condition, "condition"),
            parse_price(threshold, "threshold"),
            parse_flag(one_shot, "one_shot"),
        )


@dataclass(frozen=True, slots=True)
class CancelAlert:
    """Remove an active alert."""

    alert_id: str

    @classmethod
    def parse(cls, alert_id: Any) -> CancelAlert:
        """The command from a caller's values."""
        return cls(alert_key(alert_id))


# -- the whole set, and its plain encoding -------------------------------------------------------

Command = (
    ListStock
    | UpdatePrice
    | OpenAccount
    | Deposit
    | Withdraw
    | SetSelfTradePrevention
    | GrantShares
    | ResetAccount
    | PlaceOrder
    | PlaceWithExits
    | ReplaceOrder
    | CancelOrder
    | ExpireDayOrders
    | CreateWatchlist
    | RenameWatchlist
    | ReplaceWatchlist
    | DeleteWatchlist
    | AddToWatchlist
    | RemoveFromWatchlist
    | AddAlert
    | CancelAlert
)
"""Every domain command."""

COMMANDS: dict[str, type[Command]] = {kind.__name__: kind for kind in typing.get_args(Command)}
"""Each command class by its name, as `encode` writes it."""

_CODEC = Codec(COMMANDS, "command")


def encode(command: Command) -> dict[str, Any]:
    """`command` as plain JSON values: its class's name under "type", then each field (enums
    by value, tuples as lists)."""
    return _CODEC.encode(command)


def decode(plain: Any) -> Command:
    """The command `encode` wrote; `ValidationError` if `plain` is not one."""
    found: Command = _CODEC.decode(plain)
    return found


__all__ = [
    "COMMANDS",
    "WATCHLIST_EDITS",
    "AddAlert",
    "AddToWatchlist",
    "CancelAlert",
    "CancelOrder",
    "Command",
    "CreateWatchlist",
    "DeleteWatchlist",
    "Deposit",
    "ExpireDayOrders",
    "GrantShares",
    "ListStock",
    "OpenAccount",
    "PlaceOrder",
    "RemoveFromWatchlist",
    "RenameWatchlist",
    "ReplaceOrder",
    "ReplaceWatchlist",
    "ResetAccount",
    "SetSelfTradePrevention",
    "UpdatePrice",
    "WatchlistEdit",
    "Withdraw",
    "decode",
    "encode",
]
