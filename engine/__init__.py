"""The pure domain of the brokerage: money, orders, the book, matching, accounts, messages.

Nothing here imports pykka, starts a thread, reads a clock or does I/O: times and ids come in
as arguments, so everything is tested without threads.
"""

from __future__ import annotations

from engine.account import (
    Account,
    AccountState,
    Balance,
    Holding,
    Portfolio,
    Position,
    Transaction,
    TransactionKind,
    User,
    value_portfolio,
)
from engine.bars import Bar
from engine.book import Level, OrderBook, RestingOrder
from engine.errors import (
    BrokerageError,
    BrokerStoppedError,
    DuplicateError,
    InsufficientAvailableCashError,
    InvalidTransitionError,
    NotFoundError,
    OrderNotCancellableError,
    SymbolHaltedError,
    UnknownAccountError,
    UnknownAlertError,
    UnknownOrderError,
    UnknownSymbolError,
    UnknownUserError,
    UnknownWatchlistError,
    ValidationError,
)
from engine.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    PriceChanged,
)
from engine.factory import OrderFactory, collar_price
from engine.ids import AccountId, OrderId, Symbol, TradeId, UserId
from engine.matching import (
    Depth,
    DepthLevel,
    Fill,
    Market,
    MatchResult,
    OrderTicket,
    PricePoint,
    QuoteSnapshot,
    Trade,
)
from engine.money import notional, parse_amount, parse_price, parse_quantity
from engine.orders import (
    CancelReason,
    LiquidityMode,
    Order,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from engine.search import SearchIndex, SearchResult
from engine.universe import DEFAULT_UNIVERSE
from engine.watchlists import Watchlist, Watchlists

__all__ = [
    "DEFAULT_UNIVERSE",
    "Account",
    "AccountId",
    "AccountState",
    "Balance",
    "Bar",
    "BrokerStoppedError",
    "BrokerageError",
    "CancelReason",
    "Depth",
    "DepthLevel",
    "DuplicateError",
    "Event",
    "Fill",
    "Holding",
    "InsufficientAvailableCashError",
    "InvalidTransitionError",
    "Level",
    "LiquidityMode",
    "Market",
    "MatchResult",
    "NotFoundError",
    "Order",
    "OrderAccepted",
    "OrderBook",
    "OrderCancelled",
    "OrderEvent",
    "OrderFactory",
    "OrderFilled",
    "OrderId",
    "OrderNotCancellableError",
    "OrderRejected",
    "OrderSnapshot",
    "OrderStatus",
    "OrderTicket",
    "OrderType",
    "Portfolio",
    "Position",
    "PriceChanged",
    "PricePoint",
    "QuoteSnapshot",
    "RejectReason",
    "RestingOrder",
    "SearchIndex",
    "SearchResult",
    "Side",
    "Symbol",
    "SymbolHaltedError",
    "TimeInForce",
    "Trade",
    "TradeId",
    "Transaction",
    "TransactionKind",
    "UnknownAccountError",
    "UnknownAlertError",
    "UnknownOrderError",
    "UnknownSymbolError",
    "UnknownUserError",
    "UnknownWatchlistError",
    "User",
    "UserId",
    "ValidationError",
    "Watchlist",
    "Watchlists",
    "collar_price",
    "notional",
    "parse_amount",
    "parse_price",
    "parse_quantity",
    "value_portfolio",
]
