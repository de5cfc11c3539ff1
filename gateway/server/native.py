"""The native JSON API under `/api/`: everything the embedded `Brokerage` offers.

Money and prices travel as strings ("150.25") or whole numbers, never as JSON floats;
quantities as whole numbers. A key sees only its own account: another account's orders,
watchlists or alerts are 404, like ids that never existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool, StrictInt, StrictStr

from actors.gateway import AccountInfo
from actors.messages import Preferences
from actors.metrics import MetricsSnapshot
from engine.account import Balance, Portfolio, Transaction
from engine.alerts import AlertSnapshot
from engine.audit import AuditReport
from engine.bars import Bar
from engine.equity import PortfolioHistory
from engine.fees import FREE
from engine.matching import Depth, QuoteSnapshot, Trade
from engine.money import cents_to_decimal
from engine.orders import OrderSnapshot
from engine.search import SearchResult
from engine.watchlists import Watchlist
from gateway.brokerage import WatchlistQuotes
from gateway.server.auth import KEY_ID_HEADER, KEY_NOTE, SECRET_HEADER, KeyRecord
from gateway.server.context import (
    Caller,
    HistoryQuery,
    ServerState,
    Shared,
    client_address,
    key_of,
    own_account,
    own_order,
    require_admin,
)
from gateway.server.encode import dumps, iso, plain
from gateway.server.errors import ApiError
from gateway.server.schemas import Snapshot, Strict, many, schema

Money = Annotated[
    StrictStr | StrictInt,
    Field(description="a decimal string with at most two places, or a whole number"),
]
Quantity = Annotated[StrictInt | StrictStr, Field(description="a positive whole number")]
Text = Annotated[StrictStr, Field(max_length=200)]

router = APIRouter(prefix="/api")
PAGE = 500
"""Orders or transactions in one answer unless `limit` says otherwise."""
MAX_PAGE = 1_000


class Health(Snapshot):
    status: Literal["ok", "stopped"]


class AccountOpened(schema(AccountInfo)):  # type: ignore[misc]
    api_key_id: str
    api_secret_key: str = Field(description="shown in this answer only")


class AccountView(Snapshot):
    account_id: str
    user_id: str | None
    balance: schema(Balance)  # type: ignore[valid-type]


class ClockView(Snapshot):
    is_open: bool
    timestamp: datetime


class Json(JSONResponse):
    """A JSON response written by `dumps` (orjson)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def reply(value: Any, status: int = 200) -> Json:
    """`value` as a JSON response (skipping FastAPI's slower generic encoder)."""
    return Json(value, status_code=status)


class OpenAccountBody(Strict):
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    initial_deposit: Money | None = None
    margin: StrictBool = Field(
        False, description="a margin account: it may borrow and sell short (else cash)"
    )


class AmountBody(Strict):
    amount: Money


class TakeProfitBody(Strict):
    limit_price: Money


class StopLossBody(Strict):
    stop_price: Money
    limit_price: Money | None = None


class OrderBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    side: Literal["buy", "sell"]
    quantity: Quantity
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"] = "market"
    limit_price: Money | None = None
    time_in_force: Literal["gtc", "day", "ioc", "fok"] = "gtc"
    client_order_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    stop_price: Money | None = None
    trail_price: Money | None = None
    trail_percent: Money | None = None
    self_trade_prevention: (
        Literal["cancel_newest", "cancel_oldest", "cancel_both", "allow"] | None
    ) = None
    order_class: Literal["simple", "bracket", "oco", "oto"] | None = None
    take_profit: TakeProfitBody | None = None
    stop_loss: StopLossBody | None = None


class ReplaceBody(Strict):
    quantity: Quantity | None = None
    limit_price: Money | None = None
    stop_price: Money | None = None
    trail_price: Money | None = None
    trail_percent: Money | None = None
    time_in_force: Literal["gtc", "day", "ioc", "fok"] | None = None
    client_order_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None


