"""Bracket, OTO and OCO orders through the embedded API, in both liquidity modes: held legs,
legs working for what the entry filled, one-cancels-other fills and ends, reservations made
once for two exclusive legs, cancels; and many threads trading them while prices move, then
the audit."""

from __future__ import annotations

import contextlib
import random
import threading
from decimal import Decimal
from typing import Any

import pytest

from engine import (
    CancelReason,
    OrderCancelled,
    OrderNotCancellableError,
    OrderNotReplaceableError,
    OrderStatus,
    RejectReason,
    ValidationError,
)
from gateway import Brokerage
from tests.integration.test_concurrency import run_together
from tests.integration.test_stops_api import funded

BRACKET: dict[str, Any] = {
    "order_class": "bracket",
    "take_profit": {"limit_price": "160"},
    "stop_loss": {"stop_price": "140"},
}


def held(broker: Brokerage, account: str, symbol: str) -> tuple[int, int]:
    """(quantity, reserved) of `account`'s holding of `symbol` (0s if none)."""
    for holding in broker.portfolio(account).holdings:
        if holding.symbol == symbol:
            return holding.quantity, holding.reserved
    return 0, 0


def with_exits(
    broker: Brokerage,
    account: str,
    symbol: str,
    side: str,
    quantity: int,
    kind: str,
    limit: str | None = None,
    *,
    order_class: str = "bracket",
    profit: str | None = None,
    loss: str | None = None,
) -> Any:
    """Place an order with exit legs: `profit` the take-profit's limit price, `loss` the
    stop-loss's stop price (None: no such leg)."""
    terms: dict[str, Any] = {"order_class": order_class}
    if profit is not None:
        terms["take_profit"] = {"limit_price": profit}
    if loss is not None:
        terms["stop_loss"] = {"stop_price": loss}
    return broker.place_order(account, symbol, side, quantity, kind, limit, **terms)


