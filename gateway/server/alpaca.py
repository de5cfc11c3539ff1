"""An Alpaca-compatible trading surface under `/v2/`, so that the unmodified `alpaca-py`
client trades against the engine.

Field names, status and time-in-force values and error shapes follow Alpaca's published
Trading API; money is strings and ids are UUIDs. What the engine does not model is refused
with 422 rather than approximated: fractional and notional orders, bracket, OCO and OTO
orders, extended hours, short selling.

JSON numbers in bodies are read as `Decimal` (alpaca-py sends `qty`, `limit_price`,
`stop_price`, `trail_price` and `trail_percent` as numbers), so no price passes through a float.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import Field, StrictBool, StrictStr

from engine.account import Holding, Transaction, TransactionKind
from engine.equity import PortfolioHistory, PositionToday
from engine.errors import DuplicateError, UnknownOrderError
from engine.ids import Symbol as SymbolId
from engine.margin import MarginRules
from engine.money import MAX_NUMBER_TEXT, cents_to_decimal, parse_percent
from engine.orders import CancelReason, OrderSnapshot, OrderStatus, RejectReason
from engine.session import next_close, next_open
from engine.watchlists import Watchlist
from gateway.server.auth import KeyRecord
from gateway.server.context import (
    Caller,
    HistoryQuery,
    ServerState,
    Shared,
    asset_uuid,
    order_id_of,
    order_uuid,
    own_account,
    own_order,
)
from gateway.server.encode import iso, plain
from gateway.server.errors import ApiError
from gateway.server.schemas import Strict


def json_number(text: str) -> Any:
    """A JSON number as `Decimal` (or int), unless its text is too long to be one the engine
    takes: that stays text, which the engine's parsers refuse with a clear error, so no huge
    number is ever built."""
    if len(text) > MAX_NUMBER_TEXT:
        return text
    return Decimal(text) if any(c in text for c in ".eE") else int(text)


class DecimalRequest(Request):
    """A request whose JSON numbers parse as `Decimal`, bounded by their text."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(
                await self.body(), parse_float=json_number, parse_int=json_number
            )
        return self._json


class DecimalRoute(APIRoute):
    """A route that reads its body with `DecimalRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decimal_handler(request: Request) -> Response:
            return await handler(DecimalRequest(request.scope, request.receive))

        return decimal_handler


router = APIRouter(prefix="/v2", tags=["alpaca"], route_class=DecimalRoute)

_STATUS = {
    OrderStatus.HELD: "held",
    OrderStatus.PENDING: "new",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.EXECUTED: "filled",
    OrderStatus.CANCELLED: "canceled",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.REPLACED: "replaced",
}
_OPEN = ("held", "pending", "partially_filled")
_CLOSED = ("executed", "cancelled", "rejected", "replaced")
_REFUSALS = {
    RejectReason.INSUFFICIENT_FUNDS: (403, "insufficient buying power"),
    RejectReason.INSUFFICIENT_SHARES: (403, "insufficient qty available for order"),
    RejectReason.BUSY: (429, "too many orders in flight, try again"),
    RejectReason.MARKET_CLOSED: (403, "market is closed"),
    RejectReason.NOT_SHORTABLE: (403, "asset is not shortable"),
    RejectReason.TOO_MANY_ORDERS: (403, "too many open orders"),
}

Number = Decimal | StrictStr
Symbol = Annotated[StrictStr, Field(min_length=1, max_length=16)]


class OrderBody(Strict):
    symbol: Symbol
    qty: Number | None = None
    notional: Number | None = None
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"] = "market"
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"]
    limit_price: Number | None = None
    stop_price: Number | None = None
    trail_price: Number | None = None
    trail_percent: Number | None = None
    extended_hours: StrictBool | None = None
    client_order_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    order_class: Literal["simple", "bracket", "oco", "oto", ""] | None = None
    take_profit: dict[str, Any] | None = None
    stop_loss: dict[str, Any] | None = None
    position_intent: StrictStr | None = None


class ReplaceBody(Strict):
    qty: Number | None = None
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] | None = None
    limit_price: Number | None = None
    stop_price: Number | None = None
    trail: Number | None = None
    client_order_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None


class WatchlistBody(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    symbols: Annotated[list[Symbol], Field(max_length=200)] | None = None


class UpdateWatchlistBody(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    symbols: Annotated[list[Symbol], Field(max_length=200)] | None = None


class SymbolBody(Strict):
    symbol: Symbol


# -- JSON in Alpaca's shapes -----------------------------------------------------------------


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def order_json(
    shared: ServerState, order: OrderSnapshot, legs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An order as Alpaca spells it (`legs`: its legs', when nested)."""
    updated = iso(order.updated_at)
    status = _STATUS[order.status]
    expired = order.cancel_reason is CancelReason.EXPIRED
    if expired:
        status = "expired"
    return {
        "id": order_uuid(order.order_id),
        "client_order_id": order.client_order_id or order.order_id,
        "created_at": iso(order.created_at),
        "updated_at": updated,
        "submitted_at": iso(order.created_at),
        "filled_at": updated if order.status is OrderStatus.EXECUTED else None,
        "expired_at": updated if expired else None,
        "expires_at": None,
        "canceled_at": updated if status == "canceled" else None,
        "failed_at": updated if order.status is OrderStatus.REJECTED else None,
        "replaced_at": updated if order.status is OrderStatus.REPLACED else None,
        "replaced_by": None if order.replaced_by is None else order_uuid(order.replaced_by),
        "replaces": None if order.replaces is None else order_uuid(order.replaces),
        "asset_id": asset_uuid(order.symbol),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": str(order.quantity),
        "filled_qty": str(order.filled_quantity),
        "filled_avg_price": _money(order.average_fill_price),
        "order_class": order.order_class.value,
        "order_type": order.order_type.value,
        "type": order.order_type.value,
        "side": order.side.value,
        "time_in_force": order.time_in_force.value,
        "limit_price": _money(order.limit_price),
        "stop_price": _money(order.stop_price),
        "status": status,
        "extended_hours": False,
        "legs": legs,
        "trail_percent": None if order.trail_percent is None else str(order.trail_percent),
        "trail_price": _money(order.trail_price),
        "hwm": _money(order.hwm),
        "position_intent": ("buy_to_open" if order.side.value == "buy" else "sell_to_close"),
    }