class WatchlistBody(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    symbols: Annotated[list[Annotated[StrictStr, Field(max_length=16)]], Field(max_length=200)] = (
        Field(default_factory=list)
    )


class RenameBody(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]


class SymbolBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]


class AlertBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    condition: Literal["above", "below"]
    threshold: Money
    one_shot: StrictBool = True


EventKind = Literal["fill", "cancel", "reject", "alert", "margin_call"]


def _every_kind() -> list[EventKind]:
    return ["fill", "cancel", "reject", "alert", "margin_call"]


class NotificationBody(Strict):
    console: StrictBool = False
    email: Text | None = None
    push: Text | None = None
    sms: Text | None = None
    events: Annotated[list[EventKind], Field(max_length=5)] = Field(default_factory=_every_kind)


class ListStockBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    price: Money
    mode: Literal["market", "book"] = "market"


class PriceBody(Strict):
    price: Money


class GrantBody(Strict):
    symbol: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    quantity: Quantity
    price: Annotated[Money, Field(description="the cost per share it is credited at")]


# -- public --------------------------------------------------------------------------------------


# Each hot route's work is a function of its own (`health_of`, `signed_up`, ...), which the
# route below and its fast path (gateway/server/fast.py) both call.


def health_of(shared: ServerState) -> dict[str, str]:
    """`GET /api/health`'s answer."""
    return {"status": "ok" if shared.broker.running else "stopped"}


@router.get("/health", tags=["service"], response_model=Health)
async def health(shared: Shared) -> JSONResponse:
    """Whether the engine is running (no key needed)."""
    return reply(health_of(shared))


async def signed_up(
    shared: ServerState,
    address: str,
    key_id: str | None,
    secret: str | None,
    body: OpenAccountBody,
) -> dict[str, Any]:
    """`POST /api/accounts`'s answer, for a request from `address` with these key headers."""
    shared.signups.take(address)
    record = key_of(shared, address, key_id, secret)
    if record is not None and not record.is_admin and record.user_id != body.user_id:
        raise ApiError(403, "a key opens accounts only for its own user")
    opened = await shared.broker.aopen_account(
        body.user_id,
        body.name,
        body.email,
        body.phone,
        initial_deposit=body.initial_deposit,
        new_user=record is None,
        margin=body.margin,
    )
    key = shared.keys.issue(opened.account_id, opened.user.user_id)
    await shared.broker.anote(KEY_NOTE, shared.keys.note(key.key_id))  # durable before shown
    return {**plain(opened), "api_key_id": key.key_id, "api_secret_key": key.secret}


@router.post("/accounts", status_code=201, tags=["accounts"], response_model=AccountOpened)
async def open_account(body: OpenAccountBody, request: Request, shared: Shared) -> JSONResponse:
    """Open an account and issue its API key; the secret is shown only in this answer.

    Without a key this signs up a new user: a user id that exists already is 409. A further
    account of an existing user needs that user's key (or the admin key). Sign-ups are
    rate-limited per client address (429 with `Retry-After`)."""
    headers = request.headers
    answer = await signed_up(
        shared,
        client_address(request),
        headers.get(KEY_ID_HEADER),
        headers.get(SECRET_HEADER),
        body,
    )
    return reply(answer, 201)


# -- the caller's account ------------------------------------------------------------------------


async def account_of(shared: ServerState, record: KeyRecord) -> dict[str, Any]:
    """`GET /api/account`'s answer."""
    account_id = own_account(record)
    return {
        "account_id": account_id,
        "user_id": record.user_id,
        "balance": await shared.broker.abalance(account_id),
    }


@router.get("/account", tags=["accounts"], response_model=AccountView)
async def account(record: Caller, shared: Shared) -> JSONResponse:
    """The caller's account id, user and balance."""
    return reply(await account_of(shared, record))


async def deposited(shared: ServerState, record: KeyRecord, body: AmountBody) -> Balance:
    """`POST /api/account/deposit`'s answer."""
    return await shared.broker.adeposit(own_account(record), body.amount)


