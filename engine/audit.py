"""Cross-account reconciliation: cash and shares conserved to the cent and to the share."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.account import AccountAudit
from engine.ids import Symbol
from engine.money import cents_to_decimal
from engine.orders import LiquidityMode


@dataclass(frozen=True, slots=True)
class MarketAudit:
    """One symbol's book after its `check()`: its mode and how many orders rest in it."""

    symbol: Symbol
    mode: LiquidityMode
    resting_orders: int
    volume: int


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Totals across every account, after every invariant held.

    Attributes:
        shares: Shares held per symbol across all accounts.
    """

    accounts: int
    cash: Decimal
    reserved_cash: Decimal
    deposited: Decimal
    withdrawn: Decimal
    open_orders: int
    resting_orders: int
    shares: dict[str, int]
    reserved_shares: dict[str, int]


def _total(audits: list[AccountAudit], attribute: str, symbol: Symbol) -> int:
    return sum(getattr(a, attribute).get(symbol, 0) for a in audits)


def reconcile(accounts: list[AccountAudit], markets: list[MarketAudit]) -> AuditReport:
    """Check what holds across accounts once no request is in flight, and total it up.

    Each account has already reconciled itself with its ledger. Across accounts: in a `book`
    symbol every share bought was sold by another account for the same cash, so shares held
    equal shares granted and cash paid equals cash received; every open order rests in its
    book. Raises AssertionError naming the first broken rule. O(accounts x symbols).
    """
    for market in markets:
        if market.mode is not LiquidityMode.BOOK:
            continue
        symbol = market.symbol
        bought, sold = _total(accounts, "bought", symbol), _total(accounts, "sold", symbol)
        assert bought == sold, f"{symbol}: {bought} shares bought but {sold} sold"
        paid, received = _total(accounts, "paid", symbol), _total(accounts, "received", symbol)
        assert paid == received, f"{symbol}: {paid} cents paid but {received} received"
        held, granted = _total(accounts, "held", symbol), _total(accounts, "granted", symbol)
        assert held == granted, f"{symbol}: {held} shares held but {granted} granted"
    open_orders = sum(a.open_orders for a in accounts)
    resting = sum(m.resting_orders for m in markets)
    assert open_orders == resting, f"{open_orders} open orders but {resting} resting in books"
    symbols = {m.symbol for m in markets}
    return AuditReport(
        accounts=len(accounts),
        cash=cents_to_decimal(sum(a.cash for a in accounts)),
        reserved_cash=cents_to_decimal(sum(a.reserved_cash for a in accounts)),
        deposited=cents_to_decimal(sum(a.deposited for a in accounts)),
        withdrawn=cents_to_decimal(sum(a.withdrawn for a in accounts)),
        open_orders=open_orders,
        resting_orders=resting,
        shares={s: _total(accounts, "held", s) for s in sorted(symbols)},
        reserved_shares={s: _total(accounts, "reserved_shares", s) for s in sorted(symbols)},
    )
