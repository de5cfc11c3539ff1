"""Equity over time rebuilt backwards from transactions, against worked examples and against a
forward replay of random transactions; an account's day (last equity, intraday P/L)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.account import Transaction, TransactionKind
from engine.equity import HistoryWindow, Prices, day_of, equity_history
from engine.errors import ValidationError
from engine.ids import AccountId, Symbol
from engine.money import cents_to_decimal
from engine.orders import ns_to_datetime

S = 1_000_000_000
HOUR = 3600 * S
DAY = 24 * HOUR
NOW = 1_800_000_000 * S + 30 * 60 * S  # half past an hour
A = AccountId("A-1")
X, Y = Symbol("X"), Symbol("Y")


def record(
    number: int,
    kind: TransactionKind,
    cents: int,
    at_ns: int,
    symbol: str | None = None,
    qty: int | None = None,
) -> Transaction:
    return Transaction(
        f"A-1-{number}",
        A,
        kind,
        cents_to_decimal(cents),
        ns_to_datetime(at_ns),
        symbol=None if symbol is None else Symbol(symbol),
        quantity=qty,
    )


def test_a_window_has_every_aligned_step_of_its_period_and_now() -> None:
    window = HistoryWindow.parse("1D", "1H", NOW)
    assert len(window.points) == 25  # 24 whole hours and now
    assert all(p % HOUR == 0 for p in window.points[:-1])
    assert window.points[0] == NOW - DAY + 30 * 60 * S
    assert window.points[-1] == NOW
    assert HistoryWindow.parse("5D", None, NOW).timeframe == "1Min"
    assert HistoryWindow.parse("2W", None, NOW).timeframe == "15Min"
    assert HistoryWindow.parse("1A", None, NOW).timeframe == "1D"


@pytest.mark.parametrize(
    ("period", "timeframe", "message"),
    [
        ("1X", None, "period must be a number and D, W, M or A"),
        ("0D", None, "period must be a number"),
        ("99999D", None, "period must be a number"),
        ("1D", "2H", "timeframe must be one of 1Min, 5Min, 15Min, 1H, 1D"),
        ("1A", "1Min", "timeframe makes more than 10,000 points over the window"),
        (None, None, "period must be"),
    ],
)
def test_a_bad_window_is_refused_with_what_was_wrong(
    period: object, timeframe: object, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        HistoryWindow.parse(period, timeframe, NOW)


def test_a_price_then_is_the_close_of_the_last_bar_ended_by_then() -> None:
    prices = Prices([(0, 60, 100), (60, 120, 110), (120, 180, 120)], now_price=125)
    assert prices.at(59, 1000) == 100  # no bar ended yet: the earliest known price
    assert prices.at(60, 1000) == 100
    assert prices.at(179, 1000) == 110
    assert prices.at(500, 1000) == 120
    assert prices.at(1000, 1000) == 125  # now: the price now


def test_equity_is_rebuilt_backwards_and_pl_leaves_out_money_moved_in_and_out() -> None:
    window = HistoryWindow.parse("1D", "1H", NOW)
    start = window.points[0]
    prices = {
        X: Prices(
            [(start, start + HOUR, 100_00), (start + 2 * HOUR, start + 3 * HOUR, 110_00)], 120_00
        )
    }
    since = [  # newest first
        record(4, TransactionKind.DEPOSIT, 500_00, start + 3 * HOUR + S),
        record(3, TransactionKind.FEE, 1_00, start + HOUR),
        record(2, TransactionKind.BUY, 1_000_00, start + HOUR, "X", 10),
    ]
    history = equity_history(A, window, 9_499_00, {X: 10}, since, start - HOUR, prices)
    assert history.base_value == Decimal("10000.00")  # before the buy, all cash
    assert history.equity[:4] == tuple(
        map(Decimal, ("10000.00", "9999.00", "9999.00", "10099.00"))
    )  # the buy at 100 (+ $1 fee), then X at 110
    assert history.equity[4] == Decimal("10599.00")  # the $500 deposit
    assert history.profit_loss[4] == Decimal("99.00")  # ... is no profit
    assert history.cashflow[4] == Decimal("500.00")
    assert history.equity[-1] == Decimal("10699.00")  # now: X at 120
    assert history.profit_loss[-1] == Decimal("199.00")
    assert history.profit_loss_percent[-1] == Decimal("1.90")  # of 10,500 put in
    assert len(history.timestamps) == 25
    # what moved in or out, in the interval ending at each moment
    assert history.moved["deposit"][4] == Decimal("500.00")
    assert history.moved["fee"][1] == Decimal("-1.00")
    assert sum(history.moved["deposit"]) == Decimal("500.00")
    assert set(history.moved) == {"deposit", "fee"}


def test_nothing_is_shown_before_what_the_transactions_reach() -> None:
    window = HistoryWindow.parse("1D", "1H", NOW)
    opened = window.points[10] + 5 * S
    since = [record(1, TransactionKind.DEPOSIT, 100_00, opened)]
    history = equity_history(A, window, 100_00, {}, since, opened, {})
    assert history.timestamps[0] == ns_to_datetime(window.points[11])
    assert history.known_since == ns_to_datetime(opened)
    assert set(history.equity) == {Decimal("100.00")}


events = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdraw", "buy", "sell", "fee", "grant", "removal"]),
        st.sampled_from([X, Y]),
        st.integers(1, 20),
        st.integers(1, 500_00),
        st.integers(1, 3 * HOUR // 1000).map(lambda us: us * 1000),  # times are kept to the µs
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(events=events, timeframe=st.sampled_from(["1Min", "15Min", "1H"]))
def test_rebuilding_backwards_gives_what_a_forward_replay_held_at_every_moment(
    events: list[tuple[str, Symbol, int, int, int]], timeframe: str
) -> None:
    window = HistoryWindow.parse("1D", timeframe, NOW)
    start = window.points[0]
    cash, held = 10_000_00, {X: 5, Y: 0}
    at = start
    done: list[tuple[int, int, dict[Symbol, int]]] = []  # (time, cash after, held after)
    records = []
    flows = []
    for n, (kind, symbol, quantity, cents, gap) in enumerate(events, start=2):
        at = min(at + gap, NOW - 1)
        if kind == "deposit":
            cash += cents
            records.append(record(n, TransactionKind.DEPOSIT, cents, at))
            flows.append((at, cents))
        elif kind == "withdraw" and cash >= cents:
            cash -= cents
            records.append(record(n, TransactionKind.WITHDRAWAL, cents, at))
            flows.append((at, -cents))
        elif kind == "fee" and cash >= cents:
            cash -= cents
            records.append(record(n, TransactionKind.FEE, cents, at, symbol))
        elif kind == "buy" and cash >= cents:
            cash -= cents
            held[symbol] += quantity
            records.append(record(n, TransactionKind.BUY, cents, at, symbol, quantity))
        elif kind == "sell" and held[symbol] >= quantity:
            cash += cents
            held[symbol] -= quantity
            records.append(record(n, TransactionKind.SELL, cents, at, symbol, quantity))
        elif kind == "removal" and held[symbol] >= quantity:  # a reset's, at a stated cost
            held[symbol] -= quantity
            records.append(record(n, TransactionKind.REMOVAL, cents, at, symbol, quantity))
            flows.append((at, -cents))
        elif kind == "grant":
            held[symbol] += quantity
            records.append(record(n, TransactionKind.GRANT, cents, at, symbol, quantity))
            flows.append((at, cents))
        else:
            continue
        done.append((at, cash, dict(held)))
    bars = {
        X: Prices(
            [(start + k * 60 * S, start + (k + 1) * 60 * S, 100_00 + k) for k in range(1440)], 99_00
        ),
        Y: Prices(
            [(start + k * 60 * S, start + (k + 1) * 60 * S, 50_00 + 2 * k) for k in range(1440)],
            49_00,
        ),
    }
    history = equity_history(A, window, cash, held, list(reversed(records)), start - HOUR, bars)
    assert len(history.timestamps) == len(window.points)
    first_flow = None
    for moment, equity, flow in zip(window.points, history.equity, history.cashflow, strict=True):
        then_cash, then_held = 10_000_00, {X: 5, Y: 0}
        for when, after_cash, after_held in done:
            if when <= moment:
                then_cash, then_held = after_cash, after_held
        value = sum(q * bars[s].at(moment, NOW) for s, q in then_held.items())
        assert equity == cents_to_decimal(then_cash + value)
        came = sum(c for when, c in flows if when <= moment)
        if first_flow is None:
            first_flow = came
        assert flow == cents_to_decimal(came - first_flow)


def test_the_day_counts_shares_held_overnight_at_the_last_close_and_todays_at_their_cost() -> None:
    start = NOW - NOW % DAY
    today = [  # newest first
        record(9, TransactionKind.SELL, 330_00, start + 3 * HOUR, "Y", 3),
        record(8, TransactionKind.FEE, 1_00, start + 2 * HOUR, "X"),
        record(7, TransactionKind.BUY, 1_050_00, start + 2 * HOUR, "X", 10),
        record(6, TransactionKind.DEPOSIT, 2_000_00, start + HOUR),
    ]
    # now: 15 X (5 held overnight, last close $100; 10 bought at $105), 2 Y (5 overnight at $100)
    day = day_of(
        A, start, 5_000_00, {X: 15, Y: 2}, today, {X: (100_00, 108_00), Y: (100_00, 90_00)}
    )
    x, y = day.positions
    assert (x.symbol, x.lastday_price, x.change_today_percent) == (
        X,
        Decimal("100.00"),
        Decimal("8.00"),
    )
    assert x.intraday_pl == Decimal("70.00")  # 15 * 108 - (5 * 100 + 1,050)
    assert x.intraday_pl_percent == Decimal("4.52")  # of 1,550
    assert y.intraday_pl == Decimal("10.00")  # 2 * 90 - (5 * 100 - 330)
    # last close: cash before today's moves 5,000 - 2,000 + 1,050 + 1 - 330, and 5 X and 5 Y
    assert day.last_equity == Decimal("3721.00") + Decimal("1000.00")
    unknown = day_of(A, start, 5_000_00, {X: 15}, None, {X: (100_00, 108_00)})
    assert unknown.last_equity is None
    assert unknown.positions[0].intraday_pl is None
    assert unknown.positions[0].lastday_price == Decimal("100.00")