def _ratio(percent: Decimal | None) -> str | None:
    return None if percent is None else str(percent / 100)


def position_json(holding: Holding, day: PositionToday, rules: MarginRules) -> dict[str, Any]:
    """A holding as Alpaca spells a position (a short one has a negative quantity, market
    value and cost basis); `day` gives the day's reference price (`lastday_price`: the
    previous day's close, or the listing day's open), the change since and the intraday P/L
    (`Brokerage.today`)."""
    return {
        "asset_id": asset_uuid(holding.symbol),
        "symbol": holding.symbol,
        "exchange": "",
        "asset_class": "us_equity",
        "asset_marginable": rules.marginable(holding.symbol),
        "avg_entry_price": str(holding.average_cost),
        "qty": str(holding.quantity),
        "qty_available": str(_closable(holding)),
        "side": "long" if holding.quantity > 0 else "short",
        "market_value": str(holding.market_value),
        "cost_basis": str(holding.cost_basis),
        "unrealized_pl": str(holding.unrealized_pl),
        "unrealized_plpc": _ratio(holding.unrealized_pl_percent),
        "unrealized_intraday_pl": None if day.intraday_pl is None else str(day.intraday_pl),
        "unrealized_intraday_plpc": _ratio(day.intraday_pl_percent),
        "current_price": str(holding.market_price),
        "lastday_price": str(day.lastday_price),
        "change_today": _ratio(day.change_today_percent),
    }


def _closable(holding: Holding) -> int:
    """The shares of a position an order may close: a long's that no open sale holds, all of
    a short's (negative)."""
    return holding.quantity - holding.reserved if holding.quantity > 0 else holding.quantity


def asset_json(symbol: str, name: str, rules: MarginRules) -> dict[str, Any]:
    """A listed stock as Alpaca spells an asset: marginable unless its initial requirement is
    100 %, shortable (and easy to borrow) if the brokerage's margin rules say so."""
    stock = SymbolId(symbol)
    shortable = rules.can_short(stock)
    return {
        "id": asset_uuid(symbol),
        "class": "us_equity",
        "exchange": "",
        "symbol": symbol,
        "name": name,
        "status": "active",
        "tradable": True,
        "marginable": rules.marginable(stock),
        "shortable": shortable,
        "easy_to_borrow": shortable,
        "fractionable": False,
        "min_order_size": None,
        "min_trade_increment": None,
        "price_increment": "0.01",
        "attributes": [],
    }


def _watchlist_json(
    shared: ServerState, record_uuid: uuid.UUID, wid: str, found: Watchlist
) -> dict[str, Any]:
    created, updated = shared.watchlist_times.get(wid, (None, None))
    now = iso(datetime.now(UTC))
    names = shared.listed()
    rules = shared.broker.margin_rules
    return {
        "id": wid,
        "account_id": str(record_uuid),
        "name": found.name,
        "created_at": created or now,
        "updated_at": updated or created or now,
        "assets": [asset_json(s, names.get(s, s), rules) for s in found.symbols],
    }


def _watchlist_id(shared: ServerState, account_id: str, name: str) -> str:
    fresh = str(uuid.uuid4())
    wid = shared.watchlist_by_name.setdefault((account_id, name), fresh)
    shared.watchlist_ids.setdefault(wid, (account_id, name))
    if wid == fresh:  # a watchlist made outside /v2, named here for the first time
        shared.keep_watchlist(wid)
    return wid


def _watchlist_name(shared: ServerState, account_id: str, wid: str) -> str:
    found = shared.watchlist_ids.get(wid.lower())
    if found is None or found[0] != account_id:
        raise ApiError(404, f"watchlist not found, was {wid!r}")
    return found[1]


def _touch(shared: ServerState, wid: str, *, created: bool = False) -> None:
    now = iso(datetime.now(UTC))
    first = now if created else shared.watchlist_times.get(wid, (now, now))[0]
    shared.watchlist_times[wid] = (first, now)


async def _own_order(shared: ServerState, account_id: str, order_ref: str) -> OrderSnapshot:
    order_id = order_id_of(order_ref)
    if order_id is None:
        raise ApiError(404, f"order not found, was {order_ref!r}")
    return await own_order(shared, account_id, order_id)


