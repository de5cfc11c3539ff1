from __future__ import annotations

from decimal import Decimal

import pytest

from engine.bars import BarSeries
from engine.errors import ValidationError
from engine.ids import AccountId, OrderId, Symbol
from engine.matching import Market, OrderTicket, TradeIdSequence
from engine.orders import LiquidityMode, OrderType, Side, TimeInForce
from engine.search import SearchIndex

MINUTE = 60_000_000_000
DAY = 1440 * MINUTE


def test_bars_bucket_prices_and_trades_by_interval() -> None:
    series = BarSeries("1m", limit=10)

    series.price(100, 0)
    series.trade(105, 3, 10)
    series.price(98, 59_999_999_999)
    series.trade(101, 2, MINUTE + 1)

    bars = series.bars(10)
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        (Decimal("1.00"), Decimal("1.05"), Decimal("0.98"), Decimal("0.98"), 3),
        (Decimal("1.01"), Decimal("1.01"), Decimal("1.01"), Decimal("1.01"), 2),
    ]
    assert bars[1].start.timestamp() == 60


def test_bars_keep_only_their_limit_and_refuse_unknown_intervals() -> None:
    series = BarSeries("5m", limit=2)
    for n in range(4):
        series.price(100 + n, n * 5 * MINUTE)

    assert [b.close for b in series.bars(10)] == [Decimal("1.02"), Decimal("1.03")]
    with pytest.raises(ValidationError, match="interval"):
        BarSeries("2m", limit=2)


def ticket(n: int, side: Side, quantity: int, limit: int | None) -> OrderTicket:
    order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
    return OrderTicket(
        OrderId(f"O-{n}"),
        AccountId(f"A-{n}"),
        side,
        order_type,
        TimeInForce.GTC,
        quantity,
        limit,
        limit,
    )


def test_quote_change_is_from_the_previous_days_close() -> None:
    market = Market(Symbol("X"), "X", 10000, LiquidityMode.MARKET, 0)
    ids = TradeIdSequence(Symbol("X"))
    market.update_price(11000, DAY + 1, ids)
    market.update_price(9900, DAY + 2, ids)

    quote = market.quote()

    assert (quote.open, quote.high, quote.low) == (
        Decimal("110.00"),
        Decimal("110.00"),
        Decimal("99.00"),
    )
    assert (quote.change, quote.change_percent) == (Decimal("-1.00"), Decimal("-1.00"))


def test_depth_and_tape_of_a_book_symbol() -> None:
    market = Market(Symbol("X"), "X", 10000, LiquidityMode.BOOK, 0)
    ids = TradeIdSequence(Symbol("X"))
    market.submit(ticket(1, Side.SELL, 5, 10100), 1, ids)
    market.submit(ticket(2, Side.SELL, 3, 10100), 2, ids)
    market.submit(ticket(3, Side.SELL, 4, 10200), 3, ids)
    market.submit(ticket(4, Side.BUY, 2, 9900), 4, ids)
    market.submit(ticket(5, Side.BUY, 6, 10100), 5, ids)

    depth = market.depth(5)
    tape = market.trades(10)

    assert [(str(level.price), level.quantity, level.orders) for level in depth.asks] == [
        ("101.00", 2, 1),
        ("102.00", 4, 1),
    ]
    assert [(str(level.price), level.quantity, level.orders) for level in depth.bids] == [
        ("99.00", 2, 1)
    ]
    assert [(t.quantity, t.taker_side) for t in tape] == [(1, Side.BUY), (5, Side.BUY)]
    assert market.quote().volume == 6


def index(*stocks: tuple[str, str]) -> SearchIndex:
    result = SearchIndex()
    for symbol, name in stocks:
        result.add(Symbol(symbol), name)
    return result


STOCKS = (
    ("AAPL", "Apple Inc."),
    ("APP", "AppLovin Corp"),
    ("GOOGL", "Alphabet Inc. Class A"),
    ("GOOG", "Alphabet Inc. Class C"),
    ("MSFT", "Microsoft Corporation"),
    ("PEP", "PepsiCo Inc."),
    ("SNAP", "Snap Inc."),
)


def test_search_ranks_exact_symbol_then_prefix_then_name_word_then_substring() -> None:
    stocks = index(*STOCKS)

    assert [(r.symbol, r.rank) for r in stocks.search("app")] == [("APP", 0), ("AAPL", 2)]
    assert [(r.symbol, r.rank) for r in stocks.search("ppl")] == [("AAPL", 3), ("APP", 3)]
    assert [(r.symbol, r.rank) for r in stocks.search("GOO")] == [("GOOG", 1), ("GOOGL", 1)]
    assert [r.symbol for r in stocks.search("alphabet")] == ["GOOG", "GOOGL"]
    assert [(r.symbol, r.rank) for r in stocks.search("soft")] == [("MSFT", 3)]


def test_search_is_case_insensitive_limited_and_empty_for_nothing() -> None:
    stocks = index(*STOCKS)

    assert [r.symbol for r in stocks.search("INC", limit=2)] == ["AAPL", "GOOG"]
    assert stocks.search("  ") == []
    assert stocks.search("zzz") == []
    assert stocks.search("apple")[0].name == "Apple Inc."