def test_a_bracket_entry_fills_and_its_legs_work_once_for_the_shares_it_bought(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1")

    entry = broker.place_order(account, "AAPL", "buy", 10, "market", **BRACKET)

    assert entry.status is OrderStatus.EXECUTED
    assert entry.order_class == "bracket"
    profit, loss = (broker.get_order(leg) for leg in entry.legs)
    assert (profit.order_type, profit.side, profit.limit_price) == ("limit", "sell", 160)
    assert (loss.order_type, loss.side, loss.stop_price) == ("stop", "sell", 140)
    for leg in (profit, loss):
        assert leg.status is OrderStatus.PENDING
        assert leg.parent == entry.order_id
        assert leg.quantity == 10
    assert held(broker, account, "AAPL") == (10, 10)  # once for both legs

    broker.update_price("AAPL", "161")

    profit, loss = (broker.get_order(leg) for leg in entry.legs)
    assert profit.status is OrderStatus.EXECUTED
    assert profit.average_fill_price == Decimal("161.00")
    assert loss.status is OrderStatus.CANCELLED
    assert loss.cancel_reason is CancelReason.OCO
    assert held(broker, account, "AAPL") == (0, 0)
    assert broker.balance(account).cash == Decimal("100000") - 1500 + 1610


def test_a_bracket_stop_loss_sells_when_the_price_falls_and_the_take_profit_goes(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1")
    cancelled: list[OrderCancelled] = []
    seen = threading.Event()

    def on_cancel(event: object) -> None:
        assert isinstance(event, OrderCancelled)
        cancelled.append(event)
        seen.set()

    broker.subscribe(on_cancel, [OrderCancelled])
    entry = broker.place_order(account, "AAPL", "buy", 10, "market", **BRACKET)

    broker.update_price("AAPL", "139")

    profit, loss = (broker.get_order(leg) for leg in entry.legs)
    assert loss.status is OrderStatus.EXECUTED
    assert loss.triggered_at is not None
    assert (profit.status, profit.cancel_reason) == (OrderStatus.CANCELLED, CancelReason.OCO)
    assert seen.wait(5)
    assert [e.order.order_id for e in cancelled] == [profit.order_id]


def test_a_resting_entry_holds_its_legs_and_a_cancel_before_any_fill_cancels_them(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1")
    entry = broker.place_order(account, "BOOK", "buy", 5, "limit", "99", **_book_bracket())
    assert entry.status is OrderStatus.PENDING
    legs = [broker.get_order(leg) for leg in entry.legs]
    assert [leg.status for leg in legs] == [OrderStatus.HELD, OrderStatus.HELD]
    assert broker.balance(account).reserved == Decimal("495.00")  # the entry's only
    listed = {o.order_id for o in broker.orders(account, status=["held", "pending"])}
    assert listed == {entry.order_id, *entry.legs}
    with pytest.raises(OrderNotReplaceableError, match="the entry of a bracket order"):
        broker.replace_order(entry.order_id, 6)
    moved = broker.replace_order(entry.legs[1], None, stop_price="91")  # held, in its place
    assert (moved.status, moved.stop_price, moved.replaces) == (
        OrderStatus.HELD,
        91,
        entry.legs[1],
    )
    entry = broker.get_order(entry.order_id)
    assert entry.legs[1] == moved.order_id

    broker.cancel_order(entry.order_id)

    for leg in entry.legs:
        found = broker.get_order(leg)
        assert (found.status, found.cancel_reason) == (
            OrderStatus.CANCELLED,
            CancelReason.ENTRY_UNFILLED,
        )
    assert broker.balance(account).reserved == 0


def _book_bracket() -> dict[str, Any]:
    return {
        "order_class": "bracket",
        "take_profit": {"limit_price": "110"},
        "stop_loss": {"stop_price": "90", "limit_price": "89"},
    }


def test_a_partly_filled_entry_cancelled_sets_its_legs_working_for_what_it_filled(
    broker: Brokerage,
) -> None:
    me, other = funded(broker, "ME"), funded(broker, "OTHER")
    broker.grant_shares(other, "BOOK", 10, "90")
    entry = broker.place_order(me, "BOOK", "buy", 5, "limit", "100", **_book_bracket())
    broker.place_order(other, "BOOK", "sell", 3, "limit", "100")
    assert broker.get_order(entry.order_id).filled_quantity == 3
    assert {broker.get_order(leg).status for leg in entry.legs} == {OrderStatus.HELD}

    broker.cancel_order(entry.order_id)

    profit, loss = (broker.get_order(leg) for leg in entry.legs)
    assert (profit.status, profit.quantity) == (OrderStatus.PENDING, 3)
    assert (loss.status, loss.quantity, loss.order_type) == (OrderStatus.PENDING, 3, "stop_limit")
    assert held(broker, me, "BOOK") == (3, 3)
    # the take-profit fills 2: the stop-loss is left with 1
    broker.place_order(other, "BOOK", "buy", 2, "limit", "110")
    profit, loss = (broker.get_order(leg) for leg in entry.legs)
    assert (profit.status, profit.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 2)
    assert (loss.quantity, loss.remaining_quantity) == (1, 1)
    assert held(broker, me, "BOOK") == (1, 1)
    # the stop-loss triggers (a trade at 90) and sells the last share
    third = funded(broker, "THIRD")
    broker.place_order(other, "BOOK", "buy", 5, "limit", "89")
    broker.place_order(other, "BOOK", "sell", 1, "limit", "90")
    broker.place_order(third, "BOOK", "buy", 1, "limit", "90")
    profit, loss = (broker.get_order(leg) for leg in entry.legs)
    assert loss.status is OrderStatus.EXECUTED
    assert (profit.status, profit.cancel_reason) == (OrderStatus.CANCELLED, CancelReason.OCO)
    assert held(broker, me, "BOOK") == (0, 0)


def test_legs_are_refused_when_the_shares_they_need_were_sold_meanwhile(
    broker: Brokerage,
) -> None:
    me, other = funded(broker, "ME"), funded(broker, "OTHER")
    broker.grant_shares(other, "BOOK", 10, "90")
    entry = broker.place_order(me, "BOOK", "buy", 5, "limit", "100", **_book_bracket())
    broker.place_order(other, "BOOK", "sell", 2, "limit", "100")
    sold = broker.place_order(me, "BOOK", "sell", 2, "limit", "120")  # the bought shares
    assert sold.status is OrderStatus.PENDING

    broker.cancel_order(entry.order_id)

    for leg in entry.legs:
        found = broker.get_order(leg)
        assert (found.status, found.reject_reason) == (
            OrderStatus.REJECTED,
            RejectReason.INSUFFICIENT_SHARES,
        )
    assert held(broker, me, "BOOK") == (2, 2)


def test_an_oco_pair_reserves_once_and_either_leg_ending_ends_the_other(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1")
    broker.grant_shares(account, "AAPL", 10, "100")

    oco = broker.place_order(
        account,
        "AAPL",
        "sell",
        10,
        "limit",
        order_class="oco",
        take_profit={"limit_price": "170"},
        stop_loss={"stop_price": "130"},
    )

    assert oco.status is OrderStatus.PENDING
    assert oco.limit_price == Decimal("170.00")
    [loss_id] = oco.legs
    assert broker.get_order(loss_id).parent == oco.order_id
    assert held(broker, account, "AAPL") == (10, 10)
    refused = broker.place_order(account, "AAPL", "sell", 1, "market")
    assert refused.reject_reason is RejectReason.INSUFFICIENT_SHARES

    broker.cancel_order(loss_id)

    assert broker.get_order(oco.order_id).cancel_reason is CancelReason.OCO
    assert broker.get_order(loss_id).cancel_reason is CancelReason.REQUESTED
    assert held(broker, account, "AAPL") == (10, 0)
    with pytest.raises(OrderNotCancellableError):
        broker.cancel_order(oco.order_id)


def test_a_buy_oco_pair_holds_cash_once_at_the_dearer_leg(broker: Brokerage) -> None:
    account = funded(broker, "U1", cash="2000")
    oco = broker.place_order(
        account,
        "AAPL",
        "buy",
        10,
        "limit",
        "140",
        order_class="oco",
        take_profit={"limit_price": "140"},
        stop_loss={"stop_price": "160", "limit_price": "165"},
    )
    assert oco.status is OrderStatus.PENDING
    assert broker.balance(account).reserved == Decimal("1650.00")  # 10 x 165, once

    broker.update_price("AAPL", "139")

    assert broker.get_order(oco.order_id).status is OrderStatus.EXECUTED
    assert broker.get_order(oco.legs[0]).cancel_reason is CancelReason.OCO
    assert broker.balance(account).reserved == 0
    assert broker.balance(account).cash == Decimal("610.00")


def test_an_oto_entry_gets_its_one_leg(broker: Brokerage) -> None:
    account = funded(broker, "U1")
    entry = broker.place_order(
        account, "AAPL", "buy", 4, "market", order_class="oto", stop_loss={"stop_price": "145"}
    )
    [leg] = [broker.get_order(leg) for leg in entry.legs]
    assert (leg.order_type, leg.status, leg.quantity) == ("stop", OrderStatus.PENDING, 4)
    broker.update_price("AAPL", "144")
    assert broker.get_order(leg.order_id).status is OrderStatus.EXECUTED


def test_cancelling_a_held_leg_cancels_its_held_pair_and_the_entry_keeps_working(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1")
    entry = broker.place_order(account, "BOOK", "buy", 5, "limit", "95", **_book_bracket())
    profit_id, loss_id = entry.legs

    cancelled = broker.cancel_order(profit_id)

    assert (cancelled.status, cancelled.cancel_reason) == (
        OrderStatus.CANCELLED,
        CancelReason.REQUESTED,
    )
    assert broker.get_order(loss_id).cancel_reason is CancelReason.OCO
    assert broker.get_order(entry.order_id).status is OrderStatus.PENDING
    broker.cancel_order(entry.order_id)


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"order_class": "bracket", "take_profit": {"limit_price": "160"}}, "stop_loss"),
        ({"order_class": "bracket", "stop_loss": "140", "take_profit": "130"}, "take_profit"),
        ({"order_class": "oto", "take_profit": "160", "stop_loss": "140"}, "take_profit"),
        ({"take_profit": "160"}, "take_profit"),
        ({"order_class": "triangle", "take_profit": "160"}, "order_class"),
        ({**BRACKET, "take_profit": {"limit_price": "160", "stop_price": "1"}}, "take_profit"),
        ({**BRACKET, "time_in_force": "ioc"}, "time_in_force"),
    ],
)
def test_bad_order_class_terms_are_refused_and_change_nothing(
    broker: Brokerage, terms: dict[str, Any], field: str
) -> None:
    account = funded(broker, "U1")
    with pytest.raises(ValidationError) as error:
        broker.place_order(account, "AAPL", "buy", 1, "limit", "150", **terms)
    assert error.value.field == field
    assert broker.orders(account) == []


def test_an_exit_leg_is_replaced_for_new_prices_and_takes_its_place_in_the_pair(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1")
    entry = broker.place_order(account, "AAPL", "buy", 10, "market", **BRACKET)
    profit_id, loss_id = entry.legs

    loss = broker.replace_order(loss_id, None, stop_price="145")  # a trailing hand
    profit = broker.replace_order(profit_id, None, limit_price="170")

    assert (loss.status, loss.stop_price, loss.quantity) == (OrderStatus.PENDING, 145, 10)
    assert (loss.replaces, loss.parent, loss.order_class) == (loss_id, entry.order_id, "bracket")
    assert (profit.limit_price, profit.replaces, profit.parent) == (170, profit_id, entry.order_id)
    assert broker.get_order(entry.order_id).legs == (profit.order_id, loss.order_id)
    assert broker.get_order(loss_id).status is OrderStatus.REPLACED
    assert held(broker, account, "AAPL") == (10, 10)  # still once for both legs

    broker.update_price("AAPL", "144")  # the new stop-loss sells; its pair goes with it

    loss, profit = broker.get_order(loss.order_id), broker.get_order(profit.order_id)
    assert (loss.status, loss.filled_quantity) == (OrderStatus.EXECUTED, 10)
    assert (profit.status, profit.cancel_reason) == (OrderStatus.CANCELLED, CancelReason.OCO)
    assert held(broker, account, "AAPL") == (0, 0)


def test_held_legs_are_replaced_in_their_place_and_work_at_their_new_prices(
    broker: Brokerage,
) -> None:
    buyer, seller = funded(broker, "U1"), funded(broker, "U2")
    broker.grant_shares(buyer, "BOOK", 5, "90")
    entry = with_exits(broker, buyer, "BOOK", "sell", 5, "limit", "100", profit="95", loss="105")
    profit = broker.replace_order(entry.legs[0], None, limit_price="96")
    loss = broker.replace_order(entry.legs[1], None, stop_price="108")
    assert {profit.status, loss.status} == {OrderStatus.HELD}
    assert broker.balance(buyer).reserved == 0  # held legs hold nothing
    with pytest.raises(ValidationError):  # a held leg's prices may not cross either
        broker.replace_order(loss.order_id, None, stop_price="95")
    with pytest.raises(ValidationError):
        broker.replace_order(loss.order_id, 4, stop_price="107")

    broker.place_order(seller, "BOOK", "buy", 5, "limit", "100")  # the entry sells: legs work

    profit, loss = broker.get_order(profit.order_id), broker.get_order(loss.order_id)
    assert (profit.status, profit.limit_price, profit.quantity) == (OrderStatus.PENDING, 96, 5)
    assert (loss.status, loss.stop_price) == (OrderStatus.PENDING, 108)
    assert broker.balance(buyer).reserved == Decimal("567.00")  # 5 x collar(108.00), once
    assert broker.get_order(entry.order_id).legs == (profit.order_id, loss.order_id)


def test_a_buy_pair_holds_at_the_dearer_leg_as_its_legs_are_replaced(broker: Brokerage) -> None:
    account = funded(broker, "U1")
    broker.grant_shares(account, "AAPL", 10, "100")
    entry = with_exits(broker, account, "AAPL", "sell", 10, "market", profit="130", loss="152")
    profit_id, loss_id = entry.legs
    assert broker.balance(account).reserved == Decimal("1596.00")  # 10 x collar(152.00)

    loss = broker.replace_order(loss_id, None, stop_price="160")
    assert broker.balance(account).reserved == Decimal("1680.00")  # 10 x collar(160.00)
    loss = broker.replace_order(loss.order_id, None, stop_price="151")
    assert broker.balance(account).reserved == Decimal("1585.50")  # 10 x collar(151.00)
    profit = broker.replace_order(profit_id, None, limit_price="125")
    profit = broker.replace_order(profit.order_id, None, limit_price="110")
    assert broker.balance(account).reserved == Decimal("1585.50")

    broker.update_price("AAPL", "109")  # the take-profit buys back at 109

    assert broker.get_order(profit.order_id).status is OrderStatus.EXECUTED
    assert broker.get_order(loss.order_id).cancel_reason is CancelReason.OCO
    assert broker.balance(account).reserved == 0
    assert broker.balance(account).cash == Decimal("100000") + 1500 - 1090


def test_a_leg_replace_the_account_cannot_afford_is_refused_and_the_pair_stays(
    broker: Brokerage,
) -> None:
    account = funded(broker, "U1", cash="100")
    broker.grant_shares(account, "AAPL", 10, "100")
    entry = with_exits(broker, account, "AAPL", "sell", 10, "market", order_class="oto", loss="152")
    (loss_id,) = entry.legs
    broker.withdraw(account, broker.balance(account).available)

    refused = broker.replace_order(loss_id, None, stop_price="153")

    assert (refused.status, refused.reject_reason) == (
        OrderStatus.REJECTED,
        RejectReason.INSUFFICIENT_FUNDS,
    )
    assert broker.get_order(loss_id).status is OrderStatus.PENDING
    assert broker.balance(account).reserved == Decimal("1596.00")


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"quantity": 5}, "quantity"),
        ({"time_in_force": "day"}, "time_in_force"),
        ({"limit_price": "139"}, "limit_price"),  # below the stop-loss's stop price
        ({"stop_price": "141"}, "stop_price"),  # a limit has none
    ],
)
def test_a_leg_replace_that_changes_more_than_its_prices_is_refused_and_changes_nothing(
    broker: Brokerage, terms: dict[str, Any], field: str
) -> None:
    account = funded(broker, "U1")
    entry = broker.place_order(account, "AAPL", "buy", 10, "market", **BRACKET)
    before = broker.orders(account)

    with pytest.raises(ValidationError) as error:
        broker.replace_order(entry.legs[0], terms.pop("quantity", None), **terms)

    assert error.value.field == field
    assert broker.orders(account) == before
    with pytest.raises(ValidationError, match="stop-loss's stop price") as error:
        broker.replace_order(entry.legs[1], None, stop_price="160")
    assert broker.orders(account) == before