# -- account ---------------------------------------------------------------------------------


@router.get("/account")
async def account(record: Caller, shared: Shared) -> dict[str, Any]:
    """The caller's account in Alpaca's shape: a cash account's buying power is its available
    cash, a margin account's Reg T buying power (`GET /api/account/margin`)."""
    account_id = own_account(record)
    balance = await shared.broker.abalance(account_id)
    portfolio = await shared.broker.aportfolio(account_id)
    today = await shared.broker.atoday(account_id)
    figures = await shared.broker.amargin(account_id)
    cash, equity = str(balance.cash), str(portfolio.net_worth)
    last_equity = equity if today.last_equity is None else str(today.last_equity)
    power = excess = str(balance.available)
    initial = maintenance = short = "0"
    long = str(portfolio.market_value)
    if figures is not None:
        power = str(cents_to_decimal(figures.buying_power))
        excess = str(cents_to_decimal(max(0, figures.excess)))
        initial = str(cents_to_decimal(figures.initial))
        maintenance = str(cents_to_decimal(figures.maintenance))
        long = str(cents_to_decimal(figures.long_value))
        short = str(cents_to_decimal(-figures.short_value))
    return {
        "id": str(record.alpaca_id),
        "account_number": account_id,
        "status": "ACTIVE",
        "crypto_status": None,
        "currency": "USD",
        "buying_power": power,
        "regt_buying_power": power,
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": excess,
        "options_buying_power": "0",
        "cash": cash,
        "accrued_fees": "0",
        "pending_transfer_out": "0",
        "pending_transfer_in": "0",
        "portfolio_value": equity,
        "equity": equity,
        "last_equity": last_equity,
        "long_market_value": long,
        "short_market_value": short,
        "initial_margin": initial,
        "maintenance_margin": maintenance,
        "last_maintenance_margin": maintenance,
        "sma": "0",
        "multiplier": "1" if figures is None else shared.broker.margin_rules.multiplier_text,
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "shorting_enabled": figures is not None,
        "daytrade_count": 0,
        "created_at": None,
    }


# -- portfolio history -----------------------------------------------------------------------


def _number(value: Decimal | None) -> orjson.Fragment | None:
    """A Decimal as an exact JSON number (Alpaca sends the history's figures as numbers)."""
    return None if value is None else orjson.Fragment(str(value))


def _cashflow(history: PortfolioHistory, types: str | None) -> dict[str, Any]:
    """What each asked activity type moved in each window of `history` (422 for an unknown
    type)."""
    if types is None or types.strip().upper() == "NONE":
        return {}
    wanted = set(ACTIVITY_OF.values())
    if types.strip().upper() != "ALL":
        wanted = {ACTIVITY_OF[kind] for kind in _activity_kinds(types)}
    found: dict[str, list[Decimal]] = {}
    for kind, moved in history.moved.items():
        name = ACTIVITY_OF.get(kind)
        if name not in wanted:
            continue
        sums = found.setdefault(name, [Decimal(0)] * (len(moved) - 1))
        for at, amount in enumerate(moved[1:]):
            sums[at] += amount
    return {name: [_number(amount) for amount in sums] for name, sums in sorted(found.items())}


