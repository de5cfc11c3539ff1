"""History beyond what the actors keep: finished orders and transactions as rows of plain
values for a store, and the queries over them.

An account keeps its open orders and its newest finished orders and transactions (its
`window`); each finished order and each new transaction also goes, through the account's
outbox, into the journal's batch with the fact that made it, so the store's history tables are
always as far as its journal. A query that reaches past the window reads the store and merges:
finished orders from there, open ones from the account.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.account import OPEN_STATUSES, Transaction, TransactionKind
from engine.ids import AccountId, OrderId, Symbol, TradeId, id_number
from engine.money import cents_to_decimal
from engine.orders import (
    CancelReason,
    Order,
    OrderClass,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
    ns_to_datetime,
)

ORDER_COLUMNS = (
    "order_id",
    "number",
    "account_id",
    "symbol",
    "side",
    "order_type",
    "time_in_force",
    "quantity",
    "limit_price",
    "reserve_price",
    "created_ns",
    "client_order_id",
    "status",
    "filled_quantity",
    "filled_cents",
    "reject_reason",
    "cancel_reason",
    "updated_ns",
    "stop_price",
    "trail_price",
    "trail_bps",
    "hwm",
    "triggered_ns",
    "self_trade",
    "replaces",
    "replaced_by",
    "order_class",
    "parent",
    "legs",
)
"""A finished order's row, in this order (`number` is the order id's number, for sorting;
`legs` the leg ids joined by commas)."""

ADDED_ORDER_COLUMNS = ORDER_COLUMNS[18:]
"""The columns added after the first release (a store made before gets them added, empty)."""

TRANSACTION_COLUMNS = (
    "transaction_id",
    "number",
    "account_id",
    "kind",
    "amount",
    "at_ns",
    "trade_id",
    "order_id",
    "symbol",
    "side",
    "quantity",
    "price",
    "leaves",
    "filled",
)
"""A transaction's row, in this order (`number` counts the account's transactions from 1;
`amount` and `price` in cents; `at_ns` to the microsecond; `leaves` and `filled`, a fill's
order's shares still to fill and filled after it)."""

ADDED_TRANSACTION_COLUMNS = TRANSACTION_COLUMNS[12:]
"""The transaction columns added after the first release (added, empty, as the orders')."""


def order_row(order: Order) -> tuple[Any, ...]:
    """A finished order as a row of `ORDER_COLUMNS`."""
    return (
        order.order_id,
        id_number(order.order_id, "O-"),
        order.account_id,
        order.symbol,
        order.side.value,
        order.order_type.value,
        order.time_in_force.value,
        order.quantity,
        order.limit_price,
        order.reserve_price,
        order.created_ns,
        order.client_order_id,
        order.status.value,
        order.filled_quantity,
        order.filled_cents,
        None if order.reject_reason is None else order.reject_reason.value,
        None if order.cancel_reason is None else order.cancel_reason.value,
        order.updated_ns,
        order.stop_price,
        order.trail_price,
        order.trail_bps,
        order.hwm,
        order.triggered_ns,
        None if order.self_trade is None else order.self_trade.value,
        order.replaces,
        order.replaced_by,
        order.order_class.value,
        order.parent,
        ",".join(order.legs) if order.legs else None,
    )


def order_from_row(row: tuple[Any, ...]) -> OrderSnapshot:
    """The snapshot of the order `order_row` wrote."""
    (order_id, _, account_id, symbol, side, kind, tif, quantity, limit, reserve, created) = row[:11]
    (client_id, status, filled, filled_cents, reject, cancel, updated) = row[11:18]
    (stop, trail, bps, hwm, triggered, self_trade, replaces, replaced_by) = row[18:26]
    (order_class, parent, legs) = row[26:29]
    order = Order(
        OrderId(order_id),
        AccountId(account_id),
        Symbol(symbol),
        Side(side),
        OrderType(kind),
        TimeInForce(tif),
        quantity,
        limit,
        reserve,
        created,
        client_order_id=client_id,
        status=OrderStatus(status),
        filled_quantity=filled,
        filled_cents=filled_cents,
        reject_reason=None if reject is None else RejectReason(reject),
        cancel_reason=None if cancel is None else CancelReason(cancel),
        updated_ns=updated,
        stop_price=stop,
        trail_price=trail,
        trail_bps=bps,
        hwm=hwm,
        triggered_ns=triggered,
        self_trade=None if self_trade is None else SelfTradePrevention(self_trade),
        replaces=None if replaces is None else OrderId(replaces),
        replaced_by=None if replaced_by is None else OrderId(replaced_by),
        order_class=OrderClass.SIMPLE if order_class is None else OrderClass(order_class),
        parent=None if parent is None else OrderId(parent),
        legs=() if not legs else tuple(OrderId(leg) for leg in legs.split(",")),
    )
    return order.snapshot()


def transaction_number(transaction_id: str) -> int:
    """A transaction's number in its account ("A-000001-17" -> 17)."""
    return int(transaction_id.rsplit("-", 1)[1])


def transaction_from_row(row: tuple[Any, ...]) -> Transaction:
    """The transaction whose row its account made (`Account.outbox`)."""
    (transaction_id, _, account_id, kind, amount, at_ns, trade_id, order_id) = row[:8]
    (symbol, side, quantity, price) = row[8:12]
    (leaves, filled) = row[12:14] if len(row) > 12 else (None, None)
    return Transaction(
        transaction_id,
        AccountId(account_id),
        TransactionKind(kind),
        cents_to_decimal(amount),
        ns_to_datetime(at_ns),
        None if trade_id is None else TradeId(trade_id),
        None if order_id is None else OrderId(order_id),
        None if symbol is None else Symbol(symbol),
        None if side is None else Side(side),
        quantity,
        None if price is None else cents_to_decimal(price),
        leaves,
        filled,
    )


