"""Typed identifiers, so that a symbol is never passed where an account id belongs."""

from __future__ import annotations

from typing import NewType

AccountId = NewType("AccountId", str)
UserId = NewType("UserId", str)
Symbol = NewType("Symbol", str)
OrderId = NewType("OrderId", str)
TradeId = NewType("TradeId", str)
