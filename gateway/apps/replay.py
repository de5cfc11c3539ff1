"""`brokerage replay`: rebuild a brokerage from its journal at any position and show it.

    brokerage replay brokerage-data                 # the state now
    brokerage replay brokerage-data --until 5000    # after the first 5,000 facts
    brokerage replay sqlite:///run.db --until-time 2026-11-27T14:30:00Z --json

The journal is only read. The state at a position is what a recovery there would give: the
facts up to it, then the account effects still pending applied and the orders still on their
way to their book cancelled (`interrupted`), so a simulation run with a store can be inspected
after the fact at any moment.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from engine.account import value_portfolio
from engine.audit import reconcile
from engine.journal import State
from engine.money import cents_to_decimal
from engine.orders import Side, datetime_to_ns
from gateway.stores import open_journal


def store_of(where: str) -> str:
    """A store URL as given, or the journal in a `--data` folder."""
    if "://" in where:
        return where
    return f"sqlite:///{Path(where) / 'brokerage.db'}"


def replay(store: str, until: int | None = None, until_time: datetime | None = None) -> State:
    """The state after the first `until` facts (all by default), or after every fact made at
    or before `until_time`."""
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).is_file():
        raise SystemExit(f"no journal at {store.removeprefix('sqlite:///')}")
    journal = open_journal(store, "os")
    state = State()
    limit_ns = None if until_time is None else datetime_to_ns(until_time)
    try:
        for fact in journal.facts():
            if until is not None and state.facts >= until:
                break
            at_ns = getattr(fact, "at_ns", None)
            if limit_ns is not None and at_ns is not None and at_ns > limit_ns:
                break
            state.apply(fact)
    finally:
        journal.close()
    state.finish()
    state.interrupt_unsubmitted()  # in flight at that position: as a recovery there would
    return state


def report(state: State) -> dict[str, Any]:
    """What the state holds: each account's cash, holdings and P/L, each book's best levels and
    the audit (every account reconciled with its ledger, cash and shares conserved)."""
    prices = {symbol: market.price for symbol, market in state.markets.items()}
    accounts = []
    for account in state.accounts.values():
        portfolio = value_portfolio(account.state(), prices)
        accounts.append(
            {
                "account_id": account.account_id,
                "user_id": account.user_id,
                "cash": str(portfolio.cash),
                "reserved": str(cents_to_decimal(account.reserved_cash)),
                "net_worth": str(portfolio.net_worth),
                "realized_pl": str(portfolio.realized_pl),
                "unrealized_pl": str(portfolio.unrealized_pl),
                "fees": str(portfolio.fees),
                "holdings": {h.symbol: h.quantity for h in portfolio.holdings},
                "open_orders": len(account.open),
                "orders": len(account.orders),
            }
        )
    books = []
    for symbol, market in state.markets.items():
        best = {}
        for side in (Side.BUY, Side.SELL):
            level = market.book.best(side)
            best[side.value] = (
                None if level is None else {"price": str(cents_to_decimal(level.price))}
            )
        books.append(
            {
                "symbol": symbol,
                "price": str(cents_to_decimal(market.price)),
                "volume": market.volume,
                "resting": len(market.book),
                "best_bid": best["buy"],
                "best_ask": best["sell"],
            }
        )
    audit = reconcile(
        [account.audit() for account in state.accounts.values()],
        [market.audit() for market in state.markets.values()],
    )
    return {
        "facts": state.facts,
        "digest": state.digest(),
        "fees": None if state.fees is None else state.fees.text(),
        "accounts": accounts,
        "books": books,
        "audit": {
            "accounts": audit.accounts,
            "cash": str(audit.cash),
            "deposited": str(audit.deposited),
            "withdrawn": str(audit.withdrawn),
            "fees": str(audit.fees),
            "open_orders": audit.open_orders,
            "shares": audit.shares,
        },
    }