@router.get("/account/portfolio/history")
def portfolio_history(
    record: Caller,
    shared: Shared,
    query: Annotated[HistoryQuery, Depends()],
    date_end: date | None = None,
    cashflow_types: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The account's equity over `period` ("1D", "1W", "1M", "3M", "1A", ...) at each
    `timeframe` ("1Min", "5Min", "15Min", "1H", "1D"; by default as Alpaca chooses), as
    Alpaca gives it: each window's start (`timestamp`, Unix seconds) and the equity at its end,
    the P/L from `base_value` (the equity at the first window's start) net of deposits,
    withdrawals and grants, and that P/L as a ratio; up to `end`, or the end of `date_end`
    (UTC), or now. With `cashflow_types` ("ALL", or activity types: CSD, CSW, JNLS, FEE),
    `cashflow` gives what each type moved in each window (negative: out). Alpaca's other
    parameters (`intraday_reporting`, `pnl_reset`, `extended_hours`) are not supported and are
    ignored; `start` (then `period` is not read) and `end` are. Run on the request threads,
    not the event loop: a long history of many holdings takes a while to rebuild."""
    if query.end is None and date_end is not None:  # (its last microsecond: no year 10000)
        query = dataclasses.replace(query, end=datetime.combine(date_end, time.max, UTC))
    history = query.of(shared, own_account(record))
    body = {
        "timestamp": [int(moment.timestamp()) for moment in history.timestamps[:-1]],
        "equity": [_number(value) for value in history.equity[1:]],
        "profit_loss": [_number(value) for value in history.profit_loss[1:]],
        "profit_loss_pct": [
            _number(None if value is None else value / 100)
            for value in history.profit_loss_percent[1:]
        ],
        "base_value": _number(history.base_value),
        "base_value_asof": history.timestamps[0].date().isoformat() if history.timestamps else None,
        "timeframe": history.timeframe,
        "cashflow": _cashflow(history, cashflow_types),
    }
    return Response(orjson.dumps(body), media_type="application/json")


# -- account activities ----------------------------------------------------------------------

ACTIVITY_KINDS: dict[str, tuple[str, ...]] = {
    "FILL": ("buy", "sell"),
    "CSD": ("deposit",),
    "CSW": ("withdrawal",),
    "JNLS": ("grant", "removal"),
    "FEE": ("fee",),
    "MISC": ("reset",),
}
"""The Alpaca activity types this brokerage makes, and the transactions each stands for."""
ACTIVITY_OF = {kind: name for name, kinds in ACTIVITY_KINDS.items() for kind in kinds}
OTHER_ACTIVITIES = frozenset(
    {
        "TRANS",
        "ACATC",
        "ACATS",
        "CFEE",
        "CSR",
        "CSF",
        "CIL",
        "DIV",
        "DIVCGL",
        "DIVCGS",
        "DIVFEE",
        "DIVFT",
        "DIVNRA",
        "DIVROC",
        "DIVTW",
        "DIVTXEX",
        "INT",
        "INTNRA",
        "INTTW",
        "JNL",
        "JNLC",
        "MA",
        "NC",
        "OPASN",
        "OPEXP",
        "OPXRC",
        "PTC",
        "PTR",
        "REORG",
        "SC",
        "SSO",
        "SSP",
        "SPLIT",
    }
)
"""Alpaca's other activity types: asked for, they are none here (no dividends, interest,
...)."""
MAX_ACTIVITIES = 100
_FILL_STATUS = {True: "partially_filled", False: "filled"}
"""A fill's order's status after it, by whether shares were left to fill."""


_OUTGOING = frozenset((TransactionKind.WITHDRAWAL, TransactionKind.FEE, TransactionKind.REMOVAL))
"""The movements out of an account: a negative `net_amount`."""


def _activity_kinds(types: str) -> list[str]:
    """The transaction kinds of comma-separated Alpaca activity types (422 for an unknown
    one)."""
    kinds: list[str] = []
    for name in (t.strip().upper() for t in types.split(",") if t.strip()):
        if name in ACTIVITY_KINDS:
            kinds += ACTIVITY_KINDS[name]
        elif name not in OTHER_ACTIVITIES:
            raise ApiError(422, f"activity_types has an unknown type, was {name!r}")
    return kinds


def _activity_id(transaction: Transaction) -> str:
    """Alpaca's activity id (its time, `::`, an id of its own): here the transaction id,
    which a `page_token` gives back."""
    return f"{transaction.at:%Y%m%d%H%M%S}{transaction.at.microsecond // 1000:03d}::" + (
        transaction.transaction_id
    )


def activity_json(record: KeyRecord, transaction: Transaction) -> dict[str, Any]:
    """A transaction as Alpaca spells an activity: a FILL's trade, or a cash or share
    movement (a FEE: what a fill of an order paid in fees)."""
    found = {
        "id": _activity_id(transaction),
        "account_id": str(record.alpaca_id),
        "activity_type": ACTIVITY_OF[transaction.kind.value],
    }
    kind = transaction.kind
    if kind is TransactionKind.BUY or kind is TransactionKind.SELL:
        assert transaction.order_id is not None
        leaves = transaction.leaves  # None: a fill recorded before fills kept it
        return {
            **found,
            "transaction_time": iso(transaction.at),
            "type": "partial_fill" if leaves else "fill",
            "price": str(transaction.price),
            "qty": str(transaction.quantity),
            "side": None if transaction.side is None else transaction.side.value,
            "symbol": transaction.symbol,
            "leaves_qty": None if leaves is None else str(leaves),
            "order_id": order_uuid(transaction.order_id),
            "cum_qty": None if transaction.filled is None else str(transaction.filled),
            "order_status": None if leaves is None else _FILL_STATUS[leaves > 0],
        }
    out = kind in _OUTGOING
    quantity = transaction.quantity
    if quantity is not None and kind is TransactionKind.REMOVAL:
        quantity = -quantity
    description = ""
    if kind is TransactionKind.RESET:
        description = f"account reset: cash set to {transaction.amount}, holdings taken out at cost"
    if kind is TransactionKind.FEE:
        assert transaction.order_id is not None
        assert transaction.side is not None
        description = (
            f"fees of a {transaction.side.value} fill of {transaction.symbol} "
            f"(trade {transaction.trade_id}, order {order_uuid(transaction.order_id)})"
        )
    return {
        **found,
        "date": transaction.at.date().isoformat(),
        "net_amount": "0"
        if kind is TransactionKind.RESET
        else str(-transaction.amount if out else transaction.amount),
        "description": description,
        "status": "executed",
        "symbol": transaction.symbol,
        "qty": None if quantity is None else str(quantity),
        "price": None if transaction.price is None else str(transaction.price),
        "per_share_amount": None,
    }


@dataclass(frozen=True)
class ActivityPage:
    """The query parameters of an activity listing, as Alpaca names them: a day (UTC) or a
    time range, an order, a page."""

    date: date | None = None
    after: datetime | None = None
    until: datetime | None = None
    direction: Literal["asc", "desc"] = "desc"
    page_size: Annotated[int, Query(ge=1, le=MAX_ACTIVITIES)] = MAX_ACTIVITIES
    page_token: Annotated[str | None, Query(max_length=100)] = None


async def _activities(
    shared: ServerState, record: KeyRecord, types: str | None, page: ActivityPage
) -> list[dict[str, Any]]:
    kinds = _activity_kinds(types) if types else list(ACTIVITY_OF)
    if not kinds:  # only types this brokerage never makes
        return []
    after, until = page.after, page.until
    if page.date is not None:  # that day, within after and until if given too
        start = datetime(page.date.year, page.date.month, page.date.day, tzinfo=UTC)
        after = max(after, start) if after is not None else start
        end = start + timedelta(days=1)
        until = min(until, end) if until is not None else end
    found = await shared.broker.atransactions(
        own_account(record),
        kinds,
        after=after,
        until=until,
        newest_first=page.direction == "desc",
        limit=page.page_size,
        cursor=None if page.page_token is None else page.page_token.rpartition("::")[2],
    )
    return [activity_json(record, t) for t in found]


@router.get("/account/activities")
async def activities(
    record: Caller,
    shared: Shared,
    page: Annotated[ActivityPage, Depends()],
    activity_types: Annotated[str | None, Query(max_length=500)] = None,
) -> list[dict[str, Any]]:
    """The account's activities, newest first by default: FILL (each fill), CSD and CSW
    (deposits and withdrawals), JNLS (shares granted), FEE (what a fill paid in fees);
    `activity_types` (comma-separated),
    `date` or `after`/`until`, `direction`, `page_size` (at most 100) and `page_token` (the
    last id of the page before)."""
    return await _activities(shared, record, activity_types, page)


@router.get("/account/activities/{activity_type}")
async def activities_of(
    activity_type: Annotated[str, Path(max_length=16)],
    record: Caller,
    shared: Shared,
    page: Annotated[ActivityPage, Depends()],
) -> list[dict[str, Any]]:
    """The account's activities of one type (as `/account/activities` with
    `activity_types`)."""
    return await _activities(shared, record, activity_type, page)


# -- orders ----------------------------------------------------------------------------------


def _check_time_in_force(time_in_force: str | None) -> None:
    if time_in_force in ("opg", "cls"):
        raise ApiError(422, f"time_in_force opg and cls are not supported, was {time_in_force!r}")


def _answered(shared: ServerState, order: OrderSnapshot) -> dict[str, Any]:
    """An order placed (or replaced) as Alpaca answers it: refused for lack of cash or
    shares, or closed market, it is an error (403), not an order."""
    if order.status is OrderStatus.REJECTED and order.reject_reason is not None:
        status, message = _REFUSALS[order.reject_reason]
        raise ApiError(status, message)
    return order_json(shared, order)


def _check_supported(body: OrderBody) -> None:
    if body.notional is not None:
        raise ApiError(422, f"notional orders are not supported, was {body.notional}")
    if body.qty is None:
        raise ApiError(422, "qty is required")
    _check_time_in_force(body.time_in_force)
    if body.extended_hours:
        raise ApiError(422, "extended hours trading is not supported, was True")
    for name in ("take_profit", "stop_loss"):
        terms = getattr(body, name)
        if terms is not None and len(terms) > 2:  # bound before anything reads it
            raise ApiError(422, f"{name} has at most two terms, was {len(terms)}")


@router.post("/orders")
async def submit_order(body: OrderBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Place an order. A refusal for lack of cash or shares is 403 and leaves no order open."""
    account_id = own_account(record)
    _check_supported(body)
    client_id = body.client_order_id or str(uuid.uuid4())
    try:
        order = await shared.broker.aplace_order(
            account_id,
            body.symbol,
            body.side,
            body.qty,
            body.type,
            body.limit_price,
            body.time_in_force,
            client_order_id=client_id,  # the account refuses one it has already
            keep_refused=False,  # as on Alpaca: a refused order is no order, its id is free
            stop_price=body.stop_price,
            trail_price=body.trail_price,
            trail_percent=body.trail_percent,
            order_class=body.order_class or None,
            take_profit=body.take_profit,
            stop_loss=body.stop_loss,
        )
    except DuplicateError:
        raise ApiError(422, f"client_order_id must be unique, was {client_id!r}") from None
    return _answered(shared, order)


