"""Stop, stop limit and trailing stop orders in a symbol's market, in both liquidity modes."""

from __future__ import annotations

import itertools

from engine.ids import AccountId, OrderId, Symbol
from engine.matching import Market, OrderTicket, TradeIdSequence
from engine.orders import CancelReason, LiquidityMode, OrderType, Side, TimeInForce

S = Symbol("AAPL")
BUY, SELL = Side.BUY, Side.SELL
MARKET, BOOK = LiquidityMode.MARKET, LiquidityMode.BOOK
_ids = itertools.count(1)


def stop(
    side: Side,
    quantity: int,
    *,
    stop_price: int | None = None,
    limit: int | None = None,
    trail_price: int | None = None,
    trail_bps: int | None = None,
    bound: int | None = None,
    account: str = "S",
    tif: TimeInForce = TimeInForce.GTC,
) -> OrderTicket:
    if trail_price is not None or trail_bps is not None:
        kind = OrderType.TRAILING_STOP
    else:
        kind = OrderType.STOP if limit is None else OrderType.STOP_LIMIT
    if bound is None:
        bound = limit
    return OrderTicket(
        OrderId(f"O-{next(_ids)}"),
        AccountId(account),
        side,
        kind,
        tif,
        quantity,
        limit,
        bound,
        f"owner-{account}",
        stop_price,
        trail_price,
        trail_bps,
    )


def limit(side: Side, quantity: int, price: int, account: str = "M") -> OrderTicket:
    return OrderTicket(
        OrderId(f"O-{next(_ids)}"),
        AccountId(account),
        side,
        OrderType.LIMIT,
        TimeInForce.GTC,
        quantity,
        price,
        price,
        f"owner-{account}",
    )


def market(mode: LiquidityMode, price: int = 10_000) -> tuple[Market, TradeIdSequence]:
    return Market(S, "Apple", price, mode, 0), TradeIdSequence(S)


# -- market mode: the feed's price triggers ----------------------------------------------------


def test_a_sell_stop_waits_then_fills_at_the_price_that_triggered_it() -> None:
    m, ids = market(MARKET)
    order = stop(SELL, 5, stop_price=9_500)

    waiting = m.submit(order, 1, ids)
    assert waiting.rested
    assert waiting.fills == ()
    assert m.update_price(9_600, 2, ids) == []
    assert m.take_triggered() == []

    m.update_price(9_400, 3, ids)
    [found] = m.take_triggered()
    assert (found.order_id, found.stop_price, found.mark, found.at_ns) == (
        order.order_id,
        9_500,
        None,
        3,
    )
    assert [(f.price, f.quantity, f.sell_order_id) for f in found.result.fills] == [
        (9_400, 5, order.order_id)
    ]
    assert found.owner == "owner-S"
    assert len(m.stops) == 0
    m.audit()


def test_a_stop_buy_above_its_collar_when_triggered_is_cancelled_like_a_market_buy() -> None:
    m, ids = market(MARKET)
    m.submit(stop(BUY, 5, stop_price=10_500, bound=11_025), 1, ids)

    m.update_price(12_000, 2, ids)  # a gap past the collar of 105.00 + 5 %
    [found] = m.take_triggered()
    assert found.result.fills == ()
    assert found.result.cancel_reason is CancelReason.PRICE_COLLAR


def test_a_stop_limit_rests_as_a_limit_once_triggered_and_fills_on_a_later_move() -> None:
    m, ids = market(MARKET)
    order = stop(SELL, 5, stop_price=9_500, limit=9_450)
    m.submit(order, 1, ids)

    m.update_price(9_400, 2, ids)  # triggers; the limit of 94.50 is above the price: it rests
    [found] = m.take_triggered()
    assert found.result.rested
    assert found.result.fills == ()
    assert order.order_id in m.book

    fills = m.update_price(9_460, 3, ids)
    assert [(f.price, f.sell_order_id) for f in fills] == [(9_460, order.order_id)]