@router.post("/account/deposit", tags=["accounts"], response_model=schema(Balance))
async def deposit(body: AmountBody, record: Caller, shared: Shared) -> JSONResponse:
    """Add cash; answer the new balance."""
    return reply(await deposited(shared, record, body))


async def withdrawn(shared: ServerState, record: KeyRecord, body: AmountBody) -> Balance:
    """`POST /api/account/withdraw`'s answer."""
    return await shared.broker.awithdraw(own_account(record), body.amount)


@router.get(
    "/account/portfolio/history", tags=["accounts"], response_model=schema(PortfolioHistory)
)
def portfolio_history(
    record: Caller, shared: Shared, query: Annotated[HistoryQuery, Depends()]
) -> JSONResponse:
    """The account's equity at each `timeframe` step ("1Min", "5Min", "15Min", "1H", "1D";
    by default 1Min below 7 days, 15Min below 30, else 1D) over `period` ("1D", "1W", "1M",
    "3M", "1A", ...) up to `end` (default now), and at its end, with the P/L since the first
    step net of deposits, withdrawals and grants; `known_since` is how far back the account's
    transactions reach. Run on the request threads, not the event loop (a long history takes
    a while)."""
    return reply(query.of(shared, own_account(record)))


class SelfTradeBody(Strict):
    mode: Literal["cancel_newest", "cancel_oldest", "cancel_both", "allow"]


class SelfTradeAnswer(Strict):
    mode: Literal["cancel_newest", "cancel_oldest", "cancel_both", "allow"]


@router.put("/account/self-trade-prevention", tags=["accounts"], response_model=SelfTradeAnswer)
async def self_trade_prevention(
    body: SelfTradeBody, record: Caller, shared: Shared
) -> JSONResponse:
    """Set what the account's orders that name no `self_trade_prevention` do in a `book`
    symbol when they would trade with a resting order of the same account."""
    mode = await shared.broker.aset_self_trade_prevention(own_account(record), body.mode)
    return reply({"mode": mode.value})


class ResetBody(Strict):
    cash: Money


@router.post("/account/reset", tags=["accounts"], response_model=schema(Balance))
async def reset(body: ResetBody, record: Caller, shared: Shared) -> JSONResponse:
    """Start the (paper) account afresh with `cash` and no holdings: its open orders are
    cancelled, its holdings go out at their cost, its cash is set, its realized P/L starts
    again; its orders and transactions are kept, and a `reset` transaction marks the moment.
    409 if orders placed meanwhile kept it from being done."""
    return reply(await shared.broker.areset_account(own_account(record), body.cash))


class MarginAnswer(Strict):
    account_type: Literal["cash", "margin"]
    buying_power: str
    equity: str | None
    long_market_value: str | None
    short_market_value: str | None
    initial_margin: str | None
    maintenance_margin: str | None
    excess_equity: str | None
    deficit: str | None
    multiplier: str


async def margin_of(shared: ServerState, account_id: str) -> dict[str, Any]:
    """An account's buying power and, for a margin account, its margin figures in dollars."""
    figures = await shared.broker.amargin(account_id)
    if figures is None:
        balance = await shared.broker.abalance(account_id)
        none = dict.fromkeys(
            (
                "equity",
                "long_market_value",
                "short_market_value",
                "initial_margin",
                "maintenance_margin",
                "excess_equity",
                "deficit",
            )
        )
        return {
            "account_type": "cash",
            "buying_power": str(balance.available),
            **none,
            "multiplier": "1",
        }
    return {
        "account_type": "margin",
        "buying_power": str(cents_to_decimal(figures.buying_power)),
        "equity": str(cents_to_decimal(figures.equity)),
        "long_market_value": str(cents_to_decimal(figures.long_value)),
        "short_market_value": str(cents_to_decimal(figures.short_value)),
        "initial_margin": str(cents_to_decimal(figures.initial)),
        "maintenance_margin": str(cents_to_decimal(figures.maintenance)),
        "excess_equity": str(cents_to_decimal(figures.excess)),
        "deficit": str(cents_to_decimal(figures.deficit)),
        "multiplier": shared.broker.margin_rules.multiplier_text,
    }


