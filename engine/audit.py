"""Cross-account reconciliation: cash and shares conserved to the cent and to the share."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Totals across every account, after every invariant held.

    Attributes:
        shares: Shares held per symbol across all accounts.
        failures: Each actor failure the brokerage recovered from ("AAPL: restarted after
            ...", "AAPL: halted after ..."), oldest first per actor.
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
    failures: list[str] = field(default_factory=list)
    fees: Decimal = Decimal("0.00")
    """Fees every account paid (the brokerage's: in a `book` symbol, cash paid for shares is
    cash received for them, so the accounts' cash is what came in, less what went out and
    these fees)."""


def _totals(accounts: list[AccountAudit], attribute: str) -> dict[Symbol, int]:
    totals: dict[Symbol, int] = {}
    for audit in accounts:
        for symbol, amount in getattr(audit, attribute).items():
            totals[symbol] = totals.get(symbol, 0) + amount
    return totals


def reconcile(accounts: list[AccountAudit], markets: list[MarketAudit]) -> AuditReport:
    """Check what holds across accounts once no request is in flight, and total it up.

    Each account has already reconciled itself with its ledger. Across accounts: in a `book`
    symbol every share bought was sold by another account for the same cash, so shares held
    equal shares granted (less those resets took out) and cash paid equals cash received;
    every open order rests in its book. Raises AssertionError naming the first broken rule.
    O(entries in the audits).
    """
    total = {
        name: _totals(accounts, name)
        for name in (
            "bought",
            "sold",
            "paid",
            "received",
            "held",
            "granted",
            "reserved_shares",
            "fees",
            "removed",
        )
    }
    for market in markets:
        if market.mode is not LiquidityMode.BOOK:
            continue
        symbol = market.symbol

        def of(name: str, symbol: Symbol = symbol) -> int:
            return total[name].get(symbol, 0)

        assert of("bought") == of("sold"), (
            f"{symbol}: {of('bought')} shares bought but {of('sold')} sold"
        )
        assert of("paid") == of("received"), (
            f"{symbol}: {of('paid')} cents paid but {of('received')} received"
        )
        assert of("held") == of("granted") - of("removed"), (
            f"{symbol}: {of('held')} shares held but {of('granted')} granted and "
            f"{of('removed')} taken out by resets"
        )
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
        shares={s: total["held"].get(s, 0) for s in sorted(symbols)},
        reserved_shares={s: total["reserved_shares"].get(s, 0) for s in sorted(symbols)},
        failures=[f"{a.account_id}: {f}" for a in accounts for f in a.failures]
        + [f"{m.symbol}: {f}" for m in markets for f in m.failures],
        fees=cents_to_decimal(sum(total["fees"].values())),
    )