def test_a_replaced_take_profit_that_trades_at_once_takes_its_shares_off_the_stop_loss(
    broker: Brokerage,
) -> None:
    seller, buyer = funded(broker, "U1"), funded(broker, "U2")
    broker.grant_shares(seller, "BOOK", 10, "100")
    pair = with_exits(
        broker, seller, "BOOK", "sell", 10, "limit", order_class="oco", profit="110", loss="90"
    )
    broker.place_order(buyer, "BOOK", "buy", 4, "limit", "105")

    profit = broker.replace_order(pair.order_id, None, limit_price="105")

    assert (profit.status, profit.filled_quantity, profit.quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        4,
        10,
    )
    loss = broker.get_order(pair.legs[0])
    assert (loss.status, loss.quantity, loss.parent) == (OrderStatus.PENDING, 6, profit.order_id)
    assert broker.get_order(profit.order_id).legs == (loss.order_id,)
    assert held(broker, seller, "BOOK") == (6, 6)
    loss = broker.replace_order(loss.order_id, None, stop_price="95")
    assert loss.quantity == 6
    broker.cancel_order(profit.order_id)
    assert broker.get_order(loss.order_id).cancel_reason is CancelReason.OCO
    assert held(broker, seller, "BOOK") == (6, 0)


def test_a_restart_keeps_held_and_working_legs(tmp_path: Any) -> None:
    store = f"sqlite:///{tmp_path}/brokerage.db"
    with Brokerage(store=store) as broker:
        broker.list_stock("AAPL", "Apple", "150")
        account = funded(broker, "U1")
        working = broker.place_order(account, "AAPL", "buy", 10, "market", **BRACKET)
        waiting = broker.place_order(account, "AAPL", "buy", 3, "limit", "145", **BRACKET)
        replaced = [  # replaced legs come back in their pair too, held ones held
            broker.replace_order(working.legs[0], None, limit_price="161").order_id,
            broker.replace_order(working.legs[1], None, stop_price="141").order_id,
            broker.replace_order(waiting.legs[1], None, stop_price="140.50").order_id,
        ]
    with Brokerage(store=store) as broker:
        working = broker.get_order(working.order_id)
        waiting = broker.get_order(waiting.order_id)
        assert [*working.legs, waiting.legs[1]] == replaced
        assert broker.get_order(replaced[1]).stop_price == 141
        assert broker.get_order(replaced[2]).stop_price == Decimal("140.50")
        assert {broker.get_order(leg).status for leg in waiting.legs} == {OrderStatus.HELD}
        assert held(broker, account, "AAPL") == (10, 10)
        broker.update_price("AAPL", "144")  # the entry fills: its legs work
        assert {broker.get_order(leg).status for leg in waiting.legs} == {OrderStatus.PENDING}
        assert held(broker, account, "AAPL") == (13, 13)
        broker.update_price("AAPL", "139")  # both stop-losses sell
        for parent in (working, waiting):
            profit, loss = (broker.get_order(leg) for leg in parent.legs)
            assert loss.status is OrderStatus.EXECUTED
            assert profit.cancel_reason is CancelReason.OCO
        assert held(broker, account, "AAPL") == (0, 0)
        broker.audit()
    with Brokerage(store=store) as broker:  # and all of it once more from the store
        assert broker.get_order(waiting.legs[1]).status is OrderStatus.EXECUTED
        assert held(broker, account, "AAPL") == (0, 0)
        broker.audit()