@router.get("/account/margin", tags=["accounts"], response_model=MarginAnswer)
async def margin(record: Caller, shared: Shared) -> JSONResponse:
    """The account's buying power; for a margin account its equity, market value long and
    short, initial and maintenance requirements, excess equity and deficit (what equity lacks
    to meet maintenance: a margin call) at the last prices, and the brokerage's multiplier
    (buying power per dollar of excess equity). A cash account's buying power is its
    available cash."""
    return reply(await margin_of(shared, own_account(record)))


class FeesAnswer(Strict):
    per_order: str
    per_share: str
    percent: str
    minimum: str
    maximum: str | None
    sec_per_million: str
    taf_per_share: str
    taf_max: str | None


@router.get("/fees", tags=["accounts"], response_model=FeesAnswer)
async def fees(_: Caller, shared: Shared) -> JSONResponse:
    """The brokerage's fee schedule, in dollars and percentages: each order's commission (per
    order, per share and in percent of the notional, within its minimum and maximum; null: no
    cap) and the regulatory fees passed on for sells (the SEC fee per million dollars sold,
    FINRA's TAF per share sold up to its cap), each paid as the order fills."""
    schedule = shared.broker.fees or FREE
    return reply(
        {name: None if value is None else str(value) for name, value in schedule.describe().items()}
    )


@router.post("/account/withdraw", tags=["accounts"], response_model=schema(Balance))
async def withdraw(body: AmountBody, record: Caller, shared: Shared) -> JSONResponse:
    """Take out cash, at most the available cash (403 beyond it)."""
    return reply(await withdrawn(shared, record, body))


async def portfolio_of(shared: ServerState, record: KeyRecord) -> Portfolio:
    """`GET /api/account/portfolio`'s answer."""
    return await shared.broker.aportfolio(own_account(record))


@router.get("/account/portfolio", tags=["accounts"], response_model=schema(Portfolio))
async def portfolio(record: Caller, shared: Shared) -> JSONResponse:
    """Holdings at current prices with unrealized and realized profit and loss."""
    return reply(await portfolio_of(shared, record))


Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="skip this many first")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"at most this many (<= {MAX_PAGE})")]


After = Annotated[datetime | None, Query(description="only those made after (exclusive)")]
Until = Annotated[datetime | None, Query(description="only those made before (exclusive)")]
Direction = Annotated[
    Literal["asc", "desc"], Query(description="oldest first (asc) or newest first (desc)")
]
Cursor = Annotated[
    str | None,
    Query(max_length=64, description="after this id (a page's last), in the listing's order"),
]


@dataclass(frozen=True)
class Listing:
    """The query parameters every history listing takes: a time range, an order, a page."""

    after: After = None
    until: Until = None
    direction: Direction = "asc"
    offset: Offset = 0
    limit: Limit = PAGE
    cursor: Cursor = None

    def options(self) -> dict[str, Any]:
        """The listing as `Brokerage.orders` / `transactions` keywords."""
        return {
            "after": self.after,
            "until": self.until,
            "newest_first": self.direction == "desc",
            "offset": self.offset,
            "limit": self.limit,
            "cursor": self.cursor,
        }


Page = Annotated[Listing, Depends()]


@router.get("/account/transactions", tags=["accounts"], response_model=many(Transaction))
async def transactions(
    record: Caller,
    shared: Shared,
    page: Page,
    kind: Annotated[
        list[Literal["buy", "sell", "deposit", "withdrawal", "grant"]] | None,
        Query(max_length=5),
    ] = None,
    symbol: Annotated[str | None, Query(max_length=16)] = None,
) -> JSONResponse:
    """Movements of cash or shares, oldest first (or `direction=desc`), optionally of some
    kinds, one symbol and a time range, a page at a time (`limit`, and `offset` or `cursor`:
    the last transaction id of the page before). Older history than the account keeps in
    memory is searched in the store."""
    found = await shared.broker.atransactions(
        own_account(record), kind or None, symbol, **page.options()
    )
    return reply(found)