def test_a_stop_whose_price_is_already_reached_triggers_at_once() -> None:
    m, ids = market(MARKET)

    result = m.submit(stop(SELL, 2, stop_price=10_100), 1, ids)

    assert result.triggered == (10_100, None)
    assert [(f.price, f.quantity) for f in result.fills] == [(10_000, 2)]
    assert len(m.stops) == 0


def test_a_trailing_sell_trails_the_high_and_reports_its_mark() -> None:
    m, ids = market(MARKET)
    order = stop(SELL, 3, trail_bps=500)  # 5 % under the high
    m.submit(order, 1, ids)

    m.update_price(12_000, 2, ids)
    assert m.waiting(order.order_id) == (11_400, 12_000)
    m.update_price(11_500, 3, ids)
    assert m.take_triggered() == []
    m.update_price(11_400, 4, ids)
    [found] = m.take_triggered()
    assert (found.stop_price, found.mark) == (11_400, 12_000)
    assert [f.price for f in found.result.fills] == [11_400]


def test_a_cancelled_stop_leaves_the_book_and_never_triggers() -> None:
    m, ids = market(MARKET)
    order = stop(SELL, 4, stop_price=9_000)
    m.submit(order, 1, ids)

    assert m.cancel(order.order_id) == 4
    m.update_price(8_000, 2, ids)
    assert m.take_triggered() == []
    assert m.cancel(order.order_id) == 0


def test_day_stops_expire_at_the_close_and_a_halt_returns_every_stop() -> None:
    m, ids = market(MARKET)
    day = stop(SELL, 1, stop_price=9_000, tif=TimeInForce.DAY)
    gtc = stop(BUY, 1, stop_price=11_000)
    m.submit(day, 1, ids)
    m.submit(gtc, 1, ids)

    assert [e.order_id for e in m.expire_day_orders()] == [day.order_id]
    assert [e.order_id for e in m.halt()] == [gtc.order_id]


# -- book mode: the last trade triggers ---------------------------------------------------------


def test_in_book_mode_a_trade_triggers_stops_that_cascade_through_the_book() -> None:
    m, ids = market(BOOK)
    for price in (9_900, 9_800, 9_700):
        m.submit(limit(BUY, 5, price), 1, ids)
    first = stop(SELL, 5, stop_price=9_900)  # a trade at 99.00 triggers it: it sells at 98.00
    second = stop(SELL, 5, stop_price=9_800)  # ... which triggers this one: it sells at 97.00
    m.submit(first, 1, ids)
    m.submit(second, 1, ids)

    m.submit(limit(SELL, 5, 9_900, account="T"), 2, ids)

    triggered = m.take_triggered()
    assert [t.order_id for t in triggered] == [first.order_id, second.order_id]
    assert [f.price for t in triggered for f in t.result.fills] == [9_800, 9_700]
    assert m.price == 9_700
    assert all(f.maker_owner == "owner-M" for t in triggered for f in t.result.fills)
    m.audit()


def test_in_book_mode_the_feed_price_triggers_nothing() -> None:
    m, ids = market(BOOK)
    m.submit(stop(SELL, 5, stop_price=9_900), 1, ids)

    m.update_price(9_000, 2, ids)

    assert m.take_triggered() == []
    assert len(m.stops) == 1


def test_in_book_mode_a_triggered_stop_market_with_no_bids_is_cancelled() -> None:
    m, ids = market(BOOK)
    m.submit(limit(BUY, 1, 9_900), 1, ids)
    order = stop(SELL, 5, stop_price=9_900)
    m.submit(order, 1, ids)

    m.submit(limit(SELL, 1, 9_900, account="T"), 2, ids)  # the only bid goes

    [found] = m.take_triggered()
    assert found.result.fills == ()
    assert found.result.cancel_reason is CancelReason.NO_LIQUIDITY


def test_the_audit_counts_waiting_stops_as_resting_orders() -> None:
    m, ids = market(BOOK)
    m.submit(stop(SELL, 5, stop_price=9_000), 1, ids)
    m.submit(limit(BUY, 1, 9_000), 1, ids)

    assert m.audit().resting_orders == 2


# -- self-trade prevention (book mode) ----------------------------------------------------------


