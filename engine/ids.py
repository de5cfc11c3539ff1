"""Typed identifiers, so that a symbol is never passed where an account id belongs."""

from __future__ import annotations

from array import array
from typing import NewType

AccountId = NewType("AccountId", str)
UserId = NewType("UserId", str)
Symbol = NewType("Symbol", str)
OrderId = NewType("OrderId", str)
TradeId = NewType("TradeId", str)


def id_number(identifier: str, prefix: str) -> int:
    """The number of an id the brokerage numbered ("O-000042" -> 42), else 0."""
    rest = identifier.removeprefix(prefix)
    return int(rest) if rest != identifier and rest.isdigit() else 0


class Routes:
    """Which account each order belongs to, in about 4 bytes per order.

    Order ids are numbered by the brokerage (`O-000042`), so the account of order n is kept at
    position n of an array of small account numbers; accounts are numbered as first seen.
    A dict of strings would cost some 150 bytes an order, for every order ever placed.
    """

    def __init__(self) -> None:
        self._accounts: list[AccountId] = [AccountId("")]  # 0: no account
        self._numbers: dict[AccountId, int] = {}
        self._by_order = array("I")

    def __setitem__(self, order_id: OrderId, account_id: AccountId) -> None:
        n = id_number(order_id, "O-")
        assert n > 0, f"{order_id} is not a numbered order id"
        number = self._numbers.get(account_id)
        if number is None:
            number = self._numbers[account_id] = len(self._accounts)
            self._accounts.append(account_id)
        by_order = self._by_order
        if n >= len(by_order):
            by_order.extend(array("I", bytes(4 * (n + 1 - len(by_order)))))
        by_order[n] = number

    def get(self, order_id: OrderId) -> AccountId | None:
        """The order's account, or None if it has none (unknown, or refused and kept nowhere)."""
        n = id_number(order_id, "O-")
        if not 0 < n < len(self._by_order):
            return None
        number = self._by_order[n]
        return self._accounts[number] if number else None

    def __getitem__(self, order_id: OrderId) -> AccountId:
        account_id = self.get(order_id)
        if account_id is None:
            raise KeyError(order_id)
        return account_id

    def __delitem__(self, order_id: OrderId) -> None:
        n = id_number(order_id, "O-")
        if 0 < n < len(self._by_order):
            self._by_order[n] = 0