# -- orders --------------------------------------------------------------------------------------


async def placed(shared: ServerState, record: KeyRecord, body: OrderBody) -> OrderSnapshot:
    """`POST /api/orders`'s answer."""
    return await shared.broker.aplace_order(
        own_account(record),
        body.symbol,
        body.side,
        body.quantity,
        body.type,
        body.limit_price,
        body.time_in_force,
        client_order_id=body.client_order_id,
        stop_price=body.stop_price,
        trail_price=body.trail_price,
        trail_percent=body.trail_percent,
        self_trade_prevention=body.self_trade_prevention,
        order_class=body.order_class,
        take_profit=None if body.take_profit is None else body.take_profit.model_dump(),
        stop_loss=None if body.stop_loss is None else body.stop_loss.model_dump(),
    )


@router.post("/orders", status_code=201, tags=["orders"], response_model=schema(OrderSnapshot))
async def place_order(body: OrderBody, record: Caller, shared: Shared) -> JSONResponse:
    """Place an order: market, limit, or a stop that waits for its trigger (`stop` with
    `stop_price`, `stop_limit` with `stop_price` and `limit_price`, `trailing_stop` with
    `trail_price` or `trail_percent`; "gtc" or "day"). `order_class` "bracket", "oto" or
    "oco" ties exit legs to it (`take_profit`, `stop_loss`; see the README). A refusal
    (insufficient funds or shares, busy, market closed) is the order in status `rejected` with
    its `reject_reason`."""
    return reply(await placed(shared, record, body), 201)


@router.get("/orders", tags=["orders"], response_model=many(OrderSnapshot))
async def list_orders(
    record: Caller,
    shared: Shared,
    page: Page,
    status: Annotated[
        list[
            Literal["pending", "partially_filled", "executed", "cancelled", "rejected", "replaced"]
        ]
        | None,
        Query(max_length=5),
    ] = None,
    symbol: Annotated[str | None, Query(max_length=16)] = None,
    side: Literal["buy", "sell"] | None = None,
) -> JSONResponse:
    """The caller's orders, oldest first (or `direction=desc`), optionally of some statuses,
    one symbol, one side and a creation time range, a page at a time (`limit`, and `offset`
    or `cursor`: the last order id of the page before). Older history than the account keeps
    in memory is searched in the store."""
    orders = await shared.broker.aorders(
        own_account(record), status or None, symbol, side=side, **page.options()
    )
    return reply(orders)


async def order_of(shared: ServerState, record: KeyRecord, order_id: str) -> OrderSnapshot:
    """`GET /api/orders/{order_id}`'s answer."""
    return await own_order(shared, own_account(record), order_id)


@router.get("/orders/{order_id}", tags=["orders"], response_model=schema(OrderSnapshot))
async def get_order(order_id: str, record: Caller, shared: Shared) -> JSONResponse:
    """One of the caller's orders."""
    return reply(await order_of(shared, record, order_id))


async def cancelled(shared: ServerState, record: KeyRecord, order_id: str) -> OrderSnapshot:
    """`DELETE /api/orders/{order_id}`'s answer."""
    await own_order(shared, own_account(record), order_id)
    return await shared.broker.acancel_order(order_id)


@router.delete("/orders/{order_id}", tags=["orders"], response_model=schema(OrderSnapshot))
async def cancel_order(order_id: str, record: Caller, shared: Shared) -> JSONResponse:
    """Cancel what remains of one of the caller's orders (422 if it is finished)."""
    return reply(await cancelled(shared, record, order_id))