def own(side: Side, quantity: int, price: int | None, mode: str, account: str = "A") -> OrderTicket:
    from engine.orders import SelfTradePrevention

    return OrderTicket(
        OrderId(f"O-{next(_ids)}"),
        AccountId(account),
        side,
        OrderType.MARKET if price is None else OrderType.LIMIT,
        TimeInForce.GTC,
        quantity,
        price,
        price if side is SELL or price is not None else 100_000,
        f"owner-{account}",
        self_trade=SelfTradePrevention.parse(mode, "self_trade_prevention"),
    )


def test_cancel_newest_cancels_the_incoming_rest_and_leaves_the_resting_order() -> None:
    m, ids = market(BOOK)
    other = m.submit(limit(SELL, 2, 10_000, account="B"), 1, ids)
    mine = own(SELL, 5, 10_001, "allow")
    m.submit(mine, 1, ids)
    assert other.rested

    result = m.submit(own(BUY, 10, 10_005, "cancel_newest"), 2, ids)

    assert [(f.price, f.quantity) for f in result.fills] == [(10_000, 2)]
    assert result.cancel_reason is CancelReason.SELF_TRADE
    assert not result.rested
    assert result.cancelled == ()
    assert mine.order_id in m.book
    m.audit()


def test_cancel_oldest_takes_out_the_own_resting_order_and_goes_on_matching() -> None:
    m, ids = market(BOOK)
    mine = own(SELL, 5, 10_000, "allow")
    m.submit(mine, 1, ids)
    m.submit(limit(SELL, 5, 10_001, account="B"), 1, ids)

    result = m.submit(own(BUY, 5, 10_005, "cancel_oldest"), 2, ids)

    assert [e.order_id for e in result.cancelled] == [mine.order_id]
    assert [(f.price, f.sell_account_id) for f in result.fills] == [(10_001, "B")]
    assert result.cancel_reason is None
    assert mine.order_id not in m.book
    m.audit()


def test_cancel_both_cancels_the_resting_and_the_incoming_order() -> None:
    m, ids = market(BOOK)
    mine = own(SELL, 5, 10_000, "allow")
    m.submit(mine, 1, ids)

    result = m.submit(own(BUY, 5, 10_005, "cancel_both"), 2, ids)

    assert [e.order_id for e in result.cancelled] == [mine.order_id]
    assert result.fills == ()
    assert result.cancel_reason is CancelReason.SELF_TRADE
    assert len(m.book) == 0


def test_allow_lets_an_account_trade_with_itself() -> None:
    m, ids = market(BOOK)
    m.submit(own(SELL, 5, 10_000, "allow"), 1, ids)

    result = m.submit(own(BUY, 5, 10_000, "allow"), 2, ids)

    assert [(f.buy_account_id, f.sell_account_id) for f in result.fills] == [("A", "A")]


def test_a_fill_or_kill_counts_only_what_self_trade_prevention_lets_it_reach() -> None:
    m, ids = market(BOOK)
    m.submit(limit(SELL, 2, 10_000, account="B"), 1, ids)
    m.submit(own(SELL, 5, 10_001, "allow"), 1, ids)
    m.submit(limit(SELL, 5, 10_002, account="B"), 1, ids)

    def fok(mode: str) -> OrderTicket:
        return own(BUY, 7, 10_005, mode)._replace(time_in_force=TimeInForce.FOK)

    killed = m.submit(fok("cancel_newest"), 2, ids)  # stops at its own order: only 2 reachable
    assert (killed.fills, killed.cancel_reason) == ((), CancelReason.FILL_OR_KILL)
    assert len(m.book) == 3  # nothing was taken out

    filled = m.submit(fok("cancel_oldest"), 2, ids)  # its own order leaves: 2 + 5 reachable
    assert sum(f.quantity for f in filled.fills) == 7
    assert len(filled.cancelled) == 1
    m.audit()


# -- replace ------------------------------------------------------------------------------------


