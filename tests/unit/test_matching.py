from __future__ import annotations

import itertools

from engine.ids import AccountId, OrderId, Symbol, TradeId
from engine.matching import Market, OrderTicket, TradeIdSequence
from engine.orders import CancelReason, LiquidityMode, OrderType, Side, TimeInForce

S = Symbol("AAPL")
_ids = itertools.count(1)


def ticket(
    side: Side,
    quantity: int,
    limit: int | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    account: str = "A",
    bound: int | None = None,
) -> OrderTicket:
    order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
    if bound is None:
        bound = limit
    return OrderTicket(
        OrderId(f"O-{next(_ids)}"),
        AccountId(account),
        side,
        order_type,
        tif,
        quantity,
        limit,
        bound,
    )


def market(mode: LiquidityMode, price: int = 10000) -> tuple[Market, TradeIdSequence]:
    return Market(S, "Apple", price, mode, 0), TradeIdSequence(S)


# -- market mode: the broker fills at the feed's price -------------------------------------------


def test_market_buy_fills_in_full_at_the_current_price() -> None:
    m, ids = market(LiquidityMode.MARKET, 15000)

    result = m.submit(ticket(Side.BUY, 10, bound=15750), 1, ids)

    assert [(f.price, f.quantity) for f in result.fills] == [(15000, 10)]
    assert result.fills[0].buy_order_id is not None
    assert result.fills[0].sell_order_id is None  # the market was the other side
    assert m.volume == 10


def test_market_buy_above_its_collar_is_cancelled_unfilled() -> None:
    m, ids = market(LiquidityMode.MARKET, 16000)

    result = m.submit(ticket(Side.BUY, 10, bound=15750), 1, ids)

    assert result.fills == ()
    assert result.cancel_reason is CancelReason.PRICE_COLLAR


def test_limit_buy_waits_until_price_falls_to_limit() -> None:
    m, ids = market(LiquidityMode.MARKET, 15000)
    order = ticket(Side.BUY, 10, limit=14500)

    result = m.submit(order, 1, ids)
    assert result.rested
    assert not result.fills
    assert m.update_price(14600, 2, ids) == []
    fills = m.update_price(14400, 3, ids)

    assert [(f.buy_order_id, f.price, f.quantity) for f in fills] == [(order.order_id, 14400, 10)]
    assert len(m.book) == 0
    m.book.check()


def test_limit_sell_fills_when_price_rises_to_limit_at_the_new_price() -> None:
    m, ids = market(LiquidityMode.MARKET, 15000)
    order = ticket(Side.SELL, 5, limit=16000)
    m.submit(order, 1, ids)

    fills = m.update_price(16500, 2, ids)

    assert [(f.sell_order_id, f.price, f.quantity) for f in fills] == [(order.order_id, 16500, 5)]


def test_price_move_triggers_resting_orders_in_price_time_priority() -> None:
    m, ids = market(LiquidityMode.MARKET, 10000)
    low = ticket(Side.BUY, 1, limit=9500)
    first_high = ticket(Side.BUY, 1, limit=9800)
    second_high = ticket(Side.BUY, 1, limit=9800)
    untouched = ticket(Side.BUY, 1, limit=9000)
    for t in (low, first_high, second_high, untouched):
        m.submit(t, 1, ids)

    fills = m.update_price(9500, 2, ids)

    assert [f.buy_order_id for f in fills] == [
        first_high.order_id,
        second_high.order_id,
        low.order_id,
    ]
    assert untouched.order_id in m.book


def test_ioc_and_fok_limits_that_cannot_fill_are_cancelled_not_rested() -> None:
    m, ids = market(LiquidityMode.MARKET, 10000)

    ioc = m.submit(ticket(Side.BUY, 1, limit=9000, tif=TimeInForce.IOC), 1, ids)
    fok = m.submit(ticket(Side.BUY, 1, limit=9000, tif=TimeInForce.FOK), 1, ids)

    assert ioc.cancel_reason is CancelReason.IMMEDIATE_OR_CANCEL
    assert fok.cancel_reason is CancelReason.FILL_OR_KILL
    assert len(m.book) == 0


# -- book mode: orders match each other at the resting price --------------------------------------


