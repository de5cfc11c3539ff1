"""The history tables (finished orders, transactions) and the SQL that searches them, for
SQLite and PostgreSQL alike: each search is answered from an index on (account, time)."""

from __future__ import annotations

from typing import Any

from engine.history import ORDER_COLUMNS, TRANSACTION_COLUMNS, OrderQuery, TransactionQuery
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
}


def _columns(columns: tuple[str, ...]) -> str:
    first, *rest = columns
    kinds = [f"{first} TEXT PRIMARY KEY"]
    kinds += [f"{name} {_TYPES.get(name, 'TEXT')}" for name in rest]
    return ",\n    ".join(kinds)


def schema(prefix: str) -> list[str]:
    """The statements that create the history tables and their indexes (`prefix` before each
    table's name)."""
    orders, transactions = f"{prefix}orders", f"{prefix}transactions"
    return [
        f"CREATE TABLE IF NOT EXISTS {orders} (\n    {_columns(ORDER_COLUMNS)}\n)",
        f"CREATE INDEX IF NOT EXISTS {orders}_by_account "
        f"ON {orders} (account_id, created_ns, number)",
        f"CREATE INDEX IF NOT EXISTS {orders}_by_client ON {orders} (account_id, client_order_id)",
        f"CREATE TABLE IF NOT EXISTS {transactions} (\n    {_columns(TRANSACTION_COLUMNS)}\n)",
        f"CREATE INDEX IF NOT EXISTS {transactions}_by_account "
        f"ON {transactions} (account_id, number)",
    ]


def upserts(prefix: str, mark: str) -> tuple[str, str]:
    """The statements that keep an order row (replacing one of the same order) and a
    transaction row (once), with `mark` as the parameter placeholder."""

    def upsert(table: str, columns: tuple[str, ...]) -> str:
        marks = ", ".join([mark] * len(columns))
        update = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        return (
            f"INSERT INTO {prefix}{table} ({', '.join(columns)}) VALUES ({marks}) "
            f"ON CONFLICT ({columns[0]}) DO UPDATE SET {update}"
        )

    transaction = (
        f"INSERT INTO {prefix}transactions ({', '.join(TRANSACTION_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(TRANSACTION_COLUMNS))}) "
        f"ON CONFLICT (transaction_id) DO NOTHING"
    )
    return upsert("orders", ORDER_COLUMNS), transaction


def find_orders(query: OrderQuery, prefix: str, mark: str) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) for the finished orders matching `query`, its first
    `query.end` in its order."""
    where, params = ["account_id = " + mark], list[Any]([query.account_id])
    if query.status is not None:
        where.append(f"status IN ({', '.join([mark] * len(query.status))})")
        params += sorted(s.value for s in query.status)
    if query.symbol is not None:
        where.append("symbol = " + mark)
        params.append(query.symbol)
    if query.side is not None:
        where.append("side = " + mark)
        params.append(query.side.value)
    if query.low is not None:
        where.append("created_ns >= " + mark)
        params.append(query.low)
    if query.high is not None:
        where.append("created_ns < " + mark)
        params.append(query.high)
    direction = "DESC" if query.newest_first else "ASC"
    sql = (
        f"SELECT {', '.join(ORDER_COLUMNS)} FROM {prefix}orders WHERE {' AND '.join(where)} "
        f"ORDER BY created_ns {direction}, number {direction}"
    )
    if query.end is not None:
        sql += f" LIMIT {int(query.end)}"
    return sql, params


def find_order(
    order_id: str | None, client: tuple[str, str] | None, prefix: str, mark: str
) -> tuple[str, list[Any]]:
    """The SQL for one order by id, or by (account, client order id)."""
    columns = ", ".join(ORDER_COLUMNS)
    if order_id is not None:
        return f"SELECT {columns} FROM {prefix}orders WHERE order_id = {mark}", [order_id]
    assert client is not None
    return (
        f"SELECT {columns} FROM {prefix}orders "
        f"WHERE account_id = {mark} AND client_order_id = {mark}",
        list(client),
    )


def find_transactions(query: TransactionQuery, prefix: str, mark: str) -> tuple[str, list[Any]]:
    """The SQL for the transactions matching `query`, its first `query.end` in its order."""
    where, params = ["account_id = " + mark], list[Any]([query.account_id])
    if query.kinds is not None:
        where.append(f"kind IN ({', '.join([mark] * len(query.kinds))})")
        params += sorted(k.value for k in query.kinds)
    if query.symbol is not None:
        where.append("symbol = " + mark)
        params.append(query.symbol)
    if query.after is not None:  # stored to the microsecond, as transactions show it
        where.append("at_ns > " + mark)
        params.append(datetime_to_ns(query.after) // 1000 * 1000)
    if query.until is not None:
        where.append("at_ns < " + mark)
        params.append(datetime_to_ns(query.until) // 1000 * 1000)
    direction = "DESC" if query.newest_first else "ASC"
    sql = (
        f"SELECT {', '.join(TRANSACTION_COLUMNS)} FROM {prefix}transactions "
        f"WHERE {' AND '.join(where)} ORDER BY number {direction}"
    )
    if query.end is not None:
        sql += f" LIMIT {int(query.end)}"
    return sql, params