def test_threads_trade_brackets_and_pairs_while_prices_move(broker: Brokerage) -> None:
    """Brackets, OTOs and OCO pairs on both symbols, placed, cancelled, their legs replaced and
    filled from many threads while the feed moves AAPL and trades move BOOK; then the audit
    (conservation, no
    leaked reservation, each pair's legs equal in what remains) and no leg filled past what
    its entry filled, no pair past its quantity."""
    accounts = [funded(broker, f"U{n}") for n in range(6)]
    for account in accounts:
        broker.grant_shares(account, "AAPL", 100, "150")
        broker.grant_shares(account, "BOOK", 100, "100")
    parents: list[str] = []
    replaced: list[str] = []
    lock = threading.Lock()

    def trade(n: int) -> None:
        rng = random.Random(n)
        mine: list[str] = []
        for _ in range(50):
            account = rng.choice(accounts)
            symbol = rng.choice(["AAPL", "BOOK"])
            base = 150 if symbol == "AAPL" else 100
            roll = rng.random()
            try:
                if roll < 0.15:
                    broker.update_price("AAPL", f"{rng.uniform(144, 156):.2f}")
                elif roll < 0.3 and mine:
                    with contextlib.suppress(OrderNotCancellableError):
                        broker.cancel_order(mine.pop(rng.randrange(len(mine))))
                elif roll < 0.45 and mine:  # move a leg's price: the new leg takes its place
                    working = [
                        k
                        for k, order_id in enumerate(mine)
                        if broker.get_order(order_id).status
                        in (OrderStatus.PENDING, OrderStatus.PARTIALLY_FILLED)
                    ]
                    if not working:
                        continue
                    at = rng.choice(working)
                    order = broker.get_order(mine[at])
                    move = Decimal(rng.randint(-150, 150)) / 100
                    with contextlib.suppress(OrderNotReplaceableError):
                        if order.stop_price is not None:
                            new = broker.replace_order(
                                order.order_id, None, stop_price=order.stop_price + move
                            )
                        else:
                            new = broker.replace_order(
                                order.order_id, None, limit_price=(order.limit_price or 1) + move
                            )
                        if new.status is not OrderStatus.REJECTED:
                            mine[at] = new.order_id
                            with lock:
                                replaced.append(new.order_id)
                elif roll < 0.7:
                    side = rng.choice(["buy", "sell"])
                    up = 1 if side == "buy" else -1
                    group = rng.choice(["bracket", "oto", "oco"])
                    terms: dict[str, Any] = {"order_class": group}
                    profit = f"{base + up * rng.uniform(1, 4):.2f}"
                    loss = f"{base - up * rng.uniform(1, 4):.2f}"
                    if group == "oco":  # exits of what is held: the other way round
                        profit, loss = loss, profit
                    if group != "oto" or rng.random() < 0.5:
                        terms["take_profit"] = {"limit_price": profit}
                    if group != "oto" or "take_profit" not in terms:
                        terms["stop_loss"] = {"stop_price": loss}
                    kind, limit = rng.choice([("market", None), ("limit", f"{base:.2f}")])
                    if group == "oco":
                        kind, limit = "limit", None
                    order = broker.place_order(
                        account, symbol, side, rng.randint(1, 4), kind, limit, **terms
                    )
                    with lock:
                        parents.append(order.order_id)
                    mine += [order.order_id, *order.legs]
                else:
                    price = f"{base + rng.uniform(-4, 4):.2f}"
                    side = rng.choice(["buy", "sell"])
                    broker.place_order(account, symbol, side, 3, "limit", price)
            except ValidationError:  # a stop-loss the wrong side of its take-profit, say
                continue

    run_together(trade, threads=6)
    report = broker.audit()
    assert report.open_orders == report.resting_orders
    for parent_id in parents:
        parent = broker.get_order(parent_id)
        while parent.replaced_by is not None:  # an OCO's take-profit, replaced
            parent = broker.get_order(parent.replaced_by)
        legs = [broker.get_order(leg) for leg in parent.legs]
        pair = [parent, *legs] if parent.order_class == "oco" else legs
        if len(pair) == 2 and pair[0].status is not OrderStatus.HELD:
            # a fill of either leg took as many shares off the other: one quantity for both
            first, second = pair
            assert (
                first.quantity + second.filled_quantity == second.quantity + first.filled_quantity
            ), pair
        if parent.order_class != "oco":
            filled = sum(leg.filled_quantity for leg in legs)
            assert filled <= parent.filled_quantity, (parent, legs)
            if not parent.status.is_final:
                assert {leg.status for leg in legs} <= {OrderStatus.HELD, OrderStatus.CANCELLED}
    kinds = {
        (leg.order_class, leg.status)
        for parent_id in parents
        for leg in (broker.get_order(o) for o in broker.get_order(parent_id).legs)
    }
    assert {("bracket", OrderStatus.EXECUTED), ("oco", OrderStatus.EXECUTED)} <= kinds, kinds
    assert ("bracket", OrderStatus.CANCELLED) in kinds, kinds
    legs_replaced = [broker.get_order(order_id) for order_id in replaced]
    assert sum(leg.order_class != "simple" for leg in legs_replaced) > 5, len(legs_replaced)
    for account in accounts:
        assert broker.balance(account).available >= 0
        for holding in broker.portfolio(account).holdings:
            assert 0 <= holding.reserved <= holding.quantity
