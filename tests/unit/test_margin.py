"""Margin accounts: Reg T buying power, maintenance, short selling, margin calls and liquidation,
against worked examples of the rules' arithmetic as Alpaca documents it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import account as account_module
from engine.account import Account, value_portfolio
from engine.errors import InsufficientAvailableCashError, ValidationError
from engine.fees import FeeSchedule
from engine.ids import AccountId, OrderId, Symbol, TradeId, UserId
from engine.margin import MarginRules, Rates
from engine.orders import CancelReason, Order, OrderType, RejectReason, Side, TimeInForce

S = Symbol("ACME")
G = Symbol("GME")
BROKER = FeeSchedule.parse_text("per_share=0.005,minimum=1,sec_per_million=27.80")


class Desk:
    """Margin accounts sharing one board of last prices, and the orders they place."""

    def __init__(self, rules: MarginRules | None = None) -> None:
        self.prices: dict[Symbol, int] = {S: 100_00, G: 20_00}
        self.rules = rules or MarginRules()
        self.count = 0

    def account(
        self, cash: int, *, margin: bool = True, fees: FeeSchedule | None = None
    ) -> Account:
        self.count += 1
        account = Account(
            AccountId(f"A-{self.count}"),
            UserId("U-1"),
            0,
            fees=fees,
            margin=self.rules if margin else None,
        )
        account.prices = self.prices
        account.deposit(cash, 0)
        return account

    def order(
        self, account: Account, side: Side, quantity: int, price: int, symbol: Symbol = S
    ) -> Order:
        self.count += 1
        return Order(
            OrderId(f"O-{self.count}"),
            account.account_id,
            symbol,
            side,
            OrderType.LIMIT,
            TimeInForce.GTC,
            quantity,
            price,
            price if side is Side.BUY else None,
            1,
        )

    def trade(
        self, account: Account, side: Side, quantity: int, price: int, symbol: Symbol = S
    ) -> RejectReason | None:
        """Place a limit order and fill it whole at its limit; the reason if refused."""
        o = self.order(account, side, quantity, price, symbol)
        reason = account.accept(o, 1)
        if reason is None:
            self.count += 1
            account.settle_fill(o.order_id, TradeId(f"T-{self.count}"), quantity, price, 2)
        return reason


def test_reg_t_buys_twice_the_equity_and_borrows_the_rest() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    assert account.margin_figures().buying_power == 20_000_00
    assert desk.trade(account, Side.BUY, 201, 100_00) is RejectReason.INSUFFICIENT_FUNDS
    assert desk.trade(account, Side.BUY, 100, 150_00) is None  # $15,000 on $10,000

    figures = account.margin_figures()
    assert account.cash == -5_000_00  # the debit balance: borrowed
    desk.prices[S] = 150_00
    figures = account.margin_figures()
    assert figures.equity == 10_000_00
    assert figures.long_value == 15_000_00
    assert figures.initial == 7_500_00
    assert figures.maintenance == 3_750_00
    assert figures.excess == 2_500_00
    assert figures.buying_power == 5_000_00
    account.audit()


def test_open_orders_use_buying_power_until_they_end() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    first = desk.order(account, Side.BUY, 100, 150_00)
    assert account.accept(first, 1) is None
    assert account.margin_figures().buying_power == 5_000_00
    second = desk.order(account, Side.BUY, 51, 100_00)
    assert account.accept(second, 1) is RejectReason.INSUFFICIENT_FUNDS
    account.cancel_rest(first.order_id, _requested(), 3)
    assert account.margin_figures().buying_power == 20_000_00
    account.audit()


def test_a_price_fall_below_maintenance_is_a_call_and_liquidation_sells_what_covers_it() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    desk.trade(account, Side.BUY, 100, 150_00)
    desk.prices[S] = 67_00  # equity $1,700 against 25 % of $6,700 = $1,675: no call
    assert account.margin_figures().deficit == 0
    assert account.liquidation() == []
    desk.prices[S] = 60_00  # equity $1,000 against $1,500: $500 short
    assert account.margin_figures().deficit == 500_00
    # each share sold frees 25 % of $60 = $15 of maintenance: 34 shares cover $500
    assert account.liquidation() == [(S, Side.SELL, 34)]
    desk.trade(account, Side.SELL, 34, 60_00)
    assert account.margin_figures().deficit == 0
    account.audit()


def test_a_short_sale_takes_its_proceeds_and_a_negative_position_with_its_own_cost() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    desk.prices[S] = 50_00
    assert desk.trade(account, Side.SELL, 100, 50_00) is None
    assert account.cash == 15_000_00
    position = account.positions[S]
    assert (position.quantity, position.cost) == (-100, -5_000_00)
    figures = account.margin_figures()
    assert figures.equity == 10_000_00
    assert figures.short_value == 5_000_00
    assert figures.initial == 2_500_00
    assert figures.maintenance == 1_500_00  # 30 % of shorts
    assert figures.buying_power == 15_000_00

    desk.prices[S] = 40_00
    holding = value_portfolio(account.state(), desk.prices).holdings[0]
    assert holding.quantity == -100
    assert holding.market_value == Decimal("-4000.00")
    assert holding.average_cost == Decimal("50.00")
    assert holding.unrealized_pl == Decimal("1000.00")
    assert holding.unrealized_pl_percent == Decimal("20.00")

    assert desk.trade(account, Side.BUY, 60, 40_00) is None  # covers 60: $600 realized
    assert account.realized == 600_00
    assert account.positions[S].quantity == -40
    assert account.positions[S].cost == -2_000_00
    assert desk.trade(account, Side.BUY, 40, 40_00) is None
    assert S not in account.positions
    assert account.realized == 1_000_00
    assert account.cash == 11_000_00
    account.audit()


def test_a_rise_calls_a_short_and_liquidation_buys_back_what_covers_it() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    desk.prices[S] = 50_00
    desk.trade(account, Side.SELL, 100, 50_00)
    desk.prices[S] = 115_00  # equity $3,500 against 30 % of $11,500 = $3,450
    assert account.margin_figures().deficit == 0
    desk.prices[S] = 120_00  # equity $3,000 against $3,600
    assert account.margin_figures().deficit == 600_00
    assert account.liquidation() == [(S, Side.BUY, 17)]  # $36 a share: 17 cover $600
    desk.trade(account, Side.BUY, 17, 120_00)
    assert account.margin_figures().deficit == 0
    account.audit()


def test_liquidation_closes_the_largest_position_first() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    desk.trade(account, Side.BUY, 100, 100_00)
    desk.trade(account, Side.BUY, 500, 20_00, G)
    desk.prices[S], desk.prices[G] = 50_00, 8_00  # equity $-1,000: everything goes
    assert account.margin_figures().equity == -1_000_00
    assert account.liquidation() == [(S, Side.SELL, 100), (G, Side.SELL, 500)]


def test_who_may_sell_short() -> None:
    desk = Desk(MarginRules(shortable=frozenset({S})))
    cash = desk.account(10_000_00, margin=False)
    assert desk.trade(cash, Side.SELL, 1, 100_00) is RejectReason.INSUFFICIENT_SHARES
    margin = desk.account(10_000_00)
    assert desk.trade(margin, Side.SELL, 1, 20_00, G) is RejectReason.NOT_SHORTABLE
    margin.grant(G, 10, 20_00, 0)
    assert desk.trade(margin, Side.SELL, 11, 20_00, G) is RejectReason.INSUFFICIENT_SHARES
    assert desk.trade(margin, Side.SELL, 10, 20_00, G) is None
    assert desk.trade(margin, Side.SELL, 1, 100_00) is None
    margin.audit()


def test_a_sale_past_a_long_closes_it_then_sells_short() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    desk.trade(account, Side.BUY, 10, 90_00)
    assert desk.trade(account, Side.SELL, 15, 100_00) is None
    assert account.realized == 100_00
    assert (account.positions[S].quantity, account.positions[S].cost) == (-5, -500_00)
    assert desk.trade(account, Side.BUY, 8, 95_00) is None  # covers 5, then long 3
    assert account.realized == 100_00 + 25_00
    assert (account.positions[S].quantity, account.positions[S].cost) == (3, 285_00)
    account.audit()


def test_a_stock_of_its_own_rates_buys_with_no_borrowing() -> None:
    rules = MarginRules.parse_text("GME.initial=100,GME.long=100")
    assert rules.rates(G) == Rates(10_000, 10_000, 3_000)  # basis points
    desk = Desk(rules)
    account = desk.account(1_000_00)
    assert desk.trade(account, Side.BUY, 51, 20_00, G) is RejectReason.INSUFFICIENT_FUNDS
    assert desk.trade(account, Side.BUY, 50, 20_00, G) is None
    assert account.margin_figures().buying_power == 0
    assert not rules.marginable(G)
    assert rules.marginable(S)


def test_a_margin_account_withdraws_only_its_excess_equity_and_never_borrows_for_it() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    desk.trade(account, Side.BUY, 100, 100_00)  # cash $0, equity $10,000, initial $5,000
    assert account.withdrawable == 0
    with pytest.raises(InsufficientAvailableCashError):
        account.withdraw(1, 3)
    account.deposit(1_000_00, 3)
    desk.prices[S] = 70_00  # equity $8,000, initial $3,500: excess $4,500, but cash $1,000
    assert account.withdrawable == 1_000_00
    desk.prices[S] = 40_00  # equity $5,000, initial $2,000: excess $3,000
    assert account.withdrawable == 1_000_00
    account.withdraw(1_000_00, 4)
    account.audit()


def test_a_reset_clears_shorts_at_their_cost() -> None:
    desk = Desk()
    account = desk.account(10_000_00)
    desk.trade(account, Side.SELL, 10, 100_00)
    account.reset(5_000_00, 5)
    assert account.cash == 5_000_00
    assert not account.positions
    account.audit()


def test_rules_read_back_from_their_text_and_bad_rules_say_what_was_wrong() -> None:
    rules = MarginRules.parse_text("initial=60,long=30,short=35,shortable=ACME GME,GME.initial=100")
    assert rules.initial == 6_000
    assert rules.maintenance_short == 3_500
    assert not rules.can_short(Symbol("ZZZ"))
    assert rules.rates(G).initial == 10_000
    again = MarginRules.parse({k: str(v) for k, v in rules.describe().items()})
    assert again == rules
    assert MarginRules.parse_text("") == MarginRules()
    for text, message in [
        ("initial=50,lng=25", "unknown rule 'lng'"),
        ("initial=20,long=25", "must not be above the initial"),
        ("initial=0", "from 1 to 100"),
        ("initial=50.005", "to 0.01"),
        ("initial=101", "between 0 and 100"),
        ("shortable=AAPL $$$", "margin.shortable must be"),
        ("B@D.initial=50", "margin.B@D.initial"),
    ]:
        with pytest.raises(ValidationError, match=message):
            MarginRules.parse_text(text)


prices = st.integers(1_00, 300_00)


@settings(max_examples=150, deadline=None)
@given(
    trades=st.lists(
        st.tuples(st.sampled_from(Side), st.integers(1, 300), prices, st.booleans()),
        min_size=1,
        max_size=40,
    ),
    marks=st.lists(prices, min_size=1, max_size=40),
)
def test_random_long_and_short_trading_with_fees_conserves_cash_and_shares(
    trades: list[tuple[Side, int, int, bool]], marks: list[int]
) -> None:
    """Two margin accounts trade with each other, long and short, paying fees, while the
    price moves: each reconciles with its ledger, cash plus fees paid is what was deposited,
    shares held net to what was granted, and no refused order holds anything."""
    desk = Desk()
    a = desk.account(50_000_00, fees=BROKER)
    b = desk.account(50_000_00, fees=BROKER)
    b.grant(S, 200, 100_00, 0)
    for (side, quantity, price, a_first), mark in zip(trades, marks * 40, strict=False):
        desk.prices[S] = mark
        buyer, seller = (a, b) if side is Side.BUY else (b, a)
        first, second = (buyer, seller) if a_first else (seller, buyer)
        orders = {}
        for account in (first, second):
            o = desk.order(account, Side.BUY if account is buyer else Side.SELL, quantity, price)
            orders[account.account_id] = o
            if account.accept(o, 1) is not None:
                break
        else:
            desk.count += 1
            for account in (buyer, seller):
                o = orders[account.account_id]
                account.settle_fill(o.order_id, TradeId(f"T-{desk.count}"), quantity, price, 2)
        for account in (a, b):  # what one accepted but the other refused ends here
            for o in list(account.open.values()):
                account.cancel_rest(o.order_id, _requested(), 3)
            account.audit()
            assert account.reserved_cash == 0
            assert not account.fee_held
        assert a.cash + b.cash + a.fees_paid + b.fees_paid == 100_000_00
        held = sum(p.quantity for account in (a, b) for p in account.positions.values())
        assert held == 200


def _requested() -> CancelReason:
    return CancelReason.REQUESTED


def test_a_margin_account_has_at_most_so_many_open_orders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each of a margin account's checks walks its open orders: their number is bounded, so
    one account's order costs the runtime a bounded time; the refusal changes nothing."""
    monkeypatch.setattr(account_module, "MAX_MARGIN_OPEN_ORDERS", 3)
    desk = Desk()
    account = desk.account(10_000_00)
    for n in range(3):
        assert account.accept(desk.order(account, Side.BUY, 1, 50_00 + n), 1) is None
    refused = desk.order(account, Side.BUY, 1, 50_00)
    assert account.accept(refused, 1) is RejectReason.TOO_MANY_ORDERS
    assert len(account.open) == 3
    account.cancel_rest(next(iter(account.open)), _requested(), 2)
    assert account.accept(desk.order(account, Side.SELL, 1, 60_00), 1) is None
    account.audit()