async def _nested(shared: ServerState, order: OrderSnapshot) -> dict[str, Any]:
    """An order with its legs inside (`nested=true`)."""
    if not order.legs:
        return order_json(shared, order)
    legs = [order_json(shared, await shared.broker.aget_order(leg)) for leg in order.legs]
    return order_json(shared, order, legs)


MAX_SYMBOLS_LISTED = 100
"""Symbols one order listing may filter by."""


@router.get("/orders")
async def list_orders(
    record: Caller,
    shared: Shared,
    status: Literal["open", "closed", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    direction: Literal["asc", "desc"] = "desc",
    symbols: Annotated[str | None, Query(max_length=2000)] = None,
    side: Literal["buy", "sell"] | None = None,
    nested: bool | None = None,
    after: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The caller's orders, newest first by default (`status` open by default, as Alpaca).

    Every filter and the limit are applied by the account itself, which stops at `limit`
    (open orders have their own index), so a long history costs a listing nothing."""
    account_id = own_account(record)
    wanted = {"open": _OPEN, "closed": _CLOSED, "all": None}[status]
    chosen = sorted({s.strip().upper() for s in symbols.split(",") if s.strip()}) if symbols else []
    if len(chosen) > MAX_SYMBOLS_LISTED:
        raise ApiError(422, f"symbols must name at most {MAX_SYMBOLS_LISTED}, was {len(chosen)}")
    newest_first = direction == "desc"
    found: list[OrderSnapshot] = []
    targets: list[str | None] = [*chosen] if chosen else [None]
    for symbol in targets:
        found += await shared.broker.aorders(
            account_id,
            wanted,
            symbol,
            side=side,
            after=after,  # a naive time is UTC: the engine takes it so
            until=until,
            newest_first=newest_first,
            limit=limit,
        )
    if len(chosen) > 1:  # one page per symbol: merged in order, then cut to the limit
        found.sort(key=lambda o: (o.created_at, o.order_id), reverse=newest_first)
    if nested:  # legs inside their parents, not beside them
        return [await _nested(shared, o) for o in found[:limit] if o.parent is None]
    return [order_json(shared, o) for o in found[:limit]]


@router.delete("/orders", status_code=207)
async def cancel_all(record: Caller, shared: Shared) -> list[dict[str, Any]]:
    """Cancel every open order of the caller; one status per order (HTTP 207)."""
    return await _cancel_open_orders(shared, own_account(record))


async def _cancel_open_orders(shared: ServerState, account_id: str) -> list[dict[str, Any]]:
    answers = []
    open_orders = await shared.broker.aorders(account_id, _OPEN)
    legs_of: dict[str, list[str]] = {}  # parent -> its open legs (one pass: no list per order)
    for order in open_orders:
        if order.parent is not None:
            legs_of.setdefault(order.parent, []).append(order.order_id)
    gone: set[str] = set()  # the legs that go with an order cancelled here
    for order in open_orders:
        if order.order_id in gone:
            continue
        gone.update(order.legs)
        if order.parent is not None:
            gone.update(legs_of[order.parent])
        try:
            await shared.broker.acancel_order(order.order_id)
            answers.append({"id": order_uuid(order.order_id), "status": 200, "body": None})
        except Exception as error:  # finished meanwhile: report it, go on
            answers.append(
                {
                    "id": order_uuid(order.order_id),
                    "status": 422,
                    "body": {"code": 42210000, "message": str(error)},
                }
            )
    return answers


@router.get("/orders:by_client_order_id")
async def order_by_client_id(
    record: Caller,
    shared: Shared,
    client_order_id: Annotated[str, Query(min_length=1, max_length=128)],
) -> dict[str, Any]:
    """One of the caller's orders by the id the client gave it."""
    account_id = own_account(record)
    try:
        order = await shared.broker.aorder_by_client_id(account_id, client_order_id)
    except UnknownOrderError:  # an order placed without one goes by its own id
        order = await own_order(shared, account_id, client_order_id)
    return order_json(shared, order)


@router.get("/orders/{order_id}")
async def get_order(
    order_id: str, record: Caller, shared: Shared, nested: bool | None = None
) -> dict[str, Any]:
    """One of the caller's orders by its UUID (`nested`: with its legs inside)."""
    order = await _own_order(shared, own_account(record), order_id)
    return await _nested(shared, order) if nested else order_json(shared, order)


@router.patch("/orders/{order_id}")
async def replace_order(
    order_id: str, body: ReplaceBody, record: Caller, shared: Shared
) -> dict[str, Any]:
    """Replace an open order (alpaca-py's `replace_order_by_id`): the new order, whose
    `replaces` is the old one's id; `trail` is a trailing stop's new trail, in its own unit
    (price or percent). 403 if the account cannot afford it (the old order stays), 422 if the
    order is finished."""
    account_id = own_account(record)
    old = await _own_order(shared, account_id, order_id)
    _check_time_in_force(body.time_in_force)
    trail_price = trail_percent = None
    if body.trail is not None:
        if old.trail_percent is not None:
            trail_percent = body.trail
        else:
            trail_price = body.trail
    try:
        new = await shared.broker.areplace_order(
            old.order_id,
            body.qty,
            body.limit_price,
            stop_price=body.stop_price,
            trail_price=trail_price,
            trail_percent=trail_percent,
            time_in_force=body.time_in_force,
            client_order_id=body.client_order_id,
        )
    except DuplicateError:
        raise ApiError(
            422, f"client_order_id must be unique, was {body.client_order_id!r}"
        ) from None
    return _answered(shared, new)


@router.delete("/orders/{order_id}", status_code=204)
async def cancel_order(order_id: str, record: Caller, shared: Shared) -> Response:
    """Cancel an open order (422 if it is finished)."""
    order = await _own_order(shared, own_account(record), order_id)
    await shared.broker.acancel_order(order.order_id)
    return Response(status_code=204)


# -- positions -------------------------------------------------------------------------------


@router.get("/positions")
async def positions(record: Caller, shared: Shared) -> list[dict[str, Any]]:
    """The caller's open positions at current prices."""
    account_id = own_account(record)
    portfolio = await shared.broker.aportfolio(account_id)
    today = {p.symbol: p for p in (await shared.broker.atoday(account_id)).positions}
    held = [h for h in portfolio.holdings if h.quantity and h.symbol in today]
    rules = shared.broker.margin_rules
    return [position_json(h, today[h.symbol], rules) for h in held]


def _holding(shared: ServerState, account_id: str, symbol_or_id: str) -> Holding:
    symbol = shared.symbol_of_asset(symbol_or_id)
    for holding in shared.broker.portfolio(account_id).holdings:
        if holding.symbol == symbol and holding.quantity:
            return holding
    raise ApiError(404, f"position does not exist, was {symbol_or_id!r}")


@router.delete("/positions", status_code=207)
async def close_all_positions(
    record: Caller, shared: Shared, cancel_orders: bool = False
) -> list[dict[str, Any]]:
    """Close every position at market, one status per position (HTTP 207): each sells the
    long shares no open order holds, or buys back a short; with `cancel_orders` every open
    order is cancelled first, so the whole position sells."""
    account_id = own_account(record)
    if cancel_orders:
        await _cancel_open_orders(shared, account_id)
    portfolio = await shared.broker.aportfolio(account_id)
    answers = []
    for holding in portfolio.holdings:
        available = _closable(holding)
        if not holding.quantity:
            continue
        if not available:
            answers.append(_close_refused(holding, available))
            continue
        side = "sell" if available > 0 else "buy"
        order = await shared.broker.aplace_order(
            account_id, holding.symbol, side, abs(available), "market", keep_refused=False
        )
        if order.status is OrderStatus.REJECTED and order.reject_reason is not None:
            status, message = _REFUSALS[order.reject_reason]
            answers.append(
                {
                    "symbol": holding.symbol,
                    "status": status,
                    "body": _close_failure(status, message, holding, available),
                }
            )
            continue
        answers.append(
            {
                "order_id": order_uuid(order.order_id),
                "symbol": holding.symbol,
                "status": 200,
                "body": order_json(shared, order),
            }
        )
    return answers


def _close_failure(status: int, message: str, holding: Holding, available: int) -> dict[str, Any]:
    return {
        "code": status * 100_000 + 10_000,
        "message": message,
        "available": str(available),
        "existing_qty": str(holding.quantity),
        "held_for_orders": str(holding.reserved),
        "symbol": holding.symbol,
    }


def _close_refused(holding: Holding, available: int) -> dict[str, Any]:
    message = f"insufficient qty available for order (available: {available})"
    return {
        "symbol": holding.symbol,
        "status": 403,
        "body": _close_failure(403, message, holding, available),
    }


@router.get("/positions/{symbol_or_asset_id}")
def position(symbol_or_asset_id: str, record: Caller, shared: Shared) -> dict[str, Any]:
    """One open position, by symbol or asset id."""
    account_id = own_account(record)
    holding = _holding(shared, account_id, symbol_or_asset_id)
    for day in shared.broker.today(account_id).positions:
        if day.symbol == holding.symbol:
            return position_json(holding, day, shared.broker.margin_rules)
    raise ApiError(404, f"position does not exist, was {symbol_or_asset_id!r}")


@router.delete("/positions/{symbol_or_asset_id}")
def close_position(
    symbol_or_asset_id: str,
    record: Caller,
    shared: Shared,
    qty: Annotated[str | None, Query(max_length=32)] = None,
    percentage: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """Close a position at market (sell a long, buy back a short): all of it, `qty` shares,
    or a `percentage` of it."""
    account_id = own_account(record)
    holding = _holding(shared, account_id, symbol_or_asset_id)
    available = abs(_closable(holding))
    quantity: Any = available
    if qty is not None and percentage is not None:
        raise ApiError(422, "give qty or percentage, not both")
    if qty is not None:
        quantity = qty
    elif percentage is not None:
        share = parse_percent(percentage, "percentage")  # bounded by its text
        if not 0 < share <= 100:
            raise ApiError(422, f"percentage must be above 0 and at most 100, was {percentage!r}")
        quantity = int(available * share / 100)
    if quantity == 0:
        raise ApiError(403, f"insufficient qty available for order (available: {available})")
    side = "sell" if holding.quantity > 0 else "buy"
    order = shared.broker.place_order(
        account_id, holding.symbol, side, quantity, "market", keep_refused=False
    )
    return _answered(shared, order)


# -- assets and the clock --------------------------------------------------------------------


@router.get("/assets")
def assets(
    _: Caller,
    shared: Shared,
    status: Literal["active", "inactive"] | None = None,
    asset_class: Literal["us_equity", "us_option", "crypto"] | None = None,
    exchange: Annotated[str | None, Query(max_length=16)] = None,
    attributes: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    """Every listed stock (all active US equities)."""
    if status == "inactive" or asset_class not in (None, "us_equity"):
        return []
    rules = shared.broker.margin_rules
    return [asset_json(symbol, name, rules) for symbol, name in sorted(shared.listed().items())]


@router.get("/assets/{symbol_or_asset_id}")
def asset(symbol_or_asset_id: str, _: Caller, shared: Shared) -> dict[str, Any]:
    """One listed stock by symbol or asset id."""
    symbol = shared.symbol_of_asset(symbol_or_asset_id)
    names = shared.listed()
    if symbol not in names:
        names = shared.listed(refresh=True)
        if symbol not in names:
            raise ApiError(404, f"asset not found, was {symbol_or_asset_id!r}")
    return asset_json(symbol, names[symbol], shared.broker.margin_rules)


@router.get("/clock")
def clock(_: Caller, shared: Shared) -> dict[str, Any]:
    """Whether the market is open now, and when it next opens and closes."""
    session = shared.broker.session
    now = datetime.now(UTC)
    return {
        "timestamp": iso(now),
        "is_open": shared.broker.market_open(),
        "next_open": iso(next_open(session, now)),
        "next_close": iso(next_close(session, now)),
    }


# -- watchlists ------------------------------------------------------------------------------


@router.get("/watchlists")
def watchlists(record: Caller, shared: Shared) -> list[dict[str, Any]]:
    """The caller's watchlists (without their assets, as Alpaca lists them)."""
    account_id = own_account(record)
    answers = []
    for found in shared.broker.watchlists(account_id):
        wid = _watchlist_id(shared, account_id, found.name)
        body = _watchlist_json(shared, record.alpaca_id, wid, found)
        body.pop("assets")
        answers.append(body)
    return answers


@router.post("/watchlists")
def create_watchlist(body: WatchlistBody, record: Caller, shared: Shared) -> dict[str, Any]:
    """Create a watchlist (422 if the name is taken)."""
    account_id = own_account(record)
    found = shared.broker.create_watchlist(account_id, body.name, body.symbols or ())
    wid = str(uuid.uuid4())
    shared.watchlist_by_name[(account_id, found.name)] = wid
    shared.watchlist_ids[wid] = (account_id, found.name)
    _touch(shared, wid, created=True)
    shared.keep_watchlist(wid)
    return _watchlist_json(shared, record.alpaca_id, wid, found)


def _find(shared: ServerState, account_id: str, name: str) -> Watchlist:
    for found in shared.broker.watchlists(account_id):
        if found.name == name:
            return found
    raise ApiError(404, f"watchlist not found, was {name!r}")


@router.get("/watchlists/{watchlist_id}")
def get_watchlist(watchlist_id: str, record: Caller, shared: Shared) -> dict[str, Any]:
    """One watchlist with its assets."""
    account_id = own_account(record)
    name = _watchlist_name(shared, account_id, watchlist_id)
    found = _find(shared, account_id, name)
    return _watchlist_json(shared, record.alpaca_id, watchlist_id.lower(), found)


@router.put("/watchlists/{watchlist_id}")
def update_watchlist(
    watchlist_id: str, body: UpdateWatchlistBody, record: Caller, shared: Shared
) -> dict[str, Any]:
    """Rename a watchlist and/or replace its symbols."""
    account_id = own_account(record)
    wid = watchlist_id.lower()
    name = _watchlist_name(shared, account_id, wid)
    found = shared.broker.replace_watchlist(account_id, name, body.symbols, body.name)
    if found.name != name:
        shared.watchlist_by_name.pop((account_id, name), None)
        shared.watchlist_by_name[(account_id, found.name)] = wid
        shared.watchlist_ids[wid] = (account_id, found.name)
    _touch(shared, wid)
    shared.keep_watchlist(wid)
    return _watchlist_json(shared, record.alpaca_id, wid, found)


def _edit(
    shared: ServerState, record: KeyRecord, watchlist_id: str, edit: Callable[[str, str], Watchlist]
) -> dict[str, Any]:
    """Apply `edit(account_id, name)` to a watchlist of the caller's; answer it."""
    account_id = own_account(record)
    wid = watchlist_id.lower()
    found = edit(account_id, _watchlist_name(shared, account_id, wid))
    _touch(shared, wid)
    shared.keep_watchlist(wid)
    return _watchlist_json(shared, record.alpaca_id, wid, found)


@router.post("/watchlists/{watchlist_id}")
def add_to_watchlist(
    watchlist_id: str, body: SymbolBody, record: Caller, shared: Shared
) -> dict[str, Any]:
    """Add a symbol to a watchlist."""
    add = shared.broker.add_to_watchlist
    return _edit(
        shared, record, watchlist_id, lambda account, name: add(account, name, body.symbol)
    )


@router.delete("/watchlists/{watchlist_id}/{symbol}")
def remove_from_watchlist(
    watchlist_id: str, symbol: str, record: Caller, shared: Shared
) -> dict[str, Any]:
    """Remove a symbol from a watchlist."""
    remove = shared.broker.remove_from_watchlist
    return _edit(shared, record, watchlist_id, lambda account, name: remove(account, name, symbol))


@router.delete("/watchlists/{watchlist_id}", status_code=204)
def delete_watchlist(watchlist_id: str, record: Caller, shared: Shared) -> Response:
    """Delete a watchlist."""
    account_id = own_account(record)
    wid = watchlist_id.lower()
    name = _watchlist_name(shared, account_id, wid)
    shared.broker.delete_watchlist(account_id, name)
    shared.watchlist_ids.pop(wid, None)
    shared.watchlist_by_name.pop((account_id, name), None)
    shared.watchlist_times.pop(wid, None)
    shared.keep_watchlist(wid)
    return Response(status_code=204)


__all__ = ["asset_json", "order_json", "plain", "position_json", "router"]