def archive_rows(
    items: Iterable[Order | tuple[Any, ...]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The order rows and transaction rows of an outbox's items (finished orders, and the
    rows of new transactions)."""
    orders, transactions = [], []
    for item in items:
        if isinstance(item, Order):
            orders.append(order_row(item))
        else:
            transactions.append(item)
    return orders, transactions


# -- queries -----------------------------------------------------------------------------------


class _Paged:
    """What a page of a listing is: `limit` matches from the `offset`-th, or after the id
    numbered `cursor`, in the listing's order (oldest first, or `newest_first`)."""

    offset: int
    limit: int | None
    cursor: int | None
    newest_first: bool

    @property
    def end(self) -> int | None:
        """How many matches a page needs from each source."""
        return None if self.limit is None else self.offset + self.limit

    def _beyond(self, number: int) -> bool:
        """True for a number after the cursor, in the listing's order."""
        assert self.cursor is not None
        return number < self.cursor if self.newest_first else number > self.cursor


@dataclass(frozen=True, slots=True)
class OrderQuery(_Paged):
    """Which of an account's orders, and which page of them (`limit` None: all from
    `offset`); creation time bounds are exclusive and, as orders show their times, to the
    microsecond: `after` an order's `created_at` leaves that order out."""

    account_id: AccountId
    status: frozenset[OrderStatus] | None = None
    symbol: Symbol | None = None
    side: Side | None = None
    after_ns: int | None = None
    until_ns: int | None = None
    newest_first: bool = False
    offset: int = 0
    limit: int | None = None
    cursor: int | None = None
    """Only orders after this order id's number in the listing's order (a page's last)."""

    @property
    def low(self) -> int | None:
        """The earliest creation time (ns) that matches, if bounded."""
        return None if self.after_ns is None else (self.after_ns // 1000 + 1) * 1000

    @property
    def high(self) -> int | None:
        """The creation time (ns) from which nothing matches, if bounded."""
        return None if self.until_ns is None else self.until_ns // 1000 * 1000

    def only_open(self) -> bool:
        """True when only open orders can match (they are all kept by the account)."""
        return self.status is not None and self.status <= OPEN_STATUSES

    def matches(self, order: Order) -> bool:
        """True when `order` is one the query asks for."""
        return (
            (self.status is None or order.status in self.status)
            and (self.symbol is None or order.symbol == self.symbol)
            and (self.side is None or order.side is self.side)
            and (self.low is None or order.created_ns >= self.low)
            and (self.high is None or order.created_ns < self.high)
            and (self.cursor is None or self._beyond(id_number(order.order_id, "O-")))
        )

    def complete(
        self, kept: list[OrderSnapshot], dropped_ns: int | None, dropped_number: int
    ) -> bool:
        """True when the account's own matches (`kept`, in the query's order, the first `end`)
        answer the query: it dropped no order that could be on the page (the dropped ones were
        made at `dropped_ns` or before, and numbered `dropped_number` or below)."""
        if dropped_ns is None or self.only_open():
            return True
        low = self.low
        if low is not None and low > dropped_ns:
            return True
        if self.cursor is not None and not self.newest_first and self.cursor >= dropped_number:
            return True
        end = self.end
        if self.newest_first and end is not None and len(kept) >= end:
            return id_number(kept[end - 1].order_id, "O-") > dropped_number
        return False

    def merge(self, kept: list[OrderSnapshot], stored: list[OrderSnapshot]) -> list[OrderSnapshot]:
        """The page from the account's matches and the store's (each the first `end`, in the
        query's order): one of each order, the account's if both have it."""
        seen = {o.order_id for o in kept}
        both = kept + [o for o in stored if o.order_id not in seen]
        # ids are numbered as orders are made: their order is the order of creation
        both.sort(key=lambda o: id_number(o.order_id, "O-"), reverse=self.newest_first)
        end = self.end
        return both[self.offset : end]


@dataclass(frozen=True, slots=True)
class TransactionQuery(_Paged):
    """Which of an account's transactions, and which page of them; time bounds exclusive."""

    account_id: AccountId
    kinds: frozenset[TransactionKind] | None = None
    symbol: Symbol | None = None
    after: datetime | None = None
    until: datetime | None = None
    newest_first: bool = False
    offset: int = 0
    limit: int | None = None
    cursor: int | None = None
    """Only transactions after this number in the listing's order (a page's last)."""

    def matches(self, record: Transaction) -> bool:
        """True when `record` is one the query asks for."""
        return (
            (self.kinds is None or record.kind in self.kinds)
            and (self.symbol is None or record.symbol == self.symbol)
            and (self.after is None or record.at > self.after)
            and (self.until is None or record.at < self.until)
            and (self.cursor is None or self._beyond(transaction_number(record.transaction_id)))
        )

    def page(self, records: Iterable[Transaction]) -> list[Transaction]:
        """The page of `records` (oldest first) that match."""
        ordered = reversed(list(records)) if self.newest_first else iter(records)
        matching = (r for r in ordered if self.matches(r))
        return list(itertools.islice(matching, self.offset, self.end))

    def complete(self, kept: list[Transaction], dropped: int, oldest: datetime | None) -> bool:
        """True when the account's kept transactions answer the query: none dropped, or the
        page lies among the newest kept (`kept` the first `end` matches, newest first), or
        the time range starts after the oldest kept one."""
        if not dropped:
            return True
        if self.after is not None and oldest is not None and self.after >= oldest:
            return True
        if self.cursor is not None and not self.newest_first and self.cursor >= dropped:
            return True
        end = self.end
        return self.newest_first and end is not None and len(kept) >= end