def test_book_orders_match_at_the_resting_price_and_set_the_last_price() -> None:
    m, ids = market(LiquidityMode.BOOK, 10000)
    resting = ticket(Side.SELL, 10, limit=10100, account="B")
    m.submit(resting, 1, ids)

    result = m.submit(ticket(Side.BUY, 4, limit=10500), 2, ids)

    assert [(f.price, f.quantity, f.sell_order_id) for f in result.fills] == [
        (10100, 4, resting.order_id)
    ]
    assert m.price == 10100
    assert m.book.get(resting.order_id).remaining == 6  # type: ignore[union-attr]
    m.book.check()


def test_book_buy_walks_levels_then_rests_its_remainder() -> None:
    m, ids = market(LiquidityMode.BOOK)
    for price in (10100, 10200, 10300):
        m.submit(ticket(Side.SELL, 5, limit=price, account="B"), 1, ids)
    buy = ticket(Side.BUY, 12, limit=10200)

    result = m.submit(buy, 2, ids)

    assert [(f.price, f.quantity) for f in result.fills] == [(10100, 5), (10200, 5)]
    assert result.rested
    assert m.book.get(buy.order_id).remaining == 2  # type: ignore[union-attr]
    assert m.book.best(Side.BUY).price == 10200  # type: ignore[union-attr]
    m.book.check()


def test_book_fok_fills_all_or_nothing() -> None:
    m, ids = market(LiquidityMode.BOOK)
    m.submit(ticket(Side.SELL, 5, limit=10100, account="B"), 1, ids)

    killed = m.submit(ticket(Side.BUY, 6, limit=10100, tif=TimeInForce.FOK), 2, ids)
    filled = m.submit(ticket(Side.BUY, 5, limit=10100, tif=TimeInForce.FOK), 3, ids)

    assert killed.fills == ()
    assert killed.cancel_reason is CancelReason.FILL_OR_KILL
    assert sum(f.quantity for f in filled.fills) == 5
    assert filled.cancel_reason is None


def test_book_market_order_rest_is_cancelled_for_lack_of_liquidity() -> None:
    m, ids = market(LiquidityMode.BOOK)
    m.submit(ticket(Side.BUY, 3, limit=9900, account="B"), 1, ids)

    result = m.submit(ticket(Side.SELL, 5), 2, ids)

    assert [(f.price, f.quantity) for f in result.fills] == [(9900, 3)]
    assert result.cancel_reason is CancelReason.NO_LIQUIDITY
    assert len(m.book) == 0


def test_book_market_buy_stops_at_its_collar() -> None:
    m, ids = market(LiquidityMode.BOOK)
    m.submit(ticket(Side.SELL, 1, limit=10000, account="B"), 1, ids)
    m.submit(ticket(Side.SELL, 1, limit=11000, account="B"), 1, ids)

    result = m.submit(ticket(Side.BUY, 2, bound=10500), 2, ids)

    assert [f.price for f in result.fills] == [10000]
    assert result.cancel_reason is CancelReason.PRICE_COLLAR


def test_book_price_update_is_a_reference_only() -> None:
    m, ids = market(LiquidityMode.BOOK)
    m.submit(ticket(Side.BUY, 3, limit=9900, account="B"), 1, ids)

    assert m.update_price(9000, 2, ids) == []
    assert m.price == 9000
    assert len(m.book) == 1


def test_quote_shows_best_bid_and_ask_with_sizes_and_day_statistics() -> None:
    m, ids = market(LiquidityMode.BOOK)
    m.submit(ticket(Side.BUY, 3, limit=9900, account="B"), 1, ids)
    m.submit(ticket(Side.BUY, 2, limit=9900, account="C"), 1, ids)
    m.submit(ticket(Side.SELL, 4, limit=10100, account="B"), 1, ids)
    m.submit(ticket(Side.SELL, 1, limit=9900), 2, ids)

    quote = m.quote()

    assert (str(quote.bid), quote.bid_size, str(quote.ask), quote.ask_size) == (
        "99.00",
        4,
        "101.00",
        4,
    )
    assert (str(quote.open), str(quote.low), str(quote.last_price), quote.volume) == (
        "100.00",
        "99.00",
        "99.00",
        1,
    )
    assert [str(p.price) for p in m.history()] == ["100.00", "99.00"]


def test_trade_ids_are_unique_per_symbol() -> None:
    ids = TradeIdSequence(S)

    assert [ids(), ids()] == [TradeId("T-AAPL-1"), TradeId("T-AAPL-2")]
