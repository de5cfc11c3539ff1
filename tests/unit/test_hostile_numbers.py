"""Every money and quantity parser, fed arbitrary text, JSON and numbers: it answers a value or
a `ValidationError`, never another error, and never takes long (hypothesis's deadline)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.errors import ValidationError
from engine.money import (
    MAX_AMOUNT_CENTS,
    MAX_PRICE_CENTS,
    MAX_QUANTITY,
    parse_amount,
    parse_percent,
    parse_price,
    parse_quantity,
)

PARSERS: list[Callable[[Any], Any]] = [
    parse_price,
    parse_amount,
    parse_quantity,
    lambda value: parse_percent(value, "percent"),
]

NUMBER_TEXT = r"\A[ ]?[+-]?[0-9]{0,60}(\.[0-9]{0,60})?([eE][+-]?[0-9]{1,12})?[ ]?\Z"
number_text = st.from_regex(NUMBER_TEXT, fullmatch=True)
huge = st.sampled_from(
    [
        "1e999999",
        "-1e999999",
        "1e-999999",
        "9" * 5000,
        "0." + "0" * 5000 + "1",
        "1_000",
        "\u0661\u0662\u0663",
        "\uff11\uff12\uff13",
        "NaN",
        "-Infinity",
        "sNaN",
        "1e999999999999999999999",
    ]
)
values = st.one_of(
    st.text(max_size=200),
    number_text,
    huge,
    st.integers(),
    st.integers(min_value=-(10**5000), max_value=10**5000),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(Decimal, st.sampled_from(["1e999999", "1e-999999", "9" * 3000, "-0e50"])),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
)

BOUNDED = settings(max_examples=300, deadline=timedelta(milliseconds=250))


@pytest.mark.parametrize("parse", PARSERS)
@BOUNDED
@given(value=values)
@example(value="1e999999")
@example(value=10**100_000)
@example(value=Decimal("1e999999"))
def test_every_parser_answers_a_value_or_a_validation_error_quickly(
    parse: Callable[[Any], Any], value: Any
) -> None:
    try:
        parsed = parse(value)
    except ValidationError as error:
        message = str(error)
    else:
        assert parsed >= 0
        return
    assert len(message) < 400  # a hostile value is never echoed whole


@BOUNDED
@given(value=values)
def test_accepted_amounts_are_within_their_bounds(value: Any) -> None:
    for parse, maximum in (
        (parse_price, MAX_PRICE_CENTS),
        (parse_amount, MAX_AMOUNT_CENTS),
        (parse_quantity, MAX_QUANTITY),
    ):
        try:
            parsed = parse(value)
        except ValidationError:
            continue
        assert isinstance(parsed, int)
        assert 0 < parsed <= maximum