@router.patch("/orders/{order_id}", tags=["orders"], response_model=schema(OrderSnapshot))
async def replace_order(
    order_id: str, body: ReplaceBody, record: Caller, shared: Shared
) -> JSONResponse:
    """Replace one of the caller's open orders (a resting limit or a waiting stop): the terms
    given change, the others stay; the answer is the new order (`replaces` names the old one,
    now `replaced`). `quantity` is the new total, counting what the old order filled. A
    replace the account cannot afford is the new order `rejected` (the old one stays); an
    order finished meanwhile is 422."""
    await own_order(shared, own_account(record), order_id)
    new = await shared.broker.areplace_order(
        order_id,
        body.quantity,
        body.limit_price,
        stop_price=body.stop_price,
        trail_price=body.trail_price,
        trail_percent=body.trail_percent,
        time_in_force=body.time_in_force,
        client_order_id=body.client_order_id,
    )
    return reply(new)


# -- market data ---------------------------------------------------------------------------------


@router.get("/stocks", tags=["market data"], response_model=many(QuoteSnapshot))
async def stocks(_: Caller, shared: Shared) -> JSONResponse:
    """Every listed stock's quote."""
    return reply(await shared.broker.astocks())


async def quote_of(shared: ServerState, _: KeyRecord, symbol: str) -> QuoteSnapshot:
    """`GET /api/stocks/{symbol}`'s answer."""
    return await shared.broker.aquote(symbol)


@router.get("/stocks/{symbol}", tags=["market data"], response_model=schema(QuoteSnapshot))
async def quote(symbol: str, record: Caller, shared: Shared) -> JSONResponse:
    """A stock's quote: last price, best bid and ask, the day's open, high, low and volume."""
    return reply(await quote_of(shared, record, symbol))


