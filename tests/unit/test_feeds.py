from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import ValidationError
from engine.feeds import RandomWalk, parse_price_rows
from engine.ids import Symbol

START = {Symbol("AAPL"): 15000, Symbol("PENNY"): 2}


def path(seed: int, steps: int = 200) -> list[tuple[str, int]]:
    walk = RandomWalk(START, seed=seed, volatility="2.0")
    return [(t.symbol, t.price) for _ in range(steps) for t in walk.step()]


def test_the_same_seed_walks_the_same_path_and_another_seed_does_not() -> None:
    assert path(7) == path(7)
    assert path(7) != path(8)


def test_walked_prices_are_whole_cents_of_at_least_one_cent() -> None:
    prices = [price for _, price in path(3, steps=2000)]

    assert all(isinstance(p, int) and p >= 1 for p in prices)


def test_csv_rows_parse_in_time_order_with_a_header_and_comments() -> None:
    ticks = parse_price_rows(
        ["time,symbol,price", "# a comment", "2,aapl,151.00", "1,AAPL,150.5", ""]
    )

    assert [(t.at_seconds, t.symbol, t.price) for t in ticks] == [
        (Decimal("1"), "AAPL", 15050),
        (Decimal("2"), "AAPL", 15100),
    ]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("1,AAPL", "line 1"),
        ("x,AAPL,1", "line 1 time"),
        ("1,AAPL,1.001", "line 1 price"),
        ("-1,AAPL,1", "line 1 time"),
        ("1,,1", "line 1 symbol"),
    ],
)
def test_a_bad_csv_row_names_its_line_and_field(line: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        parse_price_rows([line])
