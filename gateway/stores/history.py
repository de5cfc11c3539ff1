"""The history tables (finished orders, transactions) and the SQL that searches them, for
SQLite and PostgreSQL alike: each search is answered from an index on (account, number) or
(account, time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.history import (
    ADDED_ORDER_COLUMNS,
    ADDED_TRANSACTION_COLUMNS,
    ORDER_COLUMNS,
    TRANSACTION_COLUMNS,
    OrderQuery,
    TransactionQuery,
)
from engine.ids import id_number
from engine.orders import datetime_to_ns

_TYPES = {
    "number": "BIGINT NOT NULL",
    "quantity": "BIGINT",
    "limit_price": "BIGINT",
    "reserve_price": "BIGINT",
    "created_ns": "BIGINT NOT NULL",
    "filled_quantity": "BIGINT NOT NULL",
    "filled_cents": "BIGINT NOT NULL",
    "updated_ns": "BIGINT NOT NULL",
    "amount": "BIGINT NOT NULL",
    "at_ns": "BIGINT NOT NULL",
    "price": "BIGINT",
    "leaves": "BIGINT",
    "filled": "BIGINT",
    "stop_price": "BIGINT",
    "trail_price": "BIGINT",
    "trail_bps": "BIGINT",
    "hwm": "BIGINT",
    "triggered_ns": "BIGINT",
}


def _columns(columns: tuple[str, ...], types: dict[str, str]) -> str:
    return ",\n    ".join(f"{name} {types.get(name, 'TEXT')}" for name in columns)


def schema(prefix: str, sqlite: bool) -> list[str]:
    """The statements that create the history tables and their indexes (`prefix` before each
    table's name). Each index costs every write, so there are few: an order is found by its
    number (the table's key: in SQLite its rowid), an account's orders by number or by time
    (and by client order id, for the orders that have one); a transaction by account and
    number (the table's only key)."""
    orders, transactions = f"{prefix}orders", f"{prefix}transactions"
    key = "INTEGER PRIMARY KEY" if sqlite else "BIGINT PRIMARY KEY"
    order_columns = _columns(ORDER_COLUMNS, {**_TYPES, "number": key})
    transaction_columns = _columns(TRANSACTION_COLUMNS, _TYPES)
    without_rowid = " WITHOUT ROWID" if sqlite else ""
    return [
        f"CREATE TABLE IF NOT EXISTS {orders} (\n    {order_columns}\n)",
        f"CREATE INDEX IF NOT EXISTS {orders}_by_account ON {orders} (account_id, number)",
        f"CREATE INDEX IF NOT EXISTS {orders}_by_time ON {orders} (account_id, created_ns)",
        f"CREATE INDEX IF NOT EXISTS {orders}_by_client ON {orders} (account_id, client_order_id)"
        " WHERE client_order_id IS NOT NULL",
        f"CREATE TABLE IF NOT EXISTS {transactions} (\n    {transaction_columns},\n"
        f"    PRIMARY KEY (account_id, number)\n){without_rowid}",
    ]


def added_columns(prefix: str, present: Callable[[str], set[str]]) -> list[str]:
    """The statements that add to the tables an earlier release made the columns they lack
    (`present(table)`: the columns a table has)."""
    return [
        f"ALTER TABLE {prefix}{table} ADD COLUMN {name} {_TYPES.get(name, 'TEXT')}"
        for table, added in (
            ("orders", ADDED_ORDER_COLUMNS),
            ("transactions", ADDED_TRANSACTION_COLUMNS),
        )
        for name in added
        if name not in present(f"{prefix}{table}")
    ]


def upserts(prefix: str, mark: str) -> tuple[str, str]:
    """The statements that keep an order row (replacing one of the same order) and a
    transaction row (once), with `mark` as the parameter placeholder."""
    marks = ", ".join([mark] * len(ORDER_COLUMNS))
    update = ", ".join(f"{c} = excluded.{c}" for c in ORDER_COLUMNS if c != "number")
    order = (
        f"INSERT INTO {prefix}orders ({', '.join(ORDER_COLUMNS)}) VALUES ({marks}) "
        f"ON CONFLICT (number) DO UPDATE SET {update}"
    )
    transaction = (
        f"INSERT INTO {prefix}transactions ({', '.join(TRANSACTION_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(TRANSACTION_COLUMNS))}) "
        f"ON CONFLICT (account_id, number) DO NOTHING"
    )
    return order, transaction


class _Where:
    """The terms of a WHERE clause and their parameters, with `mark` as the placeholder."""

    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.terms: list[str] = []
        self.params: list[Any] = []

    def add(self, term: str, value: Any) -> None:
        """`term` then a placeholder for `value`, unless `value` is None (no filter)."""
        if value is not None:
            self.terms.append(term + self.mark)
            self.params.append(value)

    def any_of(self, column: str, values: list[str] | None) -> None:
        """`column` one of `values`, unless None."""
        if values is not None:
            self.terms.append(f"{column} IN ({', '.join([self.mark] * len(values))})")
            self.params += values


def _page(
    table: str, columns: tuple[str, ...], where: _Where, query: OrderQuery | TransactionQuery
) -> tuple[str, list[Any]]:
    """A page of `table` in the query's order of `number`, after its cursor, `end` at most."""
    if query.cursor is not None:
        where.add("number < " if query.newest_first else "number > ", query.cursor)
    direction = "DESC" if query.newest_first else "ASC"
    sql = (
        f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(where.terms)} "
        f"ORDER BY number {direction}"
    )
    if query.end is not None:
        sql += f" LIMIT {int(query.end)}"
    return sql, where.params


def find_orders(query: OrderQuery, prefix: str, mark: str) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) for the finished orders matching `query`, its first
    `query.end` in its order."""
    where = _Where(mark)
    where.add("account_id = ", query.account_id)
    where.any_of("status", None if query.status is None else sorted(s.value for s in query.status))
    where.add("symbol = ", query.symbol)
    where.add("side = ", None if query.side is None else query.side.value)
    where.add("created_ns >= ", query.low)
    where.add("created_ns < ", query.high)
    return _page(f"{prefix}orders", ORDER_COLUMNS, where, query)


def find_order(
    order_id: str | None, client: tuple[str, str] | None, prefix: str, mark: str
) -> tuple[str, list[Any]]:
    """The SQL for one order by id, or by (account, client order id)."""
    columns = ", ".join(ORDER_COLUMNS)
    if order_id is not None:
        sql = f"SELECT {columns} FROM {prefix}orders WHERE number = {mark} AND order_id = {mark}"
        return sql, [id_number(order_id, "O-"), order_id]
    assert client is not None
    return (
        f"SELECT {columns} FROM {prefix}orders "
        f"WHERE account_id = {mark} AND client_order_id = {mark}",
        list(client),
    )


def find_transactions(query: TransactionQuery, prefix: str, mark: str) -> tuple[str, list[Any]]:
    """The SQL for the transactions matching `query`, its first `query.end` in its order."""
    where = _Where(mark)
    where.add("account_id = ", query.account_id)
    where.any_of("kind", None if query.kinds is None else sorted(k.value for k in query.kinds))
    where.add("symbol = ", query.symbol)
    # times are stored to the microsecond, as transactions show them
    where.add("at_ns > ", None if query.after is None else datetime_to_ns(query.after))
    where.add("at_ns < ", None if query.until is None else datetime_to_ns(query.until))
    return _page(f"{prefix}transactions", TRANSACTION_COLUMNS, where, query)