@router.get("/stocks/{symbol}/depth", tags=["market data"], response_model=schema(Depth))
async def depth(
    symbol: str,
    _: Caller,
    shared: Shared,
    levels: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> JSONResponse:
    """The book's best price levels on each side."""
    return reply(await shared.broker.adepth(symbol, levels))


@router.get("/stocks/{symbol}/trades", tags=["market data"], response_model=many(Trade))
async def trades(
    symbol: str,
    _: Caller,
    shared: Shared,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> JSONResponse:
    """The latest trades, newest first."""
    return reply(await shared.broker.atrades(symbol, limit))


@router.get("/stocks/{symbol}/bars", tags=["market data"], response_model=many(Bar))
async def bars(
    symbol: str,
    _: Caller,
    shared: Shared,
    interval: Literal["1m", "5m", "1d"] = "1m",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> JSONResponse:
    """OHLCV bars of an interval, oldest first."""
    return reply(await shared.broker.abars(symbol, interval, limit))


SEARCH_QUERY = 64
"""The longest search text, in characters."""
SEARCH_LIMIT = 100
"""The most search results one request asks for."""


async def found(shared: ServerState, _: KeyRecord, q: str, limit: int) -> list[SearchResult]:
    """`GET /api/search`'s answer."""
    return await shared.broker.asearch(q, limit)


@router.get("/search", tags=["market data"], response_model=many(SearchResult))
async def search(
    record: Caller,
    shared: Shared,
    q: Annotated[str, Query(min_length=1, max_length=SEARCH_QUERY)],
    limit: Annotated[int, Query(ge=1, le=SEARCH_LIMIT)] = 10,
) -> JSONResponse:
    """Stocks whose symbol or name matches, best first."""
    return reply(await found(shared, record, q, limit))


@router.get("/clock", tags=["market data"], response_model=ClockView)
async def clock(_: Caller, shared: Shared) -> JSONResponse:
    """Whether the session takes orders now."""
    return reply({"is_open": shared.broker.market_open(), "timestamp": iso(datetime.now(UTC))})


# -- watchlists ----------------------------------------------------------------------------------


@router.get("/watchlists", tags=["watchlists"], response_model=many(Watchlist))
async def watchlists(record: Caller, shared: Shared) -> JSONResponse:
    """The caller's watchlists with their symbols."""
    return reply(await shared.broker.awatchlists(own_account(record)))


@router.post("/watchlists", status_code=201, tags=["watchlists"], response_model=schema(Watchlist))
def create_watchlist(body: WatchlistBody, record: Caller, shared: Shared) -> JSONResponse:
    """Create a watchlist of listed symbols."""
    return reply(shared.broker.create_watchlist(own_account(record), body.name, body.symbols), 201)


@router.get("/watchlists/{name}", tags=["watchlists"], response_model=schema(WatchlistQuotes))
def watchlist(name: str, record: Caller, shared: Shared) -> JSONResponse:
    """A watchlist with a live quote for each symbol."""
    return reply(shared.broker.watchlist(own_account(record), name))


@router.patch("/watchlists/{name}", tags=["watchlists"], response_model=schema(Watchlist))
def rename_watchlist(name: str, body: RenameBody, record: Caller, shared: Shared) -> JSONResponse:
    """Rename a watchlist."""
    return reply(shared.broker.rename_watchlist(own_account(record), name, body.name))


@router.delete("/watchlists/{name}", status_code=204, tags=["watchlists"])
def delete_watchlist(name: str, record: Caller, shared: Shared) -> Response:
    """Delete a watchlist."""
    shared.broker.delete_watchlist(own_account(record), name)
    return Response(status_code=204)


@router.post("/watchlists/{name}/symbols", tags=["watchlists"], response_model=schema(Watchlist))
def add_symbol(name: str, body: SymbolBody, record: Caller, shared: Shared) -> JSONResponse:
    """Add a symbol to a watchlist."""
    return reply(shared.broker.add_to_watchlist(own_account(record), name, body.symbol))


@router.delete(
    "/watchlists/{name}/symbols/{symbol}", tags=["watchlists"], response_model=schema(Watchlist)
)
def remove_symbol(name: str, symbol: str, record: Caller, shared: Shared) -> JSONResponse:
    """Remove a symbol from a watchlist."""
    return reply(shared.broker.remove_from_watchlist(own_account(record), name, symbol))


# -- alerts and notifications --------------------------------------------------------------------


@router.get("/alerts", tags=["alerts"], response_model=many(AlertSnapshot))
def alerts(record: Caller, shared: Shared) -> JSONResponse:
    """The caller's active price alerts."""
    return reply(shared.broker.alerts(own_account(record)))


@router.get("/alerts/fired", tags=["alerts"], response_model=many(AlertSnapshot))
async def fired_alerts(record: Caller, shared: Shared) -> JSONResponse:
    """The caller's latest alert firings (at most 20 per symbol, kept in memory: a restart
    forgets them), newest first, each with the price that fired it (`price`) and when
    (`triggered_at`)."""
    return reply(await shared.broker.afired_alerts(own_account(record)))


@router.post("/alerts", status_code=201, tags=["alerts"], response_model=schema(AlertSnapshot))
def add_alert(body: AlertBody, record: Caller, shared: Shared) -> JSONResponse:
    """Alert when a price goes at or above, or at or below, a threshold."""
    return reply(
        shared.broker.add_alert(
            own_account(record), body.symbol, body.condition, body.threshold, one_shot=body.one_shot
        ),
        201,
    )


@router.delete("/alerts/{alert_id}", tags=["alerts"], response_model=schema(AlertSnapshot))
def cancel_alert(alert_id: str, record: Caller, shared: Shared) -> JSONResponse:
    """Remove one of the caller's active alerts."""
    account_id = own_account(record)
    if not any(a.alert_id == alert_id for a in shared.broker.alerts(account_id)):
        raise ApiError(404, f"alert not found, was {alert_id!r}")
    return reply(shared.broker.cancel_alert(alert_id))


@router.put("/notifications", tags=["alerts"], response_model=schema(Preferences))
def notifications(body: NotificationBody, record: Caller, shared: Shared) -> JSONResponse:
    """Choose where the caller's user is notified (console, email, push webhook, SMS) and of
    which events."""
    own_account(record)
    assert record.user_id is not None
    chosen = shared.broker.set_notification_preferences(
        record.user_id,
        console=body.console,
        email=body.email,
        push=body.push,
        sms=body.sms,
        events=body.events,
    )
    return reply(chosen)


# -- admin ---------------------------------------------------------------------------------------


@router.post("/admin/stocks", status_code=201, tags=["admin"], response_model=schema(QuoteSnapshot))
def list_stock(body: ListStockBody, record: Caller, shared: Shared) -> JSONResponse:
    """List a stock (admin key)."""
    require_admin(record)
    listed = shared.broker.list_stock(body.symbol, body.name, body.price, body.mode)
    shared.listed(refresh=True)
    return reply(listed, 201)


@router.put("/admin/stocks/{symbol}/price", tags=["admin"], response_model=schema(QuoteSnapshot))
def move_price(symbol: str, body: PriceBody, record: Caller, shared: Shared) -> JSONResponse:
    """Move a stock's price; resting limit orders it reaches fill (admin key)."""
    require_admin(record)
    return reply(shared.broker.update_price(symbol, body.price))


@router.post(
    "/admin/accounts/{account_id}/grants",
    status_code=201,
    tags=["admin"],
    response_model=schema(Transaction),
)
def grant_shares(account_id: str, body: GrantBody, record: Caller, shared: Shared) -> JSONResponse:
    """Credit shares to an account at a stated cost per share: an allocation, or a transfer
    in from elsewhere (admin key). The account can then sell them; 404 for an unknown
    account or symbol."""
    require_admin(record)
    granted = shared.broker.grant_shares(account_id, body.symbol, body.quantity, body.price)
    return reply(granted, 201)


@router.post(
    "/admin/accounts/{account_id}/deposits", tags=["admin"], response_model=schema(Balance)
)
def deposit_for(account_id: str, body: AmountBody, record: Caller, shared: Shared) -> JSONResponse:
    """Add cash to an account on its user's behalf (admin key); answer its new balance."""
    require_admin(record)
    return reply(shared.broker.deposit(account_id, body.amount))


@router.get("/admin/accounts", tags=["admin"], response_model=list[str])
async def accounts(
    record: Caller,
    shared: Shared,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    agents: bool = False,
) -> JSONResponse:
    """The ids of the users' accounts, oldest first (of one user with `user_id`); the trader
    agents' accounts (a venue's, `brokerage serve --agents`) only with `agents=true` (admin
    key)."""
    require_admin(record)
    return reply(await shared.broker.aaccounts(user_id, agents=agents))


@router.get("/admin/metrics", tags=["admin"], response_model=schema(MetricsSnapshot))
def metrics(record: Caller, shared: Shared) -> JSONResponse:
    """Counters, latency percentiles, orders in flight and live actors (admin key)."""
    require_admin(record)
    return reply(shared.broker.metrics())


class SimulationProgress(Strict):
    mode: str
    agents: int
    seconds: float
    elapsed: float
    done: bool


@router.get("/admin/simulation", tags=["admin"], response_model=SimulationProgress)
def simulation(record: Caller, shared: Shared) -> JSONResponse:
    """How far the simulation this server serves is (`brokerage simulate --serve`): its mode,
    its agents, the seconds it runs for and has run, and whether it is done (admin key); 404
    when the server serves no simulation."""
    require_admin(record)
    if shared.progress is None:
        raise ApiError(404, "this server serves no simulation")
    return reply(shared.progress())


@router.get("/admin/audit", tags=["admin"], response_model=schema(AuditReport))
def audit(record: Caller, shared: Shared) -> JSONResponse:
    """Check every invariant of every account and book (admin key). The rules across accounts
    hold at rest: if one fails while the brokerage was trading (orders in flight, or anything
    counted moved during the audit), the answer is 409, to be asked again at rest; one that
    fails at rest is a broken invariant (500)."""
    require_admin(record)
    broker = shared.broker
    before = broker.metrics()
    try:
        return reply(broker.audit())
    except AssertionError as broken:
        after = broker.metrics()
        if before.orders_in_flight or after.orders_in_flight or before.counters != after.counters:
            raise ApiError(
                409,
                "the brokerage traded while it audited and the rules across accounts hold at "
                f"rest ({broken}): audit again when no order is in flight",
            ) from None
        raise