def test_a_replace_down_in_quantity_at_the_same_price_keeps_its_place() -> None:
    m, ids = market(BOOK)
    first = limit(BUY, 10, 9_900, account="A")
    second = limit(BUY, 10, 9_900, account="B")
    m.submit(first, 1, ids)
    m.submit(second, 1, ids)

    new = first._replace(order_id=OrderId("O-new"), quantity=4)
    found = m.replace(first.order_id, 10, new, 2, ids)

    assert found is not None
    assert (found.filled, found.quantity, found.kept_priority) == (0, 4, True)
    assert [e.order_id for e in m.book.orders(BUY)] == ["O-new", second.order_id]
    fills = m.submit(limit(SELL, 4, 9_900, account="C"), 3, ids).fills
    assert [f.buy_order_id for f in fills] == ["O-new"]
    m.audit()


def test_a_replace_up_in_quantity_or_to_another_price_goes_to_the_back_and_may_trade() -> None:
    m, ids = market(BOOK)
    first = limit(BUY, 10, 9_900, account="A")
    m.submit(first, 1, ids)
    m.submit(limit(BUY, 10, 9_900, account="B"), 1, ids)
    m.submit(limit(SELL, 3, 10_000, account="C"), 1, ids)

    bigger = m.replace(
        first.order_id, 10, first._replace(order_id=OrderId("O-2"), quantity=12), 2, ids
    )
    assert bigger is not None
    assert not bigger.kept_priority
    assert [e.order_id for e in m.book.orders(BUY)][-1] == "O-2"

    crossing = first._replace(
        order_id=OrderId("O-3"), quantity=12, limit_price=10_000, bound=10_000
    )
    found = m.replace(OrderId("O-2"), 12, crossing, 3, ids)
    assert found is not None
    assert [(f.price, f.quantity) for f in found.result.fills] == [(10_000, 3)]
    assert found.result.rested
    m.audit()


def test_a_replace_counts_the_old_orders_fills_and_refuses_a_total_already_filled() -> None:
    m, ids = market(BOOK)
    first = limit(BUY, 10, 9_900, account="A")
    m.submit(first, 1, ids)
    m.submit(limit(SELL, 4, 9_900, account="C"), 1, ids)  # 4 of 10 fill

    assert (
        m.replace(first.order_id, 10, first._replace(order_id=OrderId("O-x"), quantity=4), 2, ids)
        is None
    )
    assert first.order_id in m.book  # nothing changed
    found = m.replace(
        first.order_id, 10, first._replace(order_id=OrderId("O-y"), quantity=5), 2, ids
    )
    assert found is not None
    assert (found.filled, found.quantity) == (4, 1)
    assert m.replace(OrderId("O-gone"), 1, first, 3, ids) is None


def test_a_waiting_stop_is_replaced_with_a_new_stop_price() -> None:
    m, ids = market(MARKET)
    order = stop(SELL, 5, stop_price=9_000)
    m.submit(order, 1, ids)

    found = m.replace(
        order.order_id, 5, order._replace(order_id=OrderId("O-s"), stop_price=9_500), 2, ids
    )

    assert found is not None
    assert found.result.rested
    assert m.waiting(OrderId("O-s")) == (9_500, None)
    assert m.waiting(order.order_id) is None
    m.update_price(9_500, 3, ids)
    assert [t.order_id for t in m.take_triggered()] == ["O-s"]


def test_a_triggered_stop_limit_rests_behind_the_orders_already_at_its_price() -> None:
    m, ids = market(BOOK)
    m.submit(limit(BUY, 1, 9_900, account="M"), 1, ids)
    order = stop(SELL, 3, stop_price=9_900, limit=10_100)  # triggers, then rests as a sell at 101
    m.submit(order, 1, ids)
    m.submit(limit(SELL, 2, 10_100, account="E"), 2, ids)  # at 101 before the trigger

    m.submit(limit(SELL, 1, 9_900, account="T"), 3, ids)  # trades at 99: the stop triggers
    m.take_triggered()

    assert [e.account_id for e in m.book.orders(SELL)] == ["E", "S"]
    fills = m.submit(limit(BUY, 2, 10_100, account="B"), 4, ids).fills
    assert [f.sell_account_id for f in fills] == ["E"]
