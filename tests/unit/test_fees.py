"""The fee schedule's arithmetic against worked examples, its bounds against random fills, and
an account paying fees: held up front, charged at each fill, counted in cost and P/L."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.account import Account, TransactionKind
from engine.errors import ValidationError
from engine.fees import FREE, FeeSchedule
from engine.ids import AccountId, OrderId, Symbol, TradeId, UserId
from engine.orders import (
    CancelReason,
    OrderType,
    RejectReason,
    Side,
)
from tests.unit.test_account import order

S = Symbol("AAPL")
BROKER = FeeSchedule.parse_text(
    "per_share=0.005,minimum=1,maximum=50,sec_per_million=27.80,taf_per_share=0.000166,taf_max=8.30"
)


# -- the schedule ------------------------------------------------------------------------------


def test_a_per_share_commission_has_its_minimum_and_maximum() -> None:
    # $0.005 a share, at least $1, at most $50 an order
    assert BROKER.charged(Side.BUY, 100, 100 * 150_00) == 1_00  # $0.50 -> the minimum
    assert BROKER.charged(Side.BUY, 1_000, 1_000 * 150_00) == 5_00
    assert BROKER.charged(Side.BUY, 20_000, 20_000 * 1_00) == 50_00  # $100 -> the maximum
    assert BROKER.charged(Side.BUY, 0, 0) == 0  # nothing filled, nothing paid


def test_sells_pass_on_the_sec_fee_and_the_taf_each_rounded_up_to_the_cent() -> None:
    # 1,000 shares sold at $150: commission $5.00; SEC $150,000 * 27.80 / 1e6 = $4.17;
    # TAF 1,000 * $0.000166 = $0.166 -> $0.17
    assert BROKER.charged(Side.SELL, 1_000, 1_000 * 150_00) == 5_00 + 4_17 + 17
    # 100,000 shares: the TAF stops at its $8.30 cap (100,000 * $0.000166 = $16.60)
    assert BROKER.charged(Side.SELL, 100_000, 100_000 * 1_00) == 50_00 + 2_78 + 8_30


def test_a_percent_and_a_per_order_fee() -> None:
    fees = FeeSchedule.parse({"per_order": "1.00", "percent": "0.1"})
    # $1 + 0.1 % of $2,500.01 = $3.50001 -> $3.51
    assert fees.charged(Side.BUY, 10, 2_500_01) == 3_51
    assert fees.charged(Side.SELL, 10, 2_500_01) == 3_51  # no regulatory fees set


def test_the_fees_of_an_order_do_not_depend_on_how_it_filled() -> None:
    fills = [(1, 150_00), (299, 150_01), (700, 149_99)]
    charged = []
    quantity = cents = 0
    for shares, price in fills:
        before = BROKER.charged(Side.SELL, quantity, cents)
        quantity += shares
        cents += shares * price
        charged.append(BROKER.charged(Side.SELL, quantity, cents) - before)
    assert charged[0] >= 1_00  # the minimum comes with the first fill
    assert sum(charged) == BROKER.charged(Side.SELL, quantity, cents)


def test_a_schedule_reads_back_from_its_text() -> None:
    assert FeeSchedule.parse_text(BROKER.text()) == BROKER
    assert BROKER.describe()["sec_per_million"] == Decimal("27.8")
    assert FeeSchedule.parse_text("none") is FREE
    assert FeeSchedule.parse_text("") == FREE
    assert FREE.free
    assert FREE.text() == ""
    capped = FeeSchedule.parse_text("per_order=1,maximum=0")
    assert FeeSchedule.parse_text(capped.text()) == capped


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("per_share=-1", "fees.per_share must be between 0 and 1, was '-1'"),
        ("percent=11", "fees.percent must be between 0 and 10"),
        ("per_order=0.001", "fees.per_order must be a whole number of cents"),
        ("minimum=2,maximum=1", "fees.maximum must not be below the minimum"),
        ("rebate=1", "unknown fee 'rebate'"),
        ("per_share", "must be name=value pairs"),
        ("per_share=1,per_share=2", "must name each setting once"),
        ("per_share=1e999", "fees.per_share must be within 1e20"),
        ("per_share=nan", "fees.per_share must be a finite number"),
        ("x" * 401, "fees must be a text of at most 400 characters"),
    ],
)
def test_a_bad_schedule_is_refused_with_what_was_wrong(given: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        FeeSchedule.parse_text(given)


def test_a_schedule_given_as_a_mapping_is_checked_too() -> None:
    with pytest.raises(ValidationError, match="must be given as a str, int or Decimal"):
        FeeSchedule.parse({"per_share": 0.005})
    with pytest.raises(ValidationError, match="fees must be a mapping"):
        FeeSchedule.parse("per_share=1")  # type: ignore[arg-type]


amounts = st.decimals(min_value=0, max_value=10, places=6)
schedules = st.builds(
    lambda per_order, per_share, percent, minimum, maximum, sec, taf, taf_max: FeeSchedule.parse(
        {
            "per_order": per_order,
            "per_share": per_share / 10,
            "percent": percent,
            "minimum": minimum,
            "maximum": None if maximum is None else minimum + maximum,
            "sec_per_million": sec * 10_000,
            "taf_per_share": taf / 10,
            "taf_max": taf_max,
        }
    ),
    st.decimals(min_value=0, max_value=5, places=2),
    amounts,
    amounts,
    st.decimals(min_value=0, max_value=5, places=2),
    st.none() | st.decimals(min_value=0, max_value=50, places=2),
    amounts,
    amounts,
    st.none() | st.decimals(min_value=0, max_value=10, places=2),
)
fills = st.lists(st.tuples(st.integers(1, 500), st.integers(1, 20_000)), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(schedule=schedules, fills=fills, reserve=st.integers(1, 20_000))
def test_a_buy_never_pays_more_than_it_held(
    schedule: FeeSchedule, fills: list[tuple[int, int]], reserve: int
) -> None:
    quantity = sum(shares for shares, _ in fills)
    held = schedule.bound(Side.BUY, quantity, reserve)
    paid = 0
    filled = cents = 0
    for shares, price in fills:
        filled += shares
        cents += shares * min(price, reserve)  # a buy never fills above its reserve
        paid = schedule.charged(Side.BUY, filled, cents)
        assert paid <= held
    assert schedule.bound(Side.BUY, quantity, reserve) == held  # (no state)


@settings(max_examples=300, deadline=None)
@given(schedule=schedules, fills=fills, limit=st.none() | st.integers(1, 20_000), cash=st.data())
def test_a_sell_never_needs_more_than_it_held_beyond_what_it_sold_for(
    schedule: FeeSchedule,
    fills: list[tuple[int, int]],
    limit: int | None,
    cash: st.DataObject,
) -> None:
    quantity = sum(shares for shares, _ in fills)
    held = schedule.bound(Side.SELL, quantity, limit)
    assert held >= 0
    filled = cents = 0
    for shares, price in fills:
        filled += shares
        cents += shares * max(price, limit or 1)  # a sell never fills below its limit
        assert schedule.charged(Side.SELL, filled, cents) - cents <= held


def test_rates_stay_below_what_a_sale_brings_in() -> None:
    highest = FeeSchedule.parse({"percent": "10", "sec_per_million": "100000"})
    assert highest.rate + highest.sec_rate == Fraction(1, 5)


# -- an account paying them ---------------------------------------------------------------------


def new_account(cash: int, fees: FeeSchedule = BROKER) -> Account:
    account = Account(AccountId("A-1"), UserId("U-1"), 0, fees=fees)
    account.deposit(cash, 0)
    return account


def test_a_buy_holds_its_fees_and_pays_them_into_the_cost_of_its_shares() -> None:
    account = new_account(10_000_00)
    o = order(1, Side.BUY, 300, 10_00)
    assert account.accept(o, 1) is None
    assert account.reserved_cash == 3_000_00 + 1_50  # 300 * $0.005
    account.settle_fill(o.order_id, TradeId("T-1"), 100, 9_00, 2)
    account.settle_fill(o.order_id, TradeId("T-2"), 200, 9_50, 3)
    assert account.reserved_cash == 0
    # $900 + $1.00 (the minimum, at the first fill) + $1,900 + $0.50 (300 shares: $1.50)
    assert account.cash == 10_000_00 - 9_00_00 - 1_00 - 19_00_00 - 50
    fees = [t for t in account.transactions if t.kind is TransactionKind.FEE]
    assert [t.amount for t in fees] == [Decimal("1.00"), Decimal("0.50")]
    assert fees[0].order_id == "O-1"
    assert fees[0].trade_id == "T-1"
    assert account.positions[S].cost == 2_800_00 + 1_50
    assert account.fees_paid == 1_50
    assert account.audit().fees == {S: 1_50}


def test_a_sell_pays_its_fees_out_of_the_sale_and_they_come_off_realized_pl() -> None:
    account = new_account(0)
    account.grant(S, 1_000, 100_00, 0)
    o = order(1, Side.SELL, 1_000, 150_00)
    assert account.accept(o, 1) is None  # its limit covers its fees: no cash needed
    assert account.reserved_cash == 0
    account.settle_fill(o.order_id, TradeId("T-1"), 1_000, 150_00, 2)
    fee = 5_00 + 4_17 + 17
    assert account.cash == 150_000_00 - fee
    assert account.realized == 50_000_00 - fee
    account.audit()


def test_a_sell_at_market_holds_the_fixed_part_of_its_fees() -> None:
    account = new_account(50)
    account.grant(S, 10, 100_00, 0)
    market = order(1, Side.SELL, 10, 1)
    market.order_type, market.limit_price = OrderType.MARKET, None
    assert account.accept(market, 1) is RejectReason.INSUFFICIENT_FUNDS  # $1 minimum > $0.50
    assert account.reserved_cash == 0
    assert account.positions[S].reserved == 0
    account.deposit(1_00, 2)
    assert account.accept(order(2, Side.SELL, 10, 1), 3) is None  # a limit of $0.01 too
    # the $1 minimum + 1 cent of TAF + 1 cent for the SEC fee's rounding, less what one
    # share's sale at $0.01 leaves
    assert account.reserved_cash == 1_00 + 1 + 1
    account.settle_fill(OrderId("O-2"), TradeId("T-1"), 10, 1, 4)
    assert account.reserved_cash == 0
    assert account.cash == 1_50 + 10 - 1_00 - 1 - 1
    account.audit()


def test_cash_for_the_notional_but_not_the_fees_is_refused_and_holds_nothing() -> None:
    account = new_account(1_000_00)
    refused = order(1, Side.BUY, 100, 10_00)  # $1,000 + the $1 minimum
    assert account.accept(refused, 1) is RejectReason.INSUFFICIENT_FUNDS
    assert account.reserved_cash == 0
    assert account.accept(order(2, Side.BUY, 99, 10_00), 2) is None
    assert account.reserved_cash == 990_00 + 1_00


def test_a_cancel_or_a_replace_releases_what_was_held_for_fees() -> None:
    account = new_account(10_000_00)
    o = order(1, Side.BUY, 100, 10_00)
    assert account.accept(o, 1) is None
    account.settle_fill(o.order_id, TradeId("T-1"), 40, 10_00, 2)  # pays the $1 minimum
    assert account.fee_held == {o.order_id: 0}
    new = order(2, Side.BUY, 100, 11_00)
    assert account.begin_replace(o.order_id, new) is None
    account.check()
    account.finish_replace(o.order_id, 60, 3)
    assert account.fee_held == {new.order_id: 1_00}  # a new order: its own minimum
    account.cancel_rest(new.order_id, CancelReason.REQUESTED, 4)
    assert account.reserved_cash == 0
    assert account.fee_held == {}
    account.audit()


def test_without_a_schedule_nothing_is_held_or_paid() -> None:
    account = Account(AccountId("A-1"), UserId("U-1"), 0)
    account.deposit(1_000_00, 0)
    assert account.accept(order(1, Side.BUY, 100, 10_00), 1) is None
    account.settle_fill(OrderId("O-1"), TradeId("T-1"), 100, 10_00, 2)
    assert account.cash == 0
    assert account.fees_paid == 0
