"""An account's equity over time, rebuilt from its transactions and its symbols' bars.

Equity at a moment is cash plus each holding at the price then. Going back from now, each
transaction is undone in turn (newest first): so the cash and the holdings at every earlier
moment follow from the account as it stands and what it did since, exactly, with no sampling.
A price then is the close of the symbol's last bar that ended by that moment. Profit and loss
at a moment is the equity then less the equity at the first moment and the cash and shares that
came in or went out between (deposits, withdrawals, and grants at their stated cost), so that
moving money in or out is no profit. A reset's removal of shares is shares going out at their
cost; its deposit or withdrawal moves cash in or out like any other.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from engine.account import Transaction, TransactionKind
from engine.errors import ValidationError
from engine.ids import AccountId, Symbol
from engine.money import cents_to_decimal, percent
from engine.orders import datetime_to_ns, ns_to_datetime

_SECOND = 1_000_000_000
_DAY = 86_400 * _SECOND
TIMEFRAMES: dict[str, int] = {
    "1Min": 60 * _SECOND,
    "5Min": 300 * _SECOND,
    "15Min": 900 * _SECOND,
    "1H": 3_600 * _SECOND,
    "1D": _DAY,
}
"""The steps of a history, as Alpaca names them, in nanoseconds (each aligned to UTC)."""
BAR_INTERVAL = {"1Min": "1m", "5Min": "5m", "15Min": "5m", "1H": "5m", "1D": "1d"}
"""The bars whose closes price each step (their intervals divide it)."""
_UNITS = {"D": _DAY, "W": 7 * _DAY, "M": 30 * _DAY, "A": 365 * _DAY}
_PERIOD = re.compile(r"([1-9][0-9]{0,3})([DWMA])")
MAX_POINTS = 10_000
"""Points a history may have: a longer period needs a longer step."""
_EARLIEST = datetime_to_ns(datetime(1, 1, 2, tzinfo=UTC))
"""The earliest moment a history reaches back to (a datetime holds nothing before year 1)."""


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """Which moments a history has: every `step` (aligned to UTC) within `period` up to its
    end (now, or an earlier `end`), and its end."""

    period: str
    """As asked ("" for a window from a given start)."""
    timeframe: str
    start_ns: int
    points: tuple[int, ...]
    now_ns: int = 0
    """When it was asked for (a moment from then on is priced at the price now)."""

    @classmethod
    def parse(
        cls,
        period: object,
        timeframe: object,
        now_ns: int,
        end_ns: int | None = None,
        start_ns: int | None = None,
    ) -> HistoryWindow:
        """Read Alpaca's `period` (a number and D, W, M or A: days, weeks, months of 30 days,
        years of 365) and `timeframe` (1Min, 5Min, 15Min, 1H or 1D; None: 1Min below 7 days,
        15Min below 30, else 1D, as Alpaca chooses), back from `end_ns` (None, or later than
        `now_ns`: now); or from `start_ns` (then `period` is not read) to the end.

        Raises:
            ValidationError: for another period or timeframe, a start not before the end, or
                a window of more than 10,000 points.
        """
        end = now_ns if end_ns is None else min(end_ns, now_ns)
        if start_ns is not None:
            if start_ns >= end:
                raise ValidationError("start", "must be before the end (or now)", start_ns)
            length = end - start_ns
            period = ""  # (not read: the window is from its start)
        else:
            if not isinstance(period, str) or not (found := _PERIOD.fullmatch(period)):
                raise ValidationError(
                    "period", "must be a number and D, W, M or A (1D, 2W, 3M, 1A)", period
                )
            length = int(found[1]) * _UNITS[found[2]]
        if timeframe is None:
            timeframe = "1Min" if length < 7 * _DAY else "15Min" if length < 30 * _DAY else "1D"
        if not isinstance(timeframe, str) or timeframe not in TIMEFRAMES:
            raise ValidationError("timeframe", f"must be one of {', '.join(TIMEFRAMES)}", timeframe)
        step = TIMEFRAMES[timeframe]
        if length // step > MAX_POINTS:
            raise ValidationError(
                "timeframe",
                f"makes more than {MAX_POINTS:,} points over the window: take a longer one",
                timeframe,
            )
        start = max(end - length, _EARLIEST)
        first = -(-start // step) * step
        points = list(range(first, end, step))
        return cls(period, timeframe, start, (*points, end), now_ns)


@dataclass(frozen=True, slots=True)
class PortfolioHistory:
    """An account's equity at each moment of a window, with P/L since its first moment.

    Attributes:
        base_value: The equity at the first moment.
        cashflow: Cash and shares (at their stated cost) that came in, less what went out,
            after the first moment and by each moment.
        profit_loss: Equity less `base_value` less `cashflow`, at each moment.
        profit_loss_percent: That over `base_value` plus `cashflow` (None while that is 0).
        known_since: The first moment the account's transactions reach (the window's start, or
            later where an account without a store no longer keeps older ones, or was opened
            after it); there are no moments before it.
    """

    account_id: AccountId
    period: str
    timeframe: str
    timestamps: tuple[datetime, ...]
    equity: tuple[Decimal, ...]
    profit_loss: tuple[Decimal, ...]
    profit_loss_percent: tuple[Decimal | None, ...]
    cashflow: tuple[Decimal, ...]
    base_value: Decimal
    known_since: datetime
    moved: dict[str, tuple[Decimal, ...]] = field(default_factory=dict)
    """Per kind of transaction that moves money or shares in or out (deposit, withdrawal,
    grant, removal, fee), what it moved in (negative: out) between the moment before and
    each moment (the first: nothing)."""


class Prices:
    """A symbol's price at past moments: the close of its last bar that ended by then (finer
    bars first, then day bars for what they no longer reach), or its earliest known price."""

    def __init__(self, bars: Iterable[tuple[int, int, int]], now_price: int) -> None:
        """`bars`: (start_ns, end_ns, close) of every bar known, any interval, any order."""
        ended = sorted((end, start, close) for start, end, close in bars)
        self._ends = [end for end, _, _ in ended]
        self._closes = [close for _, _, close in ended]
        self._first = self._closes[0] if ended else now_price
        self._now = now_price

    def at(self, moment_ns: int, now_ns: int) -> int:
        if moment_ns >= now_ns:
            return self._now
        where = bisect.bisect_right(self._ends, moment_ns)
        return self._closes[where - 1] if where else self._first


_MOVES = {
    TransactionKind.DEPOSIT: 1,
    TransactionKind.GRANT: 1,
    TransactionKind.WITHDRAWAL: -1,
    TransactionKind.REMOVAL: -1,
    TransactionKind.FEE: -1,
}
"""The kinds of transaction that move money or shares in (1) or out (-1). All but fees are
money put in or taken out, which is no profit or loss; a fee is a loss."""


def _cents(record: Transaction) -> int:
    return int(record.amount * 100)


def _undo(record: Transaction, cash: int, held: dict[Symbol, int]) -> int:
    """Undo `record` on `held`; return the cash before it."""
    cents = _cents(record)
    kind = record.kind
    if kind is TransactionKind.DEPOSIT:
        return cash - cents
    if kind is TransactionKind.WITHDRAWAL or kind is TransactionKind.FEE:
        return cash + cents
    if kind is TransactionKind.RESET:
        return cash
    assert record.symbol is not None
    assert record.quantity is not None
    if kind is TransactionKind.SELL or kind is TransactionKind.REMOVAL:
        held[record.symbol] = held.get(record.symbol, 0) + record.quantity
        return cash - cents if kind is TransactionKind.SELL else cash
    held[record.symbol] = held.get(record.symbol, 0) - record.quantity
    return cash + cents if kind is TransactionKind.BUY else cash


def equity_history(
    account_id: AccountId,
    window: HistoryWindow,
    cash: int,
    held: Mapping[Symbol, int],
    since: list[Transaction],
    known_from_ns: int,
    prices: Mapping[Symbol, Prices],
) -> PortfolioHistory:
    """The equity at each of `window`'s moments from or after `known_from_ns`: `cash` and
    `held` are the account now, `since` every transaction it made after the window's start,
    newest first. O(p * h + t) for p moments, h symbols held and t transactions."""
    now = window.now_ns or window.points[-1]
    holdings = dict(held)
    rows: list[tuple[int, int, int]] = []  # (moment, equity, inflow after it)
    moves: list[dict[str, int]] = []  # per row: what moved in the interval ending at it
    later = 0  # what came in after the moment
    undone = 0
    for moment in reversed(window.points):
        if moment < known_from_ns:
            break
        moved: dict[str, int] = {}
        while undone < len(since) and datetime_to_ns(since[undone].at) > moment:
            record = since[undone]
            cash = _undo(record, cash, holdings)
            sign = _MOVES.get(record.kind)
            if sign is not None:
                amount = sign * _cents(record)
                if record.kind is not TransactionKind.FEE:
                    later += amount
                kind = record.kind.value
                moved[kind] = moved.get(kind, 0) + amount
            undone += 1
        if moves:  # between this moment and the one after it (past the last: no interval)
            moves[-1] = moved
        moves.append({})
        value = sum(
            quantity * prices[symbol].at(moment, now)
            for symbol, quantity in holdings.items()
            if quantity
        )
        rows.append((moment, cash + value, later))
    rows.reverse()
    known_since = ns_to_datetime(max(known_from_ns, window.start_ns))
    if not rows:  # the window ends before what its transactions reach: no moment to show
        empty = ()
        zero = cents_to_decimal(0)
        return PortfolioHistory(
            account_id,
            window.period,
            window.timeframe,
            empty,
            empty,
            empty,
            empty,
            empty,
            zero,
            known_since,
        )
    moves.reverse()
    kinds = sorted({kind for row in moves for kind in row})
    moved_by_kind = {
        kind: tuple(cents_to_decimal(row.get(kind, 0)) for row in moves) for kind in kinds
    }
    base, first_later = rows[0][1], rows[0][2]
    profit = []
    percents = []
    flows = []
    for _, equity, after in rows:
        flow = first_later - after
        pl = equity - base - flow
        profit.append(cents_to_decimal(pl))
        percents.append(percent(pl, base + flow) if base + flow > 0 else None)
        flows.append(cents_to_decimal(flow))
    return PortfolioHistory(
        account_id=account_id,
        period=window.period,
        timeframe=window.timeframe,
        timestamps=tuple(ns_to_datetime(moment) for moment, _, _ in rows),
        equity=tuple(cents_to_decimal(equity) for _, equity, _ in rows),
        profit_loss=tuple(profit),
        profit_loss_percent=tuple(percents),
        cashflow=tuple(flows),
        base_value=cents_to_decimal(base),
        known_since=known_since,
        moved=moved_by_kind,
    )


@dataclass(frozen=True, slots=True)
class PositionToday:
    """One holding's day: its price at the day's start (the previous day's close) and its P/L
    since then (`None` where the account's transactions of the day are not all known)."""

    symbol: Symbol
    lastday_price: Decimal
    change_today_percent: Decimal | None
    intraday_pl: Decimal | None
    intraday_pl_percent: Decimal | None


@dataclass(frozen=True, slots=True)
class Today:
    """An account's day so far, from the start of the day (UTC, as the day bars): its equity
    then (`last_equity`, at the previous day's closes) and each holding's P/L since (the
    shares held then at the previous close, those bought or granted today at what they cost,
    less what today's sells brought in); None where its transactions of the day are not all
    known (an account without a store that no longer keeps them)."""

    account_id: AccountId
    since: datetime
    last_equity: Decimal | None
    positions: tuple[PositionToday, ...]


def day_of(
    account_id: AccountId,
    since_ns: int,
    cash: int,
    held: Mapping[Symbol, int],
    today: list[Transaction] | None,
    prices: Mapping[Symbol, tuple[int, int]],
) -> Today:
    """The account's day: `cash` and `held` now, `today` its transactions since `since_ns`
    (None: not all known), `prices` each symbol's (price at the day's start, price now)."""
    holdings = dict(held)
    spent: dict[Symbol, int] = {}
    known = today is not None
    for record in today or ():
        cash = _undo(record, cash, holdings)
        symbol = record.symbol
        if symbol is not None and record.kind is not TransactionKind.FEE:
            out = record.kind is TransactionKind.SELL or record.kind is TransactionKind.REMOVAL
            spent[symbol] = spent.get(symbol, 0) + (-1 if out else 1) * _cents(record)
    rows = []
    for symbol, quantity in sorted(held.items()):
        before, now = prices[symbol]
        change = now - before
        basis = holdings.get(symbol, 0) * before + spent.get(symbol, 0)
        pl = quantity * now - basis
        rows.append(
            PositionToday(
                symbol,
                cents_to_decimal(before),
                percent(change, before),
                cents_to_decimal(pl) if known else None,
                (percent(pl, basis) if basis > 0 else None) if known else None,
            )
        )
    last = cash + sum(q * prices[s][0] for s, q in holdings.items() if q) if known else None
    return Today(
        account_id,
        ns_to_datetime(since_ns),
        None if last is None else cents_to_decimal(last),
        tuple(rows),
    )
